from rest_framework import serializers

from baseline_drf.models import Task, User


class UserRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username"]


class PriorityField(serializers.ChoiceField):
    """Stored as a number, spoken as its label (as the product's API does)."""

    def __init__(self, **kwargs):
        super().__init__(choices=list(Task.PRIORITIES.values()), **kwargs)

    def to_representation(self, value):
        return Task.PRIORITIES[value]

    def to_internal_value(self, data):
        label = super().to_internal_value(data)
        return next(number for number, name in Task.PRIORITIES.items() if name == label)


class TaskSerializer(serializers.ModelSerializer):
    priority = PriorityField(default="medium")
    created_by = UserRefSerializer(read_only=True)
    assignee_user = UserRefSerializer(source="assignee", read_only=True, allow_null=True)

    class Meta:
        model = Task
        fields = [
            "id",
            "title",
            "description",
            "status",
            "priority",
            "due_at",
            "metadata",
            "assignee",
            "assignee_user",
            "created_by",
            "archived_at",
            "version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["archived_at", "version"]
