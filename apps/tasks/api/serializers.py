import json

from rest_framework import serializers

from apps.common.serializers import JSONObjectField, StrictSerializer, TextField
from apps.tasks.models import EventType, Priority, Status
from apps.users.api.serializers import UserRefSerializer
from apps.users.models import User

METADATA_MAX_BYTES = 16 * 1024
MAX_USER_ID = 2**63 - 1


class TaskSerializer(StrictSerializer):
    """Validates task input and describes the task in the schema; output is rendered by
    `apps.tasks.representation.task_representation`, kept in step with it by
    apps/tests/test_task_representation.py."""

    id = serializers.UUIDField(read_only=True)
    title = TextField(max_length=200)
    description = TextField(max_length=10_000, allow_blank=True, trim_whitespace=False, default="")
    status = serializers.ChoiceField(choices=Status.values, default=Status.TODO)
    priority = serializers.ChoiceField(choices=Priority.labels, default=Priority.MEDIUM.label)
    due_at = serializers.DateTimeField(allow_null=True, default=None)
    metadata = JSONObjectField(
        default=dict, help_text="A JSON object of at most 16 KiB when serialized."
    )
    assignee = serializers.IntegerField(
        allow_null=True,
        default=None,
        min_value=1,
        max_value=MAX_USER_ID,
        help_text="The id of an active user, or null.",
    )
    assignee_user = UserRefSerializer(
        read_only=True, allow_null=True, help_text="The assignee by name, or null."
    )
    project = serializers.UUIDField(
        allow_null=True,
        default=None,
        help_text="The project the task belongs to (one you are an owner or member of), "
        "or null for a personal task.",
    )
    created_by = UserRefSerializer(read_only=True)
    archived_at = serializers.DateTimeField(read_only=True, allow_null=True)
    version = serializers.IntegerField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    def validate_priority(self, value: str) -> int:
        return Priority.from_label(value)

    def validate_metadata(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
        if size > METADATA_MAX_BYTES:
            raise serializers.ValidationError(
                f"Must be at most {METADATA_MAX_BYTES} bytes serialized (this is {size})."
            )
        return value

    def validate_assignee(self, value) -> User | None:
        # The user with their name, so that the task renders `assignee_user` without
        # another query.
        if value is None:
            return None
        assignee = User.objects.only("id", "username").filter(pk=value, is_active=True).first()
        if assignee is None:
            raise serializers.ValidationError(f"No active user with id {value}.")
        return assignee

    def model_fields(self) -> dict:
        """The validated data as Task attributes (`assignee` a user with id and name,
        `project_id` the project's id)."""
        data = dict(self.validated_data)
        if "project" in data:
            data["project_id"] = data.pop("project")
        return data


class TaskPageSerializer(serializers.Serializer):
    results = TaskSerializer(many=True)
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)


class EventSerializer(serializers.Serializer):
    """A change event, as in a user's stream (schema only; rendered by
    `apps.tasks.representation.event_representation`). Task events carry `task`;
    project events `project`; member events `project` and `member`; comment events
    `task` and `comment`."""

    type = serializers.ChoiceField(choices=EventType.values)
    seq = serializers.IntegerField(
        allow_null=True,
        help_text="The position in the caller's stream; in a task's history, null for "
        "events from before the caller could see the task.",
    )
    at = serializers.DateTimeField()
    actor = UserRefSerializer(allow_null=True)
    task = serializers.JSONField(
        required=False,
        help_text="task.* and comment.* events: the task as it was after the change; for "
        "task.deleted only {id}.",
    )
    project = serializers.JSONField(
        required=False,
        help_text="project.* and member.* events: the project as it was after the change "
        "(without my_role and member_count).",
    )
    member = serializers.JSONField(
        required=False, help_text="member.* events: {user {id, username}, role, added_at}."
    )
    comment = serializers.JSONField(
        required=False,
        help_text="comment.* events: the comment as it was after the change; for "
        "comment.deleted only {id, task}.",
    )
    changes = serializers.DictField(
        child=serializers.ListField(min_length=2, max_length=2),
        required=False,
        help_text="task.updated and project.updated only: {field: [old, new]}.",
    )


class EventPageSerializer(serializers.Serializer):
    results = EventSerializer(many=True)
    next = serializers.URLField(allow_null=True)


class HistoryPageSerializer(EventPageSerializer):
    previous = serializers.URLField(allow_null=True)
