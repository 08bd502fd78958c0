from django.apps import AppConfig


class UsersConfig(AppConfig):
    name = "apps.users"
    label = "users"

    def ready(self):
        from apps.users import receivers, schema  # noqa: F401  (connect, register)
