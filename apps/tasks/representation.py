"""The public shapes of tasks and events, as JSON-ready primitives.

Rendered without a serializer per row: from model instances where a service holds one,
and from the columns alone (`task_row_representation`) where a page is read, so that a
read builds no model instance at all.
"""

from apps.common.timefmt import rfc3339
from apps.tasks.models import Comment, EventType, Membership, Priority, Project, Task, TaskEvent

PRIORITY_LABELS = {priority.value: priority.label for priority in Priority}

# The columns a task is rendered from, as `QuerySet.values()` names them.
TASK_COLUMNS = (
    "id",
    "title",
    "description",
    "status",
    "priority",
    "due_at",
    "metadata",
    "assignee_id",
    "assignee__username",
    "project_id",
    "created_by_id",
    "created_by__username",
    "archived_at",
    "version",
    "created_at",
    "updated_at",
)

# The fields a change may touch, in representation order; `changes` are keyed by these.
EDITABLE_FIELDS = (
    "title",
    "description",
    "status",
    "priority",
    "due_at",
    "metadata",
    "assignee",
    "project",
)


def user_ref(user_id: int | None, username: str | None) -> dict | None:
    """A person as the API names them, `{id, username}`; None for nobody."""
    return None if user_id is None else {"id": user_id, "username": username}


def task_representation(task: Task) -> dict:
    """The task as the API shows it. `created_by` and `assignee` must be loaded
    (select_related, or set from a join): an assignee that is not costs a query."""
    return {
        "id": str(task.id),
        "title": task.title,
        "description": task.description,
        "status": task.status,
        "priority": Priority(task.priority).label,
        "due_at": rfc3339(task.due_at),
        "metadata": task.metadata,
        "assignee": task.assignee_id,
        "assignee_user": user_ref(
            task.assignee_id, task.assignee.username if task.assignee is not None else None
        ),
        "project": str(task.project_id) if task.project_id is not None else None,
        "created_by": {"id": task.created_by_id, "username": task.created_by.username},
        "archived_at": rfc3339(task.archived_at),
        "version": task.version,
        "created_at": rfc3339(task.created_at),
        "updated_at": rfc3339(task.updated_at),
    }


def task_row_representation(row: dict) -> dict:
    """The same shape as `task_representation`, from a `values(*TASK_COLUMNS)` row."""
    return {
        "id": str(row["id"]),
        "title": row["title"],
        "description": row["description"],
        "status": row["status"],
        "priority": PRIORITY_LABELS[row["priority"]],
        "due_at": rfc3339(row["due_at"]),
        "metadata": row["metadata"],
        "assignee": row["assignee_id"],
        "assignee_user": user_ref(row["assignee_id"], row["assignee__username"]),
        "project": str(row["project_id"]) if row["project_id"] is not None else None,
        "created_by": {"id": row["created_by_id"], "username": row["created_by__username"]},
        "archived_at": rfc3339(row["archived_at"]),
        "version": row["version"],
        "created_at": rfc3339(row["created_at"]),
        "updated_at": rfc3339(row["updated_at"]),
    }


def project_representation(project: Project, *, my_role: str | None, member_count: int) -> dict:
    """The project as the API shows it to someone whose role in it is `my_role` (None
    for an admin outside it). `created_by` must be loaded."""
    return {
        "id": str(project.id),
        "name": project.name,
        "description": project.description,
        "created_by": {"id": project.created_by_id, "username": project.created_by.username},
        "my_role": my_role,
        "member_count": member_count,
        "archived_at": rfc3339(project.archived_at),
        "version": project.version,
        "created_at": rfc3339(project.created_at),
        "updated_at": rfc3339(project.updated_at),
    }


def project_snapshot(project: Project) -> dict:
    """The project as events carry it: what is the same for every recipient (no
    `my_role`, which differs from one recipient to the next)."""
    body = project_representation(project, my_role=None, member_count=0)
    del body["my_role"], body["member_count"]
    return body


def member_representation(membership: Membership) -> dict:
    """A member: `{user {id, username}, role, added_at}`. `user` must be loaded."""
    return {
        "user": {"id": membership.user_id, "username": membership.user.username},
        "role": membership.role,
        "added_at": rfc3339(membership.added_at),
    }


def comment_representation(comment: Comment) -> dict:
    """A comment as the API shows it. `author` must be loaded."""
    return {
        "id": str(comment.id),
        "task": str(comment.task_id),
        "author": {"id": comment.author_id, "username": comment.author.username},
        "body": comment.body,
        "created_at": rfc3339(comment.created_at),
        "updated_at": rfc3339(comment.updated_at),
        "edited": comment.edited,
    }


def event_representation(event: TaskEvent, *, seq: int | None) -> dict:
    """An event as a stream entry of one user (`seq` is that user's). Besides `type`,
    `seq`, `at` and `actor` it carries what its type concerns: `task`, `project`,
    `member`, `comment` (and `changes` on task.updated and project.updated)."""
    body = {
        "type": event.type,
        "seq": seq,
        "at": rfc3339(event.created_at),
        "actor": event.actor_snapshot,
    }
    if event.task_snapshot is not None:
        body["task"] = event.task_snapshot
    if event.project_snapshot is not None:
        body["project"] = event.project_snapshot
    if event.member_snapshot is not None:
        body["member"] = event.member_snapshot
    if event.comment_snapshot is not None:
        body["comment"] = event.comment_snapshot
    if event.type in (EventType.UPDATED, EventType.PROJECT_UPDATED):
        body["changes"] = event.changes or {}
    return body
