"""The SDK's no-I/O half: status documents -> values, error envelopes -> classes, URLs and bodies."""

from __future__ import annotations

import json

import pytest

from errand import errors
from errand.client import (
    AsyncClient,
    Client,
    Formation,
    RequestHandle,
    RequestList,
    RequestStatus,
)
from errand.client.base import _BaseClient, _WaitPlan
from errand.client.error_map import _error_from_response
from errand.models import ErrorInfo, Mode, Progress, Request, Result, Status, to_document


def _request(**changes: object) -> Request:
    base: dict[str, object] = {
        "id": "req_abc123",
        "owner": "own",
        "user_id": "u1",
        "kind": "chat",
        "agent": "researcher",
        "message": "hi",
        "session_id": "s1",
        "metadata": {},
        "trigger": None,
        "webhook_url": None,
        "mode": Mode.ASYNC,
        "status": Status.COMPLETED,
        "attempt": 2,
        "failures": 1,
        "max_attempts": 3,
        "progress": Progress(60.0, "Analyzing third data source", 3, 5),
        "result": Result("Based on my research...", "researcher", {"usage": {"tokens": 7}}),
        "error": None,
        "created_at": 1785843812.44,
        "started_at": 1785843812.45,
        "completed_at": 1785843861.09,
        "run_at": 1785843812.44,
        "estimated_seconds": 40.0,
        "seq": 9,
    }
    base.update(changes)
    return Request(**base)  # type: ignore[arg-type]


def _envelope(code: str, message: str = "boom", details: object = None) -> bytes:
    return json.dumps({"error": {"code": code, "message": message, "details": details}}).encode()


class TestStatusDocument:
    def test_completed_document_becomes_values(self) -> None:
        doc = to_document(_request())
        st = RequestStatus.from_document(doc)
        assert st.id == "req_abc123"
        assert st.status is Status.COMPLETED
        assert st.is_complete and st.is_success
        assert st.result is not None and st.result.text == "Based on my research..."
        assert st.result.agent == "researcher"
        assert st.result.extra == {"usage": {"tokens": 7}}
        assert st.progress == Progress(100.0, "Analyzing third data source", 5, 5)  # completed reads 100 %
        assert st.error is None
        assert st.attempts == 2
        assert st.duration_ms == 48640
        assert st.created_at == pytest.approx(1785843812.44)
        assert st.user_id == "u1" and st.kind == "chat" and st.delivery == "polling"
        assert st.raw["session_id"] == "s1"

    def test_failed_document_carries_error_not_result(self) -> None:
        req = _request(
            status=Status.FAILED, error=ErrorInfo("TaskTimeout", "Task exceeded timeout (5s)", True)
        )
        st = RequestStatus.from_document(to_document(req))
        assert st.is_complete and not st.is_success
        assert st.result is None
        assert st.error == ErrorInfo("TaskTimeout", "Task exceeded timeout (5s)", True)

    @pytest.mark.parametrize("state", [Status.PENDING, Status.PROCESSING])
    def test_open_states_are_not_complete(self, state: Status) -> None:
        req = _request(status=state, started_at=None, completed_at=None, progress=None)
        st = RequestStatus.from_document(to_document(req))
        assert not st.is_complete and not st.is_success
        assert st.progress is None and st.duration_ms is None and st.started_at is None

    def test_cancelled_is_complete_but_not_success(self) -> None:
        st = RequestStatus.from_document(to_document(_request(status=Status.CANCELLED)))
        assert st.is_complete and not st.is_success and st.result is None

    def test_accepted_body_parses_as_pending_status(self) -> None:
        # a sync chat the server turned into a 202: the SDK returns it as a pending status
        body = {
            "request_id": "req_x",
            "status": "pending",
            "delivery": "polling",
            "poll_url": "/v1/requests/req_x",
            "estimated_seconds": 42,
        }
        st = RequestStatus.from_document(body)
        assert st.id == "req_x" and st.status is Status.PENDING and not st.is_complete
        assert st.result is None and st.attempts == 0

    def test_values_are_frozen(self) -> None:
        st = RequestStatus.from_document(to_document(_request()))
        with pytest.raises(AttributeError):
            st.status = Status.FAILED  # type: ignore[misc]
        with pytest.raises(TypeError):
            st.raw["status"] = "failed"  # type: ignore[index]


