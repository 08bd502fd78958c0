import pytest

from apps.tests.conftest import assert_problem, auth

pytestmark = pytest.mark.django_db(transaction=True)


async def test_create_then_read_task(api, ana):
    created = await api.post("/api/v1/tasks/", json={"title": "Hello"}, headers=auth(ana))
    assert created.status_code == 201, created.text
    task_id = created.json()["id"]
    read = await api.get(f"/api/v1/tasks/{task_id}/", headers=auth(ana))
    assert read.status_code == 200
    assert read.json()["title"] == "Hello"


async def test_list_without_token_is_401(api):
    assert_problem(await api.get("/api/v1/tasks/"), 401)
