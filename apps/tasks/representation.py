"""The public shapes of tasks and events, as JSON-ready primitives.

Rendered without a serializer per row: from model instances where a service holds one,
and from the columns alone (`task_row_representation`) where a page is read, so that a
read builds no model instance at all.
"""

from apps.common.timefmt import rfc3339
from apps.tasks.models import EventType, Priority, Task, TaskEvent

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
    "created_by_id",
    "created_by__username",
    "archived_at",
    "version",
    "created_at",
    "updated_at",
)

# The fields a change may touch, in representation order; `changes` are keyed by these.
EDITABLE_FIELDS = ("title", "description", "status", "priority", "due_at", "metadata", "assignee")


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
        "created_by": {"id": row["created_by_id"], "username": row["created_by__username"]},
        "archived_at": rfc3339(row["archived_at"]),
        "version": row["version"],
        "created_at": rfc3339(row["created_at"]),
        "updated_at": rfc3339(row["updated_at"]),
    }


def event_representation(event: TaskEvent, *, seq: int | None) -> dict:
    """An event as a stream entry of one user (`seq` is that user's)."""
    body = {
        "type": event.type,
        "seq": seq,
        "at": rfc3339(event.created_at),
        "actor": event.actor_snapshot,
        "task": event.task_snapshot,
    }
    if event.type == EventType.UPDATED:
        body["changes"] = event.changes or {}
    return body
