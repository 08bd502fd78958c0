"""The browser page at GET /, end to end: a real daphne serving the page, API and stream, a
real Celery worker publishing the events, and Debian's Chromium driven by Playwright, with
one browser context per person."""

import asyncio
import os
import re
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db.models import Max
from playwright.async_api import Browser, Page, WebSocketRoute, async_playwright, expect

from apps.tasks.models import StreamEntry, Task
from apps.tests.conftest import PASSWORD, auth
from apps.tests.processes import (
    base_env,
    celery_worker,
    daphne_server,
    database_url_for_subprocess,
    live_relay,
)

pytestmark = pytest.mark.django_db(transaction=True)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# How long to wait for something to arrive through the worker and the stream.
LIVE_TIMEOUT_MS = 20_000
SCREENSHOT = Path("/tmp/taskhub-page.png")


# --- Processes --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(django_db_setup):
    """The base URL of daphne serving the product, with the relay publishing events and a
    Celery worker; all on the test database and the test Redis, for every test of this module."""
    env = base_env(DATABASE_URL=database_url_for_subprocess(), REDIS_URL=os.environ["REDIS_URL"])
    with (
        celery_worker(env=env, concurrency=1),
        live_relay(env=env),
        daphne_server(env=env) as base_url,
    ):
        yield base_url


@pytest.fixture(scope="module")
def chromium() -> Path:
    """Debian's Chromium: its absence fails the tests (they must not pass by skipping)."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"The browser tests need Debian's Chromium at {CHROMIUM}, which is missing "
            "(apt-get install chromium).",
            pytrace=False,
        )
    return CHROMIUM


@pytest.fixture
async def browser(chromium: Path):
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        await browser.close()


@pytest.fixture
async def open_page(browser: Browser, site: str):
    """Opens the page in a fresh browser context (a person of their own). Uncaught
    script errors and Content-Security-Policy violations on any of the pages fail the
    test."""
    contexts, errors = [], []

    async def open_() -> Page:
        context = await browser.new_context(base_url=site, viewport={"width": 1280, "height": 860})
        contexts.append(context)
        page = await context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        # A Content-Security-Policy violation is reported on the console, not thrown.
        page.on(
            "console",
            lambda message: (
                "Content Security Policy" in message.text and errors.append(message.text)
            ),
        )
        await page.goto("/")
        return page

    yield open_
    for context in contexts:
        await context.close()
    assert not errors, f"script errors or policy violations on the page: {errors}"


@pytest.fixture
def person(make_user):
    """A user who can sign in through daphne, whose (default) hashers cannot check the
    tests' cheap MD5 hashes: the password gets a PBKDF2 hash of few iterations."""

    def make(username: str):
        user = make_user(username)
        hasher = PBKDF2PasswordHasher()
        user.password = hasher.encode(PASSWORD, hasher.salt(), iterations=1_000)
        user.save(update_fields=["password"])
        return user

    return make


# --- Steps ------------------------------------------------------------------------------------


async def sign_in(page: Page, username: str, password: str = PASSWORD) -> None:
    form = page.locator("#login-form")
    await form.get_by_label("Username or email").fill(username)
    await form.get_by_label("Password").fill(password)
    await form.get_by_role("button", name="Sign in").click()


async def sign_in_and_wait_live(page: Page, username: str) -> None:
    await sign_in(page, username)
    await expect(page.locator("#connection")).to_have_text("Live", timeout=LIVE_TIMEOUT_MS)
    await expect(page.locator("#list-message")).not_to_have_text("Loading tasks…")


def task_row(page: Page, title: str):
    return page.locator("li.task").filter(has=page.get_by_role("heading", name=title, exact=True))


def highlighted(page: Page, row):
    """The row while it is highlighted: only a live event does that, never a list load."""
    return row.and_(page.locator(".changed"))


