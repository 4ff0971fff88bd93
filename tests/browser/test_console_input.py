"""Answering a paused request (`input_required`) from the console, in real headless Chromium
against a real `errand serve`: the question, its expiry and schema on the request page; JSON
checked in the page before sending; the server's 422 shown; the answer resuming the request to
its result; the viewer's disabled (and server-refused) form; the list's distinct badge.

Screenshots land in build/screenshots/ (see tests/support/browser.py); docs/images/console-input.png
is a copy of detail-input-required.png.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import VIEWER_KEY, Console, Pages
from tests.support.browser import PHONE, shot
from tests.support.server import ADMIN_KEY

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def waiting(console: Console, agent: str, message: str, **metadata: Any) -> tuple[str, dict[str, Any]]:
    """A new request of `agent` once it waits on its question: (id, the question)."""
    rid = console.submit(agent, message, **metadata)
    doc = console.wait(rid, lambda d: d["status"] == "input_required")
    return rid, doc["input_request"]


def posts_to_input(page: Any, console: Console) -> list[int]:
    """The statuses of every POST the page makes to an /input route, as they answer."""
    seen: list[int] = []
    page.on(
        "response",
        lambda r: seen.append(r.status) if r.request.method == "POST" and r.url.endswith("/input") else None,
    )
    return seen


def test_answer_a_json_question_from_the_request_page(pages: Pages, console: Console) -> None:
    rid, question = waiting(console, "asker", "from the console", ask_timeout=3600)
    page = pages.signed_in(hash=f"#/requests/{rid}")
    sent = posts_to_input(page, console)
    expect(page.locator(".page-head .badge")).to_have_text("input_required")
    expect(page.locator("#live-progress")).to_contain_text("waiting for input")
    expect(page.locator("#ask-prompt")).to_have_text("What is your name?")
    expect(page.locator("#ask-expires")).to_contain_text("Expires")
    expect(page.locator("#ask-expires")).to_contain_text("(in 59 min")
    page.locator("#ask summary").click()
    expect(page.locator("#ask-schema")).to_contain_text('"required": [')
    field = page.locator("textarea#ask-value")
    expect(field).to_be_enabled()
    shot(page, "detail-input-required")
    # not JSON: refused in the page, nothing sent
    field.fill('{"name": Ada}')
    page.get_by_test_id("send-input").click()
    expect(page.locator("#ask-status")).to_contain_text("not valid JSON")
    assert sent == [] and console.doc(rid)["status"] == "input_required"
    # JSON the schema refuses: the server's 422, with the path it names
    field.fill('{"name": 7}')
    page.get_by_test_id("send-input").click()
    status = page.locator("#ask-status")
    expect(status).to_contain_text("422 INVALID_REQUEST")
    expect(status).to_contain_text("does not match the schema")
    expect(status).to_contain_text("$.name")
    shot(page, "detail-input-422")
    assert sent == [422] and console.doc(rid)["input_request"]["id"] == question["id"]
    # the answer: accepted, and the page follows the request to its result without a reload
    page.evaluate("() => { window.__sameDocument = true; }")
    field.fill('{"name": "Ada"}')
    page.get_by_test_id("send-input").click()
    expect(page.locator(".page-head .badge")).to_have_text("completed", timeout=15_000)
    expect(page.locator("#ask-sent")).to_contain_text(f"Answer to {question['id']} sent")
    expect(page.locator("#ask")).to_have_count(0)  # no question left to answer
    expect(page.locator("#result")).to_contain_text("hello Ada (from the console)")
    expect(page.locator("[data-event=input_required]")).to_contain_text("asks: What is your name?")
    expect(page.locator("[data-event=input_received]")).to_contain_text(question["id"])
    assert page.evaluate("() => window.__sameDocument") is True
    assert sent == [422, 202]
    doc = console.doc(rid)
    assert doc["status"] == "completed" and doc["result"]["text"] == "hello Ada (from the console)"
    assert doc["result"]["inputs"] == [question["id"]] and doc["attempts"] == 2
    expect(page.locator("[data-attempt='2']")).to_contain_text("completed")
    shot(page, "detail-input-answered")


def test_a_free_text_question_takes_a_line_of_text(pages: Pages, console: Console) -> None:
    rid, question = waiting(console, "colour", "report")
    assert question["schema"] is None and question["expires_at"] is None
    page = pages.signed_in(hash=f"#/requests/{rid}", viewport=PHONE)
    expect(page.locator("#ask-prompt")).to_have_text("Which colour should the report be?")
    expect(page.locator("#ask-expires")).to_contain_text("No deadline")
    expect(page.locator("#ask-schema")).to_have_count(0)
    field = page.locator("input#ask-value[type=text]")
    page.get_by_test_id("send-input").click()  # empty: nothing to send
    expect(page.locator("#ask-status")).to_have_text("Write an answer first.")
    shot(page, "detail-input-text-phone")
    field.fill('teal "not JSON"')  # text is sent as typed, a JSON string
    field.press("Enter")  # the form is keyboard-driven: Enter sends
    expect(page.locator(".page-head .badge")).to_have_text("completed", timeout=15_000)
    expect(page.locator("#result")).to_contain_text('report: teal "not JSON"')
    assert console.doc(rid)["result"]["text"] == 'report: teal "not JSON"'


def test_an_answer_someone_else_gave_first_is_a_409_shown_in_the_page(pages: Pages, console: Console) -> None:
    """The page's event stream dropped (every /events request aborted), so it cannot see that
    another admin answered meanwhile: its own answer is the server's 409, shown as such."""
    rid, question = waiting(console, "colour", "race")
    page = pages.blank(dark=True)
    page.route("**/events", lambda route: route.abort())
    page.goto(f"{console.base}/ui#/requests/{rid}")
    page.fill("#key", ADMIN_KEY)
    page.click("#sign-in")
    expect(page.locator("#ask-prompt")).to_have_text("Which colour should the report be?")
    first = console.api.post(f"/v1/requests/{rid}/input", json={"input_id": question["id"], "value": "red"})
    assert first.status_code == 202, first.text
    page.locator("#ask-value").fill("blue")
    page.get_by_test_id("send-input").click()
    stale = page.locator("#ask-stale")
    expect(stale).to_contain_text("Not sent. This question is no longer waiting for an answer")
    expect(stale).to_contain_text("409 INPUT_ALREADY_ANSWERED")
    # ...and the page re-read the request: no form for the answered question, the status is current
    expect(page.locator("#ask")).to_have_count(0)
    expect(page.locator(".page-head .badge")).not_to_have_text("input_required")
    shot(page, "detail-input-409-dark")
    assert console.wait(rid, lambda d: d["status"] == "completed")["result"]["text"] == "race: red"


