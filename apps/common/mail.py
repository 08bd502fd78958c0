"""The development email backend: each email printed as one block a person can read.

Django's console backend prints the raw MIME message: encoded subjects, multipart
boundaries, and bodies in base64 or quoted-printable. This one prints who it is for, the
subject and the plain-text body, between a start and an end line. Each block goes out in
one write under a lock, so the emails that a process's threads send never interleave, and
in a single os.write where the stream has a file descriptor, so that processes sharing a
pipe (a Celery worker's pool) or a file do not split each other's blocks either (a pipe
keeps a write whole up to PIPE_BUF, 4 KiB on Linux).

It prints to stdout, not through logging, so that LOG_FORMAT=json logs never hold an
email body; the Celery worker leaves stdout as it is (CELERY_WORKER_REDIRECT_STDOUTS).
"""

import os
import sys
import threading

from django.core.mail.backends.base import BaseEmailBackend

START = "----- email " + "-" * 58
END = "----- end of email " + "-" * 51

_write_lock = threading.Lock()


class ConsoleEmailBackend(BaseEmailBackend):
    """Print each email as To, Subject and its text body; `stream` defaults to the
    process's stdout at the time of sending."""

    def __init__(self, *args, stream=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.stream = stream

    def send_messages(self, email_messages) -> int:
        """Print every message of `email_messages` in one write; return how many."""
        if not email_messages:
            return 0
        try:
            text = "".join(readable_block(message) for message in email_messages)
            with _write_lock:
                write_at_once(self.stream or sys.stdout, text)
        except Exception:
            if not self.fail_silently:
                raise
            return 0
        return len(email_messages)


def readable_block(message) -> str:
    """The email as a person reads it: recipients, subject, text body; the parts it does
    not show (an HTML version, attachments) named in one line each."""
    lines = [START, f"To: {', '.join(message.to)}"]
    if message.cc:
        lines.append(f"Cc: {', '.join(message.cc)}")
    if message.bcc:
        lines.append(f"Bcc: {', '.join(message.bcc)}")
    lines.append(f"Subject: {message.subject}")
    body, shown = _text_body(message)
    for content, mimetype in getattr(message, "alternatives", []):
        if content is not shown:
            lines.append(f"Also sent as: {mimetype}")
    for attachment in message.attachments:
        filename = getattr(attachment, "filename", None)
        if filename is None:  # a MIMEBase part
            filename = attachment.get_filename()
        lines.append(f"Attached: {filename or 'a file without a name'}")
    lines += ["", body.rstrip("\n"), END]
    return "\n".join(lines) + "\n"


def _text_body(message) -> tuple[str, object]:
    """The body to show and the content it came from: the plain text, wherever it is;
    a message that has none (HTML only) shows its body as it is."""
    if message.content_subtype == "plain":
        return message.body, message.body
    for content, mimetype in getattr(message, "alternatives", []):
        if mimetype == "text/plain":
            return content, content
    return message.body, message.body


def write_at_once(stream, text: str) -> None:
    """Write `text` to `stream` after what it holds already: in one os.write of its file
    descriptor if it has one (repeated only if the kernel takes part of it), else with one
    write and a flush."""
    stream.flush()
    try:
        descriptor = stream.fileno()
    except (AttributeError, OSError, ValueError):  # StringIO, pytest's capture
        descriptor = None
    if not isinstance(descriptor, int):
        stream.write(text)
        stream.flush()
        return
    data = memoryview(text.encode(getattr(stream, "encoding", None) or "utf-8", "backslashreplace"))
    while data:
        data = data[os.write(descriptor, data) :]
