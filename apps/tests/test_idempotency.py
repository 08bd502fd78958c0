"""POST /api/v1/tasks/ with an Idempotency-Key: a repeat replays, it never creates twice."""

import asyncio
from datetime import timedelta

import pytest
from django.db.models import F

from apps.tasks.models import EventType, IdempotencyRecord, Task, TaskEvent
from apps.tests.conftest import assert_problem, auth

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/v1/tasks/"
BODY = {"title": "Pay the rent", "priority": "high", "metadata": {"month": "May"}}


def keyed(user, key: str) -> dict[str, str]:
    return {**auth(user), "Idempotency-Key": key}


async def created_events() -> int:
    return await TaskEvent.objects.filter(type=EventType.CREATED).acount()


async def test_first_request_with_a_key_creates_the_task(api, ana):
    response = await api.post(URL, json=BODY, headers=keyed(ana, "key-1"))
    assert response.status_code == 201, response.text
    assert "Idempotent-Replayed" not in response.headers
    assert response.json()["title"] == "Pay the rent"


async def test_same_key_and_body_replays_the_first_response(api, ana):
    first = await api.post(URL, json=BODY, headers=keyed(ana, "key-1"))
    again = await api.post(URL, json=BODY, headers=keyed(ana, "key-1"))
    assert again.status_code == 201, again.text
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"


async def test_replay_repeats_location_and_etag(api, ana):
    first = await api.post(URL, json=BODY, headers=keyed(ana, "key-1"))
    again = await api.post(URL, json=BODY, headers=keyed(ana, "key-1"))
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["ETag"] == first.headers["ETag"]


async def test_replay_creates_no_second_task(api, ana):
    for _ in range(3):
        response = await api.post(URL, json=BODY, headers=keyed(ana, "key-1"))
        assert response.status_code == 201
    assert await Task.objects.acount() == 1


async def test_replay_writes_no_second_created_event(api, ana):
    for _ in range(3):
        await api.post(URL, json=BODY, headers=keyed(ana, "key-1"))
    assert await created_events() == 1


async def test_same_body_with_keys_in_another_order_is_a_replay(api, ana):
    first = await api.post(URL, json=BODY, headers=keyed(ana, "key-1"))
    reordered = dict(reversed(list(BODY.items())))
    again = await api.post(URL, json=reordered, headers=keyed(ana, "key-1"))
    assert again.status_code == 201, again.text
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"


async def test_replay_returns_the_first_response_even_after_the_task_changed(api, ana):
    first = await api.post(URL, json=BODY, headers=keyed(ana, "key-1"))
    task_url = first.headers["Location"]
    changed = await api.patch(task_url, json={"title": "Paid"}, headers=auth(ana))
    assert changed.status_code == 200
    again = await api.post(URL, json=BODY, headers=keyed(ana, "key-1"))
    assert again.json() == first.json()


async def test_same_key_with_different_body_is_422(api, ana):
    await api.post(URL, json=BODY, headers=keyed(ana, "key-1"))
    response = await api.post(URL, json={**BODY, "title": "Other"}, headers=keyed(ana, "key-1"))
    assert_problem(response, 422)


async def test_same_key_with_different_body_creates_nothing(api, ana):
    await api.post(URL, json=BODY, headers=keyed(ana, "key-1"))
    await api.post(URL, json={**BODY, "title": "Other"}, headers=keyed(ana, "key-1"))
    assert await Task.objects.acount() == 1
    assert await created_events() == 1


async def test_different_keys_create_different_tasks(api, ana):
    first = await api.post(URL, json=BODY, headers=keyed(ana, "key-1"))
    second = await api.post(URL, json=BODY, headers=keyed(ana, "key-2"))
    assert second.status_code == 201
    assert "Idempotent-Replayed" not in second.headers
    assert second.json()["id"] != first.json()["id"]


async def test_different_users_may_use_the_same_key(api, ana, bob):
    for_ana = await api.post(URL, json=BODY, headers=keyed(ana, "shared-key"))
    for_bob = await api.post(URL, json=BODY, headers=keyed(bob, "shared-key"))
    assert for_bob.status_code == 201, for_bob.text
    assert "Idempotent-Replayed" not in for_bob.headers
    assert for_bob.json()["id"] != for_ana.json()["id"]
    assert for_bob.json()["created_by"]["id"] == bob.pk


