"""GET /api/v1/tasks/: filters, ordering, strict parameters and cursor pagination."""

import base64
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.tasks.api.views import _task_page
from apps.tasks.models import Priority, Status, Task
from apps.tasks.selectors import TaskFilters
from apps.tests.conftest import assert_problem, auth, queries_on_every_new_connection
from apps.users.models import User

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/v1/tasks/"
NOW = timezone.now()
PAST = NOW - timedelta(days=2)
FUTURE = NOW + timedelta(days=2)


async def make_task(creator, *, title="Task", **fields) -> Task:
    """A task straight through the ORM; `created_at`/`updated_at` may be set."""
    stamps = {name: fields.pop(name) for name in ("created_at", "updated_at") if name in fields}
    task = await Task.objects.acreate(created_by=creator, title=title, **fields)
    if stamps:
        await Task.objects.filter(pk=task.pk).aupdate(**stamps)
    return task


async def make_tasks(creator, count: int, **fields) -> list[Task]:
    return [await make_task(creator, title=f"Task {index}", **fields) for index in range(count)]


async def list_ids(api, user, **params) -> list[str]:
    response = await api.get(URL, params=params, headers=auth(user))
    assert response.status_code == 200, response.text
    return [task["id"] for task in response.json()["results"]]


async def walk(api, user, **params) -> list[dict]:
    """Every page from the first, following `next` URLs."""
    pages = []
    response = await api.get(URL, params=params, headers=auth(user))
    for _ in range(1000):
        assert response.status_code == 200, response.text
        pages.append(response.json())
        if pages[-1]["next"] is None:
            return pages
        response = await api.get(pages[-1]["next"], headers=auth(user))
    raise AssertionError("The walk never ended.")


def page_ids(page: dict) -> list[str]:
    return [task["id"] for task in page["results"]]


def ids_of(*tasks: Task) -> list[str]:
    return [str(task.pk) for task in tasks]


def cursor_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["cursor"][0]


# --- Shape and visibility -------------------------------------------------------------------


async def test_list_returns_results_next_and_previous(api, ana):
    task = await make_task(ana, title="Only one")
    response = await api.get(URL, headers=auth(ana))
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"results", "next", "previous"}
    assert body["next"] is None
    assert body["previous"] is None
    [row] = body["results"]
    assert row["id"] == str(task.pk)
    assert row["title"] == "Only one"
    assert row["priority"] == "medium"
    assert row["created_by"] == {"id": ana.pk, "username": "ana"}
    assert (row["assignee"], row["assignee_user"]) == (None, None)


async def test_list_shows_only_tasks_created_by_or_assigned_to_the_caller(api, ana, bob, eve):
    mine = await make_task(ana)
    assigned_to_me = await make_task(bob, assignee=ana)
    await make_task(bob)
    await make_task(eve, assignee=bob)
    assert sorted(await list_ids(api, ana)) == sorted(ids_of(mine, assigned_to_me))


async def test_admin_lists_every_task(api, ana, bob, root):
    tasks = [await make_task(ana), await make_task(bob)]
    assert sorted(await list_ids(api, root)) == sorted(ids_of(*tasks))


# --- Filters --------------------------------------------------------------------------------


async def test_filter_by_one_status(api, ana):
    await make_task(ana, status=Status.TODO)
    done = await make_task(ana, status=Status.DONE)
    assert await list_ids(api, ana, status="done") == ids_of(done)


async def test_filter_by_comma_separated_statuses(api, ana):
    todo = await make_task(ana, status=Status.TODO)
    await make_task(ana, status=Status.IN_PROGRESS)
    done = await make_task(ana, status=Status.DONE)
    assert sorted(await list_ids(api, ana, status="todo,done")) == sorted(ids_of(todo, done))


async def test_filter_by_one_priority(api, ana):
    await make_task(ana, priority=Priority.LOW)
    urgent = await make_task(ana, priority=Priority.URGENT)
    assert await list_ids(api, ana, priority="urgent") == ids_of(urgent)


async def test_filter_by_comma_separated_priorities(api, ana):
    await make_task(ana, priority=Priority.LOW)
    await make_task(ana, priority=Priority.MEDIUM)
    high = await make_task(ana, priority=Priority.HIGH)
    urgent = await make_task(ana, priority=Priority.URGENT)
    found = await list_ids(api, ana, priority="high,urgent")
    assert sorted(found) == sorted(ids_of(high, urgent))


