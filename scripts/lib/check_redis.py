"""Wait briefly for Redis, then fail with a clear message naming it if it does not answer."""

import sys

from wait_for_services import ServiceUnavailable, wait_for_redis

try:
    wait_for_redis(sys.argv[1], timeout=10)
except ServiceUnavailable as exc:
    sys.exit(f"error: {exc}")
