"""Auth endpoints. Each handler parses in async code and does its database work in one
`sync_to_async` hop."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from apps.common.api import APIView
from apps.common.params import ParamErrors, single_values
from apps.common.schema import problem_responses
from apps.common.threads import in_thread
from apps.common.throttling import ClientAddressThrottle
from apps.users import selectors, services
from apps.users.api.serializers import (
    LoginSerializer,
    MeSerializer,
    RefreshSerializer,
    RegisteredUserSerializer,
    RegisterSerializer,
    TokenPairSerializer,
    UserSearchSerializer,
    render_user,
)

SEARCH_MIN_LENGTH = 2
SEARCH_MAX_LENGTH = 254  # the longest email
SEARCH_PARAMS = frozenset({"search"})


class PublicAuthView(APIView):
    """Endpoints reached without a token; a stale Authorization header is ignored."""

    authentication_classes: list[type[BaseAuthentication]] = []
    permission_classes = [AllowAny]

    def get_authenticate_header(self, request):
        # Makes token failures here 401 (with a challenge) rather than DRF's 403.
        return 'Bearer realm="api"'


class RegisterView(PublicAuthView):
    throttle_classes = [ClientAddressThrottle]
    throttle_scope = "register"

    @extend_schema(
        operation_id="auth_register",
        request=RegisterSerializer,
        responses={
            201: RegisteredUserSerializer,
            **problem_responses(400, 415, 429),
        },
        auth=[],
    )
    async def post(self, request):
        data = request.data
        user = await in_thread(_register, data)
        return Response(render_user(user, with_preferences=False), status=status.HTTP_201_CREATED)


def _register(data):
    serializer = RegisterSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return services.user_register(**serializer.validated_data)


class LoginView(PublicAuthView):
    throttle_classes = [ClientAddressThrottle]
    throttle_scope = "login"

    @extend_schema(
        operation_id="auth_login",
        request=LoginSerializer,
        responses={
            200: TokenPairSerializer,
            **problem_responses(400, 401, 415, 429),
        },
        auth=[],
    )
    async def post(self, request):
        serializer = LoginSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tokens = await in_thread(services.user_login, **serializer.validated_data)
        return Response(tokens)


class RefreshView(PublicAuthView):
    @extend_schema(
        operation_id="auth_refresh",
        request=RefreshSerializer,
        responses={
            200: OpenApiResponse(
                TokenPairSerializer, description="A new pair; the old refresh is blacklisted."
            ),
            **problem_responses(400, 401, 415),
        },
        auth=[],
    )
    async def post(self, request):
        serializer = RefreshSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tokens = await in_thread(services.token_rotate, **serializer.validated_data)
        return Response(tokens)


class LogoutView(APIView):
    @extend_schema(
        operation_id="auth_logout",
        request=RefreshSerializer,
        responses={
            204: OpenApiResponse(description="The refresh token is blacklisted."),
            **problem_responses(400, 401, 415),
        },
    )
    async def post(self, request):
        serializer = RefreshSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        await in_thread(services.token_revoke, user=request.user, **serializer.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    @extend_schema(operation_id="auth_me", responses={200: MeSerializer, **problem_responses(401)})
    async def get(self, request):
        user = await in_thread(services.user_get, user_id=request.user.pk)
        return Response(render_user(user))

    @extend_schema(
        operation_id="auth_me_update",
        request=MeSerializer(partial=True),
        responses={
            200: MeSerializer,
            **problem_responses(400, 401, 415),
        },
    )
    async def patch(self, request):
        serializer = MeSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        user = await in_thread(
            services.user_update_preferences,
            user_id=request.user.pk,
            **serializer.validated_data,
        )
        return Response(render_user(user))


class UserSearchView(APIView):
    """People to pick from (an assignee, a project member) by what the caller knows of
    them: the start of a username or an email."""

    @extend_schema(
        operation_id="users_search",
        parameters=[
            OpenApiParameter(
                "search",
                {
                    "type": "string",
                    "minLength": SEARCH_MIN_LENGTH,
                    "maxLength": SEARCH_MAX_LENGTH,
                    "pattern": "^[^\\u0000]*$",
                },
                required=True,
                description="The start of a username or an email, in any case "
                f"({SEARCH_MIN_LENGTH} to {SEARCH_MAX_LENGTH} characters).",
            )
        ],
        responses={
            200: OpenApiResponse(
                UserSearchSerializer,
                description=f"Active users, by username, at most "
                f"{selectors.SEARCH_MAX_RESULTS}; emails are never shown.",
            ),
            **problem_responses(400, 401, 429),
        },
    )
    async def get(self, request):
        errors = ParamErrors()
        query = single_values(request.query_params, SEARCH_PARAMS, errors).get("search")
        if query is None:
            if "search" not in errors.errors:
                errors.add("search", "This parameter is required.")
        elif not SEARCH_MIN_LENGTH <= len(query) <= SEARCH_MAX_LENGTH:
            errors.add(
                "search",
                f"Must be {SEARCH_MIN_LENGTH} to {SEARCH_MAX_LENGTH} characters long.",
            )
        errors.raise_if_any()
        people = await in_thread(_search_users, query)
        return Response({"results": people})


def _search_users(query: str) -> list[dict]:
    return list(selectors.search_users(query=query))
