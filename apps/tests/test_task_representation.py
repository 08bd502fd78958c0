"""The task's shape in the schema (`TaskSerializer`, which validates input and describes
output) and as rendered (`apps.tasks.representation`) stay in step."""

import pytest

from apps.tasks import services
from apps.tasks.api.serializers import TaskSerializer
from apps.tasks.models import Task
from apps.tasks.representation import (
    EDITABLE_FIELDS,
    TASK_COLUMNS,
    task_representation,
    task_row_representation,
)

pytestmark = pytest.mark.django_db


def rendered_task(actor, **fields) -> dict:
    return services.task_create(actor=actor, data={"title": "Task", **fields}).body


def test_the_schema_names_every_rendered_field_in_the_same_order(ana, bob):
    body = rendered_task(ana, assignee_id=bob.pk)
    assert list(TaskSerializer().fields) == list(body)


def test_the_writable_fields_of_the_schema_are_the_editable_ones():
    writable = [name for name, field in TaskSerializer().fields.items() if not field.read_only]
    assert writable == list(EDITABLE_FIELDS)


def test_a_task_renders_the_same_from_its_instance_and_from_its_columns(ana, bob):
    body = rendered_task(ana, assignee_id=bob.pk, metadata={"k": [1, 2]})
    task = Task.objects.select_related("created_by", "assignee").get(pk=body["id"])
    row = Task.objects.filter(pk=body["id"]).values(*TASK_COLUMNS).get()
    assert task_representation(task) == task_row_representation(row) == body
