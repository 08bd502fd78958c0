"""The embedded mode's beat: the Celery schedule, run on the web server's event loop."""

import asyncio
import threading
from datetime import timedelta

from celery import Celery
from celery.schedules import crontab
from django.utils import timezone

from apps.common.inprocess_beat import InProcessBeat


async def _app(scope, receive, send):
    return None


async def run_until_two_runs(beat: InProcessBeat, runs: list) -> None:
    """Start `beat` as the server's first connection would, let it tick until `runs`
    has two entries (5 s at most), then stop it."""
    await beat({"type": "http"}, None, None)
    for _ in range(100):
        if len(runs) >= 2:
            break
        await asyncio.sleep(0.05)
    assert beat.loop_task is not None  # started by the connection above
    beat.loop_task.cancel()


def _celery_with(schedule_seconds: float) -> tuple[Celery, list[str]]:
    app = Celery(f"beat-test-{schedule_seconds}", set_as_current=False)
    app.conf.task_always_eager = True
    ran: list[str] = []

    @app.task(name=f"beat-test.tick.{schedule_seconds}")
    def tick():
        ran.append(threading.current_thread().name)

    app.conf.beat_schedule = {
        "tick": {"task": f"beat-test.tick.{schedule_seconds}", "schedule": schedule_seconds}
    }
    return app, ran


async def test_due_jobs_run_in_a_worker_thread_after_the_first_connection():
    celery_app, ran = _celery_with(0.2)
    beat = InProcessBeat(_app, celery_app, tick_seconds=0.05)
    await asyncio.sleep(0.3)
    assert ran == []  # nothing before the server's first connection
    await run_until_two_runs(beat, ran)
    assert len(ran) >= 2
    assert all(name != threading.main_thread().name for name in ran)


async def test_beat_starts_once_however_many_connections():
    celery_app, _ = _celery_with(60)
    beat = InProcessBeat(_app, celery_app, tick_seconds=0.05)
    await beat({"type": "http"}, None, None)
    first = beat.loop_task
    await beat({"type": "websocket"}, None, None)
    assert beat.loop_task is first
    first.cancel()


async def test_a_failing_job_does_not_stop_the_schedule():
    app = Celery("beat-fail", set_as_current=False)
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    calls: list[int] = []

    @app.task(name="beat-fail.boom")
    def boom():
        calls.append(1)
        raise RuntimeError("boom")

    app.conf.beat_schedule = {"boom": {"task": "beat-fail.boom", "schedule": 0.1}}
    beat = InProcessBeat(_app, app, tick_seconds=0.05)
    await run_until_two_runs(beat, calls)
    assert len(calls) >= 2


async def test_crontab_entries_run_when_their_minute_comes():
    app = Celery("beat-crontab", set_as_current=False)
    app.conf.task_always_eager = True
    ran: list[int] = []

    @app.task(name="beat-crontab.tick")
    def tick():
        ran.append(1)

    # A clock a minute ahead: the entry's next minute has come at every tick.
    every_minute = crontab(minute="*", nowfun=lambda: timezone.now() + timedelta(minutes=1))
    app.conf.beat_schedule = {"tick": {"task": "beat-crontab.tick", "schedule": every_minute}}
    beat = InProcessBeat(_app, app, tick_seconds=0.05)
    await run_until_two_runs(beat, ran)
    assert len(ran) >= 2