async def test_filter_assignee_me(api, ana, bob):
    assigned_to_me = await make_task(bob, assignee=ana)
    await make_task(ana, assignee=bob)
    await make_task(ana)
    assert await list_ids(api, ana, assignee="me") == ids_of(assigned_to_me)


async def test_filter_assignee_by_id(api, ana, bob):
    for_bob = await make_task(ana, assignee=bob)
    await make_task(ana)
    await make_task(bob, assignee=ana)
    assert await list_ids(api, ana, assignee=str(bob.pk)) == ids_of(for_bob)


async def test_filter_created_by_me(api, ana, bob):
    mine = await make_task(ana, assignee=bob)
    await make_task(bob, assignee=ana)
    assert await list_ids(api, ana, created_by="me") == ids_of(mine)


async def test_filter_created_by_id(api, ana, bob):
    await make_task(ana, assignee=bob)
    by_bob = await make_task(bob, assignee=ana)
    assert await list_ids(api, ana, created_by=str(bob.pk)) == ids_of(by_bob)


@pytest.mark.parametrize(
    "due_before",
    ["2030-01-01T10:00:00Z", "2030-01-01T12:00:00+02:00", "2030-01-01T05:00:00-05:00"],
)
async def test_filter_due_before_a_date_time(api, ana, due_before):
    early = await make_task(ana, due_at=datetime(2030, 1, 1, 9, 0, tzinfo=UTC))
    await make_task(ana, due_at=datetime(2030, 1, 1, 11, 0, tzinfo=UTC))
    await make_task(ana)
    assert await list_ids(api, ana, due_before=due_before) == ids_of(early)


@pytest.mark.parametrize(
    "due_after",
    ["2030-01-01T10:00:00Z", "2030-01-01T12:00:00+02:00", "2030-01-01T05:00:00-05:00"],
)
async def test_filter_due_after_a_date_time(api, ana, due_after):
    await make_task(ana, due_at=datetime(2030, 1, 1, 9, 0, tzinfo=UTC))
    late = await make_task(ana, due_at=datetime(2030, 1, 1, 11, 0, tzinfo=UTC))
    await make_task(ana)
    assert await list_ids(api, ana, due_after=due_after) == ids_of(late)


async def test_filter_due_before_with_unencoded_plus_in_offset(api, ana):
    early = await make_task(ana, due_at=datetime(2030, 1, 1, 9, 0, tzinfo=UTC))
    await make_task(ana, due_at=datetime(2030, 1, 1, 11, 0, tzinfo=UTC))
    # A client that does not percent-encode '+' sends it raw; it arrives as a space.
    response = await api.get(f"{URL}?due_before=2030-01-01T12:00:00+02:00", headers=auth(ana))
    assert response.status_code == 200, response.text
    assert page_ids(response.json()) == ids_of(early)


async def test_filter_due_before_a_plain_date(api, ana):
    early = await make_task(ana, due_at=datetime(2030, 1, 1, 23, 0, tzinfo=UTC))
    await make_task(ana, due_at=datetime(2030, 1, 2, 1, 0, tzinfo=UTC))
    assert await list_ids(api, ana, due_before="2030-01-02") == ids_of(early)


async def test_filter_due_after_a_plain_date(api, ana):
    await make_task(ana, due_at=datetime(2030, 1, 1, 23, 0, tzinfo=UTC))
    late = await make_task(ana, due_at=datetime(2030, 1, 2, 1, 0, tzinfo=UTC))
    assert await list_ids(api, ana, due_after="2030-01-02") == ids_of(late)


async def test_filter_due_between_two_moments(api, ana):
    await make_task(ana, due_at=datetime(2030, 1, 1, tzinfo=UTC))
    middle = await make_task(ana, due_at=datetime(2030, 1, 5, tzinfo=UTC))
    await make_task(ana, due_at=datetime(2030, 1, 9, tzinfo=UTC))
    found = await list_ids(api, ana, due_after="2030-01-03", due_before="2030-01-07T00:00:00Z")
    assert found == ids_of(middle)


@pytest.fixture
async def overdue_mix(ana):
    return {
        "past_todo": await make_task(ana, due_at=PAST, status=Status.TODO),
        "past_in_progress": await make_task(ana, due_at=PAST, status=Status.IN_PROGRESS),
        "past_done": await make_task(ana, due_at=PAST, status=Status.DONE),
        "future_todo": await make_task(ana, due_at=FUTURE, status=Status.TODO),
        "no_due_date": await make_task(ana),
    }


