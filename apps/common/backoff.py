"""Leave a failing shared service alone for a while: the request limits count in this
process's memory while Redis is away, and try Redis again a few seconds later."""

import logging
import time

logger = logging.getLogger(__name__)


class CountLocallyWhileAway:
    """Whether to use Redis now; after a failure, not for `seconds` (said once per failure)."""

    def __init__(self, what: str, seconds: float):
        self.what = what
        self.seconds = seconds
        self._until = 0.0

    def available(self) -> bool:
        return time.monotonic() >= self._until

    def failed(self, exc: BaseException) -> None:
        logger.warning(
            "%s: Redis is unavailable (%s); counting in this process for %ss",
            self.what,
            exc,
            self.seconds,
        )
        self._until = time.monotonic() + self.seconds
