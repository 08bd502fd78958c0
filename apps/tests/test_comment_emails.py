"""Who is emailed about a new comment (the task's creator, its assignee and earlier
commenters who can still see it, never the author, each as their preference allows) and
about being added to a project (the person added), once each; and that such an email
really arrives through SMTP, once, however often its send job runs."""

import pytest
from django.db import transaction
from django.utils import timezone

from apps.tasks import jobs, services
from apps.tasks.comment_services import comment_create, comment_delete, comment_update
from apps.tasks.events import record_event
from apps.tasks.models import EmailDelivery, EventType, Membership, TaskEvent
from apps.tasks.project_services import member_add
from apps.tests.processes import smtp_sink
from apps.users.models import EmailNotifications

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sink(settings):
    """A real SMTP server that this process's Django mail sends to."""
    with smtp_sink() as sink:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        settings.SITE_URL = "http://tasks.test/"
        yield sink


@pytest.fixture
def team(make_user, make_project, ana, bob):
    """A project with ana and bob (who create and are assigned its task) and two more
    members, mia and max, who comment."""
    mia, max_ = make_user("mia"), make_user("max")
    project = make_project(
        make_user("olga"), name="Launch", members={ana: "member", bob: "member", mia: "member"}
    )
    Membership.objects.create(project=project, user=max_, role="member", added_at=timezone.now())
    return {"project": project, "mia": mia, "max": max_}


@pytest.fixture
def project_task(make_task, team, ana, bob) -> dict:
    return make_task(ana, project_id=team["project"].pk, assignee_id=bob.pk)


def comment(task: dict, author, body: str = "Looks good") -> TaskEvent:
    """Comment on the task; returns the `comment.created` event."""
    comment_create(task_id=task["id"], actor=author, body=body)
    return TaskEvent.objects.filter(task_id=task["id"]).latest("pk")


def emailed(event: TaskEvent) -> list[str]:
    """Who the event's emails are planned for, by name."""
    deliveries = EmailDelivery.objects.filter(event=event).order_by("user__username")
    return list(deliveries.values_list("user__username", flat=True))


def add_member(project, user, *, actor, role: str = "member") -> TaskEvent:
    """Add `user` to `project`; returns the `member.added` event."""
    member_add(project_id=project.pk, actor=actor, user=user, role=role)
    return TaskEvent.objects.filter(type=EventType.MEMBER_ADDED).latest("pk")


def plain_text(mail) -> str:
    """The text body of a received email, with SMTP's CRLF line ends made plain."""
    return mail.message.get_body(("plain",)).get_content().replace("\r\n", "\n")


# --- A new comment --------------------------------------------------------------------------


def test_new_comment_emails_the_tasks_creator_not_its_author(task, bob):
    assert emailed(comment(task, bob)) == ["ana"]


def test_new_comment_emails_the_assignee_not_its_author(task, ana):
    assert emailed(comment(task, ana)) == ["bob"]


def test_new_comment_emails_earlier_commenters(project_task, team):
    comment(project_task, team["mia"], "First")
    assert emailed(comment(project_task, team["max"], "Second")) == ["ana", "bob", "mia"]


def test_someone_concerned_in_every_way_is_emailed_once(make_task, ana, bob):
    task = make_task(ana, assignee_id=ana.pk)
    comment(task, ana, "Note to self")
    comment(task, ana, "Another")
    services.task_update(task_id=task["id"], actor=ana, data={"assignee": bob})
    comment(task, bob, "Mine now")
    event = comment(task, bob, "Reply")
    assert emailed(event) == ["ana"]


def test_commenter_who_left_the_project_is_not_emailed(project_task, team):
    comment(project_task, team["mia"], "First")
    Membership.objects.filter(project=team["project"], user=team["mia"]).delete()
    assert emailed(comment(project_task, team["max"], "Second")) == ["ana", "bob"]


def test_former_assignee_who_commented_is_not_emailed(task, make_user, ana, bob):
    comment(task, bob, "Handing over")
    carl = make_user("carl")
    services.task_update(task_id=task["id"], actor=ana, data={"assignee": carl})
    assert emailed(comment(task, carl, "Taken")) == ["ana"]


def test_preference_none_is_not_emailed_about_comments(task, ana, bob):
    ana.email_notifications = EmailNotifications.NONE
    ana.save(update_fields=["email_notifications"])
    assert emailed(comment(task, bob)) == []


def test_preference_others_is_emailed_about_someone_elses_comment(task, ana, bob):
    ana.email_notifications = EmailNotifications.OTHERS
    ana.save(update_fields=["email_notifications"])
    assert emailed(comment(task, bob)) == ["ana"]


def test_comment_edits_and_deletions_email_nobody(task, ana, bob):
    created = comment(task, bob, "Frist")
    comment_id = created.comment_snapshot["id"]
    comment_update(task_id=task["id"], comment_id=comment_id, actor=bob, body="First")
    comment_delete(task_id=task["id"], comment_id=comment_id, actor=bob)
    later = TaskEvent.objects.filter(task_id=task["id"], pk__gt=created.pk)
    assert [event.type for event in later.order_by("pk")] == [
        EventType.COMMENT_UPDATED,
        EventType.COMMENT_DELETED,
    ]
    assert not EmailDelivery.objects.filter(event__in=later).exists()


def test_comment_email_arrives_through_smtp_once(sink, task, bob):
    event = comment(task, bob, "Ready for review.\n\nSee the notes.")
    [delivery_id] = EmailDelivery.objects.filter(event=event).values_list("pk", flat=True)
    for _ in range(2):  # a send job may run twice (acks_late)
        jobs.send_email_deliveries.apply(args=[[delivery_id]]).get()
    [mail] = sink.messages()
    assert mail.rcpt_tos == ("ana@example.com",)
    assert mail.message["Subject"] == "bob commented on task “Plan the release”"
    text = plain_text(mail)
    assert "> Ready for review.\n>\n> See the notes.\n" in text
    assert f"Open it: http://tasks.test/?task={task['id']}\n" in text


# --- Being added to a project ---------------------------------------------------------------


def test_being_added_to_a_project_emails_only_the_person_added(make_project, ana, bob, eve):
    project = make_project(ana, name="Launch", members={eve: "member"})
    assert emailed(add_member(project, bob, actor=ana)) == ["bob"]


def test_being_added_with_preference_none_sends_no_email(make_project, ana, bob):
    bob.email_notifications = EmailNotifications.NONE
    bob.save(update_fields=["email_notifications"])
    project = make_project(ana)
    assert emailed(add_member(project, bob, actor=ana)) == []


def test_added_email_arrives_through_smtp_once(sink, make_project, ana, bob):
    project = make_project(ana, name="Launch")
    event = add_member(project, bob, actor=ana, role="viewer")
    [delivery_id] = EmailDelivery.objects.filter(event=event).values_list("pk", flat=True)
    for _ in range(2):
        jobs.send_email_deliveries.apply(args=[[delivery_id]]).get()
    [mail] = sink.messages()
    assert mail.rcpt_tos == ("bob@example.com",)
    assert mail.message["Subject"] == "ana added you to project “Launch”"
    text = plain_text(mail)
    assert "ana added you to project “Launch” as a viewer.\n" in text
    assert f"Open it: http://tasks.test/?project={project.pk}\n" in text


def test_other_project_events_email_nobody(make_project, ana, bob):
    project = make_project(ana, members={bob: "member"})
    with transaction.atomic():
        event = record_event(EventType.PROJECT_UPDATED, actor=ana, project=project, notify={bob.pk})
    assert emailed(event) == []
