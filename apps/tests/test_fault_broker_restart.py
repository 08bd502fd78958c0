"""Fault tests: Redis (the broker, cache and channel layer) restarts under a Celery worker.

The worker test runs real processes: a private, password-protected redis-server that the
test restarts, a Celery worker with two pool processes against it, and the test database.
The jobs it runs are upkeep jobs, so it does not depend on the live-event or email code.
"""

import contextlib
import signal
import time

import pytest
from celery import Celery
from django.conf import settings
from django.core.cache.backends.redis import RedisCache
from django.db import connection, transaction

from apps.tests.processes import base_env, celery_worker, database_url_for_subprocess, redis_server
from project.celery import REDIS_UNAVAILABLE, app
from project.settings import redis_url_with_db

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

BUSY_JOB = "tasks.prune_idempotency_records"
# How Redis goes away in each round: a clean shutdown (SIGTERM closes every client
# connection) or a crash (SIGKILL), and for how long it stays away.
RESTARTS = [
    (signal.SIGTERM, 0.0),
    (signal.SIGKILL, 0.0),
    (signal.SIGTERM, 1.0),
    (signal.SIGKILL, 1.0),
    (signal.SIGTERM, 0.0),
]


def test_worker_survives_five_redis_restarts_while_busy():
    """Each round holds both pool processes inside a job (blocked on a table lock),
    restarts Redis under them, then lets the jobs finish: the worker must still be
    running, reconnected and taking jobs."""
    with worker_on_its_own_redis() as (broker, worker, producer):
        for number, (how, down) in enumerate(RESTARTS, start=1):
            restart_while_busy(broker, worker, producer, how=how, down=down)
            assert worker.process.poll() is None, (
                f"the worker died after restart {number}:\n{worker.log()}"
            )

        after = [producer.send_task(BUSY_JOB, retry=True).id for _ in range(6)]
        wait_until(lambda: all(succeeded(worker, job) for job in after), worker, 20)
        assert worker.process.poll() is None
        assert "Unrecoverable error" not in worker.log()
    print(f"\nthe worker survived {len(RESTARTS)} Redis restarts while busy")


def test_worker_survives_jobs_that_finish_after_it_reconnected():
    """Jobs that were running when Redis crashed finish only after the worker has
    reconnected (through reconnects that fail first), so their acks go to a channel of
    the closed connection; the worker goes on taking jobs. Under scripts/reliability's
    email load (Redis stopped for 10 s), kombu 5.7 raised an AttributeError there that
    stopped the worker, 3 runs of 3; project/celery.py makes it a connection error. This
    test passes without that change too: what else the email load does to the channel
    is not known, so scripts/reliability is the reproduction."""
    with worker_on_its_own_redis() as (broker, worker, producer):
        with transaction.atomic():
            hold_busy_job_table()
            # Two run (and wait on the lock), two more wait in the worker.
            running = [producer.send_task(BUSY_JOB).id for _ in range(4)]
            wait_until(lambda: jobs_waiting_on_the_lock() == 2, worker, 15)
            connected = worker.log().count("Connected to redis")
            broker.stop(signal.SIGKILL)
            time.sleep(5)  # long enough for reconnects that fail first
            broker.start()
            wait_until(lambda: worker.log().count("Connected to redis") > connected, worker, 30)
        wait_until(lambda: sum(succeeded(worker, job) for job in running) >= 2, worker, 20)
        after = [producer.send_task(BUSY_JOB, retry=True).id for _ in range(4)]
        wait_until(lambda: all(succeeded(worker, job) for job in after), worker, 20)
        assert worker.process.poll() is None
        assert "Unrecoverable error" not in worker.log()


def test_every_job_is_retried_when_redis_is_unavailable():
    """A job that meets a dropped Redis connection (the first command on a pooled
    connection after a restart fails) runs again later instead of being lost."""
    app.loader.import_default_modules()
    jobs = {name: task for name, task in app.tasks.items() if name.startswith("tasks.")}
    assert jobs
    for name, job in jobs.items():
        assert set(REDIS_UNAVAILABLE) <= set(job.autoretry_for), name
        assert hasattr(job, "_orig_run"), f"{name} is not wrapped for retries"


def test_cache_answers_right_after_a_redis_restart():
    """The first cache call after a restart, on a pooled connection the server has
    closed, is retried on a new connection instead of failing the request or job."""
    params = {k: v for k, v in settings.CACHES["default"].items() if k != "LOCATION"}
    with redis_server() as server:
        cache = RedisCache(server.url, params)
        cache.set("before", 1)
        server.restart()
        assert cache.get("before", "gone") == "gone"  # Redis keeps nothing on disk here
        cache.set("after", 2)
        assert cache.get("after") == 2
        cache.close()


@contextlib.contextmanager
def worker_on_its_own_redis():
    """A Celery worker (two pool processes) on a private Redis, and a producer of jobs for
    it; yields (the RedisServer, the worker, the producer)."""
    with redis_server() as broker:
        env = base_env(DATABASE_URL=database_url_for_subprocess(), REDIS_URL=broker.url)
        # Not the current app: the product's jobs (shared tasks) must keep the suite's broker.
        producer = Celery(
            "fault-test", broker=redis_url_with_db(broker.url, 1), set_as_current=False
        )
        try:
            with celery_worker(env=env, concurrency=2) as worker:
                yield broker, worker, producer
        finally:
            producer.close()


def restart_while_busy(broker, worker, producer, *, how: int, down: float) -> None:
    """Get both pool processes stuck inside a job, restart Redis (`how`: the signal that
    stops it; `down`: seconds it stays away), then let the jobs finish; returns once
    the worker has reconnected and finished them, or fails if it exits."""
    reconnected = worker.log().count("Connected to redis")
    with transaction.atomic():
        hold_busy_job_table()
        sent = [producer.send_task(BUSY_JOB).id for _ in range(4)]
        wait_until(lambda: jobs_waiting_on_the_lock() == 2, worker, 15)
        broker.stop(how)
        time.sleep(down)
        broker.start()
    # Redis comes back empty, so the two jobs that were running are certain to finish; the
    # two the worker had only reserved finish too when kombu restored them to the new
    # Redis ("Restoring 2 unacknowledged message(s)"), which depends on timing.
    wait_until(
        lambda: (
            worker.log().count("Connected to redis") > reconnected
            and sum(succeeded(worker, job) for job in sent) >= 2
        ),
        worker,
        20,
    )


def hold_busy_job_table() -> None:
    """Lock the table the busy job reads until the transaction ends, so that every
    such job started meanwhile waits inside its pool process."""
    with connection.cursor() as cursor:
        cursor.execute("LOCK TABLE tasks_idempotencyrecord IN ACCESS EXCLUSIVE MODE")


def jobs_waiting_on_the_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks "
            "WHERE relation = 'tasks_idempotencyrecord'::regclass AND NOT granted"
        )
        return cursor.fetchone()[0]


def succeeded(worker, job_id: str) -> bool:
    return f"[{job_id}] succeeded" in worker.log()


def wait_until(predicate, worker, timeout: float) -> None:
    """Wait for `predicate`; fail with the worker's log if it does not hold in time or
    the worker exits first."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if worker.process.poll() is not None:
            raise AssertionError(f"the worker exited:\n{worker.log()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s; the worker's log:\n{worker.log()}")
        time.sleep(0.05)
