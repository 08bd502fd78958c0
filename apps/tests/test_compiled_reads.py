"""The reads compiled once per shape (apps.common.compiled) return exactly what the ORM's
querysets return, for every caller and every shape, and never another caller's rows."""

import uuid
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.common.pagination import order_by_keys
from apps.tasks import selectors
from apps.tasks.models import Priority, Status, Task
from apps.tasks.representation import (
    TASK_COLUMNS,
    task_representation,
    task_row_representation,
)
from apps.tasks.selectors import _TASK_FIELDS, TaskFilters
from apps.users.models import Role

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def tasks(ana, bob, eve):
    """Tasks of three people, crossing: some assigned across, some with due dates."""
    now = timezone.now()
    made = []
    for index in range(12):
        creator = (ana, bob, eve)[index % 3]
        assignee = (bob, eve, ana, None)[index % 4]
        made.append(
            Task.objects.create(
                title=f"Task {index}",
                description="find me" if index % 5 == 0 else "",
                created_by=creator,
                assignee=assignee,
                status=list(Status.values)[index % 3],
                priority=list(Priority.values)[index % 4],
                due_at=now + timedelta(hours=index) if index % 2 else None,
                metadata={"n": index, "nested": {"ok": True}},
            )
        )
    return made


def orm_row(user, task_id):
    return selectors.visible_tasks(user).filter(pk=task_id).values(*TASK_COLUMNS).first()


def orm_first_page(user, filters, limit):
    tasks, keys = selectors.task_list(user=user, filters=filters)
    return list(order_by_keys(tasks, keys)[: limit + 1])


def test_a_compiled_task_read_is_the_orms_for_every_caller(tasks, ana, bob, eve, root):
    for user in (ana, bob, eve, root, ana):  # ana twice: the second read is compiled
        for task in tasks:
            expected = orm_row(user, task.pk)
            assert selectors.get_visible_task_row(user=user, task_id=task.pk) == expected
        assert selectors.get_visible_task_row(user=user, task_id=uuid.uuid4()) is None


def test_a_compiled_first_page_is_the_orms_for_every_shape(tasks, ana, bob, eve, root):
    shapes = [
        TaskFilters(),
        TaskFilters(ordering="due_at"),
        TaskFilters(ordering="-due_at", statuses=("todo", "done")),
        TaskFilters(ordering="priority", priorities=(Priority.HIGH, Priority.LOW)),
        TaskFilters(search_words=("find", "me")),
        TaskFilters(archived="all", ordering="-updated_at"),
        # A filter on a user id that is also someone's own id: only the caller's id
        # may be swapped in.
        TaskFilters(assignee=bob.pk),
        TaskFilters(created_by=ana.pk, assignee=ana.pk),
    ]
    for filters in shapes:
        for user in (ana, bob, eve, root, bob):
            for limit in (1, 5, 50):
                expected = orm_first_page(user, filters, limit)
                got = selectors.first_task_page_rows(user=user, filters=filters, limit=limit)
                assert got == expected, (user.username, filters, limit)


def test_a_role_is_part_of_the_shape(tasks, eve):
    member_rows = selectors.first_task_page_rows(user=eve, filters=TaskFilters(), limit=50)
    eve.role = Role.ADMIN
    admin_rows = selectors.first_task_page_rows(user=eve, filters=TaskFilters(), limit=50)
    assert len(admin_rows) == len(tasks) > len(member_rows)


def test_a_filter_relative_to_now_is_not_compiled(tasks, ana):
    assert (
        selectors.first_task_page_rows(user=ana, filters=TaskFilters(overdue=True), limit=10)
        is None
    )


def test_the_locked_task_is_the_task_as_the_orm_loads_it(tasks, ana, root):
    for caller in (ana, root):
        for task in tasks:
            with transaction.atomic():
                locked = selectors.lock_visible_task(user=caller, task_id=task.pk)
            visible = selectors.visible_tasks(caller).filter(pk=task.pk).first()
            if visible is None:
                assert locked is None
                continue
            assert locked is not None
            locked, _access = locked
            assert [getattr(locked, name) for name in _TASK_FIELDS] == [
                getattr(visible, name) for name in _TASK_FIELDS
            ]
            assert locked.created_by.username == visible.created_by.username
            assert not locked._state.adding
            # Both names come with the lock: rendering the task needs no other query.
            with CaptureQueriesContext(connection) as queries:
                body = task_representation(locked)
            assert len(queries) == 0, queries.captured_queries
            assert body["assignee_user"] == (
                {"id": visible.assignee_id, "username": visible.assignee.username}
                if visible.assignee_id
                else None
            )


def test_a_task_row_names_its_assignee(tasks, ana):
    for task in tasks:
        row = selectors.get_visible_task_row(user=ana, task_id=task.pk)
        if row is None:
            continue
        named = task_row_representation(row)["assignee_user"]
        if task.assignee is None:
            assert named is None
        else:
            assert named == {"id": task.assignee.pk, "username": task.assignee.username}


@pytest.mark.parametrize("count", [0, 1, 3, 4, 5, 9])
def test_the_people_concerned_are_those_named_and_every_active_admin(make_user, count):
    """The compiled form (up to 4 ids) and the ORM's (more) give the same people."""
    named = [make_user(f"named{index}") for index in range(count)]
    admin = make_user("admin1", role=Role.ADMIN)
    make_user("admin2", role=Role.ADMIN, is_active=False)
    make_user("bystander")
    people = selectors.people_concerned({person.pk for person in named})
    assert set(people) == {person.pk for person in named} | {admin.pk}
    for person in named:
        loaded = people[person.pk]
        assert (loaded.username, loaded.email, loaded.role, loaded.is_active) == (
            person.username,
            person.email,
            person.role,
            True,
        )
        assert loaded.email_notifications == person.email_notifications
