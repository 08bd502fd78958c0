"""The console email backend (no EMAIL_URL): each email printed as one block a person can
read, whole, whoever else prints at the same time: threads of one process, processes
sharing a pipe, and a real Celery worker's pool, which logs none of it."""

import io
import json
import os
import subprocess
import sys
import threading
import time

import pytest
from django.core.mail import EmailMultiAlternatives, get_connection

from apps.common.mail import END, START
from apps.tasks import services
from apps.tests.processes import REPO, base_env, celery_worker, database_url_for_subprocess

BACKEND = "apps.common.mail.ConsoleEmailBackend"


def email_blocks(output: str) -> list[list[str]]:
    """The lines of each block printed; fails if a block begins inside another or never
    ends (what interleaved writes would leave)."""
    blocks: list[list[str]] = []
    current: list[str] | None = None
    for line in output.splitlines():
        if line == START:
            assert current is None, f"an email began inside another:\n{output}"
            current = []
        elif line == END:
            assert current is not None, f"an email ended that had not begun:\n{output}"
            blocks.append(current)
            current = None
        elif current is not None:
            current.append(line)
    assert current is None, f"an email did not end:\n{output}"
    return blocks


def numbered_email(sender: int, number: int, lines: int = 30) -> EmailMultiAlternatives:
    """An email whose every body line says who sent it and which one it is."""
    body = "".join(f"sender {sender} email {number} line {line}\n" for line in range(lines))
    return EmailMultiAlternatives(
        subject=f"Email {number} from {sender}", body=body, to=[f"to{sender}@example.com"]
    )


def expected_block(sender: int, number: int, lines: int = 30) -> list[str]:
    return [
        f"To: to{sender}@example.com",
        f"Subject: Email {number} from {sender}",
        "",
        *(f"sender {sender} email {number} line {line}" for line in range(lines)),
    ]


def test_console_email_shows_recipients_decoded_subject_and_text_body():
    out = io.StringIO()
    message = EmailMultiAlternatives(
        subject="Task “Café ☕” has been created",
        body="Hello Zoë,\n\nTask “Café ☕” has been created by ana.\n\nÉtat: à faire\n",
        from_email="Taskhub <taskhub@localhost>",
        to=["zoe@example.com", "ana@example.com"],
        cc=["bob@example.com"],
        connection=get_connection(BACKEND, stream=out),
    )
    message.attach_alternative("<p>Hello Zoë,</p>", "text/html")

    assert message.send() == 1
    assert out.getvalue() == (
        f"{START}\n"
        "To: zoe@example.com, ana@example.com\n"
        "Cc: bob@example.com\n"
        "Subject: Task “Café ☕” has been created\n"
        "Also sent as: text/html\n"
        "\n"
        "Hello Zoë,\n\nTask “Café ☕” has been created by ana.\n\nÉtat: à faire\n"
        f"{END}\n"
    )


def test_html_only_email_shows_its_html_body():
    out = io.StringIO()
    message = EmailMultiAlternatives(
        subject="Hi",
        body="<p>Hi</p>",
        to=["a@example.com"],
        connection=get_connection(BACKEND, stream=out),
    )
    message.content_subtype = "html"
    message.send()
    assert email_blocks(out.getvalue()) == [["To: a@example.com", "Subject: Hi", "", "<p>Hi</p>"]]


@pytest.mark.parametrize("stream_kind", ["file", "no file descriptor"])
def test_emails_sent_from_many_threads_never_interleave(tmp_path, stream_kind):
    path = tmp_path / "out.txt"
    stream = path.open("w", encoding="utf-8") if stream_kind == "file" else io.StringIO()
    senders, per_sender = 8, 40
    start = threading.Barrier(senders)

    def send(sender: int) -> None:
        connection = get_connection(BACKEND, stream=stream)
        start.wait()
        for number in range(per_sender):
            connection.send_messages([numbered_email(sender, number)])

    threads = [threading.Thread(target=send, args=(sender,)) for sender in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    output = path.read_text(encoding="utf-8") if stream_kind == "file" else stream.getvalue()
    stream.close()

    blocks = email_blocks(output)
    expected = [expected_block(s, n) for s in range(senders) for n in range(per_sender)]
    assert sorted(blocks) == sorted(expected)


SEND_FROM_A_PROCESS = """
import sys
import django

django.setup()
from django.core.mail import send_mail

sender = int(sys.argv[1])
for number in range(int(sys.argv[2])):
    body = "".join(f"sender {sender} email {number} line {line}\\n" for line in range(30))
    send_mail(f"Email {number} from {sender}", body, None, [f"to{sender}@example.com"])
"""


@pytest.mark.e2e  # starts processes
def test_emails_from_processes_sharing_a_pipe_never_interleave():
    """As a Celery worker's pool processes share their parent's stdout: each email is
    one write, which a pipe keeps whole (up to 4 KiB)."""
    senders, per_sender = 4, 150
    env = base_env(DJANGO_SETTINGS_MODULE="project.settings")  # no EMAIL_URL: the console
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb") as reader:
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", SEND_FROM_A_PROCESS, str(sender), str(per_sender)],
                cwd=REPO,
                env=env,
                stdout=write_end,
            )
            for sender in range(senders)
        ]
        os.close(write_end)
        output = reader.read().decode()  # until every process has closed its end
    assert [process.wait(timeout=60) for process in processes] == [0] * senders

    blocks = email_blocks(output)
    expected = [expected_block(s, n) for s in range(senders) for n in range(per_sender)]
    assert sorted(blocks) == sorted(expected)


@pytest.mark.django_db(transaction=True)
@pytest.mark.e2e  # starts processes
def test_celery_worker_prints_each_email_as_one_block_and_logs_none_of_it(ana, bob):
    """A real worker (two pool processes, JSON logs) sends the emails of six changes;
    its output holds each as a readable block, and no log record holds any of them."""
    env = base_env(
        DATABASE_URL=database_url_for_subprocess(),
        REDIS_URL=os.environ["REDIS_URL"],
        SITE_URL="http://tasks.test",
        LOG_FORMAT="json",
    )
    with celery_worker(env=env, concurrency=2) as worker:
        tasks = [
            services.task_create(actor=ana, data={"title": f"Café {n}", "assignee_id": bob.pk})
            for n in range(6)
        ]
        deadline = time.monotonic() + 30
        while worker.log().count(END) < 12:
            assert time.monotonic() < deadline, f"12 emails not printed:\n{worker.log()}"
            time.sleep(0.1)
        log = worker.log()

    expected = [
        [
            f"To: {user.email}",
            f"Subject: Task “Café {n}” has been created",
            "Also sent as: text/html",
            "",
            f"Hello {user.username},",
            "",
            f"Task “Café {n}” has been created by ana.",
            "",
            "Status: To do",
            "Due: no due date",
            "",
            f"Open it: http://tasks.test/?task={task.body['id']}",
        ]
        for n, task in enumerate(tasks)
        for user in (ana, bob)
    ]
    assert sorted(email_blocks(log)) == sorted(expected)
    assert "celery.redirected" not in log
    records = []
    for line in log.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    assert any(record.get("logger") == "apps.tasks.jobs" for record in records)
    assert not [record for record in records if "Hello" in json.dumps(record)]
