"""Task and event endpoints (async, adrf).

Each handler parses the request in async code, then makes one `sync_to_async` hop that
does the database work and renders the rows, so a page costs one thread hop, not one per
field or row.
"""

import hashlib
import json
import re
import uuid

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from apps.common.api import APIView
from apps.common.pagination import OrderKey, paginate
from apps.common.params import ParamErrors, single_values
from apps.common.schema import problem_responses
from apps.common.threads import in_thread
from apps.tasks import selectors, services
from apps.tasks.api.filters import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    parse_cursor,
    parse_limit,
    parse_task_list_params,
)
from apps.tasks.api.serializers import (
    EventPageSerializer,
    HistoryPageSerializer,
    TaskPageSerializer,
    TaskSerializer,
)
from apps.tasks.models import Priority, Status
from apps.tasks.representation import (
    event_representation,
    task_representation,
    task_row_representation,
)

_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_ENTITY_TAG = re.compile(r'^(?:W/)?"(\d{1,18})"$')

TASK_ID = OpenApiParameter("task_id", OpenApiTypes.UUID, OpenApiParameter.PATH)
LIMIT = OpenApiParameter(
    "limit",
    {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    description=f"Page size: 1 to {MAX_LIMIT}.",
)
CURSOR = OpenApiParameter(
    "cursor", str, description="Opaque: from `next` or `previous` (anything else is a 400)."
)


def _comma_separated(values) -> dict:
    one = "|".join(values)
    return {"type": "string", "pattern": f"^({one})(,({one}))*$"}


_USER_REF = {"type": "string", "pattern": "^(me|[1-9][0-9]{0,17})$"}
IF_MATCH = OpenApiParameter(
    "If-Match",
    str,
    OpenApiParameter.HEADER,
    description='Only change the task if its ETag is one of these (e.g. "3"); else 412.',
)


def etag(version: int) -> str:
    return f'"{version}"'


def parse_if_match(request) -> frozenset[int] | None:
    """The versions an If-Match header accepts, or None when it sets no condition."""
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return None
    versions = set()
    for tag in header.split(","):
        match = _ENTITY_TAG.match(tag.strip())
        if match:
            versions.add(int(match.group(1)))
    return frozenset(versions)


def parse_task_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError as exc:
        raise NotFound(f"'{raw[:64]}' is not a task id (a UUID).") from exc


def task_url(request, task_id) -> str:
    return request.build_absolute_uri(reverse("task-detail", kwargs={"task_id": task_id}))


def page_url(request, **params) -> str:
    query = request.query_params.copy()
    for name, value in params.items():
        query[name] = value
    return request.build_absolute_uri(f"{request.path}?{query.urlencode()}")


def page_params(query_params, allowed, errors: ParamErrors) -> tuple[dict, int, str | None]:
    """The single values of `allowed` parameters, and the page's limit and cursor; what
    is wrong goes into `errors`, for the caller to add its own before raising."""
    values = single_values(query_params, allowed, errors)
    return (
        values,
        parse_limit(values.get("limit"), errors),
        parse_cursor(values.get("cursor"), errors),
    )


def page_response(request, page: dict) -> Response:
    """A keyset page (`paginate`'s rows, next and previous cursors) with links."""
    return Response(
        {
            "results": page["rows"],
            "next": page_url(request, cursor=page["next"]) if page["next"] else None,
            "previous": page_url(request, cursor=page["previous"]) if page["previous"] else None,
        }
    )


def task_response(request, body: dict, *, status_code: int = 200) -> Response:
    return Response(body, status=status_code, headers={"ETag": etag(body["version"])})


class TaskListView(APIView):
    @extend_schema(
        operation_id="tasks_list",
        parameters=[
            OpenApiParameter(
                "status", _comma_separated(Status.values), description="Comma-separated."
            ),
            OpenApiParameter(
                "priority", _comma_separated(Priority.labels), description="Comma-separated."
            ),
            OpenApiParameter("assignee", _USER_REF, description="'me' or a user id"),
            OpenApiParameter("created_by", _USER_REF, description="'me' or a user id"),
            OpenApiParameter("due_before", OpenApiTypes.DATETIME),
            OpenApiParameter("due_after", OpenApiTypes.DATETIME),
            OpenApiParameter("overdue", bool, description="Due in the past and not done."),
            OpenApiParameter("archived", str, enum=["false", "true", "all"], default="false"),
            OpenApiParameter(
                "project",
                {"type": "string", "pattern": "^(none|[0-9a-fA-F-]{32,36})$"},
                description="A project's id, or 'none' for personal tasks only.",
            ),
            OpenApiParameter(
                "search", str, description="Words that must all be in the title or description."
            ),
            OpenApiParameter(
                "ordering",
                str,
                enum=[f"{sign}{name}" for name in selectors.ORDERINGS for sign in ("", "-")],
                default="-created_at",
            ),
            LIMIT,
            CURSOR,
        ],
        responses={200: TaskPageSerializer, **problem_responses(400, 401)},
    )
    async def get(self, request):
        filters, limit, cursor = parse_task_list_params(request.query_params, user=request.user)
        page = await in_thread(_task_page, request.user, filters, limit, cursor)
        return page_response(request, page)

    @extend_schema(
        operation_id="tasks_create",
        request=TaskSerializer,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                description="Repeat a create safely: the same key and body within 24 hours "
                "replays the first response; the same key with another body is a 422.",
            )
        ],
        responses={
            201: OpenApiResponse(
                TaskSerializer, description="Created; `Location` and `ETag` headers are set."
            ),
            **problem_responses(400, 401, 403, 409, 413, 415, 422),
        },
    )
    async def post(self, request):
        data = request.data
        key = request.headers.get("Idempotency-Key")
        request_hash = None
        if key is not None:
            if not _IDEMPOTENCY_KEY.match(key):
                raise ValidationError(
                    {"Idempotency-Key": ["Must be 1 to 255 visible ASCII characters."]}
                )
            canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
            request_hash = hashlib.sha256(canonical.encode()).hexdigest()
        result = await in_thread(_validate_and_create, request.user, data, key, request_hash)
        response = task_response(request, result.body, status_code=status.HTTP_201_CREATED)
        response["Location"] = task_url(request, result.body["id"])
        if result.replayed:
            response["Idempotent-Replayed"] = "true"
        return response


