from django.db import migrations, models


class Migration(migrations.Migration):
    """An Idempotency-Key record has no task id while its first request is still creating
    the task: None says so, where an all-zero UUID stood in before."""

    dependencies = [("tasks", "0004_assignee_user_in_snapshots")]

    operations = [
        migrations.AlterField(
            model_name="idempotencyrecord",
            name="task_id",
            field=models.UUIDField(null=True),
        ),
    ]
