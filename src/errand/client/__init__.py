"""The Python SDK: twin clients, `Client` (sync) and `AsyncClient`, over one shared base.

`client/base.py` does everything that is not I/O: URLs (with or without a formation id),
headers, bodies, parsing status documents into frozen values (`client/values.py`), and the wait
schedule. `client/error_map.py` maps the error envelope `{"error": {"code", "message",
"details"}}` back to the `errand.errors` class the server raised, and transport failures to
`ServiceUnavailable` (transient), so callers catch one tree. `Client` (httpx.Client) and
`AsyncClient` (httpx.AsyncClient) only send. `wait()` long-polls `GET /v1/requests/{id}?wait=N`;
it never spins. `events()` follows the SSE stream and resumes it after a drop (client/stream.py).
"""

from __future__ import annotations

from errand.client.async_client import AsyncClient
from errand.client.base import ProgressCallback
from errand.client.stream import StreamEvent
from errand.client.sync_client import Client, Formation
from errand.client.values import (
    AgentInfo,
    AttemptInfo,
    CancelResult,
    ChatOptions,
    DeliveryAttempt,
    DeliveryInfo,
    RequestHandle,
    RequestList,
    RequestStatus,
    TriggerOptions,
)

__all__ = [
    "AgentInfo",
    "AsyncClient",
    "AttemptInfo",
    "CancelResult",
    "ChatOptions",
    "Client",
    "DeliveryAttempt",
    "DeliveryInfo",
    "Formation",
    "ProgressCallback",
    "RequestHandle",
    "RequestList",
    "RequestStatus",
    "StreamEvent",
    "TriggerOptions",
]
