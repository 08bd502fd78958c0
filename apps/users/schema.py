"""How the OpenAPI schema describes the API's authentication."""

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme


class AccessTokenScheme(SimpleJWTScheme):
    """`AccessTokenAuthentication` takes the same bearer tokens as simplejwt's."""

    target_class = "apps.users.api.authentication.AccessTokenAuthentication"
