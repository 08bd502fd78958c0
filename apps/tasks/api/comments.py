"""Comment endpoints (async, adrf): a task's comments, oldest first, and each one's
edit and deletion. As for tasks, each handler parses in async code and makes one
`in_thread` hop for the database work; the writes go through `comment_services`."""

import uuid

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from apps.common.api import APIView
from apps.common.pagination import paginate
from apps.common.params import ParamErrors
from apps.common.schema import problem_responses
from apps.common.serializers import StrictSerializer, TextField
from apps.common.threads import in_thread
from apps.tasks import comment_services, selectors
from apps.tasks.api.views import (
    CURSOR,
    LIMIT,
    TASK_ID,
    page_params,
    page_response,
    parse_task_id,
)
from apps.tasks.representation import comment_representation
from apps.users.api.serializers import UserRefSerializer

BODY_MAX_LENGTH = 10_000
COMMENT_ID = OpenApiParameter("comment_id", OpenApiTypes.UUID, OpenApiParameter.PATH)
COMMENT_LIST_PARAMS = frozenset({"limit", "cursor"})


class CommentSerializer(StrictSerializer):
    """Validates a comment's input (its `body`) and describes a comment in the schema;
    output is rendered by `apps.tasks.representation.comment_representation`."""

    id = serializers.UUIDField(read_only=True)
    task = serializers.UUIDField(read_only=True)
    author = UserRefSerializer(read_only=True)
    # Kept as written (indentation and line breaks are the author's), but not blank.
    body = TextField(
        min_length=1,
        max_length=BODY_MAX_LENGTH,
        trim_whitespace=False,
        help_text=f"1 to {BODY_MAX_LENGTH:,} characters, not only whitespace.",
    )
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)
    edited = serializers.BooleanField(
        read_only=True, help_text="Whether the body was changed after it was written."
    )

    def validate_body(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("This field may not be blank.")
        return value


class CommentPageSerializer(serializers.Serializer):
    results = CommentSerializer(many=True)
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)


def parse_comment_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError as exc:
        raise NotFound(f"'{raw[:64]}' is not a comment id (a UUID).") from exc


def comment_url(request, comment: dict) -> str:
    path = reverse(
        "comment-detail", kwargs={"task_id": comment["task"], "comment_id": comment["id"]}
    )
    return request.build_absolute_uri(path)


def _valid_body(data, *, partial: bool = False) -> str | None:
    """The request's valid `body`; None when a PATCH (`partial`) leaves it out."""
    serializer = CommentSerializer(data=data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data.get("body")


class CommentListView(APIView):
    @extend_schema(
        operation_id="comments_list",
        parameters=[TASK_ID, LIMIT, CURSOR],
        responses={200: CommentPageSerializer, **problem_responses(400, 401, 404)},
    )
    async def get(self, request, task_id):
        task_id = parse_task_id(task_id)
        errors = ParamErrors()
        _, limit, cursor = page_params(request.query_params, COMMENT_LIST_PARAMS, errors)
        errors.raise_if_any()
        page = await in_thread(_comment_page, request.user, task_id, limit, cursor)
        return page_response(request, page)

    @extend_schema(
        operation_id="comments_create",
        parameters=[TASK_ID],
        request=CommentSerializer,
        responses={
            201: OpenApiResponse(CommentSerializer, description="Created; `Location` is set."),
            **problem_responses(400, 401, 403, 404, 409, 413, 415),
        },
    )
    async def post(self, request, task_id):
        task_id = parse_task_id(task_id)
        body = await in_thread(_create_comment, request.user, task_id, request.data)
        return Response(
            body, status=status.HTTP_201_CREATED, headers={"Location": comment_url(request, body)}
        )


def _comment_page(user, task_id, limit, cursor) -> dict:
    if not selectors.is_task_visible(user=user, task_id=task_id):
        raise NotFound("No task with this id.")
    page = paginate(
        selectors.task_comments(task_id=task_id),
        keys=list(selectors.COMMENT_ORDER),
        limit=limit,
        cursor=cursor,
        scope="comments",
    )
    return {
        "rows": [comment_representation(comment) for comment in page.rows],
        "next": page.next_cursor,
        "previous": page.previous_cursor,
    }


def _create_comment(user, task_id, data) -> dict:
    body = _valid_body(data)
    assert body is not None, "required when not partial"
    comment = comment_services.comment_create(task_id=task_id, actor=user, body=body)
    return comment_representation(comment)


class CommentDetailView(APIView):
    @extend_schema(
        operation_id="comments_retrieve",
        parameters=[TASK_ID, COMMENT_ID],
        responses={200: CommentSerializer, **problem_responses(401, 404)},
    )
    async def get(self, request, task_id, comment_id):
        task_id, comment_id = parse_task_id(task_id), parse_comment_id(comment_id)
        return Response(await in_thread(_visible_comment, request.user, task_id, comment_id))

    @extend_schema(
        operation_id="comments_partial_update",
        parameters=[TASK_ID, COMMENT_ID],
        request=CommentSerializer,
        responses={200: CommentSerializer, **problem_responses(400, 401, 403, 404, 409, 415)},
    )
    async def patch(self, request, task_id, comment_id):
        task_id, comment_id = parse_task_id(task_id), parse_comment_id(comment_id)
        body = await in_thread(_update_comment, request.user, task_id, comment_id, request.data)
        return Response(body)

    @extend_schema(
        operation_id="comments_destroy",
        parameters=[TASK_ID, COMMENT_ID],
        responses={204: None, **problem_responses(401, 403, 404, 409)},
    )
    async def delete(self, request, task_id, comment_id):
        task_id, comment_id = parse_task_id(task_id), parse_comment_id(comment_id)
        await in_thread(
            comment_services.comment_delete,
            task_id=task_id,
            comment_id=comment_id,
            actor=request.user,
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


def _visible_comment(user, task_id, comment_id) -> dict:
    if not selectors.is_task_visible(user=user, task_id=task_id):
        raise NotFound("No task with this id.")
    comment = selectors.task_comment(task_id=task_id, comment_id=comment_id)
    if comment is None:
        raise NotFound("No comment with this id on this task.")
    return comment_representation(comment)


def _update_comment(user, task_id, comment_id, data) -> dict:
    comment = comment_services.comment_update(
        task_id=task_id, comment_id=comment_id, actor=user, body=_valid_body(data, partial=True)
    )
    return comment_representation(comment)
