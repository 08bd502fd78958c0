"""Unmanaged models over the product's tables (its migrations own the schema)."""

import uuid

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    class Meta:
        managed = False
        db_table = "users_user"


class Task(models.Model):
    PRIORITIES = {1: "low", 2: "medium", 3: "high", 4: "urgent"}

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    status = models.CharField(
        max_length=16,
        choices=[("todo", "To do"), ("in_progress", "In progress"), ("done", "Done")],
        default="todo",
    )
    priority = models.PositiveSmallIntegerField(choices=list(PRIORITIES.items()), default=2)
    due_at = models.DateTimeField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(User, on_delete=models.DO_NOTHING, related_name="+")
    assignee = models.ForeignKey(
        User, on_delete=models.DO_NOTHING, null=True, blank=True, related_name="+"
    )
    archived_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        managed = False
        db_table = "tasks_task"

    def __str__(self) -> str:
        return self.title


class TaskEvent(models.Model):
    id = models.BigAutoField(primary_key=True)
    type = models.CharField(max_length=32)
    task_id = models.UUIDField()
    actor = models.ForeignKey(User, on_delete=models.DO_NOTHING, null=True, related_name="+")
    actor_snapshot = models.JSONField(null=True)
    task_snapshot = models.JSONField()
    changes = models.JSONField(null=True)
    created_at = models.DateTimeField()
    published_at = models.DateTimeField(null=True)

    class Meta:
        managed = False
        db_table = "tasks_taskevent"

    def __str__(self) -> str:
        return f"{self.type} {self.task_id}"
