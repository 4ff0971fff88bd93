"""Sending one webhook attempt: check the URL again, pin its addresses, sign, POST once.

The URL is checked again at send time (DNS may have changed since submit) and the connection
is pinned to the addresses that passed, so a rebinding answer between check and connect cannot
reach an internal host. The body is built deterministically from the stored document, so every
retry of a delivery sends the same bytes under the same `webhook-id` (receivers dedupe on it);
`webhooks.sign` adds a fresh timestamp; with tracing on, the current span's `traceparent`
goes along (the signature covers the body only). The POST follows no redirect and runs under one deadline
for the whole attempt. What came of it is a SendOutcome; recording it is the dispatcher's job.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import httpx

from errand import tracing
from errand.clock import Clock
from errand.delivery.settings import DispatcherSettings
from errand.delivery.urlguard import Resolver, Target, resolve_target_async
from errand.errors import InvalidRequest, UnresolvableHost
from errand.models import OutboxItem
from errand.webhooks import build_body, canonical_json, sign

__all__ = ["SendOutcome", "Sender", "pinning_client"]

log = logging.getLogger("errand.delivery")

_MAX_ADDRESSES = 3  # addresses tried (in resolver order) when connecting fails
_SNIPPET = 200  # characters of a failing receiver's answer kept in the attempt record


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """What one POST came to: the receiver's status, or why there is none; `retryable` is False
    for a refusal (the URL policy), which no later attempt can cure."""

    status_code: int | None
    error: str | None
    retryable: bool = True

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _one_line(text: str, limit: int = _SNIPPET) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "..."


async def _snippet(response: httpx.Response) -> str:
    """The start of a failing answer (for the attempt record), without reading a huge body."""
    data = b""
    async for chunk in response.aiter_bytes():
        data += chunk
        if len(data) >= _SNIPPET:
            break
    return _one_line(data[:_SNIPPET].decode("utf-8", "replace"))


async def _describe_failure(response: httpx.Response) -> str:
    code = response.status_code
    text = f"HTTP {code} {response.reason_phrase}".rstrip()
    if 300 <= code < 400:
        return f"{text} (redirects are not followed)"
    snippet = await _snippet(response)
    return f"{text}: {snippet}" if snippet else text


def pinning_client(settings: DispatcherSettings) -> httpx.AsyncClient:
    """The HTTP client for webhooks: no proxies from the environment (they would resolve the
    host themselves, defeating the address pinning) and no kept-alive connections (a connection
    pinned to one IP must not be reused for another host's webhook)."""
    return httpx.AsyncClient(
        trust_env=False,
        follow_redirects=False,
        timeout=settings.timeout,
        limits=httpx.Limits(max_connections=settings.concurrency, max_keepalive_connections=0),
    )


class Sender:
    """Makes delivery attempts over one HTTP client (owned by the dispatcher)."""

    def __init__(
        self, settings: DispatcherSettings, *, clock: Clock, http: httpx.AsyncClient, resolve: Resolver
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._http = http
        self._resolve = resolve

    def body(self, item: OutboxItem) -> bytes:
        """The exact bytes sent for a delivery: the same on every attempt (and after a restart),
        because the timestamp comes from the stored document, not from the send time."""
        doc = item.body
        moment = doc.get("completed_at") or doc.get("created_at")
        when = moment if isinstance(moment, int | float) else self._clock.now()
        return canonical_json(
            build_body(
                doc,
                formation_id=self.settings.formation_id,
                timestamp_ms=round(when * 1000),
                webhook_url=item.url,
            )
        )

    async def send(self, item: OutboxItem) -> SendOutcome:
        """One attempt at one delivery; never raises (a bug is recorded and retried later)."""
        try:
            target = await resolve_target_async(item.url, self.settings.allow_hosts, resolve=self._resolve)
        except UnresolvableHost as exc:
            return SendOutcome(None, exc.message)  # DNS trouble may pass: retry
        except InvalidRequest as exc:
            return SendOutcome(None, f"refused: {exc.message}", retryable=False)
        try:
            body = self.body(item)
            headers = sign(body, self.settings.secret, msg_id=item.id, timestamp=int(self._clock.now()))
            headers["User-Agent"] = self.settings.user_agent
            headers.update(tracing.carrier() or {})
            return await self._post(item.url, target, body, headers)
        except Exception as exc:  # a bug must not stall the outbox: record it and retry later
            log.exception("webhook %s of %s: unexpected error", item.id, item.request_id)
            return SendOutcome(None, f"internal error: {type(exc).__name__}: {exc}")

    async def _post(self, url: str, target: Target, body: bytes, headers: dict[str, str]) -> SendOutcome:
        """POST to the approved addresses in turn (the next one only when connecting fails)."""
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as exc:
            return SendOutcome(None, f"refused: webhook_url cannot be parsed ({exc})", retryable=False)
        if parsed.host.rstrip(".").lower() != target.host:
            return SendOutcome(None, "refused: webhook_url host is ambiguous", retryable=False)
        headers = {**headers, "Host": parsed.netloc.decode("ascii")}
        extensions = {"sni_hostname": parsed.raw_host.decode("ascii")} if parsed.scheme == "https" else {}
        error = "no address to connect to"
        try:
            async with asyncio.timeout(self.settings.timeout):
                for address in target.addresses[:_MAX_ADDRESSES]:
                    pinned = parsed.copy_with(host=address)
                    try:
                        return await self._exchange(pinned, body, headers, extensions)
                    except httpx.ConnectError as exc:
                        error = f"connection failed ({address}): {exc or type(exc).__name__}"
        except (TimeoutError, httpx.TimeoutException):
            return SendOutcome(None, f"timed out after {self.settings.timeout:g}s")
        except httpx.HTTPError as exc:
            return SendOutcome(None, f"{type(exc).__name__}: {exc}")
        return SendOutcome(None, error)

    async def _exchange(
        self, url: httpx.URL, body: bytes, headers: dict[str, str], extensions: dict[str, Any]
    ) -> SendOutcome:
        async with self._http.stream(
            "POST", url, content=body, headers=headers, extensions=extensions, follow_redirects=False
        ) as response:
            if 200 <= response.status_code < 300:
                return SendOutcome(response.status_code, None)
            return SendOutcome(response.status_code, await _describe_failure(response))