async def create_task_via_api(site: str, creator, **body) -> dict:
    headers = await sync_to_async(auth)(creator)
    async with httpx.AsyncClient(base_url=site) as client:
        response = await client.post("/api/v1/tasks/", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def mark_document(page: Page) -> None:
    """Mark the loaded document, so that a test can tell it was not reloaded since."""
    await page.evaluate("window.__notReloaded = true")


async def assert_not_reloaded(page: Page) -> None:
    assert await page.evaluate("window.__notReloaded === true"), "the page was reloaded"


# --- Tests ------------------------------------------------------------------------------------


async def test_wrong_password_shows_the_problem_detail(open_page, person):
    await sync_to_async(person)("ana")
    page = await open_page()

    await sign_in(page, "ana", "not-the-password")

    problem = page.locator("#login-form .problem")
    await expect(problem).to_be_visible()
    await expect(problem).to_contain_text("Unauthorized")
    await expect(problem).to_contain_text("No active account found with the given credentials.")
    await expect(page.locator("#app-view")).to_be_hidden()


async def test_signed_in_page_shows_live_connection_state(open_page, person):
    ana = await sync_to_async(person)("ana")
    page = await open_page()

    await sign_in(page, "ana")

    status = page.locator("#connection")
    await expect(status).to_have_text("Live", timeout=LIVE_TIMEOUT_MS)
    await expect(status).to_have_attribute("role", "status")
    await expect(status).to_have_attribute("aria-live", "polite")
    await expect(page.locator("#me-id")).to_have_text(str(ana.pk))


async def test_task_assigned_by_one_user_appears_live_for_the_assignee(open_page, person):
    await sync_to_async(person)("ana")
    bob = await sync_to_async(person)("bob")
    ana_page, bob_page = await open_page(), await open_page()
    await sign_in_and_wait_live(ana_page, "ana")
    await sign_in_and_wait_live(bob_page, "bob")
    await mark_document(bob_page)

    form = ana_page.locator("#create-form")
    await form.get_by_label("Title").fill("Prepare the release notes")
    await form.get_by_label("Description").fill("Everything since 1.4, <b>grouped</b> by area.")
    await form.get_by_label("Priority").select_option("high")
    await form.get_by_label("Assignee user id").fill(str(bob.pk))
    await form.get_by_role("button", name="Create task").click()

    row = task_row(bob_page, "Prepare the release notes")
    await expect(highlighted(bob_page, row)).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    await expect(row).to_contain_text("Everything since 1.4, <b>grouped</b> by area.")
    await expect(row).to_contain_text("Created by ana")
    await expect(row).to_contain_text("Assigned to you")
    await expect(row.get_by_label("Status")).to_have_value("todo")
    await assert_not_reloaded(bob_page)


async def test_status_change_by_the_assignee_appears_live_for_the_creator(open_page, person, site):
    ana, bob = await sync_to_async(person)("ana"), await sync_to_async(person)("bob")
    await create_task_via_api(site, ana, title="Renew the TLS certificate", assignee=bob.pk)
    ana_page, bob_page = await open_page(), await open_page()
    await sign_in_and_wait_live(ana_page, "ana")
    await sign_in_and_wait_live(bob_page, "bob")
    await mark_document(ana_page)
    ana_row = task_row(ana_page, "Renew the TLS certificate")
    await expect(ana_row.get_by_label("Status")).to_have_value("todo")

    bob_row = task_row(bob_page, "Renew the TLS certificate")
    await bob_row.get_by_label("Status").select_option("in_progress")

    await expect(highlighted(ana_page, ana_row)).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    await expect(ana_row.get_by_label("Status")).to_have_value("in_progress")
    await assert_not_reloaded(ana_page)
    await ana_page.screenshot(path=str(SCREENSHOT), full_page=True)


async def test_stale_inline_edit_shows_the_current_task_and_says_so(open_page, person, site):
    ana = await sync_to_async(person)("ana")
    task = await create_task_via_api(site, ana, title="Book the venue", priority="low")
    page = await open_page()
    await sign_in_and_wait_live(page, "ana")
    row = task_row(page, "Book the venue")
    await expect(row.get_by_label("Priority")).to_have_value("low")
    # A change the page has not heard of (written around the services, so no event).
    await Task.objects.filter(pk=task["id"]).aupdate(title="Book the bigger venue", version=2)

    await row.get_by_label("Priority").select_option("urgent")

    current = task_row(page, "Book the bigger venue")
    await expect(current.locator(".row-message")).to_contain_text("Someone else changed this task")
    await expect(current.get_by_label("Priority")).to_have_value("low")
    await expect(page.locator("#notice")).to_contain_text("not saved")


async def test_invalid_assignee_shows_the_field_error_next_to_the_input(open_page, person):
    await sync_to_async(person)("ana")
    page = await open_page()
    await sign_in_and_wait_live(page, "ana")

    form = page.locator("#create-form")
    await form.get_by_label("Title").fill("Water the plants")
    await form.get_by_label("Assignee user id").fill("987654")
    await form.get_by_role("button", name="Create task").click()

    await expect(form.locator(".problem")).to_contain_text("Invalid input in: assignee.")
    await expect(form.locator("#create-assignee-error")).to_have_text(
        "No active user with id 987654."
    )
    await expect(form.get_by_label("Assignee user id")).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("li.task")).to_have_count(0)


async def test_new_person_registers_through_the_page_and_is_signed_in(open_page):
    page = await open_page()
    username = f"cy-{uuid.uuid4().hex[:6]}"

    await page.get_by_role("button", name="Create an account").click()
    form = page.locator("#register-form")
    await form.get_by_label("Username").fill(username)
    await form.get_by_label("Email").fill(f"{username}@example.com")
    await form.get_by_label("Password").fill("a-Strong-passw0rd")
    await form.get_by_role("button", name="Create account").click()

    await expect(page.locator("#me-name")).to_have_text(username, timeout=LIVE_TIMEOUT_MS)
    await expect(page.locator("#connection")).to_have_text("Live", timeout=LIVE_TIMEOUT_MS)


