"""The Celery application: configured from Django settings (the CELERY_* names)."""

import os

import redis.exceptions
from celery import Celery, Task
from kombu.exceptions import OperationalError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

# A job that finds its Redis connection gone (a restart drops every pooled connection:
# the next command on one fails with "Connection closed by server") or cannot queue its
# follow-up jobs while the broker is away.
REDIS_UNAVAILABLE = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    OperationalError,
)


class JobTask(Task):
    """Every job: when Redis is briefly unavailable, the job runs again a little later
    instead of being dropped. Safe because every job is idempotent (acks_late already
    means a job may run twice)."""

    autoretry_for = REDIS_UNAVAILABLE
    retry_backoff = 1
    retry_backoff_max = 20  # a retry waits in a worker: stay well inside the visibility timeout
    retry_jitter = True
    retry_kwargs = {"max_retries": 5}


app = Celery("project", task_cls=JobTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(related_name="jobs")
