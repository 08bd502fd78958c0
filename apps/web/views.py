"""The browser page at GET /: an HTML shell; app.js talks to the REST API and the stream."""

from django.shortcuts import render
from django.views.decorators.http import require_safe

# The page runs only its own module script and stylesheet: no inline script or style, no
# third-party origin. The stream's WebSocket is named for its host (a `'self'` that
# covers ws: and wss: is CSP level 3, which not every browser in use implements).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws://{host} wss://{host}; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


@require_safe
async def index(request):
    """Serve the page. It holds no data: the browser signs in and loads everything itself."""
    response = render(request, "web/index.html")
    response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.format(host=request.get_host())
    return response