class TestHandleAndList:
    def test_handle_from_202_body(self) -> None:
        h = RequestHandle.from_document(
            {
                "request_id": "req_1",
                "status": "processing",
                "delivery": "webhook",
                "poll_url": "/api/f/v1/requests/req_1",
                "estimated_seconds": 12.5,
            }
        )
        assert (h.id, h.status, h.poll_url, h.estimated_seconds, h.delivery) == (
            "req_1",
            Status.PROCESSING,
            "/api/f/v1/requests/req_1",
            12.5,
            "webhook",
        )

    def test_handle_from_status_document_derives_poll_url(self) -> None:
        h = RequestHandle.from_document(to_document(_request(status=Status.PENDING)))
        assert h.poll_url == "/v1/requests/req_abc123" and h.estimated_seconds is None

    def test_list_is_iterable_with_cursor(self) -> None:
        docs = [to_document(_request(id=f"req_{i}")) for i in range(3)]
        page = RequestList.from_document({"requests": docs, "count": 3, "next_cursor": "c2"})
        assert [r.id for r in page] == ["req_0", "req_1", "req_2"]
        assert len(page) == 3 and page.next_cursor == "c2"
        empty = RequestList.from_document({"requests": [], "count": 0, "next_cursor": None})
        assert list(empty) == [] and empty.next_cursor is None


class TestErrorMapping:
    @pytest.mark.parametrize(
        ("status", "code", "cls"),
        [
            (422, "INVALID_REQUEST", errors.InvalidRequest),
            (401, "UNAUTHORIZED", errors.Unauthorized),
            (404, "REQUEST_NOT_FOUND", errors.NotFound),
            (404, "RESOURCE_NOT_FOUND", errors.ResourceNotFound),
            (409, "CONFLICT", errors.Conflict),
            (410, "REQUEST_EXPIRED", errors.RequestExpired),
            (413, "PAYLOAD_TOO_LARGE", errors.PayloadTooLarge),
            (431, "HEADERS_TOO_LARGE", errors.HeadersTooLarge),
            (408, "REQUEST_TIMEOUT", errors.RequestTimeout),
            (429, "RATE_LIMITED", errors.RateLimited),
            (503, "SERVICE_UNAVAILABLE", errors.ServiceUnavailable),
        ],
    )
    def test_wire_code_maps_to_the_class(self, status: int, code: str, cls: type[errors.ErrandError]) -> None:
        exc = _error_from_response(status, _envelope(code, "it broke", {"field": "message"}))
        assert type(exc) is cls
        assert exc.message == "it broke"
        assert exc.details == {"field": "message"}
        assert vars(exc)["status_code"] == status
        assert exc.code == code

    def test_every_code_the_server_sends_has_its_class(self) -> None:
        from errand.error_status import BY_STATUS, STATUS

        sent = {cls.code for cls, status in STATUS.items() if status != 500}
        sent |= {cls.code for cls in BY_STATUS.values()}
        for code in sent | {"INTERNAL_ERROR", "CANCELLED"}:
            assert errors.BY_CODE[code].code == code
        exc = _error_from_response(405, _envelope("METHOD_NOT_ALLOWED"))
        assert type(exc) is errors.MethodNotAllowed and isinstance(exc, errors.InvalidRequest)
        assert type(_error_from_response(500, _envelope("CANCELLED"))) is errors.Cancelled

    def test_transient_flag_follows_the_class(self) -> None:
        assert _error_from_response(429, _envelope("RATE_LIMITED")).transient
        assert not _error_from_response(404, _envelope("REQUEST_NOT_FOUND")).transient

    def test_unknown_code_is_base_error_keeping_the_wire_code(self) -> None:
        exc = _error_from_response(418, _envelope("TEAPOT", "short and stout"))
        assert type(exc) is errors.ErrandError
        assert exc.code == "TEAPOT" and exc.message == "short and stout"
        assert vars(exc)["status_code"] == 418

    def test_no_envelope_falls_back_to_http_status(self) -> None:
        exc = _error_from_response(502, b"<html>Bad Gateway</html>")
        assert isinstance(exc, errors.ServiceUnavailable) and exc.transient
        assert "Bad Gateway" in exc.message
        assert type(_error_from_response(404, b"")) is errors.ResourceNotFound  # a route, not a request
        assert type(_error_from_response(400, b"")) is errors.InvalidRequest
        other = _error_from_response(500, b"")
        assert type(other) is errors.ErrandError and other.message == "HTTP 500"