async def test_filter_overdue_true_is_due_in_the_past_and_not_done(api, ana, overdue_mix):
    expected = ids_of(overdue_mix["past_todo"], overdue_mix["past_in_progress"])
    assert sorted(await list_ids(api, ana, overdue="true")) == sorted(expected)


async def test_filter_overdue_false_is_everything_not_overdue(api, ana, overdue_mix):
    expected = ids_of(
        overdue_mix["past_done"], overdue_mix["future_todo"], overdue_mix["no_due_date"]
    )
    assert sorted(await list_ids(api, ana, overdue="false")) == sorted(expected)


@pytest.fixture
async def live_and_archived(ana):
    return {
        "live": await make_task(ana, title="Live"),
        "archived": await make_task(ana, title="Archived", archived_at=NOW),
    }


async def test_list_hides_archived_tasks_by_default(api, ana, live_and_archived):
    assert await list_ids(api, ana) == ids_of(live_and_archived["live"])


async def test_filter_archived_false_hides_archived_tasks(api, ana, live_and_archived):
    assert await list_ids(api, ana, archived="false") == ids_of(live_and_archived["live"])


async def test_filter_archived_true_shows_only_archived_tasks(api, ana, live_and_archived):
    assert await list_ids(api, ana, archived="true") == ids_of(live_and_archived["archived"])


async def test_filter_archived_all_shows_both(api, ana, live_and_archived):
    expected = ids_of(live_and_archived["live"], live_and_archived["archived"])
    assert sorted(await list_ids(api, ana, archived="all")) == sorted(expected)


@pytest.fixture
async def searchable(ana):
    return {
        "both_in_title": await make_task(ana, title="Fix the LOGIN bug"),
        "split": await make_task(ana, title="fix", description="The login page is slow"),
        "login_only": await make_task(ana, title="Login page", description="looks fine"),
        "fix_only": await make_task(ana, title="Fix the build", description="CI is red"),
    }


async def test_search_one_word_matches_title_or_description_case_insensitively(
    api, ana, searchable
):
    expected = ids_of(searchable["both_in_title"], searchable["split"], searchable["login_only"])
    assert sorted(await list_ids(api, ana, search="login")) == sorted(expected)


async def test_search_requires_every_word_to_match(api, ana, searchable):
    expected = ids_of(searchable["both_in_title"], searchable["split"])
    assert sorted(await list_ids(api, ana, search="LOGIN Fix")) == sorted(expected)


async def test_search_matches_in_description_only(api, ana, searchable):
    assert await list_ids(api, ana, search="ci red") == ids_of(searchable["fix_only"])


async def test_search_with_no_match_returns_empty_list(api, ana, searchable):
    assert await list_ids(api, ana, search="nowhere") == []


async def test_filters_combine(api, ana, bob):
    match = {
        "title": "Quarterly report",
        "status": Status.IN_PROGRESS,
        "priority": Priority.HIGH,
        "assignee": bob,
        "due_at": datetime(2030, 3, 1, tzinfo=UTC),
    }
    wanted = await make_task(ana, **match)
    # Each of these misses exactly one of the criteria.
    await make_task(ana, **{**match, "title": "Quarterly plan"})
    await make_task(ana, **{**match, "status": Status.DONE})
    await make_task(ana, **{**match, "priority": Priority.LOW})
    await make_task(ana, **{**match, "assignee": None})
    await make_task(ana, **{**match, "due_at": datetime(2031, 1, 1, tzinfo=UTC)})
    await make_task(ana, **{**match, "archived_at": NOW})
    await make_task(bob, **{**match, "assignee": ana})
    found = await list_ids(
        api,
        ana,
        status="todo,in_progress",
        priority="high,urgent",
        assignee=str(bob.pk),
        created_by="me",
        due_before="2030-06-01",
        due_after="2030-01-01T00:00:00Z",
        archived="false",
        search="report",
    )
    assert found == ids_of(wanted)


# --- Ordering -------------------------------------------------------------------------------


