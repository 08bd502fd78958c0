"""The web container's health check: 200 from GET /healthz on this container's daphne.

Python's standard library only, so the image needs no curl. The request names a host
from DJANGO_ALLOWED_HOSTS (any other Host header is refused with 400), and /healthz is
exempt from the HTTPS redirect, so this works in production mode too.
"""

import os
import sys
import urllib.error
import urllib.request
from http import HTTPStatus


def allowed_host() -> str:
    for host in os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(","):
        host = host.strip().lstrip(".")
        if host and host != "*":
            return host
    return "localhost"


def main() -> int:
    url = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/healthz"
    request = urllib.request.Request(url, headers={"Host": allowed_host()})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            status = response.status
    except (urllib.error.URLError, OSError) as exc:
        print(f"unhealthy: {url}: {exc}")
        return 1
    if status != HTTPStatus.OK:
        print(f"unhealthy: {url} answered {status}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
