"""Bad input to the task endpoints: always a 4xx problem+json naming what is wrong, never a
500; and the limits of each field, just inside (accepted) and just outside (refused)."""

import json
from datetime import UTC, datetime

import pytest

from apps.tasks import services
from apps.tests.conftest import assert_problem, auth

pytestmark = pytest.mark.django_db(transaction=True)

TASKS = "/api/v1/tasks/"
MAX_BODY = 256 * 1024
METADATA_MAX = 16 * 1024


def url(task_id: str, action: str = "") -> str:
    return f"{TASKS}{task_id}/{action + '/' if action else ''}"


def json_headers(user) -> dict[str, str]:
    return {**auth(user), "Content-Type": "application/json"}


@pytest.fixture
def task(django_db_blocker, ana):
    with django_db_blocker.unblock():
        return services.task_create(actor=ana, data={"title": "Existing"}).body


@pytest.fixture
def inactive_user(make_user):
    return make_user("gone", is_active=False)


async def create(api, user, body):
    return await api.post(TASKS, json=body, headers=auth(user))


def assert_field_error(response, field: str) -> dict:
    """A 400 validation problem with messages for `field`."""
    problem = assert_problem(response, 400)
    assert problem["errors"][field], problem
    return problem


# --- Body that is not a JSON object ---------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [b'{"title": "x"', b"{title: 'x'}", b"", b"   ", b'{"title": "x"} trailing', b"\xff\xfe"],
    ids=["unterminated", "not-json", "empty", "blank", "trailing", "not-utf8"],
)
async def test_malformed_json_body_is_400(api, ana, raw):
    response = await api.post(TASKS, content=raw, headers=json_headers(ana))
    assert_problem(response, 400)


async def test_malformed_json_on_patch_is_400(api, task, ana):
    response = await api.patch(url(task["id"]), content=b"{", headers=json_headers(ana))
    assert_problem(response, 400)


async def test_invalid_utf8_inside_string_is_400(api, ana):
    response = await api.post(TASKS, content=b'{"title": "\xc3("}', headers=json_headers(ana))
    assert_problem(response, 400)


@pytest.mark.parametrize("body", [[], [{"title": "x"}], "title", 5, True, None], ids=repr)
async def test_body_that_is_not_an_object_is_400(api, ana, body):
    response = await api.post(TASKS, content=json.dumps(body), headers=json_headers(ana))
    assert_problem(response, 400)


@pytest.mark.parametrize("body", [[{"title": "x"}], "title", 5, None], ids=repr)
async def test_patch_body_that_is_not_an_object_is_400(api, task, ana, body):
    response = await api.patch(url(task["id"]), content=json.dumps(body), headers=json_headers(ana))
    assert_problem(response, 400)


# --- Wrong types and values per field -------------------------------------------------------

WRONG_VALUES = [
    ("title", 5),
    ("title", 1.5),
    ("title", True),
    ("title", ["x"]),
    ("title", {"x": 1}),
    ("description", ["x"]),
    ("description", None),
    ("status", 5),
    ("status", "finished"),
    ("status", None),
    ("priority", "extreme"),
    ("priority", 2),
    ("priority", "MEDIUM"),
    ("due_at", "tomorrow"),
    ("due_at", 1_700_000_000),
    ("due_at", "2026-13-01T00:00:00Z"),
    ("due_at", "9999-12-31T23:00:00-05:00"),
    ("due_at", "0001-01-01T00:30:00+01:00"),
    ("metadata", [1, 2]),
    ("metadata", "text"),
    ("metadata", 3),
    ("metadata", None),
    ("assignee", "x"),
    ("assignee", 0),
    ("assignee", -1),
    ("assignee", 1.5),
    ("assignee", True),
    ("assignee", 10**30),
    ("assignee", 2**63),
    ("assignee", {"id": 1}),
]


@pytest.mark.parametrize(("field", "value"), WRONG_VALUES, ids=repr)
async def test_wrong_value_on_create_is_400(api, ana, field, value):
    response = await create(api, ana, {"title": "x", field: value})
    assert_field_error(response, field)


@pytest.mark.parametrize(("field", "value"), WRONG_VALUES, ids=repr)
async def test_wrong_value_on_patch_is_400(api, task, ana, field, value):
    response = await api.patch(url(task["id"]), json={field: value}, headers=auth(ana))
    assert_field_error(response, field)


async def test_assignee_that_does_not_exist_is_400(api, ana):
    assert_field_error(await create(api, ana, {"title": "x", "assignee": 987_654}), "assignee")