async def test_default_ordering_is_newest_first(api, ana):
    older = await make_task(ana, created_at=NOW - timedelta(hours=2))
    newest = await make_task(ana, created_at=NOW - timedelta(hours=1))
    oldest = await make_task(ana, created_at=NOW - timedelta(hours=3))
    assert await list_ids(api, ana) == ids_of(newest, older, oldest)


@pytest.mark.parametrize("field", ["created_at", "updated_at"])
async def test_ordering_by_timestamp_ascending(api, ana, field):
    second = await make_task(ana, **{field: NOW - timedelta(hours=2)})
    third = await make_task(ana, **{field: NOW - timedelta(hours=1)})
    first = await make_task(ana, **{field: NOW - timedelta(hours=3)})
    assert await list_ids(api, ana, ordering=field) == ids_of(first, second, third)


@pytest.mark.parametrize("field", ["created_at", "updated_at"])
async def test_ordering_by_timestamp_descending(api, ana, field):
    second = await make_task(ana, **{field: NOW - timedelta(hours=2)})
    first = await make_task(ana, **{field: NOW - timedelta(hours=1)})
    third = await make_task(ana, **{field: NOW - timedelta(hours=3)})
    assert await list_ids(api, ana, ordering=f"-{field}") == ids_of(first, second, third)


@pytest.fixture
async def by_priority(ana):
    # Created in alphabetical order of the labels, which is not their meaning.
    return {
        label: await make_task(ana, title=label, priority=Priority.from_label(label))
        for label in ("high", "low", "medium", "urgent")
    }


async def test_ordering_by_priority_is_semantic_ascending(api, ana, by_priority):
    expected = ids_of(*(by_priority[label] for label in ("low", "medium", "high", "urgent")))
    assert await list_ids(api, ana, ordering="priority") == expected


async def test_ordering_by_priority_is_semantic_descending(api, ana, by_priority):
    expected = ids_of(*(by_priority[label] for label in ("urgent", "high", "medium", "low")))
    assert await list_ids(api, ana, ordering="-priority") == expected


@pytest.fixture
async def by_due_date(ana):
    return {
        "undated": await make_task(ana, title="undated"),
        "middle": await make_task(ana, due_at=datetime(2030, 6, 1, tzinfo=UTC)),
        "early": await make_task(ana, due_at=datetime(2030, 1, 1, tzinfo=UTC)),
        "late": await make_task(ana, due_at=datetime(2030, 12, 1, tzinfo=UTC)),
    }


async def test_ordering_by_due_at_ascending_puts_undated_last(api, ana, by_due_date):
    expected = ids_of(*(by_due_date[name] for name in ("early", "middle", "late", "undated")))
    assert await list_ids(api, ana, ordering="due_at") == expected


async def test_ordering_by_due_at_descending_puts_undated_last(api, ana, by_due_date):
    expected = ids_of(*(by_due_date[name] for name in ("late", "middle", "early", "undated")))
    assert await list_ids(api, ana, ordering="-due_at") == expected


async def test_ordering_by_due_at_breaks_ties_by_id(api, ana):
    moment = datetime(2030, 1, 1, tzinfo=UTC)
    tied = [await make_task(ana, due_at=moment) for _ in range(5)]
    expected = sorted(ids_of(*tied))
    assert await list_ids(api, ana, ordering="due_at") == expected


# --- Bad parameters -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("status", "bogus"),
        ("status", "todo,bogus"),
        ("status", ""),
        ("priority", "x"),
        ("priority", "2"),
        ("assignee", "abc"),
        ("assignee", "-1"),
        ("created_by", "abc"),
        ("due_before", "yesterday"),
        ("due_before", "2030-13-45"),
        ("due_after", "soon"),
        ("overdue", "maybe"),
        ("archived", "sometimes"),
        ("ordering", "title"),
        ("ordering", "--due_at"),
        ("limit", "0"),
        ("limit", "201"),
        ("limit", "abc"),
        ("limit", "-5"),
        ("cursor", "garbage"),
    ],
)
async def test_bad_filter_value_is_400_naming_the_parameter(api, ana, param, value):
    body = assert_problem(await api.get(URL, params={param: value}, headers=auth(ana)), 400)
    assert param in body["errors"], body


async def test_unknown_query_parameter_is_400_naming_it(api, ana):
    body = assert_problem(await api.get(URL, params={"colour": "red"}, headers=auth(ana)), 400)
    assert "colour" in body["errors"]


