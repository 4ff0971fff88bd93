"""Provider failures as the frameworks raise them become errand's Transient/PermanentError;
the rest pass through unchanged for the engine to judge. Final outputs become Results."""

from __future__ import annotations

import dataclasses

import httpx
import openai
import pytest
from langchain_openai.chat_models.base import OpenAIRateLimitError
from pydantic import BaseModel
from pydantic_ai.exceptions import ModelHTTPError, ModelRateLimitError

from errand.adapters.failures import as_errand_error
from errand.adapters.output import to_result
from errand.errors import PermanentError, TransientError

URL = "http://127.0.0.1:9/v1/chat/completions?secret=no"


def status_error(cls: type[openai.APIStatusError], status: int, **headers: str) -> openai.APIStatusError:
    request = httpx.Request("POST", URL)
    response = httpx.Response(status, headers=headers, request=request, json={"error": {"message": "nope"}})
    return cls("boom", response=response, body={"message": f"provider says {status}"})


def test_a_429_is_transient_with_retry_after_and_names_the_endpoint() -> None:
    failure = as_errand_error(status_error(openai.RateLimitError, 429, **{"retry-after": "7"}), "fw")
    assert isinstance(failure, TransientError) and failure.retry_after == 7.0
    assert "fw: model call to http://127.0.0.1:9/v1/chat/completions" in failure.message
    assert "secret" not in failure.message and "provider says 429" in failure.message


@pytest.mark.parametrize("status", [500, 502, 503, 408])
def test_5xx_and_timeouts_are_transient(status: int) -> None:
    assert isinstance(as_errand_error(status_error(openai.APIStatusError, status), "fw"), TransientError)


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_other_4xx_are_permanent(status: int) -> None:
    failure = as_errand_error(status_error(openai.APIStatusError, status), "fw")
    assert isinstance(failure, PermanentError) and f"HTTP {status}" in failure.message


def test_connection_errors_are_transient() -> None:
    request = httpx.Request("POST", URL)
    exc = openai.APIConnectionError(request=request)
    exc.__cause__ = httpx.ConnectError("refused")
    assert isinstance(as_errand_error(exc, "fw"), TransientError)
    assert isinstance(as_errand_error(httpx.ConnectError("refused", request=request), "fw"), TransientError)


def test_langchains_subclass_is_judged_as_the_openai_error() -> None:
    request = httpx.Request("POST", URL)
    response = httpx.Response(429, request=request, headers={"retry-after": "2"})
    failure = as_errand_error(OpenAIRateLimitError("slow down", response=response, body=None), "langgraph")
    assert isinstance(failure, TransientError) and failure.retry_after == 2.0


def test_pydantic_ai_wrapper_is_judged_by_its_cause() -> None:
    wrapped = ModelHTTPError(status_code=400, model_name="m", body=None)
    wrapped.__cause__ = status_error(openai.BadRequestError, 400)
    assert isinstance(as_errand_error(wrapped, "pydantic-ai"), PermanentError)


def test_pydantic_ai_error_without_an_sdk_cause_is_judged_by_its_status() -> None:
    rate = ModelHTTPError.for_category(ModelRateLimitError, status_code=429, model_name="m")
    rate.retry_after = 3.0
    failure = as_errand_error(rate, "pydantic-ai")
    assert isinstance(failure, TransientError) and failure.retry_after == 3.0
    refused = as_errand_error(ModelHTTPError(status_code=403, model_name="m"), "pydantic-ai")
    assert isinstance(refused, PermanentError)


def test_other_errors_pass_through() -> None:
    bug = KeyError("city")
    assert as_errand_error(bug, "fw") is bug
    own = TransientError("the tool's back-end is down")
    assert as_errand_error(own, "fw") is own


class Forecast(BaseModel):
    city: str
    celsius: float


@dataclasses.dataclass
class Point:
    x: int


def test_outputs_become_results() -> None:
    plain = to_result("Sunny.", "a", {"framework": "fw"})
    assert plain.text == "Sunny." and plain.extra == {"framework": "fw"}
    typed = to_result(Forecast(city="Oslo", celsius=3.5), "a", {})
    assert typed.extra["output"] == {"city": "Oslo", "celsius": 3.5}
    assert typed.text == '{"city": "Oslo", "celsius": 3.5}'
    assert to_result(Point(1), "a", {}).extra["output"] == {"x": 1}


def test_the_adapters_package_imports_no_framework() -> None:
    """Only `errand.adapters.<framework>` imports its framework: the package itself is free."""
    import subprocess
    import sys

    frameworks = ("agents", "langgraph", "pydantic_ai", "langchain_core")
    code = (
        "import sys, errand.adapters, errand.adapters.failures, errand.adapters.reporter; "
        f"print(sorted(m for m in {frameworks!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
