"""Schemathesis against a live server, both backends: the server keeps the promises of its
own /openapi.json -- no 5xx, every status and every body as documented.

The document is fetched from the running server over real HTTP (not built in the test), and
every operation in it gets EXAMPLES generated cases, valid and invalid (schemathesis's positive
and negative modes), each sent over loopback with the key its security asks for. Webhook URLs
in generated bodies are swapped for an allow-listed loopback one where nothing listens, so no
case resolves a name or leaves the host. Bounded: EXAMPLES per operation, DEADLINE_S each.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from errand.api.schemas import (
    Accepted,
    CancelAnswer,
    DeliveryList,
    Ready,
    Redelivery,
    RequestList,
    ScheduleDeleted,
    ScheduleDocument,
    ScheduleList,
    StatusDocument,
)
from tests.support.fuzz_server import BACKENDS, fuzzed_server
from tests.support.server import ADMIN_KEY, CLIENT_KEY, Server, wait_for

EXAMPLES = 25
DEADLINE_S = 5.0
BUDGET_S = 60.0
LOOPBACK_HOOK = "http://127.0.0.1:9/hook"
SECURITY_HEADERS = {"x-muxi-client-key", "x-muxi-admin-key", "authorization"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(params=BACKENDS)
def live(request: pytest.FixtureRequest, make_server: Callable[..., Server], tmp_path: Path) -> Server:
    return fuzzed_server(request, make_server, tmp_path, pg_fixture="pg_fresh_url")


def _headers(case: Case) -> dict[str, str]:
    security = case.operation.definition.raw.get("security", [])
    if not security:
        return {}
    names = {name for option in security for name in option}
    return {"X-Muxi-Client-Key": CLIENT_KEY} if "ClientKey" in names else {"X-Muxi-Admin-Key": ADMIN_KEY}


def _prepared(case: Case, n: int, known: dict[str, str]) -> None:
    """The case as sent: keys are ours (the generated ones are dropped), no generated webhook URL
    makes the server resolve a name (loopback, allow-listed), and every other case names a
    request, trigger or agent that exists, so answers for real resources are checked too."""
    for name in list(case.headers or {}):
        if name.lower() in SECURITY_HEADERS:
            del case.headers[name]
    if isinstance(case.body, dict) and isinstance(case.body.get("webhook_url"), str):
        case.body["webhook_url"] = LOOPBACK_HOOK
    if n % 2 == 0:
        for name in case.path_parameters or {}:
            if name in known:
                case.path_parameters[name] = known[name]


def test_the_server_conforms_to_its_own_document(live: Server) -> None:
    doc = live.client(None).get("/openapi.json").json()
    schema = schemathesis.openapi.from_dict(doc)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == sum(len([m for m in item if m != "servers"]) for item in doc["paths"].values())
    # a real request of each kind, so cases can meet ids that exist as well as ones that do not
    c = live.client()
    seed = c.post("/v1/chat", json={"message": "seed", "mode": "sync"}).json()
    nightly = {"name": "nightly", "cron": "0 3 * * *", "trigger": "issue", "data": {"title": "t"}}
    schedule = live.admin().post("/v1/schedules", json=nightly).json()
    response = c.post("/v1/responses", json={"model": "echo", "input": "seed", "background": True}).json()
    known = {
        "request_id": seed["request_id"],
        "name": "issue",
        "agent_id": "echo",
        "asset": "swagger-ui.css",
        "schedule_id": schedule["id"],
        "response_id": response["id"],
    }
    started = time.monotonic()
    calls: list[tuple[str, int]] = []
    for operation in operations:
        strategy = operation.as_strategy(generation_mode=GenerationMode.POSITIVE) | operation.as_strategy(
            generation_mode=GenerationMode.NEGATIVE
        )

        @given(case=strategy)
        @settings(
            max_examples=EXAMPLES,
            deadline=DEADLINE_S * 1000,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=True,
        )
        def check(case: Case) -> None:
            _prepared(case, len(calls), known)
            response = case.call_and_validate(
                base_url=live.base, headers=_headers(case), checks=CHECKS, timeout=DEADLINE_S
            )
            calls.append((case.operation.label, response.status_code))

        check()
    elapsed = time.monotonic() - started
    assert {label for label, _ in calls} == {op.label for op in operations}
    succeeded = {label for label, status in calls if status < 300}
    assert len(succeeded) >= len(operations) * 3 // 4, f"too few operations ever succeeded: {succeeded}"
    assert elapsed < BUDGET_S, f"the schemathesis run took {elapsed:.1f} s"


def test_answers_the_generated_cases_rarely_reach_fit_their_models(live: Server) -> None:
    """202s, cancels, lists and redeliveries, made on purpose, validated against api/schemas.py."""
    c, admin = live.client(), live.admin()
    accepted = c.post("/v1/chat", json={"message": "30", "agent_id": "slow", "mode": "async"})
    assert accepted.status_code == 202
    Accepted.model_validate(accepted.json())
    fired = c.post("/v1/triggers/issue", json={"data": {"title": "t"}, "webhook_url": LOOPBACK_HOOK})
    assert fired.status_code == 202
    Accepted.model_validate(fired.json())
    cancel = c.delete(f"/v1/requests/{accepted.json()['request_id']}")
    CancelAnswer.model_validate(cancel.json())
    wait_for(c, fired.json()["request_id"])
    RequestList.model_validate(c.get("/v1/requests").json())
    RequestList.model_validate(admin.get("/v1/requests").json())
    StatusDocument.model_validate(c.get(f"/v1/requests/{fired.json()['request_id']}").json())
    redelivered = admin.post(f"/v1/requests/{fired.json()['request_id']}/redeliver")
    assert redelivered.status_code == 202, redelivered.text
    Redelivery.model_validate(redelivered.json())
    DeliveryList.model_validate(c.get(f"/v1/requests/{fired.json()['request_id']}/deliveries").json())
    Ready.model_validate(live.client(None).get("/ready").json())


def test_schedule_answers_fit_their_models(live: Server) -> None:
    """Every schedule answer, made on purpose (a cron and an every schedule, paused, run now,
    deleted), validated against api/schemas.py; the firing's status document too."""
    admin = live.admin()
    made = admin.post("/v1/schedules", json={"name": "hourly", "every": "1h", "message": "status?"})
    assert made.status_code == 201, made.text
    ScheduleDocument.model_validate(made.json())
    cron = {"name": "daily", "cron": "0 9 * * 1-5", "timezone": "Europe/Riga", "trigger": "issue"}
    ScheduleDocument.model_validate(admin.post("/v1/schedules", json={**cron, "data": {"title": "t"}}).json())
    paused = admin.patch("/v1/schedules/hourly", json={"enabled": False})
    assert paused.status_code == 200, paused.text
    ScheduleDocument.model_validate(paused.json())
    ScheduleList.model_validate(admin.get("/v1/schedules").json())
    run = admin.post("/v1/schedules/daily/run")
    assert run.status_code == 202, run.text
    Accepted.model_validate(run.json())
    done = wait_for(admin, run.json()["request_id"])
    assert done["kind"] == "schedule"
    StatusDocument.model_validate(done)
    ScheduleDocument.model_validate(admin.get("/v1/schedules/daily").json())
    ScheduleDeleted.model_validate(admin.delete("/v1/schedules/hourly").json())
