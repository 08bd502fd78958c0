"""Dependable email (issue 4): one email per (event, recipient), whatever re-runs, duplicates
or crashes happen on the way; refused sends retried with backoff until they fail for good,
loudly; and each person's `email_notifications` respected.

Every email goes to a real SMTP server (aiosmtpd) that the test scripts: it can refuse the
first messages with a temporary error, take its time over each message (the sender waits
for the reply, as it would for a slow mail system) or hold the goodbye (QUIT) after it has
accepted a message. The service-level tests send in-process; the others run real Celery
workers, and two of them SIGKILL a worker in the middle of sending.
"""

import asyncio
import base64
import contextlib
import json
import logging
import os
import re
import threading
import time
from collections import Counter

import pytest
from django.db import connections
from django.utils import timezone

from apps.tasks import events, jobs, notifications, services
from apps.tasks.models import DeliveryStatus, EmailDelivery, EventType, TaskEvent
from apps.tests.processes import (
    Inbox,
    SmtpSink,
    WorkerProcess,
    base_env,
    celery_beat,
    celery_worker,
    database_url_for_subprocess,
    free_port,
    kill_process_group,
    smtp_sink,
)
from apps.users.models import EmailNotifications

pytestmark = pytest.mark.django_db(transaction=True)

VISIBILITY_TIMEOUT = 5  # seconds, for the workers that are killed
RETRY_ARRIVES = 30  # seconds to wait for an email that comes on a retry (retry_delay(1) ≤ 5 s)
MESSAGE_ID = re.compile(r"<taskhub-delivery-(\d+)@localhost>")


# --- The scripted SMTP server ---------------------------------------------------------------


