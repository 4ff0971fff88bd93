"""What the CLI prints: rich tables and progress bars for people, plain JSON for programs.

Results and JSON go to stdout; progress bars, notes and errors go to stderr, so
`errand chat "..." > answer.md` captures only the answer. `reporting()` turns an errand error
into its printed line and the command's exit code.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, SpinnerColumn, TaskID, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as Bar
from rich.table import Column, Table

from errand.client import AttemptInfo, CancelResult, RequestHandle, RequestList, RequestStatus
from errand.errors import ConfigError, ErrandError
from errand.models import Progress, Status

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

DEMO_KEYS = frozenset({"demo-client-key", "demo-admin-key"})
"""The keys of examples/demo/formation.yaml: public anyway, so the banner shows them."""

_STATUS_STYLE = {
    Status.PENDING: "yellow",
    Status.PROCESSING: "cyan",
    Status.INPUT_REQUIRED: "bright_yellow",
    Status.COMPLETED: "green",
    Status.FAILED: "red",
    Status.CANCELLED: "magenta",
}


def print_json(data: Any) -> None:
    """One JSON document on stdout (no rich wrapping or colour)."""
    out.file.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
    out.file.flush()


def print_error(code: str, message: str) -> None:
    err.print(f"[red]error {escape(code)}: {escape(message)}[/red]", soft_wrap=True)


def note(message: str) -> None:
    err.print(f"[dim]{escape(message)}[/dim]", soft_wrap=True)


@contextmanager
def reporting() -> Iterator[None]:
    """Errors become `error CODE: message` in red; exit code 2 for a bad formation, else 1."""
    try:
        yield
    except ErrandError as exc:
        print_error(exc.code, exc.message)
        raise typer.Exit(2 if isinstance(exc, ConfigError) else 1) from None
    except TimeoutError as exc:
        print_error("TIMEOUT", str(exc))
        raise typer.Exit(1) from None


def mask_key(key: str) -> str:
    """Demo keys as they are; any other key hidden but for its last 4 characters."""
    if key in DEMO_KEYS:
        return key
    return "****" + key[-4:] if len(key) >= 16 else "****"


def mask_url(url: str) -> str:
    """A storage URL without its password."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    host = parts.hostname or ""
    user = parts.username or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def when(ts: float | None, *, short: bool = False) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).astimezone().strftime("%H:%M:%S" if short else "%Y-%m-%d %H:%M:%S")


def styled(status: Status) -> str:
    return f"[{_STATUS_STYLE.get(status, 'white')}]{status.value}[/]"


def progress_text(p: Progress | None) -> str:
    if p is None:
        return "-"
    parts = []
    if p.percent is not None:
        parts.append(f"{p.percent:.0f}%")
    if p.step is not None and p.total_steps:
        parts.append(f"step {p.step}/{p.total_steps}")
    if p.message:
        parts.append(p.message)
    return " · ".join(parts) or "-"


def print_handle(handle: RequestHandle, *, as_json: bool) -> None:
    if as_json:
        print_json(dict(handle.raw))
        return
    est = f", estimated {handle.estimated_seconds:.1f}s" if handle.estimated_seconds is not None else ""
    out.print(f"{handle.id}  {styled(handle.status)}  ({handle.delivery or 'polling'}{est})")
    note(f"follow it with: errand wait {handle.id}")


def print_status(st: RequestStatus, *, as_json: bool) -> None:
    """All a person wants to know about one request."""
    if as_json:
        print_json(dict(st.raw))
        return
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("request", escape(st.id)),
        ("status", styled(st.status)),
        ("agent", escape(st.agent or "-")),
        ("progress", escape(progress_text(st.progress))),
        ("attempts", str(st.attempts)),
        ("created", when(st.created_at)),
        ("started", when(st.started_at)),
        ("completed", when(st.completed_at)),
        ("duration", f"{st.duration_ms} ms" if st.duration_ms is not None else "-"),
    ]
    if st.error is not None:
        rows.append(("error", f"[red]{escape(st.error.type)}: {escape(st.error.message)}[/red]"))
    if st.needs_input and st.input_request is not None:
        ask = st.input_request
        rows.append(("question", f"{escape(ask.prompt)}  [dim](input {escape(ask.id)})[/dim]"))
        rows.append(("answer", escape(answer_shape(ask.schema))))
        rows.append(("expires", when(ask.expires_at) if ask.expires_at is not None else "never"))
    for row in rows:
        table.add_row(*row)
    out.print(table)
    if st.result is not None:
        out.print()
        out.print(st.result.text, markup=False, soft_wrap=True)


_OUTCOME_STYLE = {"completed": "green", "failed": "red", "retried": "yellow", "running": "blue"}


