"""Every change to a task's comments goes through here.

Each public function is one transaction: it locks the task (FOR UPDATE, so that the
comments of a task and the task itself change one at a time), applies the rules of who
may do what, and records the event last. Comments follow their task's rules of
archiving: an archived task's comments are neither written nor edited (they may still
be deleted, as the task itself may), and in an archived project nothing changes.
"""

from django.db import transaction

from apps.common.errors import Archived, NotAllowed, NotFound
from apps.tasks import selectors
from apps.tasks.events import record_event
from apps.tasks.models import Comment, EventType, ProjectRole, Task
from apps.tasks.representation import comment_representation
from apps.tasks.selectors import TaskAccess
from apps.users.models import User


@transaction.atomic
def comment_create(*, task_id, actor: User, body: str) -> Comment:
    """Add the actor's comment to the task and record `comment.created`, which emails the
    task's creator, its assignee and earlier commenters who can still see the task (not
    the author), as each one's preference allows. NotFound if the actor cannot see the
    task, NotAllowed for a viewer of its project, Archived if it or its project is."""
    task, access = _lock_task(task_id=task_id, actor=actor)
    if not selectors.can_comment(actor, access):
        raise NotAllowed("As a viewer of this task's project you may read its comments only.")
    _refuse_if_archived(task, access)
    earlier_commenters = selectors.commenters_who_see(task)
    comment = Comment.objects.create(task=task, author=actor, body=body)
    record_event(
        EventType.COMMENT_CREATED,
        actor=actor,
        task=task,
        comment=comment_representation(comment),
        notify=earlier_commenters,
    )
    return comment


@transaction.atomic
def comment_update(*, task_id, comment_id, actor: User, body: str | None) -> Comment:
    """Change the text of the actor's own comment; it is then marked `edited`. The same
    text again, or None (an empty PATCH), changes nothing and records nothing. NotFound
    for a task the actor cannot see or a comment not on it, NotAllowed unless the actor
    wrote it and may still comment (an author since made a viewer may not), Archived if
    the task or its project is."""
    task, access = _lock_task(task_id=task_id, actor=actor)
    comment = _comment_of(task, comment_id)
    if comment.author_id != actor.pk:
        raise NotAllowed("Only its author may edit a comment.")
    if not selectors.can_comment(actor, access):
        raise NotAllowed("As a viewer of this task's project you may no longer edit comments.")
    if body is None or body == comment.body:
        return comment
    _refuse_if_archived(task, access)
    comment.body = body
    comment.edited = True
    comment.save(update_fields=["body", "edited", "updated_at"])
    record_event(
        EventType.COMMENT_UPDATED, actor=actor, task=task, comment=comment_representation(comment)
    )
    return comment


@transaction.atomic
def comment_delete(*, task_id, comment_id, actor: User) -> None:
    """Delete a comment: its author (even one since made a viewer: taking one's words
    back is not writing), an owner of the task's project or an admin may.
    `comment.deleted` carries only the comment's `{id, task}`, so that what was taken
    back is not sent out again. NotFound for a task the actor cannot see or a comment
    not on it, NotAllowed for anyone else, Archived if the task's project is archived."""
    task, access = _lock_task(task_id=task_id, actor=actor)
    comment = _comment_of(task, comment_id)
    if not (comment.author_id == actor.pk or actor.is_admin or access.role == ProjectRole.OWNER):
        raise NotAllowed(
            "Only its author, an owner of the task's project or an admin may delete a comment."
        )
    _refuse_in_archived_project(access)
    snapshot = {"id": str(comment.pk), "task": str(task.pk)}
    comment.delete()
    record_event(EventType.COMMENT_DELETED, actor=actor, task=task, comment=snapshot)


def _lock_task(*, task_id, actor: User) -> tuple[Task, TaskAccess]:
    locked = selectors.lock_visible_task(user=actor, task_id=task_id)
    if locked is None:
        raise NotFound("No task with this id.")
    return locked


def _comment_of(task: Task, comment_id) -> Comment:
    # No lock of its own: every change to a task's comments holds the task's lock.
    comment = selectors.task_comment(task_id=task.pk, comment_id=comment_id)
    if comment is None:
        raise NotFound("No comment with this id on this task.")
    return comment


def _refuse_if_archived(task: Task, access: TaskAccess) -> None:
    _refuse_in_archived_project(access)
    if task.archived_at is not None:
        raise Archived("The task is archived; restore it before commenting on it.")


def _refuse_in_archived_project(access: TaskAccess) -> None:
    if access.project_archived:
        raise Archived(
            "The task's project is archived; restore the project before changing its comments.",
            code="project_archived",
        )