def test_a_viewer_sees_the_question_but_cannot_answer(pages: Pages, console: Console) -> None:
    rid, question = waiting(console, "asker", "viewer reads")
    try:
        page = pages.signed_in(VIEWER_KEY, "viewer", hash=f"#/requests/{rid}")
        expect(page.locator("#ask-prompt")).to_have_text("What is your name?")
        expect(page.locator("#ask-value")).to_be_disabled()
        send = page.get_by_test_id("send-input")
        expect(send).to_be_disabled()
        expect(page.locator("#ask")).to_contain_text("Read-only: a viewer key cannot answer.")
        # ...and the server refuses it anyway: enable the form as a user could, and send
        page.locator("#ask-value").evaluate("f => { f.disabled = false; }")
        page.locator("#ask-value").fill('{"name": "Vic"}')
        send.evaluate("b => { b.disabled = false; b.click(); }")
        expect(page.locator("#ask-status")).to_contain_text("403 FORBIDDEN")
        doc = console.doc(rid)
        assert doc["status"] == "input_required" and doc["input_request"]["id"] == question["id"]
        # the request list marks it with its own badge, unlike the outlined ones of other statuses
        listing = pages.signed_in(VIEWER_KEY, "viewer", hash="#/requests?status=input_required")
        row = listing.locator(f"#results tr[data-request='{rid}']")
        chip = row.locator(".badge")
        expect(chip).to_have_text("input_required")
        expect(chip).to_have_class("badge badge-input_required")
        expect(row.locator(".progress-label")).to_have_text("waiting for input")
        filled = chip.evaluate("b => getComputedStyle(b).backgroundColor")
        assert filled not in ("rgba(0, 0, 0, 0)", "transparent"), filled
        shot(listing, "requests-input-required")
    finally:
        console.api.delete(f"/v1/requests/{rid}")
