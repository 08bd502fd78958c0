from django.contrib.auth import password_validation
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from apps.common.serializers import StrictSerializer, TextField
from apps.users.models import EmailNotifications, Role, User


class RegisterSerializer(StrictSerializer):
    username = TextField(max_length=150, validators=[UnicodeUsernameValidator()])
    email = serializers.EmailField(max_length=254)
    password = TextField(write_only=True, max_length=128, trim_whitespace=False)

    def validate_email(self, value: str) -> str:
        return User.objects.normalize_email(value)

    def validate(self, attrs):
        candidate = User(username=attrs["username"], email=attrs["email"])
        try:
            password_validation.validate_password(attrs["password"], user=candidate)
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"password": list(exc.messages)}) from exc
        return attrs


class LoginSerializer(StrictSerializer):
    username = TextField(max_length=254, help_text="The username or the email.")
    password = TextField(max_length=128, trim_whitespace=False)


class RefreshSerializer(StrictSerializer):
    refresh = TextField(max_length=4096)


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class RegisteredUserSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    username = serializers.CharField(read_only=True)
    email = serializers.EmailField(read_only=True)
    role = serializers.ChoiceField(choices=Role.choices, read_only=True)


class UserRefSerializer(serializers.Serializer):
    """A person by name: what the API shows of anyone but the caller."""

    id = serializers.IntegerField()
    username = serializers.CharField()


class UserSearchSerializer(serializers.Serializer):
    results = UserRefSerializer(many=True)


class MeSerializer(StrictSerializer, RegisteredUserSerializer):
    email_notifications = serializers.ChoiceField(choices=EmailNotifications.choices)


def render_user(user: User, *, with_preferences: bool = True) -> dict:
    data = {"id": user.pk, "username": user.username, "email": user.email, "role": user.role}
    if with_preferences:
        data["email_notifications"] = user.email_notifications
    return data
