"""The browser page at /: its view, template and ES modules. The socket it talks to is realtime/."""

from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "apps.web"
    label = "web"
