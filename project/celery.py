"""The Celery application: configured from Django settings (the CELERY_* names)."""

import os

import redis.exceptions
from celery import Celery, Task
from kombu.exceptions import OperationalError
from kombu.transport import redis as kombu_redis

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


# When the broker connection drops while a job runs, Celery 5.7 closes the broken
# connection before reconnecting, which leaves kombu's Redis channels of that connection
# without their connection details. Two calls still reach such a channel: the close
# itself, which restores the unacknowledged messages, and the ack of the job when it
# finishes, after the reconnect. Each builds a Redis client from details that are gone,
# and the AttributeError that follows is not one that either expects: the worker stopped
# with "Unrecoverable error" (scripts/reliability, Redis stopped for 10 s under a load of
# emails; kombu 5.7.0). A channel whose connection is closed now raises a connection
# error, which both handle: the close drops the channel, and the ack is logged as not
# done (the message is redelivered after the visibility timeout, and the email job finds
# its delivery sent and sends nothing).
def _connparams_of_an_open_connection(self, asynchronous=False):
    if self.connection.client is None:
        raise redis.exceptions.ConnectionError("this broker channel's connection is closed")
    return _connparams(self, asynchronous=asynchronous)


_connparams = kombu_redis.Channel._connparams
# A deliberate patch of kombu's class, which mypy reads as assigning to a method.
kombu_redis.Channel._connparams = _connparams_of_an_open_connection  # type: ignore[method-assign]
