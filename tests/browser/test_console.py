"""The console in real headless Chromium against a real `errand serve`: sign-in and roles, live
progress, cancel, tracebacks, redelivery, the viewer's refusals, CSRF, overview counts.

Screenshots of every page land in build/screenshots/ (see tests/support/browser.py).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.browser.conftest import VIEWER_KEY, Console, Pages
from tests.support.browser import PHONE, shot
from tests.support.server import ADMIN_KEY, CLIENT_KEY

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def progress_value(page: Any) -> float:
    value: float = page.locator("#live-progress progress").evaluate("p => p.value")
    return value


def test_sign_in_with_each_kind_of_key_and_sign_out(pages: Pages, console: Console) -> None:
    page = pages.blank()
    page.goto(f"{console.base}/ui")
    expect(page.locator("#key")).to_be_focused()
    shot(page, "signin")
    page.fill("#key", "not-a-key-at-all")
    page.keyboard.press("Enter")  # the form is keyboard-driven: Enter submits
    expect(page.locator(".form-status")).to_have_text("Wrong key.")
    page.fill("#key", CLIENT_KEY)
    page.click("#sign-in")
    expect(page.locator(".form-status")).to_contain_text("admin or a viewer key")
    page.fill("#key", ADMIN_KEY)
    page.click("#sign-in")
    expect(page.locator("#role")).to_have_text("admin")
    expect(page.locator("h1")).to_have_text("Overview")
    # the session survives a reload (the cookie), and the key is kept nowhere in the page
    page.reload()
    expect(page.locator("#role")).to_have_text("admin")
    assert ADMIN_KEY not in page.content()
    stored = page.evaluate(
        "() => JSON.stringify(localStorage) + JSON.stringify(sessionStorage) + document.cookie"
    )
    assert ADMIN_KEY not in stored and "errand_session" not in stored  # HttpOnly: scripts cannot read it
    # keyboard: Tab from the top reaches the skip link, then the brand and the first nav link
    page.keyboard.press("Tab")
    expect(page.locator(".skip")).to_be_focused()
    page.click("#sign-out")
    expect(page.locator("#key")).to_be_visible()
    assert page.evaluate("() => fetch('/ui/session').then(r => r.status)") == 401
    page.reload()
    expect(page.locator("#key")).to_be_visible()
    viewer = pages.signed_in(VIEWER_KEY, "viewer")
    expect(viewer.locator(".who")).to_contain_text("read-only")


def test_progress_moves_without_reload_then_cancel(pages: Pages, console: Console) -> None:
    rid = console.submit("steady", "watch me", seconds=60)
    console.wait(rid, lambda d: d["status"] == "processing")
    page = pages.signed_in(hash=f"#/requests/{rid}")
    expect(page.locator(".page-head .badge")).to_have_text("processing")
    page.evaluate("() => { window.__sameDocument = true; }")
    page.wait_for_function("() => document.querySelector('#live-progress progress')?.value > 0")
    first = progress_value(page)
    page.wait_for_function(
        f"() => document.querySelector('#live-progress progress')?.value >= {first + 2}", timeout=10_000
    )
    assert progress_value(page) > first
    assert page.evaluate("() => window.__sameDocument") is True  # moved by the event stream, no reload
    expect(page.locator("#output")).to_contain_text("[0]")  # content deltas folded into one text
    expect(page.locator(".ev-content .ev-text")).to_contain_text("deltas folded")
    shot(page, "detail-running")
    phone = pages.signed_in(hash=f"#/requests/{rid}", viewport=PHONE)
    expect(phone.locator(".page-head .badge")).to_have_text("processing")
    phone.wait_for_function("() => document.querySelector('#live-progress progress')?.value > 0")
    shot(phone, "detail-running-phone")
    dark = pages.signed_in(hash=f"#/requests/{rid}", dark=True)
    dark.wait_for_function("() => document.querySelector('#live-progress progress')?.value > 0")
    shot(dark, "detail-running-dark")

    page.get_by_test_id("cancel").click()
    expect(page.locator(".page-head .badge")).to_have_text("cancelled", timeout=10_000)
    expect(page.locator("[data-event=cancelled]")).to_be_visible()
    assert console.doc(rid)["status"] == "cancelled"
    expect(page.get_by_test_id("cancel")).to_have_count(0)  # nothing left to cancel


def test_a_failed_request_shows_its_traceback(pages: Pages, console: Console) -> None:
    rid = console.submit("broken", "twelve")
    console.wait(rid, lambda d: d["status"] == "failed")
    page = pages.signed_in(hash=f"#/requests/{rid}")
    expect(page.locator(".page-head .badge")).to_have_text("failed")
    expect(page.locator("#error")).to_contain_text("ValueError")
    trace = page.locator("[data-attempt='1'] .traceback")
    expect(trace).to_contain_text("Traceback (most recent call last)")
    expect(trace).to_contain_text("_parse_amount")
    expect(trace).to_contain_text("could not convert string to float")
    shot(page, "detail-failed")


def test_a_request_page_shows_its_input_message_and_metadata(pages: Pages, console: Console) -> None:
    message = "Summarise <b>these</b> notes\nline two — ünïcode"
    rid = console.submit("echo", message, ticket="T-42", source="browser-test")
    console.wait(rid, lambda d: d["status"] == "completed")
    page = pages.signed_in(hash=f"#/requests/{rid}")
    expect(page.locator(".page-head .badge")).to_have_text("completed")
    shown = page.locator("#input-message")
    expect(shown).to_have_text(message)  # as text: the markup is not interpreted
    assert page.locator("#input-message b").count() == 0
    expect(page.locator("#input-metadata")).to_contain_text('"ticket": "T-42"')
    expect(page.locator("#input-metadata")).to_contain_text('"source": "browser-test"')
    expect(page.locator("#input-settings")).to_contain_text("priority 3")
    shot(page, "detail-input")


def test_the_overview_shows_each_workers_last_lease_renewal(pages: Pages, console: Console) -> None:
    rid = console.submit("steady", "keep me busy", seconds=30)
    console.wait(rid, lambda d: d["status"] == "processing")
    before = time.time()
    busy = until_busy(console)
    assert busy["last_seen"] is not None and busy["leases_until"] is not None
    assert busy["started_at"] <= busy["last_seen"] <= before + 1  # a claim or renewal, not the future
    page = pages.signed_in()
    expect(page.locator("th", has_text="Last seen")).to_be_visible()
    cells = page.locator(".last-seen")
    expect(cells.first).to_be_visible()
    shown = [c.inner_text() for c in cells.all()]
    assert any(text[:4].isdigit() for text in shown), shown  # a time, not a dash
    assert all(text != "—" for text in shown), shown  # an idle worker says when it registered
    assert console.api.delete(f"/v1/requests/{rid}").status_code == 200


def until_busy(console: Console) -> dict[str, Any]:
    """The overview's first worker holding a lease (the one running the steady request)."""
    deadline = time.monotonic() + 10
    while True:
        workers = console.api.get("/v1/admin/overview").json()["workers"]
        busy = [w for w in workers if w["running"] > 0]
        if busy:
            return dict(busy[0])
        assert time.monotonic() < deadline, workers
        time.sleep(0.1)


