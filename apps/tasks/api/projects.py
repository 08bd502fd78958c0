"""Project and member endpoints (async, adrf), as the task endpoints: each handler
parses the request, then makes one `in_thread` hop that does the database work and
renders the result. Changes go through `apps.tasks.project_services`."""

import uuid

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from apps.common.api import APIView
from apps.common.pagination import paginate
from apps.common.params import ParamErrors
from apps.common.schema import problem_responses
from apps.common.threads import in_thread
from apps.tasks import project_services, selectors
from apps.tasks.api.project_serializers import (
    MemberAddSerializer,
    MemberPageSerializer,
    MemberRoleSerializer,
    MemberSerializer,
    ProjectPageSerializer,
    ProjectSerializer,
)
from apps.tasks.api.serializers import MAX_USER_ID
from apps.tasks.api.views import CURSOR, LIMIT, etag, page_params, page_response, parse_if_match
from apps.tasks.representation import member_representation, project_representation

PROJECT_ID = OpenApiParameter("project_id", OpenApiTypes.UUID, OpenApiParameter.PATH)
USER_ID = OpenApiParameter(
    "user_id",
    {"type": "integer", "minimum": 1, "maximum": MAX_USER_ID},
    OpenApiParameter.PATH,
    description="The member's user id.",
)
IF_MATCH = OpenApiParameter(
    "If-Match",
    str,
    OpenApiParameter.HEADER,
    description='Only change the project if its ETag is one of these (e.g. "3"); else 412.',
)
ARCHIVED_VALUES = ("false", "true", "all")
PROJECT_LIST_PARAMS = frozenset({"archived", "limit", "cursor"})
MEMBER_LIST_PARAMS = frozenset({"limit", "cursor"})


def parse_project_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError as exc:
        raise NotFound(f"'{raw[:64]}' is not a project id (a UUID).") from exc


def parse_user_id(raw: str) -> int:
    if raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_USER_ID:
        return int(raw)
    raise NotFound(f"'{raw[:64]}' is not a user id.")


def project_response(body: dict, *, status_code: int = 200) -> Response:
    return Response(body, status=status_code, headers={"ETag": etag(body["version"])})


def _if_none_match(request) -> set[str]:
    header = request.headers.get("If-None-Match", "")
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


class ProjectListView(APIView):
    @extend_schema(
        operation_id="projects_list",
        parameters=[
            OpenApiParameter("archived", str, enum=list(ARCHIVED_VALUES), default="false"),
            LIMIT,
            CURSOR,
        ],
        responses={200: ProjectPageSerializer, **problem_responses(400, 401)},
        description="The caller's projects (every project, for an admin), by name.",
    )
    async def get(self, request):
        errors = ParamErrors()
        values, limit, cursor = page_params(request.query_params, PROJECT_LIST_PARAMS, errors)
        archived = values.get("archived", "false")
        if archived not in ARCHIVED_VALUES:
            errors.add("archived", f"Must be one of: {', '.join(ARCHIVED_VALUES)}.")
        errors.raise_if_any()
        page = await in_thread(_project_page, request.user, archived, limit, cursor)
        return page_response(request, page)

    @extend_schema(
        operation_id="projects_create",
        request=ProjectSerializer,
        responses={
            201: OpenApiResponse(
                ProjectSerializer, description="Created; `Location` and `ETag` headers are set."
            ),
            **problem_responses(400, 401, 413, 415),
        },
        description="Create a project; the caller becomes its first owner.",
    )
    async def post(self, request):
        data = request.data
        body = await in_thread(_validate_and_create, request.user, data)
        response = project_response(body, status_code=status.HTTP_201_CREATED)
        response["Location"] = request.build_absolute_uri(
            reverse("project-detail", kwargs={"project_id": body["id"]})
        )
        return response