async def test_stream_closed_4401_refreshes_token_and_resumes_after_last_seq(
    open_page, person, site
):
    """On 4401 (the server's close when the access token expires) the page takes a fresh
    token and reconnects with ?after=<last seq>, so what happened meanwhile still arrives."""
    ana = await sync_to_async(person)("ana")
    page = await open_page()
    sockets, reconnecting, reconnect_may_proceed = [], asyncio.Event(), asyncio.Event()

    async def through_to_the_server(socket: WebSocketRoute) -> None:
        sockets.append(socket)
        if len(sockets) > 1:
            reconnecting.set()
            await reconnect_may_proceed.wait()  # hold the reconnect: events happen meanwhile
        socket.connect_to_server()

    await page.route_web_socket(re.compile(r"/ws/tasks/"), through_to_the_server)
    refreshes = []
    page.on("request", lambda r: refreshes.append(r) if "/auth/refresh/" in r.url else None)
    await sign_in_and_wait_live(page, "ana")
    await create_task_via_api(site, ana, title="Seen live")
    await expect(task_row(page, "Seen live")).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    seen_seq = (await StreamEntry.objects.filter(user=ana).aaggregate(last=Max("seq")))["last"]

    await sockets[0].close(code=4401, reason="The access token expired.")
    await expect(page.locator("#connection")).to_have_text("Reconnecting…")
    await create_task_via_api(site, ana, title="Missed while away")
    await asyncio.wait_for(reconnecting.wait(), LIVE_TIMEOUT_MS / 1000)
    reconnect_may_proceed.set()

    missed = task_row(page, "Missed while away")
    await expect(highlighted(page, missed)).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    await expect(page.locator("#connection")).to_have_text("Live")
    assert parse_qs(urlsplit(sockets[1].url).query) == {"after": [str(seen_seq)]}
    assert refreshes, "the page reconnected without refreshing its access token"


async def test_load_more_brings_the_next_page_of_tasks(open_page, person):
    ana = await sync_to_async(person)("ana")
    await Task.objects.abulk_create(
        Task(title=f"Chore {number:02}", created_by=ana) for number in range(1, 56)
    )
    page = await open_page()
    await sign_in_and_wait_live(page, "ana")
    await expect(page.locator("li.task")).to_have_count(50)

    await page.get_by_role("button", name="Load more").click()

    await expect(page.locator("li.task")).to_have_count(55)
    await expect(page.get_by_role("button", name="Load more")).to_be_hidden()


async def test_status_filter_lists_only_tasks_with_that_status(open_page, person):
    ana = await sync_to_async(person)("ana")
    await Task.objects.abulk_create(
        [
            Task(title="Still to do", created_by=ana),
            Task(title="Already done", status="done", created_by=ana),
        ]
    )
    page = await open_page()
    await sign_in_and_wait_live(page, "ana")
    await expect(page.locator("li.task")).to_have_count(2)

    await page.get_by_label("Show").select_option("done")

    await expect(page.locator("li.task")).to_have_count(1)
    await expect(task_row(page, "Already done")).to_be_visible()


async def test_archive_takes_the_task_off_the_list_and_undo_restores_it(open_page, person, site):
    ana = await sync_to_async(person)("ana")
    await create_task_via_api(site, ana, title="Old idea")
    page = await open_page()
    await sign_in_and_wait_live(page, "ana")
    row = task_row(page, "Old idea")

    await row.get_by_role("button", name="Archive").click()

    await expect(row).to_have_count(0)
    notice = page.locator("#notice")
    await expect(notice).to_contain_text("Archived “Old idea”.")
    await notice.get_by_role("button", name="Undo").click()
    await expect(row).to_be_visible()
    await expect(page.locator("#notice")).to_contain_text("Restored “Old idea”.")


async def test_the_page_runs_under_a_policy_that_refuses_inline_script(browser, site):
    """The page is served with a Content-Security-Policy without 'unsafe-inline' for
    scripts, and the browser enforces it: an inline script injected into the page does
    not run, and the browser reports the violation. (A context of its own: `open_page`
    fails a test on any violation.)"""
    context = await browser.new_context(base_url=site)
    try:
        page = await context.new_page()
        violations = []
        page.on("console", lambda message: violations.append(message.text))
        response = await page.goto("/")
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy, policy
        ran = await page.evaluate(
            """() => {
                window.inlineRan = false;
                const script = document.createElement("script");
                script.textContent = "window.inlineRan = true";
                document.head.append(script);
                return window.inlineRan;
            }"""
        )
        assert ran is False
        assert any("Content Security Policy" in text for text in violations), violations
    finally:
        await context.close()