def test_redeliver_a_failed_webhook_and_see_the_new_attempt(pages: Pages, console: Console) -> None:
    rid = console.submit("echo", "hook me", webhook=True)
    deadline = time.monotonic() + 20
    while True:
        deliveries = console.api.get(f"/v1/requests/{rid}/deliveries").json()["deliveries"]
        if deliveries and deliveries[0]["state"] == "failed":
            break
        assert time.monotonic() < deadline, deliveries
        time.sleep(0.1)
    assert [h.answered for h in console.receiver.hits] == [500]
    page = pages.signed_in(hash=f"#/requests/{rid}")
    delivery = page.locator("#deliveries .delivery").first
    expect(delivery.locator(".badge")).to_have_text("failed")
    expect(delivery.locator("tbody tr")).to_have_count(1)
    expect(delivery.locator("tbody tr").first).to_contain_text("500")
    page.get_by_test_id("redeliver").click()
    # a redelivery is a new delivery (its own webhook id) listed after the failed one
    expect(page.locator("#deliveries .delivery")).to_have_count(2)
    again = page.locator("#deliveries .delivery").last
    expect(again.locator(".badge")).to_have_text("delivered", timeout=15_000)
    expect(again.locator("tbody tr").first).to_contain_text("200")
    expect(delivery.locator(".badge")).to_have_text("failed")
    assert [h.answered for h in console.receiver.wait_for(2)] == [500, 200]
    shot(page, "detail-redelivered")


