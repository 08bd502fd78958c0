"""The base of every API view: one thread hop per request, authentication included.

adrf's `APIView` runs DRF's `initial()` (negotiation, authentication, permissions,
throttles) in a thread hop of its own before the handler makes its hop. Here `initial`
runs on the event loop: authenticators with an `aauthenticate` coroutine (the access
token one) need no thread, nor do the permission checks the API uses; only throttles,
which count in the cache, take a hop, and only the views that have them (login,
register). Each authenticated request also counts against its user's limit
(`apps.common.ratelimit`), on the event loop. The handler then does its database work in
one `in_thread` call (`apps.common.threads`).
"""

from collections.abc import Callable
from inspect import iscoroutinefunction
from typing import Any, cast

from adrf.views import APIView as AsyncAPIView
from asgiref.sync import sync_to_async
from django.http import HttpResponse
from django.template.response import SimpleTemplateResponse
from rest_framework import exceptions

from apps.common.ratelimit import user_request_limit


class APIView(AsyncAPIView):
    async def async_dispatch(self, request, *args, **kwargs):
        self.args = args
        self.kwargs = kwargs
        request = self.initialize_request(request, *args, **kwargs)
        self.request = request
        self.headers = self.default_response_headers
        try:
            await self.ainitial(request, *args, **kwargs)
            method = request.method.lower()
            handler: Callable[..., Any]
            if method in self.http_method_names:
                # getattr's stubs make the result Optional; the default is never None.
                handler = cast(
                    "Callable[..., Any]", getattr(self, method, self.http_method_not_allowed)
                )
            else:
                handler = self.http_method_not_allowed
            if iscoroutinefunction(handler):
                response = await handler(request, *args, **kwargs)
            else:  # DRF's own `options`
                response = await sync_to_async(handler)(request, *args, **kwargs)
        except Exception as exc:
            response = self.handle_exception(exc)
        self.response = self.finalize_response(request, response, *args, **kwargs)
        return rendered(self.response)

    async def ainitial(self, request, *args, **kwargs):
        """DRF's `initial()`, on the event loop."""
        self.format_kwarg = self.get_format_suffix(**kwargs)
        request.accepted_renderer, request.accepted_media_type = self.perform_content_negotiation(
            request
        )
        request.version, request.versioning_scheme = self.determine_version(
            request, *args, **kwargs
        )
        await self.aperform_authentication(request)
        self.check_permissions(request)
        user = request.user  # None when unauthenticated (UNAUTHENTICATED_USER is None)
        if user is not None and user.is_authenticated:
            wait = await user_request_limit().wait_needed(user.pk)
            if wait is not None:
                raise exceptions.Throttled(
                    wait=wait, detail="Too many requests for this user; see Retry-After."
                )
        if self.get_throttles():
            await sync_to_async(self.check_throttles)(request)

    async def aperform_authentication(self, request):
        """Run the authenticators in order, as `Request._authenticate` does; those without
        `aauthenticate` run in a thread."""
        for authenticator in request.authenticators:
            authenticate = getattr(authenticator, "aauthenticate", None)
            try:
                if authenticate is not None:
                    user_auth = await authenticate(request)
                else:
                    user_auth = await sync_to_async(authenticator.authenticate)(request)
            except exceptions.APIException:
                request._not_authenticated()
                raise
            if user_auth is not None:
                request._authenticator = authenticator
                request.user, request.auth = user_auth
                return
        request._not_authenticated()


def rendered(response):
    """The response, rendered here (JSON rendering is CPU work, no I/O) and handed on as
    a plain `HttpResponse`: Django renders any response that has a `render` method in a
    thread hop of its own."""
    if not isinstance(response, SimpleTemplateResponse):
        return response
    response.render()
    plain = HttpResponse(response.content, status=response.status_code, headers=response.headers)
    plain.cookies = response.cookies
    return plain