async def test_inactive_assignee_is_400(api, ana, inactive_user):
    body = {"title": "x", "assignee": inactive_user.pk}
    assert_field_error(await create(api, ana, body), "assignee")


async def test_patch_to_inactive_assignee_is_400(api, task, ana, inactive_user):
    response = await api.patch(
        url(task["id"]), json={"assignee": inactive_user.pk}, headers=auth(ana)
    )
    assert_field_error(response, "assignee")


async def test_null_title_is_400(api, ana):
    assert_field_error(await create(api, ana, {"title": None}), "title")


async def test_null_title_on_patch_is_400(api, task, ana):
    response = await api.patch(url(task["id"]), json={"title": None}, headers=auth(ana))
    assert_field_error(response, "title")


async def test_unknown_field_is_400(api, ana):
    problem = assert_field_error(await create(api, ana, {"title": "x", "colour": "red"}), "colour")
    assert problem["errors"]["colour"] == ["Unknown field."]


async def test_unknown_field_on_patch_is_400(api, task, ana):
    response = await api.patch(url(task["id"]), json={"titel": "typo"}, headers=auth(ana))
    assert_field_error(response, "titel")


async def test_several_bad_fields_are_all_reported(api, ana):
    problem = assert_problem(await create(api, ana, {"status": 5, "priority": "x"}), 400)
    assert {"title", "status", "priority"} <= set(problem["errors"])


async def test_validation_problem_has_code_and_detail(api, ana):
    problem = assert_problem(await create(api, ana, {"title": ""}), 400)
    assert problem["code"] == "invalid"
    assert "title" in problem["detail"]


# --- Title ----------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [{}, {"description": "no title"}], ids=["empty", "other-field"])
async def test_missing_title_is_400(api, ana, body):
    assert_field_error(await create(api, ana, body), "title")


@pytest.mark.parametrize("title", ["", " ", " \t\n "], ids=["empty", "space", "whitespace"])
async def test_blank_title_is_400(api, ana, title):
    assert_field_error(await create(api, ana, {"title": title}), "title")


async def test_blank_title_on_patch_is_400(api, task, ana):
    response = await api.patch(url(task["id"]), json={"title": "   "}, headers=auth(ana))
    assert_field_error(response, "title")


async def test_title_of_201_characters_is_400(api, ana):
    assert_field_error(await create(api, ana, {"title": "a" * 201}), "title")


async def test_title_of_200_characters_is_accepted(api, ana):
    response = await create(api, ana, {"title": "a" * 200})
    assert response.status_code == 201, response.text
    assert response.json()["title"] == "a" * 200


async def test_title_of_200_multibyte_characters_is_accepted(api, ana):
    response = await create(api, ana, {"title": "é" * 199 + "😀"})
    assert response.status_code == 201, response.text
    assert response.json()["title"] == "é" * 199 + "😀"


async def test_title_of_one_character_is_accepted(api, ana):
    response = await create(api, ana, {"title": "a"})
    assert response.status_code == 201, response.text


# --- Description ----------------------------------------------------------------------------


async def test_description_of_10001_characters_is_400(api, ana):
    assert_field_error(
        await create(api, ana, {"title": "x", "description": "d" * 10_001}), "description"
    )


async def test_description_of_10000_characters_is_accepted(api, ana):
    response = await create(api, ana, {"title": "x", "description": "d" * 10_000})
    assert response.status_code == 201, response.text
    assert len(response.json()["description"]) == 10_000


# --- Metadata -------------------------------------------------------------------------------


def metadata_of_size(size: int, char: str = "a") -> dict:
    """An object whose compact JSON serialization is `size` bytes (for a 1-byte `char`)."""
    return {"k": char * (size - len('{"k":""}'))}


async def test_metadata_just_under_16_kib_is_accepted(api, ana):
    metadata = metadata_of_size(METADATA_MAX - 16)
    response = await create(api, ana, {"title": "x", "metadata": metadata})
    assert response.status_code == 201, response.text
    assert response.json()["metadata"] == metadata


async def test_metadata_over_16_kib_is_400(api, ana):
    metadata = metadata_of_size(METADATA_MAX + 1)
    assert_field_error(await create(api, ana, {"title": "x", "metadata": metadata}), "metadata")


async def test_metadata_size_counts_bytes_not_characters(api, ana):
    metadata = {"k": "é" * 9_000}  # 9,000 characters, 18,000 bytes in UTF-8
    assert_field_error(await create(api, ana, {"title": "x", "metadata": metadata}), "metadata")