class TestCallBuilding:
    def test_paths_with_and_without_formation(self) -> None:
        plain = _BaseClient("http://h:1/")
        assert plain.url_for("requests", "req_1") == "http://h:1/v1/requests/req_1"
        scoped = _BaseClient("http://h:1", formation_id="my-assistant")
        assert scoped.url_for("chat") == "http://h:1/api/my-assistant/v1/chat"
        assert scoped._get_call("req_1").path == "/api/my-assistant/v1/requests/req_1"
        assert (
            scoped._trigger_call("github-issue", {}, True, {}).path
            == "/api/my-assistant/v1/triggers/github-issue"
        )

    def test_ids_are_escaped_in_paths(self) -> None:
        assert _BaseClient()._cancel_call("a/b?c").path == "/v1/requests/a%2Fb%3Fc"

    def test_headers_carry_keys_and_user(self) -> None:
        c = _BaseClient(client_key="ck-12345678", admin_key="ak-12345678", user_id="u1")
        assert c.headers["X-Muxi-Client-Key"] == "ck-12345678"
        assert c.headers["X-Muxi-Admin-Key"] == "ak-12345678"
        assert c.headers["X-Muxi-User-Id"] == "u1"
        assert "X-Muxi-Admin-Key" not in _BaseClient(client_key="ck-12345678").headers

    def test_chat_body_drops_unset_fields_and_moves_idempotency_to_header(self) -> None:
        call = _BaseClient()._chat_call(
            "hello",
            "sync",
            {"agent_id": "demo", "metadata": {"a": 1}, "session_id": None, "idempotency_key": "k1"},
        )
        assert call.method == "POST" and call.path == "/v1/chat"
        assert call.json == {"message": "hello", "mode": "sync", "agent_id": "demo", "metadata": {"a": 1}}
        assert call.headers == {"X-Muxi-Idempotency-Key": "k1"}

    def test_trigger_body(self) -> None:
        call = _BaseClient()._trigger_call(
            "t", {"issue": {"title": "x"}}, False, {"webhook_url": "https://e.x/h"}
        )
        assert call.json == {
            "data": {"issue": {"title": "x"}},
            "use_async": False,
            "webhook_url": "https://e.x/h",
        }
        assert call.headers is None

    def test_long_poll_extends_the_read_timeout(self) -> None:
        call = _BaseClient(timeout=5.0)._get_call("r", wait=30.0)
        assert call.params == {"wait": "30"} and call.timeout == 35.0
        assert _BaseClient()._get_call("r", wait=0.25).params == {"wait": "0.25"}
        assert _BaseClient()._get_call("r").params is None

    def test_list_params(self) -> None:
        call = _BaseClient()._list_call("completed", 10, "cur")
        assert call.params == {"limit": "10", "status": "completed", "cursor": "cur"}
        assert _BaseClient()._list_call(None, 50, None).params == {"limit": "50"}

    def test_formation_is_the_sync_client_and_twins_share_the_base(self) -> None:
        assert Formation is Client
        assert issubclass(Client, _BaseClient) and issubclass(AsyncClient, _BaseClient)


class TestWaitPlan:
    def test_cycles_are_capped_and_deadline_raises(self) -> None:
        plan = _WaitPlan("r", timeout=100.0, poll=None, watching=False, now=0.0)
        assert plan.next_cycle(0.0) == 30.0  # never longer than MAX_LONG_POLL
        assert plan.next_cycle(95.0) == 5.0  # never past the deadline
        with pytest.raises(TimeoutError, match="not finished after 100s"):
            plan.next_cycle(100.0)

    def test_watching_progress_polls_faster(self) -> None:
        assert _WaitPlan("r", 100.0, None, True, 0.0).next_cycle(0.0) == 1.0
        assert _WaitPlan("r", 100.0, 2.5, True, 0.0).next_cycle(0.0) == 2.5

    def test_news_reports_only_changes(self) -> None:
        plan = _WaitPlan("r", 10.0, None, True, 0.0)

        def at(percent: float | None) -> RequestStatus:
            prog = None if percent is None else Progress(percent, "m")
            return RequestStatus.from_document(to_document(_request(status=Status.PROCESSING, progress=prog)))

        assert plan.news(at(None)) is None
        assert plan.news(at(10)) == Progress(10, "m")
        assert plan.news(at(10)) is None
        assert plan.news(at(20)) == Progress(20, "m")

    def test_rest_prevents_spinning_on_early_answers(self) -> None:
        assert _WaitPlan.rest(cycle=30.0, started=0.0, now=0.01) == pytest.approx(0.49)
        assert _WaitPlan.rest(cycle=30.0, started=0.0, now=2.0) == 0.0
        assert _WaitPlan.rest(cycle=0.1, started=0.0, now=0.0) == pytest.approx(0.1)