def _task_page(user, filters, limit, cursor) -> dict:
    first_rows = None
    if cursor is None:
        first_rows = selectors.first_task_page_rows(user=user, filters=filters, limit=limit)
    tasks = None
    if first_rows is None:
        tasks, _ = selectors.task_list(user=user, filters=filters)
    page = paginate(
        tasks,
        keys=selectors.task_list_keys(filters),
        limit=limit,
        cursor=cursor,
        scope=filters.ordering,
        first_rows=first_rows,
    )
    return {
        "rows": [task_row_representation(row) for row in page.rows],
        "next": page.next_cursor,
        "previous": page.previous_cursor,
    }


def _validate_and_create(user, data, key, request_hash):
    serializer = TaskSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return services.task_create(
        actor=user, data=serializer.model_fields(), idempotency_key=key, request_hash=request_hash
    )


class TaskDetailView(APIView):
    @extend_schema(
        operation_id="tasks_retrieve",
        parameters=[
            TASK_ID,
            OpenApiParameter("If-None-Match", str, OpenApiParameter.HEADER),
        ],
        responses={
            200: OpenApiResponse(TaskSerializer, description='With `ETag: "<version>"`.'),
            304: OpenApiResponse(description="Not modified: If-None-Match holds the ETag."),
            **problem_responses(401, 404),
        },
    )
    async def get(self, request, task_id):
        task_id = parse_task_id(task_id)
        body = await in_thread(_visible_task_body, request.user, task_id)
        current = etag(body["version"])
        if current in _if_none_match(request):
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers={"ETag": current})
        return task_response(request, body)

    @extend_schema(
        operation_id="tasks_update",
        parameters=[TASK_ID, IF_MATCH],
        request=TaskSerializer,
        responses={200: TaskSerializer, **problem_responses(400, 401, 403, 404, 409, 412, 415)},
    )
    async def put(self, request, task_id):
        return await self._update(request, task_id, partial=False)

    @extend_schema(
        operation_id="tasks_partial_update",
        parameters=[TASK_ID, IF_MATCH],
        request=TaskSerializer(partial=True),
        responses={200: TaskSerializer, **problem_responses(400, 401, 403, 404, 409, 412, 415)},
    )
    async def patch(self, request, task_id):
        return await self._update(request, task_id, partial=True)

    async def _update(self, request, task_id, *, partial: bool):
        task_id = parse_task_id(task_id)
        data = request.data
        body = await in_thread(
            _update_task, request.user, task_id, data, partial, parse_if_match(request)
        )
        return task_response(request, body)

    @extend_schema(
        operation_id="tasks_destroy",
        parameters=[TASK_ID, IF_MATCH],
        responses={204: None, **problem_responses(401, 403, 404, 412)},
    )
    async def delete(self, request, task_id):
        task_id = parse_task_id(task_id)
        await in_thread(
            services.task_delete,
            task_id=task_id,
            actor=request.user,
            if_match=parse_if_match(request),
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


def _if_none_match(request) -> set[str]:
    header = request.headers.get("If-None-Match", "")
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


def _visible_task_body(user, task_id) -> dict:
    row = selectors.get_visible_task_row(user=user, task_id=task_id)
    if row is None:
        raise NotFound("No task with this id.")
    return task_row_representation(row)


def _update_task(user, task_id, data, partial, if_match) -> dict:
    serializer = TaskSerializer(data=data, partial=partial)
    serializer.is_valid(raise_exception=True)
    task = services.task_update(
        task_id=task_id, actor=user, data=serializer.model_fields(), if_match=if_match
    )
    return task_representation(task)


class TaskArchiveView(APIView):
    @extend_schema(
        operation_id="tasks_archive",
        parameters=[TASK_ID, IF_MATCH],
        request=None,
        responses={200: TaskSerializer, **problem_responses(401, 403, 404, 412)},
    )
    async def post(self, request, task_id):
        return await _change_task_response(request, task_id, services.task_archive)


class TaskRestoreView(APIView):
    @extend_schema(
        operation_id="tasks_restore",
        parameters=[TASK_ID, IF_MATCH],
        request=None,
        responses={200: TaskSerializer, **problem_responses(401, 403, 404, 412)},
    )
    async def post(self, request, task_id):
        return await _change_task_response(request, task_id, services.task_restore)


async def _change_task_response(request, task_id, service):
    """Archive and restore alike: one service call on the task, If-Match honoured, the
    task as it now stands in the response."""
    task_id = parse_task_id(task_id)
    body = await in_thread(_change_task, service, request.user, task_id, parse_if_match(request))
    return task_response(request, body)


def _change_task(service, user, task_id, if_match) -> dict:
    return task_representation(service(task_id=task_id, actor=user, if_match=if_match))


HISTORY_PARAMS = frozenset({"limit", "cursor"})
EVENT_PARAMS = frozenset({"after", "limit"})


class TaskHistoryView(APIView):
    @extend_schema(
        operation_id="tasks_history",
        parameters=[
            TASK_ID,
            LIMIT,
            CURSOR,
        ],
        responses={200: HistoryPageSerializer, **problem_responses(400, 401, 404)},
    )
    async def get(self, request, task_id):
        task_id = parse_task_id(task_id)
        errors = ParamErrors()
        _, limit, cursor = page_params(request.query_params, HISTORY_PARAMS, errors)
        errors.raise_if_any()
        page = await in_thread(_history_page, request.user, task_id, limit, cursor)
        return page_response(request, page)


def _history_page(user, task_id, limit, cursor) -> dict:
    if not selectors.is_task_visible(user=user, task_id=task_id):
        raise NotFound("No task with this id.")
    events = selectors.task_history(user=user, task_id=task_id)
    page = paginate(
        events, keys=[OrderKey("id", False)], limit=limit, cursor=cursor, scope="history"
    )
    return {
        "rows": [event_representation(event, seq=event.caller_seq) for event in page.rows],
        "next": page.next_cursor,
        "previous": page.previous_cursor,
    }


class EventListView(APIView):
    @extend_schema(
        operation_id="events_list",
        parameters=[
            OpenApiParameter(
                "after",
                {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
                description="Return events with a greater seq.",
            ),
            LIMIT,
        ],
        responses={200: EventPageSerializer, **problem_responses(400, 401)},
    )
    async def get(self, request):
        errors = ParamErrors()
        values = single_values(request.query_params, EVENT_PARAMS, errors)
        after = values.get("after", "0")
        if not after.isdigit() or int(after) >= 2**63:
            errors.add("after", "Must be a whole number (a seq), 0 or more.")
        limit = parse_limit(values.get("limit"), errors)
        errors.raise_if_any()
        entries = await in_thread(
            selectors.stream_events_after, user=request.user, after=int(after), limit=limit + 1
        )
        more = len(entries) > limit
        results = entries[:limit]
        next_url = page_url(request, after=results[-1]["seq"], limit=limit) if more else None
        return Response({"results": results, "next": next_url})
