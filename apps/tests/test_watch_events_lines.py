"""scripts/watch_events.py prints one readable line for every kind of event."""

import importlib.util

from apps.tests.processes import REPO

_spec = importlib.util.spec_from_file_location("watch_events", REPO / "scripts/watch_events.py")
assert _spec is not None
assert _spec.loader is not None
watch_events = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(watch_events)

AT = "2026-12-03T10:00:00Z"
ANA = {"id": 1, "username": "ana"}
PROJECT = {"id": "p-1", "name": "Launch"}


def test_a_member_event_names_the_project_and_the_member():
    line = watch_events.event_line(
        {
            "type": "member.added",
            "seq": 7,
            "at": AT,
            "actor": ANA,
            "project": PROJECT,
            "member": {"user": {"id": 2, "username": "bob"}, "role": "viewer"},
        }
    )
    assert '#7  member.added  p-1 "Launch" member bob (viewer)  by ana' in line


def test_a_comment_event_names_the_task_and_quotes_the_comment():
    line = watch_events.event_line(
        {
            "type": "comment.created",
            "seq": 8,
            "at": AT,
            "actor": ANA,
            "task": {"id": "t-1", "title": "Ship"},
            "comment": {"id": "c-1", "body": "Looks good"},
        }
    )
    assert '#8  comment.created  t-1 "Ship" comment "Looks good"  by ana' in line


def test_a_project_rename_shows_its_changes():
    line = watch_events.event_line(
        {
            "type": "project.updated",
            "seq": 9,
            "at": AT,
            "actor": ANA,
            "project": PROJECT,
            "changes": {"name": ["Old", "Launch"]},
        }
    )
    assert line.endswith('by ana  name: "Old" -> "Launch"'), line