async def test_metadata_over_16_kib_on_patch_is_400(api, task, ana):
    metadata = metadata_of_size(METADATA_MAX + 1)
    response = await api.patch(url(task["id"]), json={"metadata": metadata}, headers=auth(ana))
    assert_field_error(response, "metadata")


async def test_nested_metadata_is_kept(api, ana):
    metadata = {"a": {"b": [1, 2.5, None, True, "x"]}, "n": None}
    response = await create(api, ana, {"title": "x", "metadata": metadata})
    assert response.status_code == 201, response.text
    assert response.json()["metadata"] == metadata


@pytest.mark.parametrize(
    "raw",
    [
        b'{"title":"x","metadata":{"a":NaN}}',
        b'{"title":"x","metadata":{"a":Infinity}}',
        b'{"title":"x","metadata":{"a":-Infinity}}',
        b'{"title":"x","metadata":{"a":[1,NaN]}}',
    ],
    ids=["nan", "infinity", "minus-infinity", "nan-in-list"],
)
async def test_non_finite_number_is_400(api, ana, raw):
    response = await api.post(TASKS, content=raw, headers=json_headers(ana))
    assert_problem(response, 400)


@pytest.mark.parametrize(
    "raw",
    [
        rb'{"title":"x","metadata":{"a":"b\u0000c"}}',
        rb'{"title":"x","metadata":{"a\u0000":"b"}}',
        rb'{"title":"a\u0000b"}',
        rb'{"title":"x","description":"\u0000"}',
    ],
    ids=["metadata-value", "metadata-key", "title", "description"],
)
async def test_nul_character_is_400(api, ana, raw):
    response = await api.post(TASKS, content=raw, headers=json_headers(ana))
    assert_problem(response, 400)


@pytest.mark.parametrize(
    "raw",
    [
        rb'{"title":"x","metadata":{"a":"\ud800"}}',
        rb'{"title":"x","metadata":{"\udfff":1}}',
        rb'{"title":"\ud800x"}',
    ],
    ids=["metadata-value", "metadata-key", "title"],
)
async def test_lone_surrogate_is_400(api, ana, raw):
    response = await api.post(TASKS, content=raw, headers=json_headers(ana))
    assert_problem(response, 400)


async def test_surrogate_pair_is_accepted(api, ana):
    raw = rb'{"title":"\ud83d\ude00"}'
    response = await api.post(TASKS, content=raw, headers=json_headers(ana))
    assert response.status_code == 201, response.text
    assert response.json()["title"] == "😀"


def nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {"a": value}
    return value


async def test_metadata_nested_deeper_than_32_is_400(api, ana):
    response = await create(api, ana, {"title": "x", "metadata": nested(40)})
    assert_problem(response, 400)


async def test_deeply_nested_lists_are_400(api, ana):
    raw = b'{"title":"x","metadata":{"a":' + b"[" * 5_000 + b"]" * 5_000 + b"}}"
    response = await api.post(TASKS, content=raw, headers=json_headers(ana))
    assert_problem(response, 400)


async def test_metadata_nested_a_few_levels_is_accepted(api, ana):
    response = await create(api, ana, {"title": "x", "metadata": nested(10)})
    assert response.status_code == 201, response.text


# --- Body size and content type -------------------------------------------------------------


def oversize_body() -> bytes:
    body = json.dumps({"title": "x", "description": "d" * (MAX_BODY + 1)}).encode()
    assert len(body) > MAX_BODY
    return body


async def test_oversize_body_with_content_length_is_413(api, ana):
    response = await api.post(TASKS, content=oversize_body(), headers=json_headers(ana))
    assert_problem(response, 413)


async def test_oversize_patch_body_is_413(api, task, ana):
    response = await api.patch(url(task["id"]), content=oversize_body(), headers=json_headers(ana))
    assert_problem(response, 413)


async def test_oversize_chunked_body_is_413(api, ana):
    body = oversize_body()

    async def chunks():
        for start in range(0, len(body), 16 * 1024):
            yield body[start : start + 16 * 1024]

    response = await api.post(TASKS, content=chunks(), headers=json_headers(ana))
    assert "content-length" not in {name.lower() for name in response.request.headers}
    assert_problem(response, 413)


async def test_chunked_body_under_the_limit_is_accepted(api, ana):
    async def chunks():
        yield b'{"title": '
        yield b'"streamed"}'

    response = await api.post(TASKS, content=chunks(), headers=json_headers(ana))
    assert response.status_code == 201, response.text
    assert response.json()["title"] == "streamed"


async def test_chunked_patch_body_is_applied(api, task, ana):
    async def chunks():
        yield b'{"title": '
        yield b'"streamed"}'

    response = await api.patch(url(task["id"]), content=chunks(), headers=json_headers(ana))
    assert response.status_code == 200, response.text
    assert response.json()["title"] == "streamed"