class ScriptedInbox(Inbox):
    """An aiosmtpd handler that keeps every message it accepts, following a script:
    refuse the first `refuse` messages with 451; take `delay` seconds over each message
    before accepting it (a client that goes away meanwhile cancels it, and nothing is
    kept: the server never said 250). It counts the SMTP sessions opened."""

    def __init__(self, *, refuse: int = 0, delay: float = 0.0):
        super().__init__()
        self.refuse = refuse
        self.delay = delay
        self.data_attempts = 0  # messages offered, refused ones included
        self.in_data = 0  # messages being taken in right now
        self.sessions = 0  # SMTP sessions opened (EHLO or HELO)

    def _update(self, **changes: int) -> None:
        with self.arrived:
            for name, change in changes.items():
                setattr(self, name, getattr(self, name) + change)
            self.arrived.notify_all()

    async def handle_DATA(self, server, session, envelope):
        with self.arrived:
            self.data_attempts += 1
            refused = self.data_attempts <= self.refuse
            self.arrived.notify_all()
        if refused:
            return "451 4.3.0 try again later"
        self._update(in_data=1)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self._update(in_data=-1)
        return self.keep(envelope)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self._update(sessions=1)
        session.host_name = hostname
        return responses

    async def handle_HELO(self, server, session, envelope, hostname):
        self._update(sessions=1)
        session.host_name = hostname
        return f"250 {server.hostname}"

    def wait_until(self, condition, *, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while not condition():
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"not within {timeout}s: {what}"
                self.arrived.wait(remaining)


@contextlib.contextmanager
def scripted_sink(*, smtp_options: dict | None = None, **script):
    """A real SMTP server on a spare port that follows `script` (see ScriptedInbox)."""
    inbox = ScriptedInbox(**script)
    with smtp_sink(inbox, **(smtp_options or {})) as sink:
        sink.inbox = inbox
        yield sink


def send_to(settings, sink: SmtpSink) -> None:
    """Point this process's Django mail at `sink`."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = sink.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""


@pytest.fixture
def sink(settings):
    with scripted_sink() as sink:
        send_to(settings, sink)
        yield sink


# --- Workers --------------------------------------------------------------------------------


def worker_env(sink: SmtpSink, **extra: str) -> dict:
    return base_env(
        DATABASE_URL=database_url_for_subprocess(),
        REDIS_URL=os.environ["REDIS_URL"],
        EMAIL_URL=sink.url,
        **extra,
    )


def kill(worker: WorkerProcess) -> None:
    """SIGKILL the worker and its pool processes (its own process group)."""
    kill_process_group(worker.process)


def wait_for_deliveries(condition, *, timeout: float, what: str) -> list[EmailDelivery]:
    """Poll the deliveries until `condition(deliveries)` holds; returns them."""
    deadline = time.monotonic() + timeout
    while True:
        deliveries = list(EmailDelivery.objects.order_by("pk"))
        if condition(deliveries):
            return deliveries
        assert time.monotonic() < deadline, (
            f"not within {timeout}s: {what}; deliveries: "
            f"{[(d.pk, d.email, d.status, d.attempts, d.last_error) for d in deliveries]}"
        )
        time.sleep(0.1)


# --- Helpers --------------------------------------------------------------------------------


def create_task(actor, **fields) -> TaskEvent:
    """Create a task (its publish job goes to the broker, where no worker runs unless the
    test started one); returns its `task.created` event."""
    body = services.task_create(actor=actor, data={"title": "Task", **fields}).body
    return TaskEvent.objects.get(task_id=body["id"], type=EventType.CREATED)


def update_task(event: TaskEvent, actor, **data) -> TaskEvent:
    services.task_update(task_id=event.task_id, actor=actor, data=data)
    return TaskEvent.objects.filter(task_id=event.task_id).latest("pk")


def planned(event: TaskEvent) -> list[int]:
    """The ids of the event's deliveries still pending (planned with the change)."""
    return list(
        EmailDelivery.objects.filter(event=event, status=DeliveryStatus.PENDING)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def send_all(event: TaskEvent) -> list[str]:
    """Plan the event's emails and send each once; returns the outcomes."""
    return [
        notifications.deliver_email(delivery_id=delivery_id).status
        for delivery_id in planned(event)
    ]


def recipients(sink: SmtpSink) -> list[str]:
    return sorted(address for mail in sink.messages() for address in mail.rcpt_tos)


def message_ids(sink: SmtpSink) -> Counter:
    return Counter(mail.message["Message-ID"] for mail in sink.messages())


def message_id(delivery_id: int) -> str:
    return f"<taskhub-delivery-{delivery_id}@localhost>"


# --- Who is emailed -------------------------------------------------------------------------


def test_preference_all_is_the_default_and_emails_people_about_their_own_changes(sink, ana, bob):
    assert ana.email_notifications == EmailNotifications.ALL
    event = create_task(ana, title="Mine", assignee_id=bob.pk)
    assert send_all(event) == ["sent", "sent"]
    assert recipients(sink) == ["ana@example.com", "bob@example.com"]
    [to_ana] = [mail for mail in sink.messages() if mail.rcpt_tos == ("ana@example.com",)]
    assert to_ana.message["Subject"] == "Task “Mine” has been created"
    assert to_ana.message["To"] == "ana@example.com"


def test_preference_others_emails_only_about_changes_made_by_someone_else(sink, make_user, bob):
    olga = make_user("olga", email_notifications=EmailNotifications.OTHERS)
    created = create_task(olga, title="Shared", assignee_id=bob.pk)
    assert send_all(created) == ["sent"]
    assert recipients(sink) == ["bob@example.com"]

    updated = update_task(created, bob, status="in_progress")
    assert send_all(updated) == ["sent", "sent"]
    assert recipients(sink) == ["bob@example.com", "bob@example.com", "olga@example.com"]
    assert not EmailDelivery.objects.filter(event=created, user=olga).exists()


def test_preference_none_never_emails(sink, make_user, bob):
    nina = make_user("nina", email_notifications=EmailNotifications.NONE)
    created = create_task(nina, title="Quiet", assignee_id=bob.pk)
    updated = update_task(created, bob, status="in_progress")
    assert send_all(created) == send_all(updated) == ["sent"]
    assert recipients(sink) == ["bob@example.com", "bob@example.com"]
    assert not EmailDelivery.objects.filter(user=nina).exists()


# --- Once only ------------------------------------------------------------------------------


def test_planning_an_event_twice_records_one_delivery_per_recipient(ana, bob):
    event = create_task(ana, assignee_id=bob.pk)
    first = planned(event)
    second = planned(event)
    assert sorted(first) == sorted(second)
    deliveries = EmailDelivery.objects.filter(event=event)
    assert sorted(deliveries.values_list("user_id", flat=True)) == sorted([ana.pk, bob.pk])
    assert {d.status for d in deliveries} == {DeliveryStatus.PENDING}


def test_delivering_a_delivery_twice_sends_one_email(sink, ana):
    [delivery_id] = planned(create_task(ana))
    first = notifications.deliver_email(delivery_id=delivery_id)
    second = notifications.deliver_email(delivery_id=delivery_id)
    assert (first.status, second.status) == ("sent", "done")
    assert message_ids(sink) == {message_id(delivery_id): 1}
    delivery = EmailDelivery.objects.get(pk=delivery_id)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SENT, 1)
    assert delivery.sent_at is not None


class DatabaseLostDuringSend(ScriptedInbox):
    """Takes the message, but before saying 250 terminates the sender's PostgreSQL
    session, as a PostgreSQL crash between the send and its commit would."""

    def __init__(self, database_url: str, backend_pid: int):
        super().__init__()
        self.database_url, self.backend_pid = database_url, backend_pid

    async def handle_DATA(self, server, session, envelope):
        import psycopg

        with psycopg.connect(self.database_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [self.backend_pid])
        return await super().handle_DATA(server, session, envelope)


def test_an_email_sent_just_before_postgresql_went_away_is_not_sent_again(settings, ana):
    """The mail server accepted it, then the commit that marks it sent failed: the next
    attempt (the sweep's) records it as sent from the cache's note, and sends nothing."""
    from django.db import OperationalError, connection

    [delivery_id] = planned(create_task(ana))
    connection.ensure_connection()
    inbox = DatabaseLostDuringSend(
        database_url_for_subprocess(), connection.connection.info.backend_pid
    )
    with smtp_sink(inbox) as sink:
        send_to(settings, sink)
        with pytest.raises(OperationalError):
            notifications.deliver_email(delivery_id=delivery_id)
        connection.close()
        assert EmailDelivery.objects.get(pk=delivery_id).status == DeliveryStatus.PENDING
        again = notifications.deliver_email(delivery_id=delivery_id)
        assert again.status == "sent"
        assert message_ids(sink) == {message_id(delivery_id): 1}
    assert EmailDelivery.objects.get(pk=delivery_id).status == DeliveryStatus.SENT


def test_send_jobs_run_twice_send_one_email_each(sink, ana, bob):
    event = create_task(ana, title="Twice", assignee_id=bob.pk)
    deliveries = list(EmailDelivery.objects.filter(event=event))
    assert len(deliveries) == 2
    for delivery in deliveries * 2:
        jobs.send_email_deliveries.apply(args=[[delivery.pk]]).get()
    assert message_ids(sink) == {message_id(d.pk): 1 for d in deliveries}
    assert recipients(sink) == ["ana@example.com", "bob@example.com"]
    assert set(EmailDelivery.objects.values_list("status", flat=True)) == {DeliveryStatus.SENT}


def test_a_change_queues_one_job_with_all_its_emails(ana, bob):
    """One broker message per change, however many people it emails."""
    from project.celery import app

    with app.connection_for_write() as connection:
        broker = connection.default_channel.client
        broker.delete("email")
        event = create_task(ana, title="One job", assignee_id=bob.pk)
        events.wait_for_email_hand_offs()
        assert broker.llen("email") == 1
        message = json.loads(broker.lindex("email", 0))
        body = json.loads(base64.b64decode(message["body"]))
        broker.delete("email")
    assert message["headers"]["task"] == "tasks.send_email_deliveries"
    planned_ids = set(EmailDelivery.objects.filter(event=event).values_list("pk", flat=True))
    assert len(planned_ids) == 2
    assert set(body[0][0]) == planned_ids


def test_a_change_is_done_before_its_emails_reach_the_broker(ana, bob):
    """The hand-off to the broker runs after the change, in a thread of its own: a
    change made while that thread is stuck is done, and its job follows once it frees."""
    from project.celery import app

    stuck = threading.Event()
    events._email_hand_off.submit(stuck.wait, 10)
    with app.connection_for_write() as connection:
        broker = connection.default_channel.client
        broker.delete("email")
        try:
            event = create_task(ana, title="Later", assignee_id=bob.pk)
            assert len(planned(event)) == 2
            assert broker.llen("email") == 0
        finally:
            stuck.set()
        events.wait_for_email_hand_offs()
        assert broker.llen("email") == 1
        broker.delete("email")


def test_two_workers_sending_the_same_delivery_at_once_send_one_email(settings, ana):
    with scripted_sink(delay=0.5) as sink:  # the first sender is still at it
        send_to(settings, sink)
        [delivery_id] = planned(create_task(ana))
        barrier = threading.Barrier(2)
        outcomes = []

        def send():
            barrier.wait()
            try:
                outcomes.append(notifications.deliver_email(delivery_id=delivery_id).status)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=send) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert outcomes.count("sent") == 1, outcomes
        assert set(outcomes) - {"sent"} <= {"busy", "done"}, outcomes
        assert message_ids(sink) == {message_id(delivery_id): 1}
        assert sink.inbox.data_attempts == 1