def test_failures_page_lists_failed_requests_and_deliveries(pages: Pages, console: Console) -> None:
    receiver_hits = len(console.receiver.hits)
    console.receiver.script = [500]
    rid = console.submit("echo", "hook fails", webhook=True)
    console.receiver.wait_for(receiver_hits + 1)
    failed = console.submit("broken", "nine")
    console.wait(failed, lambda d: d["status"] == "failed")
    page = pages.signed_in(hash="#/failures")
    expect(page.locator("#failed-requests")).to_contain_text(failed)
    row = page.locator("#failed-deliveries tr", has_text=rid)
    expect(row).to_contain_text("500")
    shot(page, "failures")
    row.get_by_role("button", name="Redeliver").click()
    expect(row.locator(".action-result")).to_have_text("queued")
    console.receiver.wait_for(receiver_hits + 2)


def test_a_viewer_sees_everything_and_its_cancel_is_refused(pages: Pages, console: Console) -> None:
    rid = console.submit("steady", "viewer watches", seconds=60)
    try:
        console.wait(rid, lambda d: d["status"] == "processing")
        page = pages.signed_in(VIEWER_KEY, "viewer", hash=f"#/requests/{rid}")
        cancel = page.get_by_test_id("cancel")
        expect(cancel).to_be_disabled()  # the console offers no action to a viewer
        # ...and the server refuses it anyway: enable the button as a user could, and press it
        cancel.evaluate("b => { b.disabled = false; b.click(); }")
        refusal = page.locator(".page-head .action-result")
        expect(refusal).to_contain_text("403")
        expect(refusal).to_contain_text("FORBIDDEN")
        assert console.doc(rid)["status"] == "processing"
        # a viewer reads what an admin reads: the attempt (with its worker) is there
        expect(page.locator("[data-attempt='1']")).to_contain_text("worker")
    finally:
        console.api.delete(f"/v1/requests/{rid}")


ATTACK = """<!DOCTYPE html><html><body>
<form id="f" method="POST" action="{base}/v1/chat" enctype="text/plain">
<input name='{{"message":"forged","agent_id":"echo","x":"' value='"}}'>
</form>
<script>
window.fetchStatus = fetch("{base}/v1/triggers/ticket", {{
  method: "POST", mode: "no-cors", credentials: "include",
  headers: {{"Content-Type": "text/plain"}}, body: JSON.stringify({{data: {{customer: "x", subject: "y"}}}})
}}).then(() => "sent", e => String(e));
</script></body></html>"""


def test_a_cross_site_post_with_the_cookie_but_no_csrf_token_is_refused(
    pages: Pages, console: Console
) -> None:
    from tests.support.evil_site import serving_page

    page = pages.signed_in()
    before = console.api.get("/v1/requests", params={"limit": 200}).json()["count"]
    with serving_page(ATTACK.format(base=console.base)) as evil:
        assert evil.startswith("http://127.0.0.1:") and evil != console.base  # another origin
        refused: list[Any] = []
        # POSTs only: the signed-in page's own live refresh (a GET) may still answer meanwhile
        page.on(
            "response",
            lambda r: (
                refused.append(r)
                if r.url.startswith(console.base + "/v1/") and r.request.method == "POST"
                else None
            ),
        )
        page.goto(evil)
        page.wait_for_function("() => window.fetchStatus")
        with page.expect_navigation():
            page.evaluate("() => document.getElementById('f').submit()")
        assert "CSRF_FAILED" in page.content()
        statuses = {r.url.removeprefix(console.base): r.status for r in refused}
        assert statuses == {"/v1/chat": 403, "/v1/triggers/ticket": 403}, statuses
    assert console.api.get("/v1/requests", params={"limit": 200}).json()["count"] == before
    # same origin without the header is refused too; with it (as the console sends it) it passes
    console_page = pages.signed_in()
    answer = console_page.evaluate(
        """async () => {
          const r = await fetch('/v1/chat', {method: 'POST', headers: {'Content-Type': 'application/json'},
                                body: JSON.stringify({message: 'no token', agent_id: 'echo'})});
          return [r.status, (await r.json()).error.code];
        }"""
    )
    assert answer == [403, "CSRF_FAILED"]


def _settled(console: Console) -> None:
    """No request pending or running (earlier tests' leftovers cancelled), so counts hold still."""
    for status in ("pending", "processing"):
        for r in console.api.get("/v1/requests", params={"status": status, "limit": 200}).json()["requests"]:
            console.api.delete(f"/v1/requests/{r['request_id']}")
    deadline = time.monotonic() + 20
    while any(
        console.api.get("/v1/requests", params={"status": s}).json()["count"]
        for s in ("pending", "processing")
    ):
        assert time.monotonic() < deadline, "requests still running"
        time.sleep(0.1)


