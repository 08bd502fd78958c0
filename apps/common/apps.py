from django.apps import AppConfig


class CommonConfig(AppConfig):
    name = "apps.common"
    label = "common"

    def ready(self):
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured

        from apps.common import ratelimit, requests

        requests.install()
        try:
            ratelimit.parse_rate(settings.API_USER_RATE)
        except ValueError as exc:
            raise ImproperlyConfigured(str(exc)) from None
