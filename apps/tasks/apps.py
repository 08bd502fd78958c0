from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "apps.tasks"
    label = "tasks"

    def ready(self):
        # Register the Celery jobs in every process: a change queues its email job by
        # name (apps.tasks.events), which needs the job known to this process's app.
        # The `__any` lookup that the visibility rules use (apps.tasks.selectors).
        from apps.tasks import (
            jobs,  # noqa: F401
            lookups,  # noqa: F401
        )