# --- Retries --------------------------------------------------------------------------------


def test_refused_send_stays_pending_with_a_retry_delay_and_the_next_attempt_sends(settings, ana):
    with scripted_sink(refuse=1) as sink:
        send_to(settings, sink)
        [delivery_id] = planned(create_task(ana))
        refused = notifications.deliver_email(delivery_id=delivery_id)
        assert refused.status == "pending"
        assert 0 < refused.retry_in <= notifications.RETRY_BASE_SECONDS
        delivery = EmailDelivery.objects.get(pk=delivery_id)
        assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 1)
        # The retry is a due time in the database, for queue_due_emails to act on.
        due_in = (delivery.next_attempt_at - timezone.now()).total_seconds()
        assert 0 < due_in <= notifications.RETRY_BASE_SECONDS
        assert "451" in delivery.last_error
        assert "try again later" in delivery.last_error
        assert sink.messages() == []

        assert notifications.deliver_email(delivery_id=delivery_id).status == "sent"
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts) == (DeliveryStatus.SENT, 2)
        assert message_ids(sink) == {message_id(delivery_id): 1}


def test_unreachable_mail_server_is_retried(settings, ana):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nobody listens
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    [delivery_id] = planned(create_task(ana))
    outcome = notifications.deliver_email(delivery_id=delivery_id)
    assert outcome.status == "pending"
    assert outcome.retry_in > 0
    delivery = EmailDelivery.objects.get(pk=delivery_id)
    assert delivery.attempts == 1
    assert delivery.last_error.startswith("ConnectionRefusedError")


