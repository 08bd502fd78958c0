from typing import ClassVar

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.db.models.functions import Lower


class Role(models.TextChoices):
    MEMBER = "member", "Member"
    ADMIN = "admin", "Admin"


class EmailNotifications(models.TextChoices):
    ALL = "all", "All changes"
    OTHERS = "others", "Changes made by others"
    NONE = "none", "None"


class TaskhubUserManager(UserManager):
    def create_superuser(self, username, email=None, password=None, **extra_fields):
        extra_fields.setdefault("role", Role.ADMIN)
        return super().create_superuser(username, email, password, **extra_fields)


class User(AbstractUser):
    """A person using Taskhub. Usernames and emails are unique regardless of case."""

    email = models.EmailField("email address")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    email_notifications = models.CharField(
        max_length=16, choices=EmailNotifications.choices, default=EmailNotifications.ALL
    )

    objects: ClassVar[TaskhubUserManager] = TaskhubUserManager()

    REQUIRED_FIELDS = ["email"]

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("email"), name="users_user_email_ci_unique"),
            models.UniqueConstraint(Lower("username"), name="users_user_username_ci_unique"),
        ]

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN
