from django.contrib import admin

from apps.tasks.models import Task, TaskEvent


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ("title", "status", "priority", "due_at", "created_by", "assignee", "version")
    list_filter = ("status", "priority")
    search_fields = ("title",)
    raw_id_fields = ("created_by", "assignee")


@admin.register(TaskEvent)
class TaskEventAdmin(admin.ModelAdmin):
    list_display = ("id", "type", "task_id", "actor", "created_at")
    list_filter = ("type",)
    raw_id_fields = ("actor",)
