"""Input validation and schema shapes of projects and their members. Output is rendered
by `apps.tasks.representation` (`project_representation`, `member_representation`)."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.common.serializers import StrictSerializer, TextField
from apps.tasks.api.serializers import MAX_USER_ID
from apps.tasks.models import ProjectRole
from apps.users.api.serializers import UserRefSerializer
from apps.users.models import User

# As long as the longest username or email a person can register with.
MAX_USER_REFERENCE = 254


class ProjectSerializer(StrictSerializer):
    """Validates project input and describes the project in the schema."""

    id = serializers.UUIDField(read_only=True)
    name = TextField(
        max_length=100,
        help_text="1 to 100 characters, trimmed; unique among its creator's projects, "
        "whatever the letter case.",
    )
    description = TextField(max_length=2000, allow_blank=True, trim_whitespace=False, default="")
    created_by = UserRefSerializer(read_only=True)
    my_role = serializers.ChoiceField(
        choices=ProjectRole.values,
        read_only=True,
        allow_null=True,
        help_text="The caller's role; null for an admin who is not a member.",
    )
    member_count = serializers.IntegerField(read_only=True)
    archived_at = serializers.DateTimeField(read_only=True, allow_null=True)
    version = serializers.IntegerField(
        read_only=True, help_text="1 on create, +1 on every change, members' included."
    )
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)


class ProjectPageSerializer(serializers.Serializer):
    results = ProjectSerializer(many=True)
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)


@extend_schema_field(
    {
        "oneOf": [
            {"type": "integer", "minimum": 1, "maximum": MAX_USER_ID},
            {"type": "string", "minLength": 1, "maxLength": MAX_USER_REFERENCE},
        ]
    }
)
class UserReferenceField(serializers.Field):
    """An active person named by id (a JSON number), username or email (a string with
    an @), the latter two in any letter case, as at login. Validates to the User."""

    default_error_messages = {
        "invalid": "Must be a user id (a number), a username or an email.",
        "unknown": "No active user {reference}.",
    }

    def to_internal_value(self, data) -> User:
        users = User.objects.only("id", "username").filter(is_active=True)
        if isinstance(data, int) and not isinstance(data, bool):
            if not 1 <= data <= MAX_USER_ID:
                self.fail("unknown", reference=f"with id {data}")
            user = users.filter(pk=data).first()
            reference = f"with id {data}"
        elif isinstance(data, str) and 0 < len(data) <= MAX_USER_REFERENCE and "\x00" not in data:
            lookup = "email__iexact" if "@" in data else "username__iexact"
            user = users.filter(**{lookup: data}).first()
            reference = f"with email {data}" if "@" in data else f"named {data}"
        else:
            self.fail("invalid")
        if user is None:
            self.fail("unknown", reference=reference)
        return user

    def to_representation(self, value):
        return value.pk


class MemberSerializer(serializers.Serializer):
    """A member, as the API shows one (schema only)."""

    user = UserRefSerializer()
    role = serializers.ChoiceField(choices=ProjectRole.values)
    added_at = serializers.DateTimeField()


class MemberPageSerializer(serializers.Serializer):
    results = MemberSerializer(many=True)
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)


class MemberAddSerializer(StrictSerializer):
    user = UserReferenceField(help_text="The person: their id, username or email.")
    role = serializers.ChoiceField(choices=ProjectRole.values, default=ProjectRole.MEMBER)


class MemberRoleSerializer(StrictSerializer):
    role = serializers.ChoiceField(choices=ProjectRole.values)