async def test_other_users_key_does_not_make_a_different_body_422(api, ana, bob):
    await api.post(URL, json=BODY, headers=keyed(ana, "shared-key"))
    response = await api.post(URL, json={"title": "Bob's"}, headers=keyed(bob, "shared-key"))
    assert response.status_code == 201, response.text


async def test_request_without_key_is_never_replayed(api, ana):
    first = await api.post(URL, json=BODY, headers=auth(ana))
    second = await api.post(URL, json=BODY, headers=auth(ana))
    assert second.json()["id"] != first.json()["id"]


@pytest.mark.parametrize(
    "key",
    [
        b"",
        b"has space",
        b"x" * 256,
        "cl\u00e9".encode(),
        b"tab\there",
    ],
    ids=["empty", "space", "too-long", "non-ascii", "tab"],
)
async def test_invalid_key_is_400(api, ana, key):
    headers = {**auth(ana), "Idempotency-Key": key}
    body = assert_problem(await api.post(URL, json=BODY, headers=headers), 400)
    assert "Idempotency-Key" in body["errors"]
    assert await Task.objects.acount() == 0


async def test_key_of_255_visible_characters_is_accepted(api, ana):
    key = "!~" + "k" * 253
    response = await api.post(URL, json=BODY, headers=keyed(ana, key))
    assert response.status_code == 201, response.text


async def test_key_whose_request_failed_validation_can_be_used_again(api, ana):
    invalid = await api.post(URL, json={"title": ""}, headers=keyed(ana, "key-1"))
    assert_problem(invalid, 400)
    response = await api.post(URL, json=BODY, headers=keyed(ana, "key-1"))
    assert response.status_code == 201, response.text
    assert "Idempotent-Replayed" not in response.headers


async def expire_keys(hours: int = 25) -> None:
    await IdempotencyRecord.objects.aupdate(created_at=F("created_at") - timedelta(hours=hours))


async def test_key_older_than_24_hours_creates_a_new_task(api, ana):
    first = await api.post(URL, json=BODY, headers=keyed(ana, "key-1"))
    await expire_keys()
    again = await api.post(URL, json=BODY, headers=keyed(ana, "key-1"))
    assert again.status_code == 201, again.text
    assert "Idempotent-Replayed" not in again.headers
    assert again.json()["id"] != first.json()["id"]
    assert await Task.objects.acount() == 2


async def test_key_older_than_24_hours_accepts_a_different_body(api, ana):
    await api.post(URL, json=BODY, headers=keyed(ana, "key-1"))
    await expire_keys()
    response = await api.post(URL, json={"title": "Fresh"}, headers=keyed(ana, "key-1"))
    assert response.status_code == 201, response.text
    assert response.json()["title"] == "Fresh"


async def test_reused_expired_key_then_replays_the_new_task(api, ana):
    await api.post(URL, json=BODY, headers=keyed(ana, "key-1"))
    await expire_keys()
    fresh = await api.post(URL, json=BODY, headers=keyed(ana, "key-1"))
    again = await api.post(URL, json=BODY, headers=keyed(ana, "key-1"))
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == fresh.json()["id"]


async def test_key_younger_than_24_hours_still_replays(api, ana):
    first = await api.post(URL, json=BODY, headers=keyed(ana, "key-1"))
    await expire_keys(hours=23)
    again = await api.post(URL, json=BODY, headers=keyed(ana, "key-1"))
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]


async def test_concurrent_requests_with_same_key_create_one_task(api, ana):
    responses = await asyncio.gather(
        api.post(URL, json=BODY, headers=keyed(ana, "race")),
        api.post(URL, json=BODY, headers=keyed(ana, "race")),
    )
    assert [response.status_code for response in responses] == [201, 201], [
        response.text for response in responses
    ]
    assert responses[0].json()["id"] == responses[1].json()["id"]
    assert await Task.objects.acount() == 1
    assert await created_events() == 1


async def test_concurrent_requests_with_same_key_replay_exactly_once(api, ana):
    responses = await asyncio.gather(
        *(api.post(URL, json=BODY, headers=keyed(ana, "race")) for _ in range(5))
    )
    assert all(response.status_code == 201 for response in responses)
    replayed = [response.headers.get("Idempotent-Replayed") for response in responses]
    assert replayed.count("true") == 4
    assert len({response.json()["id"] for response in responses}) == 1
    assert await Task.objects.acount() == 1
