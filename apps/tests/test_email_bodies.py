"""The email of each kind of event, text and HTML, exactly as it is sent (the bodies are
Django templates: apps/tasks/templates/tasks/email/). Built in memory: no database."""

import pytest

from apps.tasks.models import EmailDelivery, EventType, TaskEvent
from apps.tasks.notifications import build_email
from apps.users.models import User

TASK = {
    "id": "0b5f8f9e-2d3c-4a51-9e1c-7f6a3b2c1d00",
    "title": "Ship <the> release & party",
    "status": "in_progress",
    "due_at": "2026-12-24T18:00:00Z",
}
ANA = {"id": 1, "username": "ana"}
LINK = "http://tasks.test/?task=0b5f8f9e-2d3c-4a51-9e1c-7f6a3b2c1d00"


@pytest.fixture(autouse=True)
def _site(settings):
    settings.SITE_URL = "http://tasks.test/"
    settings.DEFAULT_FROM_EMAIL = "Taskhub <taskhub@mail.test>"


def email_for(event_type, *, actor=ANA, changes=None, task=TASK, to="bob"):
    event = TaskEvent(
        type=event_type, task_id=task["id"], actor_snapshot=actor, task_snapshot=task,
        changes=changes,
    )  # fmt: skip
    delivery = EmailDelivery(pk=42, event=event, user=User(username=to), email=f"{to}@example.com")
    return build_email(delivery, task)


def bodies(message) -> tuple[str, str]:
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    return message.body, html


@pytest.mark.parametrize(
    ("event_type", "verb"),
    [
        (EventType.CREATED, "has been created"),
        (EventType.ARCHIVED, "has been archived"),
        (EventType.RESTORED, "has been restored"),
        (EventType.DELETED, "has been deleted"),
    ],
)
def test_an_event_by_someone_names_them(event_type, verb):
    message = email_for(event_type)
    assert message.subject == f"Task “Ship <the> release & party” {verb}"
    assert message.to == ["bob@example.com"]
    assert message.extra_headers["Message-ID"] == "<taskhub-delivery-42@mail.test>"
    assert bodies(message) == (
        "Hello bob,\n"
        "\n"
        f"Task “Ship <the> release & party” {verb} by ana.\n"
        "\n"
        "Status: In progress\n"
        "Due: 2026-12-24T18:00:00Z\n"
        "\n"
        f"Open it: {LINK}\n",
        "<p>Hello bob,</p>"
        f"<p>Task <b>Ship &lt;the&gt; release &amp; party</b> {verb} by ana.</p>"
        "<p>Status: In progress<br>Due: 2026-12-24T18:00:00Z</p>"
        f'<p><a href="{LINK}">Open the task</a></p>',
    )


def test_an_update_lists_its_changes():
    changes = {
        "title": ["Ship", "Ship <the> release & party"],
        "assignee": [None, 2],
        "metadata": [{}, {"tag": "<x>"}],
    }
    message = email_for(EventType.UPDATED, changes=changes)
    assert message.subject == "Task “Ship <the> release & party” has been updated"
    assert bodies(message) == (
        "Hello bob,\n"
        "\n"
        "Task “Ship <the> release & party” has been updated by ana.\n"
        "\n"
        "Status: In progress\n"
        "Due: 2026-12-24T18:00:00Z\n"
        "Changes:\n"
        "  title: Ship → Ship <the> release & party\n"
        "  assignee: None → 2\n"
        "  metadata: {} → {'tag': '<x>'}\n"
        "\n"
        f"Open it: {LINK}\n",
        "<p>Hello bob,</p>"
        "<p>Task <b>Ship &lt;the&gt; release &amp; party</b> has been updated by ana.</p>"
        "<p>Status: In progress<br>Due: 2026-12-24T18:00:00Z</p>"
        "<ul>"
        "<li><b>title</b>: Ship → Ship &lt;the&gt; release &amp; party</li>"
        "<li><b>assignee</b>: None → 2</li>"
        "<li><b>metadata</b>: {} → {&#x27;tag&#x27;: &#x27;&lt;x&gt;&#x27;}</li>"
        "</ul>"
        f'<p><a href="{LINK}">Open the task</a></p>',
    )