def test_send_refused_on_every_attempt_is_marked_failed_and_logged(settings, ana, caplog):
    with scripted_sink(refuse=notifications.MAX_ATTEMPTS) as sink:
        send_to(settings, sink)
        [delivery_id] = planned(create_task(ana))
        outcomes = [
            notifications.deliver_email(delivery_id=delivery_id)
            for _ in range(notifications.MAX_ATTEMPTS)
        ]
        assert [o.status for o in outcomes] == ["pending"] * (notifications.MAX_ATTEMPTS - 1) + [
            "failed"
        ]
        assert outcomes[-1].retry_in is None
        delivery = EmailDelivery.objects.get(pk=delivery_id)
        assert delivery.status == DeliveryStatus.FAILED
        assert delivery.attempts == notifications.MAX_ATTEMPTS
        assert "451" in delivery.last_error
        [logged] = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert logged.name == "apps.tasks.notifications"
        assert f"email {delivery_id} to ana@example.com failed" in logged.getMessage()
        assert logged.delivery_id == delivery_id

        # Failed is final: no job that comes later sends it.
        assert notifications.deliver_email(delivery_id=delivery_id).status == "done"
        jobs.send_email_deliveries.apply(args=[[delivery_id]]).get()
        assert sink.inbox.data_attempts == notifications.MAX_ATTEMPTS
        assert sink.messages() == []


