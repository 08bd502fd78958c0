"""Celery beat for the embedded mode: the same schedule, run inside the web process.

Without Redis there is no broker for a separate beat and worker to share, and the
in-memory channel layer lives on daphne's event loop; so the web process runs the
schedule itself, each due job in a worker thread, where it publishes to the sockets of
this very process.
"""

import asyncio
import logging
from datetime import timedelta

from asgiref.sync import sync_to_async
from celery.schedules import schedule as every
from django.utils import timezone

logger = logging.getLogger(__name__)

TICK_SECONDS = 5


class InProcessBeat:
    """ASGI wrapper that starts the beat loop on the server's event loop at the first
    connection (daphne has no lifespan events) and then passes everything through."""

    def __init__(self, app, celery_app, *, tick_seconds: float = TICK_SECONDS):
        self.app = app
        self.celery_app = celery_app
        self.tick_seconds = tick_seconds
        self.loop_task: asyncio.Task | None = None

    async def __call__(self, scope, receive, send):
        if self.loop_task is None:
            self.loop_task = asyncio.create_task(self.run())
        return await self.app(scope, receive, send)

    async def run(self) -> None:
        entries = {
            name: (entry["task"], _as_schedule(entry["schedule"]))
            for name, entry in self.celery_app.conf.beat_schedule.items()
        }
        last_run = dict.fromkeys(entries, timezone.now())
        logger.info("in-process beat started: %s", ", ".join(sorted(entries)))
        while True:
            await asyncio.sleep(self.tick_seconds)
            for name, (task_name, timing) in entries.items():
                due, _ = timing.is_due(last_run[name])
                if not due:
                    continue
                last_run[name] = timezone.now()
                task = self.celery_app.tasks[task_name]
                try:
                    await sync_to_async(task.apply, thread_sensitive=False)()
                except Exception:
                    logger.exception("in-process beat: %s failed", task_name)


def _as_schedule(value):
    if isinstance(value, (int, float)):
        return every(timedelta(seconds=value))
    return value