def print_attempts(st: RequestStatus, attempts: tuple[AttemptInfo, ...], *, as_json: bool) -> None:
    """`errand status ID --attempts`: the status, then one row per attempt, then the tracebacks
    (sent to an admin key only)."""
    if as_json:
        print_json({"request": dict(st.raw), "attempts": [dict(a.raw) for a in attempts]})
        return
    print_status(st, as_json=False)
    out.print()
    if not attempts:
        note("no attempts yet")
        return
    table = Table(
        Column("#", justify="right", no_wrap=True),
        Column("outcome", no_wrap=True),
        Column("worker", no_wrap=True),
        Column("started", no_wrap=True),
        Column("took", no_wrap=True, justify="right"),
        Column("error", overflow="fold"),
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for a in attempts:
        style = _OUTCOME_STYLE.get(a.outcome, "magenta")
        table.add_row(
            str(a.attempt),
            f"[{style}]{escape(a.outcome)}[/]",
            escape(a.worker_id or "-"),
            when(a.started_at, short=True),
            f"{a.duration_ms / 1000:.1f}s" if a.duration_ms is not None else "-",
            escape(f"{a.error.type}: {a.error.message}") if a.error is not None else "-",
        )
    out.print(table)
    for a in attempts:
        if a.traceback:
            out.print(f"[bold]attempt {a.attempt} traceback[/bold]")
            out.print(a.traceback.rstrip(), markup=False, highlight=False, soft_wrap=True)


def print_outcome(st: RequestStatus, *, as_json: bool) -> None:
    """The end of a chat or wait: the result text, or why there is none."""
    if as_json:
        print_json(dict(st.raw))
    elif st.result is not None:
        out.print(st.result.text, markup=False, soft_wrap=True)
    elif st.error is not None:
        print_error(st.error.type, st.error.message)
    elif st.needs_input and st.input_request is not None:
        ask = st.input_request
        err.print(f"request {escape(st.id)} asks: {escape(ask.prompt)}", soft_wrap=True)
        err.print(f"the answer: {escape(answer_shape(ask.schema))}", soft_wrap=True)
        if ask.expires_at is not None:
            err.print(f"it expires at {when(ask.expires_at)} (the request then ends unanswered)")
        err.print(f"answer with: errand respond {escape(st.id)} VALUE  (JSON when it parses, else a string)")
    else:
        err.print(f"request {escape(st.id)} is {styled(st.status)}")


def answer_shape(schema: Mapping[str, Any] | None) -> str:
    """What a question's answer must be, for `errand respond`: the schema is what the server
    checks the value against, so the person sees it before a 422 tells them."""
    if not schema:
        return "any JSON value or text (no schema)"
    return "JSON fitting the schema " + json.dumps(schema, separators=(",", ":"), ensure_ascii=False)


def print_cancel(answer: CancelResult, *, as_json: bool) -> None:
    if as_json:
        print_json(dict(answer.raw))
        return
    how = f"  ({answer.cancellation})" if answer.cancellation else ""
    out.print(f"{escape(answer.request_id)}  {styled(answer.status)}{how}")


def print_respond(answer: Mapping[str, Any], *, as_json: bool) -> None:
    if as_json:
        print_json(dict(answer))
        return
    note = "" if answer.get("accepted", True) else "  (already answered so)"
    out.print(
        f"{escape(str(answer.get('request_id')))}  answered {escape(str(answer.get('input_id')))}{note}"
    )


def print_requests(page: RequestList, *, as_json: bool) -> None:
    if as_json:
        print_json({"requests": [dict(r.raw) for r in page], "next_cursor": page.next_cursor})
        return
    if not page.requests:
        note("no requests")
        return
    # ids stay whole (never wrapped or cut): people copy them into `errand status`; so do the
    # status and the times (a schedule's 40-character id cut them to "comple…" at 80 columns);
    # only the agent's name gives way
    table = Table(
        Column("request", no_wrap=True, min_width=max(len(r.id) for r in page)),
        Column("status", no_wrap=True, min_width=max(len(r.status.value) for r in page)),
        Column("agent", overflow="ellipsis", no_wrap=True),
        Column("done", no_wrap=True, justify="right", min_width=4),
        Column("created", no_wrap=True, min_width=8),
        Column("took", no_wrap=True, justify="right"),
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for r in page:
        percent = r.progress.percent if r.progress is not None else None
        table.add_row(
            escape(r.id),
            styled(r.status),
            escape(r.agent or "-"),
            "-" if percent is None else f"{percent:.0f}%",
            when(r.created_at, short=True),
            f"{r.duration_ms / 1000:.1f}s" if r.duration_ms is not None else "-",
        )
    out.print(table)
    if page.next_cursor:
        note(f"more: errand requests --cursor {page.next_cursor}")


class ProgressView:
    """A live bar fed by `SDK.wait(on_progress=...)`: percent and the agent's own message."""

    def __init__(self, bar: Bar, task: TaskID) -> None:
        self._bar = bar
        self._task = task

    def update(self, p: Progress) -> None:
        label = escape(p.message or "working")
        if p.step is not None and p.total_steps:
            label = f"[dim]{p.step}/{p.total_steps}[/dim] {label}"
        self._bar.update(self._task, completed=p.percent or 0.0, total=100.0, description=label)


@contextmanager
def progress_bar(request_id: str) -> Iterator[ProgressView]:
    """Show a progress bar on stderr while the caller waits for `request_id`."""
    bar = Bar(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )
    with bar:
        task = bar.add_task(f"waiting for {escape(request_id)}", total=None)
        yield ProgressView(bar, task)