def _count(console: Console, status: str) -> int:
    total, cursor = 0, None
    while True:
        page = console.api.get(
            "/v1/requests", params={"status": status, "limit": 200, "cursor": cursor}
        ).json()
        total += page["count"]
        cursor = page["next_cursor"]
        if cursor is None:
            return total


def test_the_overview_counts_match_the_api(pages: Pages, console: Console) -> None:
    for i in range(3):
        console.submit("echo", f"count {i}", user=f"u{i}")
    console.submit("broken", "x")
    _settled(console)
    expected = {
        s: _count(console, s)
        for s in ("pending", "processing", "input_required", "completed", "failed", "cancelled")
    }
    assert expected["completed"] >= 3 and expected["failed"] >= 1
    overview = console.api.get("/v1/admin/overview").json()
    assert overview["queue"]["by_status"] == expected
    page = pages.signed_in()
    for status, n in expected.items():
        expect(page.locator(f"[data-count={status}] .n")).to_have_text(str(n))
    expect(page.locator(".agent-chart svg").first).to_be_visible()
    shot(page, "overview")
    shot(pages.signed_in(viewport=PHONE), "overview-phone")
    dark = pages.signed_in(dark=True)
    expect(dark.locator("[data-count=completed] .n")).to_have_text(str(expected["completed"]))
    shot(dark, "overview-dark")
    # live: a new request shows up in the counts without a reload
    console.submit("echo", "one more")
    expect(page.locator("[data-count=completed] .n")).to_have_text(
        str(expected["completed"] + 1), timeout=10_000
    )


def test_requests_table_filters_searches_and_pages(pages: Pages, console: Console) -> None:
    ids = [console.submit("echo", f"page {i}", user="pager") for i in range(30)]
    for rid in ids:
        console.wait(rid, lambda d: d["status"] == "completed")
    page = pages.signed_in(hash="#/requests?user_id=pager")
    rows = page.locator("#results tbody tr")
    expect(rows).to_have_count(25)
    assert rows.first.get_attribute("data-request") == ids[-1]  # newest first
    shot(page, "requests")
    page.click("#next-page")
    expect(rows).to_have_count(5)
    expect(rows.last).to_have_attribute("data-request", ids[0])
    page.click("#prev-page")
    expect(rows).to_have_count(25)
    # filters go through the form into the URL
    page.select_option("#f-status", "failed")
    page.click(".filters button[type=submit]")
    expect(page).to_have_url(f"{console.base}/ui#/requests?status=failed&user_id=pager")
    expect(page.locator("#results")).to_contain_text("No request matches.")
    # search by id opens the request
    page.fill("#search-id", ids[3])
    page.click(".search button")
    expect(page.locator(".page-head h1")).to_contain_text(ids[3])
    expect(page.locator("#result")).to_contain_text("echo: page 3")


def test_fire_a_trigger_from_its_form(pages: Pages, console: Console) -> None:
    page = pages.signed_in(hash="#/agents")
    form = page.locator("form[data-trigger=ticket]")
    form.locator("textarea").fill('{"customer": "ACME", "subject": "printer on fire"}')
    form.locator("button[type=submit]").click()
    link = form.locator(".action-result a")
    expect(link).to_be_visible()
    rid = link.inner_text()
    doc = console.wait(rid, lambda d: d["status"] == "completed")
    assert doc["kind"] == "trigger" and doc["trigger"] == "ticket"
    assert "ACME" in doc["result"]["text"] and "printer on fire" in doc["result"]["text"]
    expect(page.locator("section", has_text="Agents").locator("tbody tr")).to_have_count(5)
    shot(page, "agents")


def test_bulk_cancel_asks_with_the_count_first(pages: Pages, console: Console) -> None:
    ids = [console.submit("steady", "bulk", seconds=60, user="bulk") for _ in range(3)]
    try:
        page = pages.signed_in(hash="#/failures")
        page.fill("#bc-user_id", "bulk")
        page.get_by_test_id("bulk-cancel").click()
        dialog = page.locator("dialog.confirm")
        expect(dialog).to_contain_text("Cancel 3 unfinished request(s)")
        shot(page, "bulk-cancel-confirm")
        dialog.get_by_role("button", name="Cancel 3").click()
        expect(page.locator(".action-result", has_text="cancelled")).to_contain_text("3 cancelled")
        for rid in ids:
            console.wait(rid, lambda d: d["status"] == "cancelled")
    finally:
        for rid in ids:
            console.api.delete(f"/v1/requests/{rid}")