async def test_repeated_single_value_parameter_is_400(api, ana):
    response = await api.get(f"{URL}?ordering=due_at&ordering=priority", headers=auth(ana))
    body = assert_problem(response, 400)
    assert "ordering" in body["errors"]


async def test_cursor_from_another_ordering_is_400(api, ana):
    await make_tasks(ana, 3)
    first = await api.get(URL, params={"ordering": "priority", "limit": 1}, headers=auth(ana))
    cursor = cursor_of(first.json()["next"])
    response = await api.get(URL, params={"cursor": cursor}, headers=auth(ana))
    body = assert_problem(response, 400)
    assert "cursor" in body["errors"]


def _forge_cursor(payload) -> str:
    raw = json.dumps(payload).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    ("ordering", "payload"),
    [
        ("-created_at", {"s": "-created_at", "p": ["not a date", "x"], "b": False}),
        ("-created_at", {"s": "-created_at", "p": [NOW.isoformat(), "not-a-uuid"], "b": False}),
        ("priority", {"s": "priority", "p": ["high", "x"], "b": False}),
        ("due_at", {"s": "due_at", "p": [1, 2, 3], "b": False}),
        ("-created_at", {"s": "-created_at", "p": [None, None], "b": False}),
        ("-created_at", ["a", "list"]),
    ],
)
async def test_tampered_cursor_is_400(api, ana, ordering, payload):
    await make_tasks(ana, 2)
    params = {"ordering": ordering, "cursor": _forge_cursor(payload)}
    body = assert_problem(await api.get(URL, params=params, headers=auth(ana)), 400)
    assert "cursor" in body["errors"]


# --- Page size ------------------------------------------------------------------------------


async def test_limit_defaults_to_50(api, ana):
    await make_tasks(ana, 51)
    body = (await api.get(URL, headers=auth(ana))).json()
    assert len(body["results"]) == 50
    assert body["next"] is not None


async def test_limit_200_is_allowed(api, ana):
    await Task.objects.abulk_create(
        [Task(created_by=ana, title=f"Task {index}") for index in range(201)]
    )
    body = (await api.get(URL, params={"limit": 200}, headers=auth(ana))).json()
    assert len(body["results"]) == 200
    assert body["next"] is not None


async def test_limit_sets_page_size(api, ana):
    await make_tasks(ana, 5)
    assert len(await list_ids(api, ana, limit=3)) == 3


# --- Cursor pagination ----------------------------------------------------------------------


async def _expected_newest_first(user) -> list[str]:
    rows = [
        row async for row in Task.objects.filter(created_by=user).values_list("created_at", "id")
    ]
    return [str(task_id) for _created, task_id in sorted(rows, reverse=True)]


async def test_walking_next_urls_yields_every_task_once_in_order(api, ana):
    await make_tasks(ana, 23)
    pages = await walk(api, ana, limit=5)
    assert [len(page["results"]) for page in pages] == [5, 5, 5, 5, 3]
    walked = [task_id for page in pages for task_id in page_ids(page)]
    assert walked == await _expected_newest_first(ana)


async def test_first_page_has_no_previous_and_last_page_has_no_next(api, ana):
    await make_tasks(ana, 4)
    pages = await walk(api, ana, limit=2)
    assert pages[0]["previous"] is None
    assert pages[-1]["next"] is None
    assert pages[1]["previous"] is not None


@pytest.mark.parametrize(
    "ordering",
    [
        "created_at",
        "-created_at",
        "updated_at",
        "-updated_at",
        "priority",
        "-priority",
        "due_at",
        "-due_at",
    ],
)
async def test_walk_with_ties_matches_single_page_order(api, ana, ordering):
    # Many tasks share a priority or a due date (or have none): the walk must still
    # visit each exactly once, in the order of one big page.
    for index in range(17):
        await make_task(
            ana,
            title=f"Task {index}",
            priority=Priority(index % 3 + 1),
            due_at=None if index % 4 == 0 else datetime(2030, 1, 1 + index % 2, tzinfo=UTC),
        )
    single = await list_ids(api, ana, ordering=ordering, limit=200)
    pages = await walk(api, ana, ordering=ordering, limit=3)
    walked = [task_id for page in pages for task_id in page_ids(page)]
    assert walked == single
    assert len(set(walked)) == 17