def _project_page(user, archived: str, limit: int, cursor: str | None) -> dict:
    page = paginate(
        selectors.project_list(user=user, archived=archived),
        keys=selectors.PROJECT_LIST_KEYS,
        limit=limit,
        cursor=cursor,
        scope="projects",
    )
    return {
        "rows": [_project_body(project) for project in page.rows],
        "next": page.next_cursor,
        "previous": page.previous_cursor,
    }


def _project_body(project) -> dict:
    """A project read through `selectors.visible_projects` (with its annotations)."""
    return project_representation(
        project, my_role=project.my_role, member_count=project.member_count
    )


def _validate_and_create(user, data) -> dict:
    serializer = ProjectSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return project_services.project_create(actor=user, data=dict(serializer.validated_data))


class ProjectDetailView(APIView):
    @extend_schema(
        operation_id="projects_retrieve",
        parameters=[PROJECT_ID, OpenApiParameter("If-None-Match", str, OpenApiParameter.HEADER)],
        responses={
            200: OpenApiResponse(ProjectSerializer, description='With `ETag: "<version>"`.'),
            304: OpenApiResponse(description="Not modified: If-None-Match holds the ETag."),
            **problem_responses(401, 404),
        },
    )
    async def get(self, request, project_id):
        project_id = parse_project_id(project_id)
        body = await in_thread(_visible_project_body, request.user, project_id)
        current = etag(body["version"])
        if current in _if_none_match(request):
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers={"ETag": current})
        return project_response(body)

    @extend_schema(
        operation_id="projects_partial_update",
        parameters=[PROJECT_ID, IF_MATCH],
        request=ProjectSerializer(partial=True),
        responses={
            200: ProjectSerializer,
            **problem_responses(400, 401, 403, 404, 409, 412, 413, 415),
        },
        description="Rename or describe the project (owners and admins). An archived "
        "project answers 409 until it is restored.",
    )
    async def patch(self, request, project_id):
        project_id = parse_project_id(project_id)
        data = request.data
        body = await in_thread(
            _update_project, request.user, project_id, data, parse_if_match(request)
        )
        return project_response(body)

    @extend_schema(
        operation_id="projects_destroy",
        parameters=[PROJECT_ID, IF_MATCH],
        responses={204: None, **problem_responses(401, 403, 404, 409, 412)},
        description="Delete the project for good (owners and admins): only once it has no "
        "tasks, archived ones included (else 409).",
    )
    async def delete(self, request, project_id):
        project_id = parse_project_id(project_id)
        await in_thread(
            project_services.project_delete,
            project_id=project_id,
            actor=request.user,
            if_match=parse_if_match(request),
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


def _visible_project_body(user, project_id) -> dict:
    project = selectors.visible_project(user=user, project_id=project_id)
    if project is None:
        raise NotFound("No project with this id.")
    return _project_body(project)


def _update_project(user, project_id, data, if_match) -> dict:
    serializer = ProjectSerializer(data=data, partial=True)
    serializer.is_valid(raise_exception=True)
    return project_services.project_update(
        project_id=project_id, actor=user, data=dict(serializer.validated_data), if_match=if_match
    )


class ProjectArchiveView(APIView):
    @extend_schema(
        operation_id="projects_archive",
        parameters=[PROJECT_ID, IF_MATCH],
        request=None,
        responses={200: ProjectSerializer, **problem_responses(401, 403, 404, 412)},
        description="Archive the project (owners and admins): its tasks then only read. "
        "Archiving an archived project is a no-op 200.",
    )
    async def post(self, request, project_id):
        return await _change_project_response(request, project_id, project_services.project_archive)


class ProjectRestoreView(APIView):
    @extend_schema(
        operation_id="projects_restore",
        parameters=[PROJECT_ID, IF_MATCH],
        request=None,
        responses={200: ProjectSerializer, **problem_responses(401, 403, 404, 412)},
        description="Bring an archived project back (owners and admins); restoring a live "
        "project is a no-op 200.",
    )
    async def post(self, request, project_id):
        return await _change_project_response(request, project_id, project_services.project_restore)


async def _change_project_response(request, project_id, service) -> Response:
    """Archive and restore alike: one service call, If-Match honoured, the project as it
    now stands in the response."""
    project_id = parse_project_id(project_id)
    body = await in_thread(
        service, project_id=project_id, actor=request.user, if_match=parse_if_match(request)
    )
    return project_response(body)


class MemberListView(APIView):
    @extend_schema(
        operation_id="projects_members_list",
        parameters=[PROJECT_ID, LIMIT, CURSOR],
        responses={200: MemberPageSerializer, **problem_responses(400, 401, 404)},
        description="The project's members by username (any member, or an admin).",
    )
    async def get(self, request, project_id):
        project_id = parse_project_id(project_id)
        errors = ParamErrors()
        _, limit, cursor = page_params(request.query_params, MEMBER_LIST_PARAMS, errors)
        errors.raise_if_any()
        page = await in_thread(_member_page, request.user, project_id, limit, cursor)
        return page_response(request, page)

    @extend_schema(
        operation_id="projects_members_create",
        parameters=[PROJECT_ID],
        request=MemberAddSerializer,
        responses={
            201: OpenApiResponse(MemberSerializer, description="Added; `Location` is set."),
            **problem_responses(400, 401, 403, 404, 409, 413, 415),
        },
        description="Add a person (by id, username or email) with a role, `member` unless "
        "said otherwise (owners and admins). Someone already a member: 409.",
    )
    async def post(self, request, project_id):
        project_id = parse_project_id(project_id)
        data = request.data
        member = await in_thread(_validate_and_add, request.user, project_id, data)
        response = Response(member, status=status.HTTP_201_CREATED)
        response["Location"] = request.build_absolute_uri(
            reverse(
                "member-detail",
                kwargs={"project_id": project_id, "user_id": member["user"]["id"]},
            )
        )
        return response


def _member_page(user, project_id, limit: int, cursor: str | None) -> dict:
    if selectors.visible_project(user=user, project_id=project_id) is None:
        raise NotFound("No project with this id.")
    page = paginate(
        selectors.project_members(project_id=project_id),
        keys=selectors.MEMBER_LIST_KEYS,
        limit=limit,
        cursor=cursor,
        scope="members",
    )
    return {
        "rows": [member_representation(membership) for membership in page.rows],
        "next": page.next_cursor,
        "previous": page.previous_cursor,
    }


def _validate_and_add(user, project_id, data) -> dict:
    serializer = MemberAddSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return project_services.member_add(
        project_id=project_id,
        actor=user,
        user=serializer.validated_data["user"],
        role=serializer.validated_data["role"],
    )


class MemberDetailView(APIView):
    @extend_schema(
        operation_id="projects_members_partial_update",
        parameters=[PROJECT_ID, USER_ID],
        request=MemberRoleSerializer,
        responses={
            200: MemberSerializer,
            **problem_responses(400, 401, 403, 404, 409, 413, 415),
        },
        description="Change a member's role (owners and admins). Demoting the last owner: 409.",
    )
    async def patch(self, request, project_id, user_id):
        project_id = parse_project_id(project_id)
        user_id = parse_user_id(user_id)
        data = request.data
        member = await in_thread(_validate_and_change_role, request.user, project_id, user_id, data)
        return Response(member)

    @extend_schema(
        operation_id="projects_members_destroy",
        parameters=[PROJECT_ID, USER_ID],
        responses={204: None, **problem_responses(401, 403, 404, 409)},
        description="Remove a member (owners and admins), or leave (anyone, their own "
        "id). Removing the last owner: 409.",
    )
    async def delete(self, request, project_id, user_id):
        project_id = parse_project_id(project_id)
        user_id = parse_user_id(user_id)
        await in_thread(
            project_services.member_remove,
            project_id=project_id,
            actor=request.user,
            user_id=user_id,
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


def _validate_and_change_role(user, project_id, user_id: int, data) -> dict:
    serializer = MemberRoleSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return project_services.member_update(
        project_id=project_id, actor=user, user_id=user_id, role=serializer.validated_data["role"]
    )