async def test_oversize_body_creates_nothing(api, ana):
    await api.post(TASKS, content=oversize_body(), headers=json_headers(ana))
    listing = await api.get(TASKS, headers=auth(ana))
    assert listing.json()["results"] == []


async def test_form_encoded_body_is_415(api, ana):
    response = await api.post(TASKS, data={"title": "x"}, headers=auth(ana))
    assert_problem(response, 415)


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "multipart/form-data"])
async def test_non_json_content_type_is_415(api, ana, content_type):
    headers = {**auth(ana), "Content-Type": content_type}
    response = await api.post(TASKS, content=b'{"title": "x"}', headers=headers)
    assert_problem(response, 415)


async def test_form_encoded_patch_is_415(api, task, ana):
    response = await api.patch(url(task["id"]), data={"title": "x"}, headers=auth(ana))
    assert_problem(response, 415)


# --- PUT ------------------------------------------------------------------------------------


async def test_put_without_title_is_400(api, task, ana):
    response = await api.put(url(task["id"]), json={"status": "done"}, headers=auth(ana))
    assert_field_error(response, "title")


@pytest.fixture
def full_task(django_db_blocker, ana, bob):
    """A task with every optional field set away from its default."""
    with django_db_blocker.unblock():
        return services.task_create(
            actor=ana,
            data={
                "title": "Full",
                "description": "Long story",
                "status": "in_progress",
                "priority": 4,
                "due_at": datetime(2031, 1, 1, tzinfo=UTC),
                "metadata": {"k": "v"},
                "assignee_id": bob.pk,
            },
        ).body


async def test_put_resets_omitted_fields_to_defaults(api, full_task, ana):
    response = await api.put(url(full_task["id"]), json={"title": "Bare"}, headers=auth(ana))
    assert response.status_code == 200, response.text
    body = response.json()
    assert {name: body[name] for name in ("description", "status", "priority")} == {
        "description": "",
        "status": "todo",
        "priority": "medium",
    }
    assert (body["due_at"], body["metadata"], body["assignee"]) == (None, {}, None)


# --- Paths and methods ----------------------------------------------------------------------

BAD_IDS = ["not-a-uuid", "123", "0" * 33, "g" * 32, "%C3%A9", "%00", "x" * 5_000]
ID_ENDPOINTS = [
    ("GET", ""),
    ("PATCH", ""),
    ("PUT", ""),
    ("DELETE", ""),
    ("POST", "archive"),
    ("POST", "restore"),
    ("GET", "history"),
]


@pytest.mark.parametrize("bad_id", BAD_IDS, ids=lambda value: value[:12])
@pytest.mark.parametrize(("method", "action"), ID_ENDPOINTS)
async def test_bad_uuid_in_path_is_404(api, ana, method, action, bad_id):
    body = {"title": "x"} if method in ("PATCH", "PUT") else None
    response = await api.request(method, url(bad_id, action), json=body, headers=auth(ana))
    assert_problem(response, 404)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/nope/",
        "/api/v2/tasks/",
        "/api/",
        "/api/v1/",
        "/api/v1/tasks/00000000-0000-4000-8000-000000000000/nope/",
        "/api/v1/tasks",
    ],
)
async def test_unknown_api_path_is_404_problem(api, ana, path):
    response = await api.get(path, headers=auth(ana))
    problem = assert_problem(response, 404)
    assert "<html" not in response.text.lower()
    assert problem["detail"]


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_unknown_api_path_with_unsafe_method_is_404_problem(api, ana, method):
    response = await api.request(method, "/api/v1/nope/", json={"x": 1}, headers=auth(ana))
    assert_problem(response, 404)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", TASKS, {"GET", "POST"}),
        ("DELETE", TASKS, {"GET", "POST"}),
        ("PATCH", TASKS, {"GET", "POST"}),
        ("POST", "{id}", {"GET", "PUT", "PATCH", "DELETE"}),
        ("GET", "{id}/archive", {"POST"}),
        ("DELETE", "{id}/restore", {"POST"}),
        ("POST", "{id}/history", {"GET"}),
    ],
)
async def test_wrong_method_is_405_with_allow(api, task, ana, method, path, allowed):
    target = path if path == TASKS else f"{TASKS}{path.format(id=task['id'])}/"
    response = await api.request(method, target, headers=auth(ana))
    assert_problem(response, 405)
    methods = {name.strip() for name in response.headers["Allow"].split(",")}
    assert allowed <= methods
    assert method not in methods