async def test_previous_url_returns_the_exact_previous_page(api, ana):
    await make_tasks(ana, 12)
    pages = await walk(api, ana, limit=4)
    back_to_second = (await api.get(pages[2]["previous"], headers=auth(ana))).json()
    assert page_ids(back_to_second) == page_ids(pages[1])
    back_to_first = (await api.get(back_to_second["previous"], headers=auth(ana))).json()
    assert page_ids(back_to_first) == page_ids(pages[0])
    assert back_to_first["previous"] is None


async def test_next_after_going_back_returns_the_following_page(api, ana):
    await make_tasks(ana, 12)
    pages = await walk(api, ana, limit=4)
    back_to_second = (await api.get(pages[2]["previous"], headers=auth(ana))).json()
    forward_again = (await api.get(back_to_second["next"], headers=auth(ana))).json()
    assert page_ids(forward_again) == page_ids(pages[2])


@pytest.mark.parametrize("ordering", ["-created_at", "created_at", "due_at", "-priority"])
async def test_walk_while_tasks_are_inserted_yields_each_original_once(api, ana, ordering):
    for index in range(15):
        await make_task(
            ana,
            title=f"Original {index}",
            priority=Priority(index % 4 + 1),
            due_at=datetime(2030, 1, 1 + index, tzinfo=UTC),
        )
    originals = set(await list_ids(api, ana, limit=200))
    response = await api.get(URL, params={"ordering": ordering, "limit": 4}, headers=auth(ana))
    page = response.json()
    walked = page_ids(page)
    # New tasks land before, inside and after the pages still to come.
    for index in range(8):
        await make_task(
            ana,
            title=f"Inserted {index}",
            priority=Priority(index % 4 + 1),
            due_at=datetime(2030, 1, 1 + 2 * index, 12, tzinfo=UTC),
        )
    for _ in range(100):
        if page["next"] is None:
            break
        page = (await api.get(page["next"], headers=auth(ana))).json()
        walked.extend(page_ids(page))
    assert len(walked) == len(set(walked)), "a task was returned twice"
    assert originals <= set(walked)


# --- Query count ----------------------------------------------------------------------------


@pytest.fixture
def hundred_tasks_of_different_people(django_db_blocker):
    """100 tasks, each with its own creator and its own assignee."""
    with django_db_blocker.unblock():
        people = User.objects.bulk_create(
            User(username=f"person{index}", email=f"person{index}@example.com")
            for index in range(200)
        )
        Task.objects.bulk_create(
            Task(title=f"Task {index}", created_by=people[index], assignee=people[100 + index])
            for index in range(100)
        )


def test_task_page_query_count_does_not_grow_with_page_size(
    root, hundred_tasks_of_different_people
):
    counts = {}
    for size in (1, 10, 100):
        with CaptureQueriesContext(connection) as queries:
            page = _task_page(root, TaskFilters(), size, None)
        assert len(page["rows"]) == size
        counts[size] = len(queries)
    assert counts[1] == counts[10] == counts[100], counts


def test_each_row_names_its_assignee_from_the_pages_one_query(
    root, hundred_tasks_of_different_people
):
    with CaptureQueriesContext(connection) as queries:
        page = _task_page(root, TaskFilters(), 100, None)
    assert len(queries) == 1, queries.captured_queries
    for row in page["rows"]:
        index = int(row["title"].removeprefix("Task "))
        assert row["assignee_user"] == {"id": row["assignee"], "username": f"person{100 + index}"}


def test_task_page_query_count_is_the_same_for_every_ordering(
    root, hundred_tasks_of_different_people
):
    counts = {}
    for ordering in ("due_at", "-priority", "updated_at"):
        for size in (1, 100):
            with CaptureQueriesContext(connection) as queries:
                _task_page(root, TaskFilters(ordering=ordering), size, None)
            counts[ordering, size] = len(queries)
    assert len(set(counts.values())) == 1, counts


async def test_list_request_query_count_does_not_grow_with_page_size(
    api, root, hundred_tasks_of_different_people
):
    counts = {}
    for size in (1, 10, 100):
        with queries_on_every_new_connection() as executed:
            response = await api.get(URL, params={"limit": size}, headers=auth(root))
        assert response.status_code == 200, response.text
        assert len(response.json()["results"]) == size
        counts[size] = len(executed)
    assert counts[1] > 0, "the request's queries were not seen"
    assert counts[1] == counts[10] == counts[100], counts
