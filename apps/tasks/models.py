import uuid

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower


class Status(models.TextChoices):
    TODO = "todo", "To do"
    IN_PROGRESS = "in_progress", "In progress"
    DONE = "done", "Done"


class Priority(models.IntegerChoices):
    """Stored as a number so that ordering by priority means low < medium < high < urgent;
    the API speaks the labels."""

    LOW = 1, "low"
    MEDIUM = 2, "medium"
    HIGH = 3, "high"
    URGENT = 4, "urgent"

    @classmethod
    def from_label(cls, label: str) -> "Priority":
        for member in cls:
            if member.label == label:
                return member
        raise ValueError(f"{label!r} is not a priority")


class ProjectRole(models.TextChoices):
    OWNER = "owner", "Owner"
    MEMBER = "member", "Member"
    VIEWER = "viewer", "Viewer"


# Roles that create and change a project's tasks (a viewer only reads).
EDITING_ROLES = frozenset({ProjectRole.OWNER, ProjectRole.MEMBER})


# Violated by a second project of the same owner with the same name, whatever its case.
PROJECT_NAME_CONSTRAINT = "project_owner_name_ci"


class Project(models.Model):
    """A shared task list: its members (`Membership`) see and work on its tasks."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, default="")
    # PROTECT: deleting the person who started a project must not delete a team's tasks.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="created_projects"
    )
    archived_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint("created_by", Lower("name"), name=PROJECT_NAME_CONSTRAINT),
            models.CheckConstraint(
                condition=models.Q(version__gte=1), name="project_version_positive"
            ),
        ]
        indexes = [models.Index(fields=["archived_at"], name="project_archived")]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A person's role in a project."""

    # Not indexed alone: the unique (project, user) index serves "the project's members".
    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="memberships", db_index=False
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=ProjectRole.choices)
    added_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="membership_project_user"),
        ]
        # "My projects" and "my role here" (the unique index serves "the members").
        indexes = [models.Index(fields=["user", "project"], name="membership_user_project")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.role} of {self.project_id}"