def test_a_reminder_has_no_actor_and_a_task_may_have_no_due_date():
    task = {**TASK, "title": "Call\nthe  bank", "status": "todo", "due_at": None}
    message = email_for(EventType.DUE_SOON, actor=None, task=task, to="<eve>")
    assert message.subject == "Task “Call the bank” is due soon"  # one line, as a header
    assert bodies(message) == (
        "Hello <eve>,\n"
        "\n"
        "Task “Call\nthe  bank” is due soon.\n"
        "\n"
        "Status: To do\n"
        "Due: no due date\n"
        "\n"
        f"Open it: {LINK}\n",
        "<p>Hello &lt;eve&gt;,</p>"
        "<p>Task <b>Call\nthe  bank</b> is due soon.</p>"
        "<p>Status: To do<br>Due: no due date</p>"
        f'<p><a href="{LINK}">Open the task</a></p>',
    )


PROJECT_ID = "7d3c2b1a-0000-4000-8000-00000000abcd"


def test_a_comment_quotes_it_line_by_line_and_links_the_task():
    event = TaskEvent(
        type=EventType.COMMENT_CREATED, task_id=TASK["id"], actor_snapshot=ANA,
        task_snapshot=TASK,
        comment_snapshot={"id": "c0", "task": TASK["id"], "body": "Looks <good> & done\n\n> x"},
    )  # fmt: skip
    delivery = EmailDelivery(pk=7, event=event, user=User(username="bob"), email="bob@example.com")
    message = build_email(delivery, TASK)
    assert message.subject == "ana commented on task “Ship <the> release & party”"
    assert message.extra_headers["Message-ID"] == "<taskhub-delivery-7@mail.test>"
    assert bodies(message) == (
        "Hello bob,\n"
        "\n"
        "ana commented on task “Ship <the> release & party”:\n"
        "\n"
        "> Looks <good> & done\n"
        ">\n"
        "> > x\n"
        "\n"
        f"Open it: {LINK}\n",
        "<p>Hello bob,</p>"
        "<p>ana commented on task <b>Ship &lt;the&gt; release &amp; party</b>:</p>"
        "<blockquote>Looks &lt;good&gt; &amp; done<br><br>&gt; x</blockquote>"
        f'<p><a href="{LINK}">Open the task</a></p>',
    )


def test_being_added_to_a_project_names_who_added_whom_as_what():
    event = TaskEvent(
        type=EventType.MEMBER_ADDED, project_id=PROJECT_ID, actor_snapshot=ANA,
        project_snapshot={"id": PROJECT_ID, "name": "Launch <Q1>\n& more"},
        member_snapshot={"user": {"id": 2, "username": "bob"}, "role": "owner"},
    )  # fmt: skip
    delivery = EmailDelivery(pk=8, event=event, user=User(username="bob"), email="bob@example.com")
    message = build_email(delivery, None)
    link = f"http://tasks.test/?project={PROJECT_ID}"
    assert message.subject == "ana added you to project “Launch <Q1> & more”"
    assert message.to == ["bob@example.com"]
    assert bodies(message) == (
        "Hello bob,\n"
        "\n"
        "ana added you to project “Launch <Q1>\n& more” as an owner.\n"
        "\n"
        f"Open it: {link}\n",
        "<p>Hello bob,</p>"
        "<p>ana added you to project <b>Launch &lt;Q1&gt;\n&amp; more</b> as an owner.</p>"
        f'<p><a href="{link}">Open the project</a></p>',
    )


def test_a_task_event_whose_snapshot_was_pruned_cannot_be_built():
    event = TaskEvent(type=EventType.DELETED, task_id=TASK["id"], actor_snapshot=ANA)
    delivery = EmailDelivery(pk=9, event=event, user=User(username="bob"), email="bob@example.com")
    with pytest.raises(LookupError):
        build_email(delivery, None)
