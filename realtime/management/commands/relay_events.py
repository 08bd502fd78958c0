"""`manage.py relay_events`: run the live relay (realtime/relay.py) until stopped."""

import asyncio
import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from realtime.relay import EventRelay


class Command(BaseCommand):
    help = "Publish every committed task event to its recipients' live streams."

    def handle(self, *args, **options):
        if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
            raise CommandError("The relay needs PostgreSQL (DATABASE_URL=postgres://...).")
        if not settings.REDIS_URL:
            raise CommandError(
                "The relay needs Redis (REDIS_URL); without it events are published "
                "inside the web process."
            )
        asyncio.run(self._run())

    async def _run(self) -> None:
        relay = EventRelay()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, relay.stop)
        await relay.run()
