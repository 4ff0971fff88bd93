"""What `errand events`, `deliveries` and `agents` print: a line or a table for people, JSON
for programs (`events --json` is one object per line, as the events arrive)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from rich import box
from rich.markup import escape
from rich.table import Column, Table

from errand.cli.output import note, out, print_json, progress_text, when
from errand.client import AgentInfo, DeliveryInfo, StreamEvent
from errand.models import Progress

__all__ = ["print_agents", "print_deliveries", "print_event", "print_redelivery"]

_EVENT_STYLE = {"completed": "green", "failed": "red", "cancelled": "magenta", "retry": "yellow"}
_STATE_STYLE = {"delivered": "green", "failed": "red", "retrying": "yellow", "pending": "cyan"}


def _summary(event: StreamEvent) -> str:
    data: Mapping[str, Any] = event.data
    if event.type == "progress":
        return progress_text(Progress.from_dict(dict(data)))
    if event.type == "content":
        return str(data.get("text", ""))
    if event.type == "tool_call":
        return f"{data.get('name')}({data.get('arguments', '')}) -> {data.get('result', data.get('error'))}"
    if event.type == "failed" and isinstance(data.get("error"), Mapping):
        return f"{data['error'].get('type')}: {data['error'].get('message')}"
    if event.type == "completed" and isinstance(data.get("result"), Mapping):
        return str(data["result"].get("text", ""))
    if event.type in ("started", "retry"):
        return ", ".join(f"{k} {v}" for k, v in data.items() if k in ("attempt", "run_at", "error"))
    return ""


def print_event(event: StreamEvent, *, as_json: bool) -> None:
    """One event, as it arrives."""
    if as_json:
        line = json.dumps({"id": event.id, "event": event.type, "data": dict(event.data)}, default=str)
        out.file.write(line + "\n")
        out.file.flush()
        return
    style = _EVENT_STYLE.get(event.type, "cyan")
    out.print(f"[dim]{event.id:>4}[/dim]  [{style}]{event.type:<10}[/]  ", end="")
    out.print(_summary(event), markup=False, soft_wrap=True)


def print_deliveries(request_id: str, deliveries: Iterable[DeliveryInfo], *, as_json: bool) -> None:
    """Every delivery of a request, then one row per attempt."""
    found = list(deliveries)
    if as_json:
        print_json({"request_id": request_id, "deliveries": [dict(d.raw) for d in found]})
        return
    if not found:
        note(f"{request_id} has no webhook deliveries (no webhook_url, or not ended yet)")
        return
    for d in found:
        style = _STATE_STYLE.get(d.state, "white")
        out.print(f"[bold]{escape(d.webhook_id)}[/]  [{style}]{escape(d.state)}[/]  {escape(d.url)}")
        table = Table(
            Column("#", justify="right", no_wrap=True),
            Column("at", no_wrap=True),
            Column("status", no_wrap=True, justify="right"),
            Column("took", no_wrap=True, justify="right"),
            Column("error", overflow="fold"),
            box=box.SIMPLE_HEAD,
            pad_edge=False,
        )
        for a in d.attempts:
            table.add_row(
                str(a.attempt),
                when(a.at, short=True),
                "-" if a.status_code is None else str(a.status_code),
                "-" if a.duration_ms is None else f"{a.duration_ms} ms",
                escape(a.error or "-"),
            )
        if d.attempts:
            out.print(table)
        if d.next_attempt_at is not None:
            note(f"next attempt at {when(d.next_attempt_at)}")


def print_redelivery(request_id: str, delivery: DeliveryInfo, *, as_json: bool) -> None:
    if as_json:
        print_json({"request_id": request_id, "delivery": dict(delivery.raw)})
        return
    out.print(f"{escape(request_id)}  redelivery {escape(delivery.webhook_id)}  {escape(delivery.state)}")
    note(f"follow it with: errand deliveries {request_id}")


def print_agents(agents: Iterable[AgentInfo], *, as_json: bool) -> None:
    found = list(agents)
    if as_json:
        print_json({"agents": [dict(a.raw) for a in found], "count": len(found)})
        return
    if not found:
        note("no agents are configured")
        return
    table = Table(
        Column("agent", no_wrap=True),
        Column("kind", no_wrap=True),
        Column("expected", no_wrap=True, justify="right"),
        Column("tools", overflow="fold"),
        Column("description", overflow="fold"),
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for a in found:
        table.add_row(
            escape(a.id) + (" [bold](default)[/]" if a.default else ""),
            escape(a.kind or "-"),
            "-" if a.expected_seconds is None else f"{a.expected_seconds:.1f}s",
            escape(", ".join(a.tools) or "-"),
            escape(a.description or "-"),
        )
    out.print(table)
