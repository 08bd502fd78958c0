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
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    ViewportSize,
    WebSocketRoute,
    async_playwright,
    expect,
)

from apps.tasks.models import Comment, Membership, StreamEntry, Task
from apps.tests.conftest import PASSWORD, auth
from apps.tests.processes import (
    base_env,
    celery_worker,
    daphne_server,
    database_url_for_subprocess,
    live_relay,
)
from apps.users.models import User

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

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
PROJECT_SCREENSHOTS = {1280: Path("/tmp/taskhub-project.png"), 360: Path("/tmp/taskhub-phone.png")}


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
    contexts: list[BrowserContext] = []
    errors: list[str] = []

    def report_csp_violation(message: ConsoleMessage) -> None:
        # A Content-Security-Policy violation is reported on the console, not thrown.
        if "Content Security Policy" in message.text:
            errors.append(message.text)

    async def open_(path: str = "/", *, viewport: ViewportSize | None = None) -> Page:
        context = await browser.new_context(
            base_url=site, viewport=viewport or {"width": 1280, "height": 860}
        )
        contexts.append(context)
        page = await context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", report_csp_violation)
        await page.goto(path)
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


async def same_row(page: Page, row):
    """The row by its task's id: it stays found while its title is being edited (the
    heading is then replaced by the editor)."""
    return page.locator(f'li.task[data-id="{await row.get_attribute("data-id")}"]')


def highlighted(page: Page, row):
    """The row while it is highlighted: only a live event does that, never a list load."""
    return row.and_(page.locator(".changed"))


