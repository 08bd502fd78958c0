from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from rest_framework import generics
from rest_framework.pagination import CursorPagination

from baseline_drf.models import Task, TaskEvent
from baseline_drf.serializers import TaskSerializer


class TaskPagination(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 200


class VisibleTasksMixin:
    serializer_class = TaskSerializer

    def get_queryset(self):
        user = self.request.user
        return Task.objects.select_related("created_by", "assignee").filter(
            Q(created_by=user) | Q(assignee=user)
        )


def record_event(type, *, task_data, actor, changes=None):
    now = timezone.now()
    TaskEvent.objects.create(
        type=type,
        task_id=task_data["id"],
        actor=actor,
        actor_snapshot={"id": actor.pk, "username": actor.username},
        task_snapshot=task_data,
        changes=changes,
        created_at=now,
        # The baseline has no live relay: marked published so that the product's relay,
        # which watches this table, does not publish the baseline's events.
        published_at=now,
    )


class TaskList(VisibleTasksMixin, generics.ListCreateAPIView):
    pagination_class = TaskPagination

    def get_queryset(self):
        return super().get_queryset().filter(archived_at__isnull=True)

    def perform_create(self, serializer):
        with transaction.atomic():
            serializer.save(created_by=self.request.user)
            record_event("task.created", task_data=serializer.data, actor=self.request.user)


class TaskDetail(VisibleTasksMixin, generics.RetrieveUpdateAPIView):
    def perform_update(self, serializer):
        with transaction.atomic():
            serializer.save(version=serializer.instance.version + 1)
            record_event(
                "task.updated",
                task_data=serializer.data,
                actor=self.request.user,
                changes=self.request.data,
            )