class Task(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.TODO)
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.MEDIUM)
    due_at = models.DateTimeField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="created_tasks"
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_tasks",
    )
    # None for a personal task. PROTECT: a project is deleted only once it has no tasks.
    # Not indexed alone: `task_project_created` leads with it.
    project = models.ForeignKey(
        Project,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="tasks",
        db_index=False,
    )
    archived_at = models.DateTimeField(null=True, blank=True)
    # The due date a due-soon reminder went out for: a new due date re-arms it.
    reminded_for_due_at = models.DateTimeField(null=True, blank=True, editable=False)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            # "Tasks I created / am assigned", newest first: the default list.
            models.Index(fields=["created_by", "-created_at", "-id"], name="task_creator_created"),
            models.Index(fields=["assignee", "-created_at", "-id"], name="task_assignee_created"),
            # The admin's unfiltered list and the ordering keys.
            models.Index(fields=["-created_at", "-id"], name="task_created"),
            models.Index(fields=["due_at", "id"], name="task_due"),
            models.Index(fields=["updated_at", "id"], name="task_updated"),
            models.Index(fields=["priority", "id"], name="task_priority"),
            models.Index(fields=["archived_at"], name="task_archived"),
            models.Index(fields=["project", "-created_at", "-id"], name="task_project_created"),
            # Open tasks by due date: what the reminder job scans.
            models.Index(
                fields=["due_at"],
                condition=models.Q(archived_at__isnull=True) & ~models.Q(status="done"),
                name="task_open_due",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(version__gte=1), name="task_version_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.title


class EventType(models.TextChoices):
    CREATED = "task.created"
    UPDATED = "task.updated"
    ARCHIVED = "task.archived"
    RESTORED = "task.restored"
    DELETED = "task.deleted"
    DUE_SOON = "task.due_soon"
    PROJECT_UPDATED = "project.updated"
    PROJECT_ARCHIVED = "project.archived"
    PROJECT_RESTORED = "project.restored"
    PROJECT_DELETED = "project.deleted"
    MEMBER_ADDED = "member.added"
    MEMBER_UPDATED = "member.updated"
    MEMBER_REMOVED = "member.removed"
    COMMENT_CREATED = "comment.created"
    COMMENT_UPDATED = "comment.updated"
    COMMENT_DELETED = "comment.deleted"


TASK_EVENT_TYPES = frozenset(kind for kind in EventType if kind.startswith("task."))


class TaskEvent(models.Model):
    """One change (to a task, a project, a membership or a comment), written in the same
    transaction as the change: the durable log every user's stream points into.

    The task, project, member, comment and actor are snapshots, so the event reads the
    same after they change again or are deleted. Each event carries the snapshots its
    type names: task events a task; project events a project; member events a project
    and a member; comment events a comment and its task.
    """

    id = models.BigAutoField(primary_key=True)
    type = models.CharField(max_length=32, choices=EventType.choices)
    task_id = models.UUIDField(null=True, db_index=True)
    project_id = models.UUIDField(null=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    actor_snapshot = models.JSONField(null=True)
    task_snapshot = models.JSONField(null=True)
    project_snapshot = models.JSONField(null=True)
    member_snapshot = models.JSONField(null=True)
    comment_snapshot = models.JSONField(null=True)
    changes = models.JSONField(null=True)
    created_at = models.DateTimeField(db_index=True)
    # The outbox mark: set by the live relay in the transaction that hands the event to
    # the channel layer, so an event whose publication fails stays unpublished and is
    # published again (realtime/relay.py).
    published_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        indexes = [
            models.Index(fields=["task_id", "id"], name="taskevent_task_history"),
            # What the relay scans: small, since events leave it within milliseconds.
            models.Index(
                fields=["id"],
                condition=models.Q(published_at__isnull=True),
                name="taskevent_unpublished",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.task_id or self.project_id} #{self.pk}"


class EventStream(models.Model):
    """A user's event stream: the last `seq` handed out.

    Writers take the next number with an upsert that locks this row until they commit,
    so each user's entries commit in `seq` order and a reader resuming after N never
    skips an entry that commits later.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    last_seq = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"stream of user {self.user_id} at {self.last_seq}"


class StreamEntry(models.Model):
    """An event as it appears in one recipient's stream, at that stream's `seq`."""

    id = models.BigAutoField(primary_key=True)
    # No index of their own: the unique (user, seq) and the (event, user) index lead
    # with them, and every change writes one entry per recipient, so a project of many
    # members paid for two more index insertions each (scripts/bench/project_writes.py).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    seq = models.BigIntegerField()
    event = models.ForeignKey(
        TaskEvent, on_delete=models.CASCADE, related_name="entries", db_index=False
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "seq"], name="streamentry_user_seq"),
        ]
        indexes = [models.Index(fields=["event", "user"], name="streamentry_event_user")]

    def __str__(self) -> str:
        return f"user {self.user_id} seq {self.seq}: event {self.event_id}"


# Violated by a second request with the same Idempotency-Key (apps.tasks.services).
IDEMPOTENCY_KEY_CONSTRAINT = "idempotency_user_key"


class IdempotencyRecord(models.Model):
    """The first response to a `POST tasks/` with an Idempotency-Key, kept 24 hours.
    `task_id` is None while the first request is still creating its task."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    task_id = models.UUIDField(null=True)
    response_body = models.JSONField()
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name=IDEMPOTENCY_KEY_CONSTRAINT),
        ]

    def __str__(self) -> str:
        return f"{self.key} of user {self.user_id}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class EmailDelivery(models.Model):
    """One email about one event to one person, decided before anything is sent.

    The unique pair makes the decision idempotent; the send happens while this row is
    locked and is marked in the same transaction, so a re-run, a duplicate message from
    the broker or a second worker finds it sent (or locked) and sends nothing.
    """

    event = models.ForeignKey(TaskEvent, on_delete=models.CASCADE, related_name="deliveries")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    email = models.EmailField()
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # When the sweep queues this delivery's send (again) if it is still pending: soon
    # after the change as a safety net for a lost job, or when an SMTP retry is due.
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["event", "user"], name="emaildelivery_event_user"),
        ]
        indexes = [
            models.Index(fields=["status", "created_at"], name="emaildelivery_status"),
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status="pending"),
                name="emaildelivery_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} to {self.email}: {self.status}"


class Comment(models.Model):
    """A note on a task by someone who can see it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Not indexed alone: `comment_task_created` leads with it.
    task = models.ForeignKey(
        Task, on_delete=models.CASCADE, related_name="comments", db_index=False
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="comments"
    )
    body = models.TextField()
    edited = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["task", "created_at", "id"], name="comment_task_created")]

    def __str__(self) -> str:
        return f"comment {self.pk} on {self.task_id}"