async def create_task_via_api(site: str, creator, **body) -> dict:
    headers = await sync_to_async(auth)(creator)
    async with httpx.AsyncClient(base_url=site) as client:
        response = await client.post("/api/v1/tasks/", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def change_task_via_api(site: str, actor, task_id: str, action: str = "", **body) -> dict:
    """PATCH the task (or POST to one of its actions, such as `archive/`) as `actor`."""
    headers = await sync_to_async(auth)(actor)
    async with httpx.AsyncClient(base_url=site) as client:
        if action:
            response = await client.post(f"/api/v1/tasks/{task_id}/{action}", headers=headers)
        else:
            response = await client.patch(f"/api/v1/tasks/{task_id}/", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def call_api_as(site: str, actor, method: str, path: str, **body) -> dict | None:
    """Call the API as `actor` (a JSON body when given); fails on an error answer."""
    headers = await sync_to_async(auth)(actor)
    async with httpx.AsyncClient(base_url=site) as client:
        response = await client.request(
            method, f"/api/v1/{path}", json=body or None, headers=headers
        )
    assert response.is_success, response.text
    return response.json() if response.content else None


async def pick_person(scope, label: str, query: str, username: str) -> None:
    """Type the start of a name into a person picker and pick `username` from its list."""
    await scope.get_by_label(label).fill(query)
    people = scope.get_by_role("listbox", name="People")
    await people.get_by_role("option", name=username, exact=True).click()


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
    await expect(page.locator("#me-name")).to_have_text(ana.username)


async def test_task_assigned_by_name_appears_live_for_the_assignee(open_page, person):
    await sync_to_async(person)("ana")
    await sync_to_async(person)("bob")
    ana_page, bob_page = await open_page(), await open_page()
    await sign_in_and_wait_live(ana_page, "ana")
    await sign_in_and_wait_live(bob_page, "bob")
    await mark_document(bob_page)

    form = ana_page.locator("#create-form")
    await form.get_by_label("Title").fill("Prepare the release notes")
    await form.get_by_label("Description").fill("Everything since 1.4, <b>grouped</b> by area.")
    await form.get_by_label("Priority").select_option("high")
    await form.get_by_label("Assignee").fill("b")
    await expect(form.locator(".picker-status")).to_have_text(
        "Type at least 2 letters of a username or email."
    )
    await expect(form.locator(".picker-option")).to_have_count(0)
    await form.get_by_label("Assignee").fill("bo")
    people = form.get_by_role("listbox", name="People")
    await expect(people.get_by_role("option", name="bob", exact=True)).to_be_visible()
    await form.get_by_label("Assignee").press("Enter")
    await expect(form.get_by_label("Assignee")).to_have_value("bob")
    await expect(people).to_be_hidden()
    await expect(ana_page.locator("li.task")).to_have_count(0)  # Enter picked, not submitted
    await form.get_by_role("button", name="Create task").click()

    row = task_row(bob_page, "Prepare the release notes")
    await expect(highlighted(bob_page, row)).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    await expect(row).to_contain_text("Everything since 1.4, <b>grouped</b> by area.")
    await expect(row).to_contain_text("Created by ana")
    await expect(row).to_contain_text("Assigned to you")
    await expect(row.get_by_label("Status")).to_have_value("todo")
    await assert_not_reloaded(bob_page)
    ana_row = task_row(ana_page, "Prepare the release notes")
    await expect(ana_row.locator(".task-meta")).to_contain_text("Assigned to bob")
    await expect(ana_row.get_by_label("Assignee")).to_have_value("bob")


async def test_reassigning_and_unassigning_by_name_appear_live(open_page, person, site):
    ana, bob = await sync_to_async(person)("ana"), await sync_to_async(person)("bob")
    await sync_to_async(person)("carol")
    await create_task_via_api(site, ana, title="Order the stickers", assignee=bob.pk)
    ana_page, bob_page, carol_page = await open_page(), await open_page(), await open_page()
    await sign_in_and_wait_live(ana_page, "ana")
    await sign_in_and_wait_live(bob_page, "bob")
    await sign_in_and_wait_live(carol_page, "carol")
    ana_row = task_row(ana_page, "Order the stickers")
    await expect(ana_row.locator(".task-meta")).to_contain_text("Assigned to bob")
    await expect(task_row(bob_page, "Order the stickers")).to_be_visible()

    await pick_person(ana_row, "Assignee", "ca", "carol")

    carol_row = task_row(carol_page, "Order the stickers")
    await expect(highlighted(carol_page, carol_row)).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    await expect(carol_row).to_contain_text("Assigned to you")
    await expect(task_row(bob_page, "Order the stickers")).to_have_count(0, timeout=LIVE_TIMEOUT_MS)
    await expect(ana_row.locator(".task-meta")).to_contain_text("Assigned to carol")

    await ana_row.get_by_role("button", name="Unassign").click()

    await expect(carol_row).to_have_count(0, timeout=LIVE_TIMEOUT_MS)
    await expect(ana_row.locator(".task-meta")).not_to_contain_text("Assigned to")
    await expect(ana_row.get_by_label("Assignee")).to_have_value("")
    await expect(ana_row.get_by_role("button", name="Unassign")).to_be_hidden()
    task = await Task.objects.aget(title="Order the stickers")
    assert task.assignee_id is None


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


async def test_assignee_gone_inactive_shows_the_field_error_next_to_the_picker(open_page, person):
    await sync_to_async(person)("ana")
    bob = await sync_to_async(person)("bob")
    page = await open_page()
    await sign_in_and_wait_live(page, "ana")
    form = page.locator("#create-form")
    await form.get_by_label("Title").fill("Water the plants")
    await pick_person(form, "Assignee", "bo", "bob")
    # Picked, then deactivated before the form is sent: the API's answer is shown.
    await User.objects.filter(pk=bob.pk).aupdate(is_active=False)

    await form.get_by_role("button", name="Create task").click()

    await expect(form.locator(".problem")).to_contain_text("Invalid input in: assignee.")
    await expect(form.locator("#create-assignee-error")).to_have_text(
        f"No active user with id {bob.pk}."
    )
    await expect(form.get_by_label("Assignee")).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("li.task")).to_have_count(0)


async def test_a_name_typed_but_matching_no_one_is_not_sent(open_page, person):
    await sync_to_async(person)("ana")
    page = await open_page()
    await sign_in_and_wait_live(page, "ana")
    form = page.locator("#create-form")
    await form.get_by_label("Title").fill("Water the plants")
    await form.get_by_label("Assignee").fill("zoe")
    await expect(form.locator(".picker-status")).to_have_text("No one found for “zoe”.")

    await form.get_by_role("button", name="Create task").click()

    await expect(form.locator("#create-assignee-error")).to_contain_text(
        "Pick a person from the list"
    )
    await expect(page.locator("li.task")).to_have_count(0)
    assert not await Task.objects.aexists()


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
        assert "script-src 'self'" in policy, policy
        assert "unsafe-inline" not in policy, policy
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


async def test_title_and_description_edited_in_place_appear_live(open_page, person, site):
    ana, bob = await sync_to_async(person)("ana"), await sync_to_async(person)("bob")
    await create_task_via_api(
        site, ana, title="Draft the agenda", description="Three items", assignee=bob.pk
    )
    ana_page, bob_page = await open_page(), await open_page()
    await sign_in_and_wait_live(ana_page, "ana")
    await sign_in_and_wait_live(bob_page, "bob")
    await mark_document(bob_page)
    row = await same_row(ana_page, task_row(ana_page, "Draft the agenda"))

    await row.get_by_role("button", name="Edit").click()
    editor = row.locator(".task-editor")
    await expect(editor.get_by_label("Title", exact=True)).to_be_focused()
    await editor.get_by_label("Title", exact=True).fill("Draft the agenda for Monday")
    await editor.get_by_label("Description", exact=True).fill("Four items,\nthe last one new")
    await editor.get_by_role("button", name="Save").click()

    bob_row = task_row(bob_page, "Draft the agenda for Monday")
    await expect(highlighted(bob_page, bob_row)).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    await expect(bob_row.locator(".task-description")).to_have_text("Four items,\nthe last one new")
    await expect(task_row(bob_page, "Draft the agenda")).to_have_count(0)
    await assert_not_reloaded(bob_page)
    ana_row = task_row(ana_page, "Draft the agenda for Monday")
    await expect(ana_row.locator(".task-editor")).to_be_hidden()
    await expect(ana_row.get_by_role("button", name="Edit")).to_be_focused()
    task = await Task.objects.aget(pk=(await ana_row.get_attribute("data-id")))
    assert (task.title, task.description, task.version) == (
        "Draft the agenda for Monday",
        "Four items,\nthe last one new",
        2,
    )


async def test_assignee_edits_the_description_but_not_the_title(open_page, person, site):
    ana, bob = await sync_to_async(person)("ana"), await sync_to_async(person)("bob")
    await create_task_via_api(site, ana, title="Check the stock", assignee=bob.pk)
    ana_page, bob_page = await open_page(), await open_page()
    await sign_in_and_wait_live(ana_page, "ana")
    await sign_in_and_wait_live(bob_page, "bob")
    bob_row = await same_row(bob_page, task_row(bob_page, "Check the stock"))

    await bob_row.get_by_role("button", name="Edit").click()
    editor = bob_row.locator(".task-editor")
    await expect(editor.get_by_label("Title", exact=True)).to_be_disabled()
    await expect(editor.get_by_label("Description", exact=True)).to_be_focused()
    await editor.get_by_label("Description", exact=True).fill("Two boxes left")
    await editor.get_by_role("button", name="Save").click()

    ana_row = task_row(ana_page, "Check the stock")
    await expect(highlighted(ana_page, ana_row)).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    await expect(ana_row.locator(".task-description")).to_have_text("Two boxes left")
    await expect(editor).to_be_hidden()
    await expect(bob_row.locator(".row-message")).to_be_hidden()


async def test_stale_title_edit_shows_the_current_task_and_says_so(open_page, person, site):
    ana = await sync_to_async(person)("ana")
    task = await create_task_via_api(site, ana, title="Plan the trip", description="By train")
    page = await open_page()
    await sign_in_and_wait_live(page, "ana")
    row = await same_row(page, task_row(page, "Plan the trip"))
    await row.get_by_role("button", name="Edit").click()
    await row.get_by_label("Title", exact=True).fill("Plan the summer trip")
    # A change the page has not heard of (written around the services, so no event).
    await Task.objects.filter(pk=task["id"]).aupdate(description="By plane", version=2)

    await row.get_by_role("button", name="Save").click()

    current = task_row(page, "Plan the trip")
    await expect(current.locator(".row-message")).to_contain_text(
        "Someone else changed this task meanwhile, so your change was not saved."
    )
    await expect(current.locator(".task-editor")).to_be_hidden()
    await expect(current.locator(".task-title")).to_have_text("Plan the trip")
    await expect(current.locator(".task-description")).to_have_text("By plane")
    await expect(page.locator("#notice")).to_contain_text("not saved")
    assert (await Task.objects.aget(pk=task["id"])).title == "Plan the trip"


async def test_due_date_set_and_cleared_appear_live(open_page, person, site):
    ana, bob = await sync_to_async(person)("ana"), await sync_to_async(person)("bob")
    task = await create_task_via_api(site, ana, title="File the taxes", assignee=bob.pk)
    ana_page, bob_page = await open_page(), await open_page()
    await sign_in_and_wait_live(ana_page, "ana")
    await sign_in_and_wait_live(bob_page, "bob")
    ana_row, bob_row = task_row(ana_page, "File the taxes"), task_row(bob_page, "File the taxes")
    await expect(ana_row.get_by_role("button", name="Clear")).to_be_hidden()

    await ana_row.get_by_label("Due").fill("2031-01-15T09:30")
    await ana_row.get_by_label("Due").press("Enter")

    await expect(bob_row.get_by_label("Due")).to_have_value(
        "2031-01-15T09:30", timeout=LIVE_TIMEOUT_MS
    )
    await expect(bob_row.get_by_label("Due")).to_be_disabled()  # the assignee may not
    saved = await Task.objects.aget(pk=task["id"])
    assert saved.due_at is not None
    await expect(bob_row.get_by_role("button", name="Clear")).to_be_hidden()

    await ana_row.get_by_role("button", name="Clear due date").click()

    await expect(bob_row.get_by_label("Due")).to_have_value("", timeout=LIVE_TIMEOUT_MS)
    await expect(ana_row.get_by_label("Due")).to_have_value("")
    await expect(ana_row.get_by_role("button", name="Clear")).to_be_hidden()
    assert (await Task.objects.aget(pk=task["id"])).due_at is None


async def test_archived_tasks_are_listed_and_restored_live(open_page, person, site):
    ana = await sync_to_async(person)("ana")
    old = await create_task_via_api(site, ana, title="Old idea")
    await change_task_via_api(site, ana, old["id"], "archive/")
    await create_task_via_api(site, ana, title="Current idea")
    archive_page, list_page = await open_page(), await open_page()
    await sign_in_and_wait_live(archive_page, "ana")
    await sign_in_and_wait_live(list_page, "ana")
    await expect(task_row(list_page, "Old idea")).to_have_count(0)

    await archive_page.get_by_label("List").select_option("true")

    await expect(archive_page.get_by_role("heading", name="Archived tasks")).to_be_visible()
    archived_row = task_row(archive_page, "Old idea")
    await expect(archived_row).to_be_visible()
    await expect(archive_page.locator("li.task")).to_have_count(1)
    await expect(archived_row.get_by_label("Status")).to_be_disabled()
    await expect(archived_row.get_by_role("button", name="Archive")).to_be_hidden()

    await archived_row.get_by_role("button", name="Restore").click()

    await expect(archived_row).to_have_count(0)
    await expect(archive_page.locator("#notice")).to_contain_text("Restored “Old idea”.")
    await expect(archive_page.locator("#list-message")).to_have_text("No archived tasks.")
    restored = task_row(list_page, "Old idea")
    await expect(highlighted(list_page, restored)).to_be_visible(timeout=LIVE_TIMEOUT_MS)

    # And the other way: archived in one tab, it appears in the other's archived list.
    await task_row(list_page, "Current idea").get_by_role("button", name="Archive").click()
    await expect(highlighted(archive_page, task_row(archive_page, "Current idea"))).to_be_visible(
        timeout=LIVE_TIMEOUT_MS
    )


async def test_history_names_who_changed_what_and_grows_live(open_page, person, site):
    ana, bob = await sync_to_async(person)("ana"), await sync_to_async(person)("bob")
    task = await create_task_via_api(site, ana, title="Fix the gate")
    await change_task_via_api(site, ana, task["id"], status="in_progress", assignee=bob.pk)
    page = await open_page()
    await sign_in_and_wait_live(page, "ana")
    history_button = task_row(page, "Fix the gate").get_by_role("button", name="History")

    await history_button.click()

    dialog = page.get_by_role("dialog", name="History of “Fix the gate”")
    await expect(dialog).to_be_visible()
    entries = dialog.locator(".history-entry")
    await expect(entries).to_have_count(2)
    await expect(entries.nth(0)).to_contain_text("You created the task")
    await expect(entries.nth(1)).to_contain_text("You changed the task")
    await expect(entries.nth(1)).to_contain_text("Status: To do → In progress")
    await expect(entries.nth(1)).to_contain_text("Assignee: nobody → bob")

    await change_task_via_api(site, bob, task["id"], status="done")

    await expect(entries).to_have_count(3, timeout=LIVE_TIMEOUT_MS)
    await expect(entries.nth(2)).to_contain_text("bob changed the task")
    await expect(entries.nth(2)).to_contain_text("Status: In progress → Done")
    await dialog.get_by_role("button", name="Close").click()
    await expect(dialog).to_be_hidden()
    await expect(history_button).to_be_focused()


async def assert_linked(page: Page, row) -> None:
    """The row is the one the link opened: highlighted, in view and focused."""
    await expect(row).to_have_class(re.compile(r"\blinked\b"), timeout=LIVE_TIMEOUT_MS)
    await expect(row).to_have_attribute("aria-current", "true")
    await expect(row).to_be_in_viewport()
    await expect(row).to_be_focused()
    await expect(page.locator("li.linked")).to_have_count(1)


async def test_email_link_opens_the_task_after_sign_in(open_page, person, site):
    """An email's /?task=<id> survives sign-in and opens that task, even when it is older
    than the first page of the list."""
    ana = await sync_to_async(person)("ana")
    linked = await create_task_via_api(site, ana, title="The one from the email")
    await Task.objects.abulk_create(
        Task(title=f"Newer chore {number:02}", created_by=ana) for number in range(1, 61)
    )
    page = await open_page(f"/?task={linked['id']}")
    await expect(page.locator("#auth-message")).to_have_text(
        "Sign in to see the task you were sent a link to."
    )

    await sign_in_and_wait_live(page, "ana")

    row = task_row(page, "The one from the email")
    await assert_linked(page, row)
    await expect(page.get_by_role("button", name="Load more")).to_be_visible()
    assert "task=" not in page.url  # done with: a reload does not jump back to it


async def test_email_link_to_an_archived_task_opens_the_archived_list(open_page, person, site):
    ana = await sync_to_async(person)("ana")
    task = await create_task_via_api(site, ana, title="Archived but linked")
    await create_task_via_api(site, ana, title="Still active")
    await change_task_via_api(site, ana, task["id"], "archive/")
    page = await open_page()
    await sign_in_and_wait_live(page, "ana")

    # Already signed in (the session lives in the tab): the link opens the task at once.
    await page.goto(f"/?task={task['id']}")

    await expect(page.get_by_label("List")).to_have_value("true", timeout=LIVE_TIMEOUT_MS)
    await assert_linked(page, task_row(page, "Archived but linked"))
    await expect(task_row(page, "Still active")).to_have_count(0)


async def test_email_link_to_a_task_not_visible_says_so(open_page, person, site):
    ana = await sync_to_async(person)("ana")
    await sync_to_async(person)("bob")
    task = await create_task_via_api(site, ana, title="Ana's secret")
    page = await open_page(f"/?task={task['id']}")

    await sign_in_and_wait_live(page, "bob")

    await expect(page.locator("#notice")).to_contain_text(
        "The task in your link is not visible to you (signed in as bob): "
        "it was deleted, or it is not shared with you."
    )
    await expect(page.locator("li.task")).to_have_count(0)
    assert "task=" not in page.url


@pytest.mark.parametrize("width", [320, 360, 390])
async def test_phone_layout_has_room_for_the_due_date(open_page, person, site, width):
    ana, bob = await sync_to_async(person)("ana"), await sync_to_async(person)("bob")
    await create_task_via_api(
        site, ana, title="Call the plumber", due_at="2031-12-28T23:45:00Z", assignee=bob.pk
    )
    page = await open_page(viewport={"width": width, "height": 740})
    await sign_in_and_wait_live(page, "ana")
    due = task_row(page, "Call the plumber").get_by_label("Due")
    await expect(due).not_to_have_value("")

    # The width the browser itself gives a date-time input with this value and font.
    widths = await due.evaluate(
        """(input) => {
            const style = getComputedStyle(input);
            const probe = document.createElement("input");
            probe.type = "datetime-local";
            probe.value = input.value;
            for (const name of ["font", "padding", "border", "boxSizing", "letterSpacing"]) {
                probe.style[name] = style[name];
            }
            probe.style.width = "auto";
            document.body.append(probe);
            const needed = probe.getBoundingClientRect().width;
            probe.remove();
            const box = input.getBoundingClientRect();
            const row = input.closest("li.task").getBoundingClientRect();
            return {needed, has: box.width, right: box.right, rowRight: row.right,
                    pageWidth: document.documentElement.scrollWidth, viewport: innerWidth};
        }"""
    )
    assert widths["has"] >= widths["needed"], widths
    assert widths["right"] <= widths["rowRight"], widths
    assert widths["pageWidth"] <= widths["viewport"], widths


# --- Projects and comments --------------------------------------------------------------------


def switcher(page: Page):
    return page.get_by_label("Project", exact=True)


def members_panel(page: Page):
    return page.locator("#members-panel")


async def open_comments(row) -> None:
    await row.get_by_role("button", name="Comments").click()
    await expect(row.locator(".comments")).to_be_visible()
    await expect(row.locator(".comments-message")).not_to_have_text("Loading comments…")


async def test_task_created_in_a_project_appears_live_for_another_member(
    open_page, person, make_project
):
    ana, bob = await sync_to_async(person)("ana"), await sync_to_async(person)("bob")
    project = await sync_to_async(make_project)(ana, name="Launch", members={bob: "member"})
    ana_page = await open_page(f"/?project={project.pk}")
    bob_page = await open_page(f"/?project={project.pk}")
    await sign_in_and_wait_live(ana_page, "ana")
    await sign_in_and_wait_live(bob_page, "bob")
    await mark_document(bob_page)
    await expect(switcher(bob_page)).to_have_value(str(project.pk))

    form = ana_page.locator("#create-form")
    await expect(ana_page.get_by_role("heading", name="New task in “Launch”")).to_be_visible()
    await form.get_by_label("Title").fill("Write the press release")
    await form.get_by_role("button", name="Create task").click()

    row = task_row(bob_page, "Write the press release")
    await expect(highlighted(bob_page, row)).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    await expect(row).to_contain_text("Created by ana")
    await expect(row.get_by_label("Status")).to_be_enabled()  # a member changes it
    await assert_not_reloaded(bob_page)
    task = await Task.objects.aget(title="Write the press release")
    assert task.project_id == project.pk


async def test_member_edit_of_a_project_task_appears_live_for_the_owner(
    open_page, person, make_project, site
):
    ana, bob = await sync_to_async(person)("ana"), await sync_to_async(person)("bob")
    project = await sync_to_async(make_project)(ana, name="Launch", members={bob: "member"})
    await create_task_via_api(site, ana, title="Book the hall", project=str(project.pk))
    ana_page = await open_page(f"/?project={project.pk}")
    bob_page = await open_page(f"/?project={project.pk}")
    await sign_in_and_wait_live(ana_page, "ana")
    await sign_in_and_wait_live(bob_page, "bob")
    await mark_document(ana_page)
    bob_row = await same_row(bob_page, task_row(bob_page, "Book the hall"))

    # Not bob's task, but a member of its project changes every field of it.
    await bob_row.get_by_role("button", name="Edit").click()
    await bob_row.get_by_label("Title", exact=True).fill("Book the big hall")
    await bob_row.get_by_role("button", name="Save").click()
    await bob_row.get_by_label("Priority").select_option("urgent")

    ana_row = task_row(ana_page, "Book the big hall")
    await expect(highlighted(ana_page, ana_row)).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    await expect(ana_row.get_by_label("Priority")).to_have_value("urgent", timeout=LIVE_TIMEOUT_MS)
    await assert_not_reloaded(ana_page)


async def test_comment_appears_live_in_an_open_thread_and_counts_on_a_closed_one(
    open_page, person, make_project, site
):
    ana, bob = await sync_to_async(person)("ana"), await sync_to_async(person)("bob")
    await sync_to_async(person)("carol")
    carol = await User.objects.aget(username="carol")
    project = await sync_to_async(make_project)(
        ana, name="Launch", members={bob: "member", carol: "viewer"}
    )
    await create_task_via_api(site, ana, title="Pick the date", project=str(project.pk))
    ana_page = await open_page(f"/?project={project.pk}")
    bob_page = await open_page(f"/?project={project.pk}")
    carol_page = await open_page(f"/?project={project.pk}")
    for page, name in ((ana_page, "ana"), (bob_page, "bob"), (carol_page, "carol")):
        await sign_in_and_wait_live(page, name)
    bob_row = task_row(bob_page, "Pick the date")
    await open_comments(bob_row)
    await expect(bob_row.locator(".comments-message")).to_have_text("No comments yet.")

    ana_row = task_row(ana_page, "Pick the date")
    await open_comments(ana_row)
    await ana_row.get_by_label("Add a comment").fill("Friday the 12th works for me.")
    await ana_row.get_by_role("button", name="Comment", exact=True).click()

    comment = bob_row.locator("li.comment")
    await expect(comment).to_have_count(1, timeout=LIVE_TIMEOUT_MS)
    await expect(comment).to_contain_text("ana")
    await expect(comment.locator(".comment-body")).to_have_text("Friday the 12th works for me.")
    # Carol has not opened the thread: her row says something new is there.
    carol_count = task_row(carol_page, "Pick the date").locator(".comment-count")
    await expect(carol_count).to_have_text("1 new", timeout=LIVE_TIMEOUT_MS)
    await expect(ana_row.locator("li.comment")).to_have_count(1)  # once, not echoed twice


async def test_member_removed_by_the_owner_loses_the_project_live(
    open_page, person, make_project, site
):
    ana, bob = await sync_to_async(person)("ana"), await sync_to_async(person)("bob")
    project = await sync_to_async(make_project)(ana, name="Launch", members={bob: "member"})
    await create_task_via_api(site, ana, title="Order the banners", project=str(project.pk))
    ana_page = await open_page(f"/?project={project.pk}")
    bob_page = await open_page(f"/?project={project.pk}")
    await sign_in_and_wait_live(ana_page, "ana")
    await sign_in_and_wait_live(bob_page, "bob")
    await mark_document(bob_page)
    await expect(task_row(bob_page, "Order the banners")).to_be_visible()

    await members_panel(ana_page).get_by_role("button", name="Remove bob").click()

    await expect(bob_page.locator("#notice")).to_contain_text(
        "ana removed you from “Launch”.", timeout=LIVE_TIMEOUT_MS
    )
    await expect(switcher(bob_page).locator("option", has_text="Launch")).to_have_count(0)
    await expect(switcher(bob_page)).to_have_value("all")
    await expect(task_row(bob_page, "Order the banners")).to_have_count(0)
    await expect(members_panel(bob_page)).to_be_hidden()
    assert "project=" not in bob_page.url
    await assert_not_reloaded(bob_page)
    await expect(members_panel(ana_page).locator("li.member")).to_have_count(1)


async def test_switcher_lists_personal_and_project_tasks_and_keeps_the_choice(
    open_page, person, make_project, site
):
    ana = await sync_to_async(person)("ana")
    project = await sync_to_async(make_project)(ana, name="Garden")
    await create_task_via_api(site, ana, title="Pay the rent")
    await create_task_via_api(site, ana, title="Plant the roses", project=str(project.pk))
    page = await open_page()
    await sign_in_and_wait_live(page, "ana")
    await expect(page.locator("li.task")).to_have_count(2)  # all my tasks
    await expect(task_row(page, "Plant the roses")).to_contain_text("in Garden")

    await switcher(page).select_option(label="Personal (no project)")

    await expect(page.get_by_role("heading", name="Personal tasks")).to_be_visible()
    await expect(page.locator("li.task")).to_have_count(1)
    await expect(task_row(page, "Pay the rent")).to_be_visible()
    assert parse_qs(urlsplit(page.url).query) == {"project": ["none"]}

    await switcher(page).select_option(label="Garden")

    await expect(page.get_by_role("heading", name="Garden", exact=True)).to_be_visible()
    await expect(page.locator("li.task")).to_have_count(1)
    await expect(task_row(page, "Plant the roses")).to_be_visible()
    assert parse_qs(urlsplit(page.url).query) == {"project": [str(project.pk)]}
    await page.reload()  # the choice is in the URL: a reload (the session is kept) keeps it
    await expect(switcher(page)).to_have_value(str(project.pk), timeout=LIVE_TIMEOUT_MS)
    await expect(task_row(page, "Plant the roses")).to_be_visible()
    await expect(task_row(page, "Pay the rent")).to_have_count(0)


async def test_project_created_on_the_page_is_chosen_and_gets_its_tasks(open_page, person):
    await sync_to_async(person)("ana")
    page = await open_page()
    await sign_in_and_wait_live(page, "ana")

    await page.get_by_role("button", name="New project").click()
    await page.get_by_label("Project name").fill("Kitchen")
    await page.get_by_role("button", name="Create project").click()

    await expect(page.get_by_role("heading", name="New task in “Kitchen”")).to_be_visible()
    await expect(members_panel(page).locator(".member-name")).to_have_text(["ana (you)"])
    await expect(members_panel(page).get_by_label("Role of ana")).to_have_value("owner")
    await page.locator("#create-form").get_by_label("Title").fill("Fix the tap")
    await page.locator("#create-form").get_by_role("button", name="Create task").click()
    await expect(task_row(page, "Fix the tap")).to_be_visible()
    task = await Task.objects.select_related("project").aget(title="Fix the tap")
    assert task.project is not None
    assert task.project.name == "Kitchen"


async def test_project_link_is_kept_through_sign_in(open_page, person, make_project, site):
    ana = await sync_to_async(person)("ana")
    project = await sync_to_async(make_project)(ana, name="Garden")
    await create_task_via_api(site, ana, title="Pay the rent")
    await create_task_via_api(site, ana, title="Plant the roses", project=str(project.pk))
    page = await open_page(f"/?project={project.pk}")
    await expect(page.locator("#auth-message")).to_have_text(
        "Sign in to see the project you were sent a link to."
    )

    await sign_in_and_wait_live(page, "ana")

    await expect(switcher(page)).to_have_value(str(project.pk))
    await expect(page.locator("li.task")).to_have_count(1)
    await expect(task_row(page, "Plant the roses")).to_be_visible()


async def test_project_link_not_visible_says_so(open_page, person, make_project):
    ana = await sync_to_async(person)("ana")
    await sync_to_async(person)("bob")
    project = await sync_to_async(make_project)(ana, name="Secret plans")
    page = await open_page(f"/?project={project.pk}")

    await sign_in_and_wait_live(page, "bob")

    await expect(page.locator("#notice")).to_contain_text(
        "The project in your link is not visible to you (signed in as bob)"
    )
    await expect(switcher(page)).to_have_value("all")
    assert "project=" not in page.url


async def test_owner_adds_a_person_changes_their_role_and_removes_them(
    open_page, person, make_project
):
    ana = await sync_to_async(person)("ana")
    carol = await sync_to_async(person)("carol")
    project = await sync_to_async(make_project)(ana, name="Launch")
    page = await open_page(f"/?project={project.pk}")
    await sign_in_and_wait_live(page, "ana")
    panel = members_panel(page)

    await pick_person(panel, "Add a person", "ca", "carol")
    await panel.get_by_label("Role", exact=True).select_option("viewer")
    await panel.get_by_role("button", name="Add to project").click()

    await expect(panel.get_by_label("Role of carol")).to_have_value("viewer")
    membership = await Membership.objects.aget(project=project, user=carol)
    assert membership.role == "viewer"

    await panel.get_by_label("Role of carol").select_option("member")

    await expect(page.locator("#notice")).to_contain_text("carol is now member.")
    assert (await Membership.objects.aget(project=project, user=carol)).role == "member"

    await panel.get_by_role("button", name="Remove carol").click()

    await expect(panel.locator("li.member")).to_have_count(1)
    assert not await Membership.objects.filter(project=project, user=carol).aexists()


async def test_unknown_person_added_to_a_project_shows_the_field_error(
    open_page, person, make_project
):
    ana = await sync_to_async(person)("ana")
    project = await sync_to_async(make_project)(ana, name="Launch")
    page = await open_page(f"/?project={project.pk}")
    await sign_in_and_wait_live(page, "ana")
    panel = members_panel(page)

    await panel.get_by_label("Add a person").fill("nobody-by-this-name")
    await panel.get_by_role("button", name="Add to project").click()

    await expect(panel.locator("#member-user-error")).to_be_visible()
    await expect(panel.get_by_label("Add a person")).to_have_attribute("aria-invalid", "true")
    await expect(panel.locator("li.member")).to_have_count(1)


async def test_last_owner_demoting_themself_is_refused_and_said_so(open_page, person, make_project):
    ana, bob = await sync_to_async(person)("ana"), await sync_to_async(person)("bob")
    project = await sync_to_async(make_project)(ana, name="Launch", members={bob: "member"})
    page = await open_page(f"/?project={project.pk}")
    await sign_in_and_wait_live(page, "ana")
    panel = members_panel(page)

    await panel.get_by_label("Role of ana").select_option("member")

    problem = panel.locator("#members-problem")
    await expect(problem).to_be_visible()
    await expect(problem).to_contain_text("owner")
    await expect(panel.get_by_label("Role of ana")).to_have_value("owner")
    assert (await Membership.objects.aget(project=project, user=ana)).role == "owner"


async def test_viewer_sees_no_edit_controls_and_no_comment_box(
    open_page, person, make_project, site
):
    ana, bob = await sync_to_async(person)("ana"), await sync_to_async(person)("bob")
    project = await sync_to_async(make_project)(ana, name="Launch", members={bob: "viewer"})
    await create_task_via_api(
        site, ana, title="Rent the stage", project=str(project.pk), due_at="2031-05-01T10:00:00Z"
    )
    page = await open_page(f"/?project={project.pk}")
    await sign_in_and_wait_live(page, "bob")
    row = task_row(page, "Rent the stage")
    await expect(row).to_be_visible()

    await expect(page.locator("#create-form")).to_be_hidden()
    await expect(page.locator("#create-readonly")).to_contain_text("You are a viewer of “Launch”")
    await expect(row.get_by_label("Status")).to_be_hidden()
    await expect(row.get_by_label("Priority")).to_be_hidden()
    await expect(row.get_by_role("button", name="Edit")).to_be_hidden()
    await expect(row.get_by_role("button", name="Archive")).to_be_hidden()
    await expect(row.locator(".task-meta")).to_contain_text("To do")
    await expect(row.locator(".task-meta")).to_contain_text("due ")
    await expect(members_panel(page).get_by_label("Role of ana")).to_have_count(0)
    await expect(members_panel(page).locator("#member-form")).to_be_hidden()

    await open_comments(row)

    await expect(row.get_by_label("Add a comment")).to_be_hidden()
    await expect(row.locator(".comments-readonly")).to_be_visible()


async def test_assignee_picker_of_a_project_task_offers_only_owners_and_members(
    open_page, person, make_project, site
):
    ana, bob = await sync_to_async(person)("ana"), await sync_to_async(person)("bob")
    await sync_to_async(person)("bea")  # not in the project
    vic = await sync_to_async(person)("bev")
    project = await sync_to_async(make_project)(
        ana, name="Launch", members={bob: "member", vic: "viewer"}
    )
    await create_task_via_api(site, ana, title="Print the flyers", project=str(project.pk))
    page = await open_page(f"/?project={project.pk}")
    await sign_in_and_wait_live(page, "ana")
    row = task_row(page, "Print the flyers")

    await row.get_by_label("Assignee").fill("b")
    await row.get_by_label("Assignee").fill("bo")
    people = row.get_by_role("listbox", name="People")
    await expect(people.get_by_role("option")).to_have_text(["bob"])
    await row.get_by_label("Assignee").fill("be")
    await expect(row.locator(".picker-status")).to_have_text("No one found for “be”.")


async def test_comment_thread_adds_edits_and_deletes_own_comments(
    open_page, person, make_project, site
):
    ana, bob = await sync_to_async(person)("ana"), await sync_to_async(person)("bob")
    project = await sync_to_async(make_project)(ana, name="Launch", members={bob: "member"})
    task = await create_task_via_api(site, ana, title="Choose the caterer", project=str(project.pk))
    await call_api_as(site, bob, "POST", f"tasks/{task['id']}/comments/", body="I know one.")
    page = await open_page(f"/?project={project.pk}")
    await sign_in_and_wait_live(page, "ana")
    row = task_row(page, "Choose the caterer")
    await open_comments(row)
    comments = row.locator("li.comment")
    await expect(comments).to_have_count(1)
    await expect(comments.nth(0).get_by_role("button", name="Edit your comment")).to_have_count(0)

    await row.get_by_label("Add a comment").fill("Send me their menu,\nplease.")
    await row.get_by_role("button", name="Comment", exact=True).click()

    await expect(comments).to_have_count(2)
    await expect(comments.nth(1).locator(".comment-body")).to_have_text(
        "Send me their menu,\nplease."
    )
    await expect(row.get_by_label("Add a comment")).to_have_value("")
    await expect(row.locator(".comment-count")).to_have_text("2")

    await comments.nth(1).get_by_role("button", name="Edit your comment").click()
    await comments.nth(1).get_by_label("Edit your comment").fill("Send me their menu.")
    await comments.nth(1).get_by_role("button", name="Save comment").click()

    await expect(comments.nth(1).locator(".comment-body")).to_have_text("Send me their menu.")
    await expect(comments.nth(1).locator(".comment-edited")).to_have_text("edited")
    saved = await Comment.objects.aget(body="Send me their menu.")
    assert saved.edited

    # As the project's owner ana may delete bob's comment too.
    await comments.nth(0).get_by_role("button", name="Delete bob's comment").click()

    await expect(comments).to_have_count(1)
    assert not await Comment.objects.filter(body="I know one.").aexists()


@pytest.mark.parametrize("width", [1280, 360])
async def test_project_page_layout_screenshot(open_page, person, make_project, site, width):
    """The project view (switcher, members, a task with its comments open) fits the
    window: nothing wider than the viewport. The screenshot is for a person to look at."""
    ana, bob = await sync_to_async(person)("ana"), await sync_to_async(person)("bob")
    project = await sync_to_async(make_project)(ana, name="Summer launch", members={bob: "member"})
    task = await create_task_via_api(
        site,
        ana,
        title="Write the press release",
        description="One page, with two quotes.",
        project=str(project.pk),
        assignee=bob.pk,
        due_at="2031-06-01T09:00:00Z",
    )
    await call_api_as(site, bob, "POST", f"tasks/{task['id']}/comments/", body="First draft is up.")
    page = await open_page(f"/?project={project.pk}", viewport={"width": width, "height": 900})
    await sign_in_and_wait_live(page, "ana")
    row = task_row(page, "Write the press release")
    await open_comments(row)
    await expect(row.locator("li.comment")).to_have_count(1)
    await expect(members_panel(page).locator("li.member")).to_have_count(2)

    page_width = await page.evaluate("document.documentElement.scrollWidth")
    await page.screenshot(path=str(PROJECT_SCREENSHOTS[width]), full_page=True)
    assert page_width <= width


async def test_project_renamed_and_archived_by_the_owner_changes_a_members_page_live(
    open_page, person, make_project, site
):
    ana, bob = await sync_to_async(person)("ana"), await sync_to_async(person)("bob")
    project = await sync_to_async(make_project)(ana, name="Launch", members={bob: "member"})
    await create_task_via_api(site, ana, title="Hire the band", project=str(project.pk))
    ana_page = await open_page(f"/?project={project.pk}")
    bob_page = await open_page(f"/?project={project.pk}")
    await sign_in_and_wait_live(ana_page, "ana")
    await sign_in_and_wait_live(bob_page, "bob")
    await mark_document(bob_page)
    panel = members_panel(ana_page)

    await panel.get_by_role("button", name="Rename").click()
    await panel.get_by_label("New name").fill("Autumn launch")
    await panel.get_by_role("button", name="Save name").click()

    option = switcher(bob_page).locator(f'option[value="{project.pk}"]')
    await expect(option).to_have_text("Autumn launch", timeout=LIVE_TIMEOUT_MS)
    await expect(bob_page.get_by_role("heading", name="Autumn launch", exact=True)).to_be_visible()

    await panel.get_by_role("button", name="Archive project").click()

    await expect(option).to_have_text("Autumn launch (archived)", timeout=LIVE_TIMEOUT_MS)
    await expect(bob_page.locator("#create-form")).to_be_hidden()
    await expect(task_row(bob_page, "Hire the band").get_by_label("Status")).to_be_hidden()
    await assert_not_reloaded(bob_page)


async def test_person_added_to_a_project_sees_it_and_its_tasks_appear_live(
    open_page, person, make_project, site
):
    ana = await sync_to_async(person)("ana")
    await sync_to_async(person)("bob")
    project = await sync_to_async(make_project)(ana, name="Launch")
    await create_task_via_api(site, ana, title="Hire the band", project=str(project.pk))
    ana_page = await open_page(f"/?project={project.pk}")
    bob_page = await open_page()
    await sign_in_and_wait_live(ana_page, "ana")
    await sign_in_and_wait_live(bob_page, "bob")
    await mark_document(bob_page)
    await expect(bob_page.locator("li.task")).to_have_count(0)

    panel = members_panel(ana_page)
    await pick_person(panel, "Add a person", "bo", "bob")
    await panel.get_by_role("button", name="Add to project").click()

    await expect(bob_page.locator("#notice")).to_contain_text(
        "ana added you to “Launch” as member.", timeout=LIVE_TIMEOUT_MS
    )
    await expect(switcher(bob_page).locator(f'option[value="{project.pk}"]')).to_have_text("Launch")
    await expect(task_row(bob_page, "Hire the band")).to_be_visible()
    await assert_not_reloaded(bob_page)


async def test_member_who_leaves_after_confirming_loses_the_project(
    open_page, person, make_project
):
    ana, bob = await sync_to_async(person)("ana"), await sync_to_async(person)("bob")
    project = await sync_to_async(make_project)(ana, name="Launch", members={bob: "member"})
    page = await open_page(f"/?project={project.pk}")
    await sign_in_and_wait_live(page, "bob")
    panel = members_panel(page)

    await panel.get_by_role("button", name="Leave project").click()
    await expect(panel.locator("#leave-text")).to_contain_text("Leave “Launch”?")
    assert await Membership.objects.filter(project=project, user=bob).aexists()  # not yet
    await panel.get_by_role("button", name="Leave", exact=True).click()

    await expect(page.locator("#notice")).to_contain_text("You left “Launch”.")
    await expect(switcher(page)).to_have_value("all")
    await expect(switcher(page).locator(f'option[value="{project.pk}"]')).to_have_count(0)
    assert not await Membership.objects.filter(project=project, user=bob).aexists()


async def test_comment_thread_shows_more_comments_on_request(open_page, person, site):
    ana = await sync_to_async(person)("ana")
    task = await create_task_via_api(site, ana, title="Collect the ideas")
    await Comment.objects.abulk_create(
        Comment(task_id=task["id"], author=ana, body=f"Idea {number:02}") for number in range(1, 56)
    )
    page = await open_page()
    await sign_in_and_wait_live(page, "ana")
    row = task_row(page, "Collect the ideas")
    await open_comments(row)
    await expect(row.locator("li.comment")).to_have_count(50)
    await expect(row.locator(".comment-count")).to_have_text("50+")

    await row.get_by_role("button", name="Show more comments").click()

    await expect(row.locator("li.comment")).to_have_count(55)
    await expect(row.get_by_role("button", name="Show more comments")).to_be_hidden()
    await expect(row.locator(".comment-count")).to_have_text("55")