def test_retry_delay_grows_exponentially_with_jitter_and_is_capped():
    for attempts in range(1, 16):
        ceiling = min(
            notifications.RETRY_MAX_SECONDS, notifications.RETRY_BASE_SECONDS * 2 ** (attempts - 1)
        )
        delays = [notifications.retry_delay(attempts) for _ in range(200)]
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays), (attempts, delays)
        assert len(set(delays)) > 100  # jittered, not one fixed delay
    assert notifications.retry_delay(2) > notifications.retry_delay(1) / 2
    assert max(notifications.retry_delay(50) for _ in range(200)) <= 15 * 60


# --- With real workers ----------------------------------------------------------------------


@pytest.mark.e2e  # starts processes
def test_worker_sends_a_refused_email_on_a_retry(ana):
    with (
        scripted_sink(refuse=1) as sink,
        celery_worker(env=worker_env(sink)) as worker,
        celery_beat(env=worker_env(sink)),
    ):
        started = time.monotonic()
        create_task(ana, title="Retried")
        [mail] = sink.wait_for(lambda mail: True, 1, timeout=RETRY_ARRIVES)
        arrived = time.monotonic() - started
        [delivery] = wait_for_deliveries(
            lambda ds: [d.status for d in ds] == [DeliveryStatus.SENT],
            timeout=10,
            what="the delivery is marked sent",
        )
        assert mail.message["Message-ID"] == message_id(delivery.pk)
        assert mail.message["Subject"] == "Task “Retried” has been created"
        assert delivery.attempts == 2
        assert "451" in delivery.last_error
        assert sink.inbox.data_attempts == 2
        log = worker.log()
        assert f"email {delivery.pk}: pending" in log
        assert f"email {delivery.pk}: sent" in log
        print(f"\nrefused email arrived on its retry {arrived:.1f}s after the change")


@pytest.mark.e2e  # starts processes
def test_worker_killed_mid_burst_loses_no_email_and_sends_none_twice(ana, bob):
    """15 tasks, each emailed to its creator and its assignee (30 emails), through a
    slow mail server; the worker and its pool are SIGKILLed while both pool processes
    are in the middle of sending, and a new worker takes over."""
    with scripted_sink(delay=0.3) as sink:
        env = worker_env(sink, CELERY_VISIBILITY_TIMEOUT=str(VISIBILITY_TIMEOUT))
        with celery_worker(env=env, concurrency=2) as first:
            started = time.monotonic()
            for number in range(1, 16):
                create_task(ana, title=f"Burst {number:02}", assignee_id=bob.pk)
            sink.inbox.wait_until(
                lambda: sink.inbox.in_data == 2 and len(sink.inbox.messages) >= 10,
                timeout=30,
                what="both pool processes are sending, some emails have arrived",
            )
            kill(first)
            killed = time.monotonic()
            before_kill = len(sink.messages())
        # Redis hands out the killed worker's unacknowledged jobs once they are older than
        # the visibility timeout; a new worker sweeps for them as it starts.
        time.sleep(VISIBILITY_TIMEOUT + 1)
        with celery_worker(purge=False, env=env, concurrency=2) as second:
            sink.wait_for(lambda mail: True, 30, timeout=60)
            deliveries = wait_for_deliveries(
                lambda ds: len(ds) == 30 and all(d.status == DeliveryStatus.SENT for d in ds),
                timeout=60,
                what="all 30 deliveries are sent",
            )
            finished = time.monotonic()

    events = TaskEvent.objects.filter(type=EventType.CREATED)
    addresses = ("ana@example.com", "bob@example.com")
    expected = {
        (to, f"Task “{event.task_snapshot['title']}” has been created")
        for event in events
        for to in addresses
    }
    received = Counter((mail.message["To"], mail.message["Subject"]) for mail in sink.messages())
    print(
        f"\n{before_kill} of 30 emails had arrived when the worker was killed "
        f"{killed - started:.1f}s after the first change; the new worker was ready in "
        f"{second.startup_seconds:.1f}s and the last email arrived "
        f"{finished - killed:.1f}s after the kill; the server was offered "
        f"{sink.inbox.data_attempts} messages (the ones cut off by the kill included)"
    )
    assert received == dict.fromkeys(expected, 1), received
    assert message_ids(sink) == {message_id(d.pk): 1 for d in deliveries}
    assert {(d.email, d.event_id) for d in deliveries} == {
        (to, event.pk) for event in events for to in addresses
    }


