"""The browser page at GET /: an HTML shell; app.js talks to the REST API and the stream."""

from django.shortcuts import render
from django.views.decorators.http import require_safe


@require_safe
async def index(request):
    """Serve the page. It holds no data: the browser signs in and loads everything itself."""
    return render(request, "realtime/index.html")
