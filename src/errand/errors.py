"""The ErrandError tree: every error errand raises on purpose, each saying transient or permanent.

    ErrandError                     (code INTERNAL_ERROR)
    ├── InvalidRequest              INVALID_REQUEST       bad input (400/422)
    │   ├── IdempotencyMismatch     same idempotency key, different body
    │   ├── UnresolvableHost        a webhook host has no address (retried at send time)
    │   ├── UnstorableValue         not storable as JSON (errand/jsonsafe.py: depth, NUL, type)
    │   ├── MalformedBody           the body is not JSON at all (400, where invalid JSON is 422)
    │   └── MethodNotAllowed        METHOD_NOT_ALLOWED    wrong HTTP method for a route (405)
    ├── Unauthorized                UNAUTHORIZED          missing or unknown key
    ├── Forbidden                   FORBIDDEN             a valid key that may not do this (viewer)
    │   └── CsrfFailed              CSRF_FAILED           a console change without its CSRF token
    ├── NotFound                    REQUEST_NOT_FOUND     unknown request (or another owner's)
    │   └── ResourceNotFound        RESOURCE_NOT_FOUND    unknown trigger, agent, route
    ├── Conflict                    CONFLICT              e.g. cancel a completed request
    │   ├── SessionBusy             SESSION_BUSY          on_busy=reject, the session is busy
    │   ├── InputNotOutstanding     INPUT_NOT_OUTSTANDING an answer to a question not waiting
    │   └── InputAlreadyAnswered    INPUT_ALREADY_ANSWERED that question got another answer
    ├── RequestExpired              REQUEST_EXPIRED       result purged after result_ttl
    ├── PayloadTooLarge             PAYLOAD_TOO_LARGE
    ├── HeadersTooLarge             HEADERS_TOO_LARGE     request head past server.max_header_bytes
    ├── RequestTimeout              REQUEST_TIMEOUT       head not sent within server.header_timeout_seconds
    ├── RateLimited                 RATE_LIMITED          transient
    │   └── QueueFull               limits.max_queued_per_user reached (429 + Retry-After)
    ├── ServiceUnavailable          SERVICE_UNAVAILABLE   transient
    │   └── StoreUnavailable        the database cannot be reached
    ├── LeaseLost                   a stale attempt tried to write (fencing); never leaves a worker
    ├── ConfigError                 formation.yaml is wrong; names the key
    ├── Cancelled                   CANCELLED             the request was cancelled (ctx.checkpoint)
    └── AgentError                  raised by agents
        ├── TransientError          retry me (timeouts, connection errors, 429/5xx)
        │   ├── TaskTimeout         the attempt outlived workflow.task_timeout
        │   └── AgentProcessKilled  an `isolation: process` agent killed from outside (SIGKILL, OOM)
        └── PermanentError          fail at once
            ├── AgentProcessCrashed an `isolation: process` agent crashed or exited without a result
            └── ResultNotStorable   the agent's result is not JSON or over async.max_result_bytes

HTTP status codes live in `error_status.py` only (the server answers by it, the SDK reads a bare
status back by it); the SDK maps codes back to these classes (`BY_CODE`, which holds every code
the server sends).

Outside the tree, on purpose: `TimeoutError` from the SDK's `wait()` (the caller's own deadline,
as `asyncio.wait_for` raises it); `asyncio.CancelledError` (task cancellation is asyncio's, and
must never be caught as an errand error); and `ValueError`/`TypeError` for programming mistakes
(a bad constructor argument, a handler returning neither str nor dict), which the engine records
as an ordinary failed attempt.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ErrandError(Exception):
    """Root of every deliberate errand error."""

    code: ClassVar[str] = "INTERNAL_ERROR"
    transient: ClassVar[bool] = False
    status_code: int | None = None
    """Set by the SDK on errors it raised from an HTTP answer."""

    def __init__(self, message: str = "", *, details: Any = None) -> None:
        super().__init__(message or (self.__doc__ or self.code).strip().splitlines()[0])
        self.details = details

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class InvalidRequest(ErrandError):
    """The request is not valid."""

    code = "INVALID_REQUEST"


class IdempotencyMismatch(InvalidRequest):
    """This idempotency key was already used with a different request body."""


class UnresolvableHost(InvalidRequest):
    """The webhook host has no address right now.

    At submit it refuses the URL like any InvalidRequest; at send time (delivery/dispatcher.py)
    it is worth retrying, not a refusal: DNS trouble may pass."""


class UnstorableValue(InvalidRequest):
    """This value cannot be stored as JSON.

    Raised by errand/jsonsafe.py, the one rule of what is storable on both backends (request
    bodies and agent results alike); the message is `<field>: <why>` and `details` names the
    place (`{"field": "metadata.k[1]"}`; depth adds `"max_depth"`)."""


class MalformedBody(InvalidRequest):
    """The request body is not JSON at all (or its Content-Length is not a number).

    Same code as InvalidRequest (INVALID_REQUEST; a client catching InvalidRequest catches it);
    it differs only in its HTTP status: 400, where a body that is JSON but invalid is a 422.
    Only the HTTP layer raises it."""


class MethodNotAllowed(InvalidRequest):
    """This route does not accept that HTTP method."""

    code = "METHOD_NOT_ALLOWED"


class Unauthorized(ErrandError):
    """A valid API key is required."""

    code = "UNAUTHORIZED"


class Forbidden(ErrandError):
    """This key may not do that (a viewer key changes nothing)."""

    code = "FORBIDDEN"


class CsrfFailed(Forbidden):
    """A change made with the console session cookie lacks its CSRF token or is cross-site."""

    code = "CSRF_FAILED"


class NotFound(ErrandError):
    """Request not found."""

    code = "REQUEST_NOT_FOUND"


class ResourceNotFound(NotFound):
    """Resource not found."""

    code = "RESOURCE_NOT_FOUND"


class Conflict(ErrandError):
    """The request is in a state that does not allow this."""

    code = "CONFLICT"


class SessionBusy(Conflict):
    """The session already has an unfinished request and the submit asked `on_busy: reject`;
    `details.active_request_id` names it."""

    code = "SESSION_BUSY"


class InputNotOutstanding(Conflict):
    """The request is not waiting for an answer to that input id (never asked, or the request
    resumed, ended or was cancelled meanwhile)."""

    code = "INPUT_NOT_OUTSTANDING"


class InputAlreadyAnswered(Conflict):
    """That input id was already answered with another value (answers are idempotent per id:
    the same value again is accepted, a different one is refused)."""

    code = "INPUT_ALREADY_ANSWERED"


class RequestExpired(ErrandError):
    """The request finished and its result has been purged (result_ttl)."""

    code = "REQUEST_EXPIRED"

    def __init__(
        self, message: str = "", *, details: Any = None, owner: str | None = None, user_id: str | None = None
    ) -> None:
        super().__init__(message, details=details)
        self.owner = owner
        """Who the tombstone belongs to (never sent to clients): others get 404, as for any
        request that is not theirs."""
        self.user_id = user_id


class PayloadTooLarge(ErrandError):
    """The request body is too large."""

    code = "PAYLOAD_TOO_LARGE"


class HeadersTooLarge(ErrandError):
    """The request line and headers are too large."""

    code = "HEADERS_TOO_LARGE"


class RequestTimeout(ErrandError):
    """The request line and headers did not arrive in time; send them again, faster.

    Transient: a client on a slow link may retry on a new connection."""

    code = "REQUEST_TIMEOUT"
    transient = True


class RateLimited(ErrandError):
    """Too many requests."""

    code = "RATE_LIMITED"
    transient = True


class QueueFull(RateLimited):
    """The user already has limits.max_queued_per_user requests queued; retry after
    `retry_after` seconds."""

    def __init__(self, message: str = "", *, retry_after: float | None = None, details: Any = None) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after


class ServiceUnavailable(ErrandError):
    """The service is temporarily unavailable."""

    code = "SERVICE_UNAVAILABLE"
    transient = True


class StoreUnavailable(ServiceUnavailable):
    """The database cannot be reached."""


class LeaseLost(ErrandError):
    """This attempt no longer holds the request (taken over, cancelled or finished)."""

    code = "LEASE_LOST"


class ConfigError(ErrandError):
    """The configuration is invalid."""

    code = "CONFIG_ERROR"


class Cancelled(ErrandError):
    """The request was cancelled; raised by RunContext.checkpoint() inside a running agent.

    It is an ErrandError so that tool calls (agents/tools.py) let it through rather than
    report it to the model; the worker has already stopped the attempt, which writes nothing."""

    code = "CANCELLED"


class AgentError(ErrandError):
    """An agent failed."""

    code = "AGENT_ERROR"


class TransientError(AgentError):
    """A transient agent failure; the engine retries it with backoff."""

    code = "TRANSIENT_ERROR"
    transient = True

    def __init__(self, message: str = "", *, retry_after: float | None = None, details: Any = None) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after


class TaskTimeout(TransientError):
    """The attempt exceeded workflow.task_timeout."""

    code = "TASK_TIMEOUT"


class PermanentError(AgentError):
    """A permanent agent failure; the request fails at once."""

    code = "PERMANENT_ERROR"


class AgentProcessKilled(TransientError):
    """The agent's process was killed from outside (SIGKILL: the OOM killer or an operator;
    SIGTERM, SIGINT, SIGHUP). Nothing in the input says the next attempt would die too."""


class AgentProcessCrashed(PermanentError):
    """The agent's process died without a result: a native crash (SIGSEGV, SIGABRT, ...) or an
    exit (os._exit, sys.exit). Such crashes follow from the code and its input, so another
    attempt would crash again and repeat the side effects before it."""


class ResultNotStorable(PermanentError):
    """The agent's result cannot be stored: not JSON-serializable, or over async.max_result_bytes.

    Checked by the worker before the store write, so the request fails once, at once, instead
    of crashing the attempt and running the agent again after each lease expiry."""


BY_CODE: dict[str, type[ErrandError]] = {
    cls.code: cls
    for cls in (
        ErrandError,
        InvalidRequest,
        MethodNotAllowed,
        Unauthorized,
        Forbidden,
        CsrfFailed,
        NotFound,
        ResourceNotFound,
        Conflict,
        SessionBusy,
        InputNotOutstanding,
        InputAlreadyAnswered,
        RequestExpired,
        PayloadTooLarge,
        HeadersTooLarge,
        RequestTimeout,
        RateLimited,
        ServiceUnavailable,
        Cancelled,
    )
}
"""Wire code -> class, used by the SDK to raise the same types the server raised: every code
the server sends (of the classes in `error_status.py`, both ways), and CANCELLED."""
