"""errand requests and events as A2A tasks and stream events: the one home of that mapping.

Pure (no I/O), so every rule is unit tested: a task id is the request's public id, a context id
its session, the task state follows the errand status (`STATES`), the result is the artifact
`result`, and each durable event becomes the A2A event(s) a subscriber sees, stamped with the
event's `seq` in `metadata.errand_seq` and with its own position in `metadata.errand_resume`:
what a resubscribing client sends back (`Last-Event-ID`) so the server replays exactly what it
missed. An input-required status carries the prompt and the question (`input_request`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from a2a.types.a2a_pb2 import (
    Artifact,
    Message,
    Part,
    Role,
    Task,
    TaskArtifactUpdateEvent,
    TaskState,
    TaskStatus,
    TaskStatusUpdateEvent,
)
from google.protobuf.struct_pb2 import Value
from google.protobuf.timestamp_pb2 import Timestamp

from errand.models import Event, Request
from errand.request_ids import public_id

SEQ_KEY = "errand_seq"
"""Metadata key of every streamed A2A event: the errand event it came from."""
RESUME_KEY = "errand_resume"
"""Metadata key of every streamed A2A event: the `Last-Event-ID` that resumes right after it.
The seq for the last A2A event of an errand event; `<seq>.<n>` for the n-th of the ones before
(a `completed` event is the result's last chunk, then the status), so a subscriber dropped
between the two still gets the status, and the chunk not twice."""
RESULT_ARTIFACT = "result"
"""The artifact id of a request's result (streamed content deltas append to it)."""

STATES: Mapping[str, TaskState] = {
    "pending": TaskState.TASK_STATE_SUBMITTED,
    "processing": TaskState.TASK_STATE_WORKING,
    "completed": TaskState.TASK_STATE_COMPLETED,
    "failed": TaskState.TASK_STATE_FAILED,
    "cancelled": TaskState.TASK_STATE_CANCELED,
    # the one place where errand's `input_required` status (ctx.ask) meets A2A's
    "input_required": TaskState.TASK_STATE_INPUT_REQUIRED,
}
"""errand status value -> A2A task state. `rejected` has no errand status: a turn refused by
its session (`on_busy: reject`) is never stored, so the send answers an error instead."""

EVENT_STATES: Mapping[str, TaskState] = {
    "created": TaskState.TASK_STATE_SUBMITTED,
    "started": TaskState.TASK_STATE_WORKING,
    "progress": TaskState.TASK_STATE_WORKING,
    "retry": TaskState.TASK_STATE_WORKING,
    "completed": TaskState.TASK_STATE_COMPLETED,
    "failed": TaskState.TASK_STATE_FAILED,
    "cancelled": TaskState.TASK_STATE_CANCELED,
    "input_required": TaskState.TASK_STATE_INPUT_REQUIRED,
}
"""errand event type -> the task state it announces (`content` is an artifact chunk instead)."""

FINAL_STATES = frozenset(
    {
        TaskState.TASK_STATE_COMPLETED,
        TaskState.TASK_STATE_FAILED,
        TaskState.TASK_STATE_CANCELED,
        TaskState.TASK_STATE_REJECTED,
        TaskState.TASK_STATE_INPUT_REQUIRED,
    }
)
"""States after which a stream ends (input-required too: the client answers with a new send
naming the task, `message.taskId`)."""

StreamEvent = Task | TaskStatusUpdateEvent | TaskArtifactUpdateEvent


def task_state(status: str) -> TaskState:
    """The A2A state of an errand status value (unknown values are still "working")."""
    return STATES.get(status, TaskState.TASK_STATE_WORKING)


def message_text(message: Message) -> str:
    """The text an errand agent gets: the message's text parts, joined by blank lines."""
    return "\n\n".join(p.text for p in message.parts if p.WhichOneof("content") == "text")


def context_of(req: Request) -> str:
    """The context id of a request: its session (every A2A request is sent with one)."""
    return req.session_id or public_id(req.id)


def to_task(req: Request, *, history: bool = True) -> Task:
    """The Task of a request as it is now: state, the result artifact, the user's message."""
    task_id, context_id = public_id(req.id), context_of(req)
    task = Task(id=task_id, context_id=context_id, status=_status(req))
    if req.result is not None:
        task.artifacts.append(_artifact(req.result.text))
    if history and not req.expired:
        task.history.append(
            Message(
                message_id=f"{task_id}:input",
                role=Role.ROLE_USER,
                parts=[Part(text=req.message)],
                task_id=task_id,
                context_id=context_id,
            )
        )
    task.metadata.update({SEQ_KEY: req.seq, "agent": req.agent or ""})
    return task


def _status(req: Request) -> TaskStatus:
    at = req.completed_at or req.created_at
    status = TaskStatus(state=task_state(req.status.value), timestamp=_stamp(at))
    note = _status_note(req)
    if note:
        message = _agent_message(public_id(req.id), context_of(req), f"{req.seq}:status", note)
        if req.status.value == "input_required" and req.input_request is not None:
            message.parts.append(_question(req.input_request.public()))
        status.message.CopyFrom(message)
    return status


def _status_note(req: Request) -> str | None:
    if req.status.value == "input_required" and req.input_request is not None:
        return req.input_request.prompt
    if req.error is not None:
        return f"{req.error.type}: {req.error.message}"
    if req.progress is not None and req.progress.message and not req.is_terminal:
        return req.progress.message
    return None


def stream_events(event: Event, task_id: str, context_id: str, result_text: str | None) -> list[StreamEvent]:
    """The A2A events one durable errand event becomes, each stamped with its seq.

    `content` -> an artifact chunk appended to `result`; `completed` -> the whole result as the
    artifact's last chunk (when `result_text` is known), then the completed status; every other
    type -> a status update (progress and errors carry their text as the status message)."""
    meta = {SEQ_KEY: event.seq}
    if event.type == "content":
        text = str(event.data.get("text", ""))
        chunk = TaskArtifactUpdateEvent(
            task_id=task_id, context_id=context_id, artifact=_artifact(text), append=True
        )
        chunk.metadata.update({**meta, RESUME_KEY: str(event.seq)})
        return [chunk]
    out: list[StreamEvent] = []
    if event.type == "completed" and result_text is not None:
        last = TaskArtifactUpdateEvent(
            task_id=task_id, context_id=context_id, artifact=_artifact(result_text), last_chunk=True
        )
        last.metadata.update(meta)
        out.append(last)
    state = EVENT_STATES.get(event.type, TaskState.TASK_STATE_WORKING)
    status = TaskStatus(state=state, timestamp=_stamp(event.at))
    note = _event_note(event.type, event.data)
    if note:
        message = _agent_message(task_id, context_id, f"{event.seq}:status", note)
        question = event.data.get("input_request")
        if event.type == "input_required" and isinstance(question, Mapping):
            message.parts.append(_question(question))
        status.message.CopyFrom(message)
    update = TaskStatusUpdateEvent(task_id=task_id, context_id=context_id, status=status)
    update.metadata.update({**meta, "errand_event": event.type})
    out.append(update)
    for n, item in enumerate(out, 1):
        item.metadata.update({RESUME_KEY: str(event.seq) if n == len(out) else f"{event.seq}.{n}"})
    return out


def _event_note(type: str, data: Mapping[str, Any]) -> str | None:
    if type == "progress":
        message = data.get("message")
        return str(message) if message else None
    error = data.get("error")
    if isinstance(error, Mapping):
        return f"{error.get('type')}: {error.get('message')}"
    question = data.get("input_request")
    prompt = question.get("prompt") if isinstance(question, Mapping) else None
    return str(prompt) if type == "input_required" and prompt else None


def is_final(event: StreamEvent) -> bool:
    """Whether the stream ends after this event."""
    return isinstance(event, TaskStatusUpdateEvent) and event.status.state in FINAL_STATES


def _question(input_request: Mapping[str, Any]) -> Part:
    """The data part of an input-required status message: `{"input_request": {id, prompt, schema,
    expires_at}}` (the prompt is its text part), so a client sees what shape the answer takes."""
    data = Value()
    data.struct_value.update({"input_request": dict(input_request)})
    return Part(data=data)


def _artifact(text: str) -> Artifact:
    return Artifact(artifact_id=RESULT_ARTIFACT, name="result", parts=[Part(text=text)])


def _agent_message(task_id: str, context_id: str, suffix: str, text: str) -> Message:
    return Message(
        message_id=f"{task_id}:{suffix}",
        role=Role.ROLE_AGENT,
        parts=[Part(text=text)],
        task_id=task_id,
        context_id=context_id,
    )


def _stamp(at: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(int(at * 1_000_000_000))
    return stamp