def test_sends_reuse_one_smtp_session_and_reopen_one_the_server_dropped(settings, ana, bob):
    """Each email after the first goes over the session already open; when the server
    has dropped it meanwhile (idle clients are cut off), the send opens a new one and
    the email still goes out once, on its first attempt."""
    with scripted_sink(smtp_options={"timeout": 1}) as sink:
        send_to(settings, sink)
        first = planned(create_task(ana, title="One", assignee_id=bob.pk))
        assert [notifications.deliver_email(delivery_id=d).status for d in first] == ["sent"] * 2
        assert sink.inbox.sessions == 1
        time.sleep(1.5)  # the server drops the idle session
        [later] = planned(create_task(ana, title="Two"))
        assert notifications.deliver_email(delivery_id=later).status == "sent"
        assert sink.inbox.sessions == 2
    assert message_ids(sink) == {message_id(d): 1 for d in [*first, later]}
    assert EmailDelivery.objects.get(pk=later).attempts == 1


@pytest.mark.e2e  # starts processes
def test_due_pending_email_is_queued_again_and_sent_by_a_worker(ana, bob):
    due_event = create_task(ana, title="Due")
    recent_event = create_task(ana, title="Recent")
    [due_id] = planned(due_event)
    [recent_id] = planned(recent_event)
    EmailDelivery.objects.filter(pk=due_id).update(next_attempt_at=timezone.now())
    # The worker purges the queue as it starts: the send jobs of both changes are gone,
    # as if the broker had lost them; only the sweep can send now.
    with scripted_sink() as sink, celery_worker(env=worker_env(sink)):
        assert jobs.queue_due_emails() == 1
        assert jobs.queue_due_emails() == 0  # claimed: not queued twice while it waits
        [mail] = sink.wait_for(lambda mail: True, 1, timeout=10)
        wait_for_deliveries(
            lambda ds: (
                {d.pk: d.status for d in ds}
                == {due_id: DeliveryStatus.SENT, recent_id: DeliveryStatus.PENDING}
            ),
            timeout=10,
            what="the due delivery is sent, the recent one left alone",
        )
    assert mail.message["Message-ID"] == message_id(due_id)
    assert mail.message["Subject"] == "Task “Due” has been created"


@pytest.mark.e2e  # starts processes
def test_email_whose_send_job_was_lost_is_sent_within_a_minute(ana):
    """A change commits, but its send job never runs (the broker was away at commit
    time, or lost the message): beat's sweep queues it once REQUEUE_AFTER has passed."""
    event = create_task(ana, title="Lost job")
    [delivery_id] = planned(event)
    planned_at = time.monotonic()
    # The worker purges the queue as it starts, the send job with it.
    with (
        scripted_sink() as sink,
        celery_worker(env=worker_env(sink)),
        celery_beat(env=worker_env(sink)),
    ):
        [mail] = sink.wait_for(lambda mail: True, 1, timeout=60)
        arrived = time.monotonic() - planned_at
    assert mail.message["Message-ID"] == message_id(delivery_id)
    assert mail.message["Subject"] == "Task “Lost job” has been created"
    assert arrived >= notifications.REQUEUE_AFTER.total_seconds() - 1
    print(f"\nthe email whose job was lost arrived {arrived:.1f}s after the change")
