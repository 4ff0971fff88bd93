"""errand requests and events as A2A tasks and stream events (api/a2a_mapping.py, api/a2a_card.py)."""

from __future__ import annotations

import pytest
from a2a.types.a2a_pb2 import (
    Message,
    Part,
    Role,
    TaskArtifactUpdateEvent,
    TaskState,
    TaskStatusUpdateEvent,
)
from google.protobuf.json_format import MessageToDict

from errand.api.a2a_card import A2A_PATH, SCHEME, agent_card
from errand.api.a2a_mapping import (
    RESULT_ARTIFACT,
    RESUME_KEY,
    SEQ_KEY,
    STATES,
    is_final,
    message_text,
    stream_events,
    task_state,
    to_task,
)
from errand.config import AgentConfig
from errand.models import ErrorInfo, Event, InputAsk, Progress, Result, Status
from errand.triggers import Trigger
from tests.support.models import stored_request


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("pending", TaskState.TASK_STATE_SUBMITTED),
        ("processing", TaskState.TASK_STATE_WORKING),
        ("completed", TaskState.TASK_STATE_COMPLETED),
        ("failed", TaskState.TASK_STATE_FAILED),
        ("cancelled", TaskState.TASK_STATE_CANCELED),
        ("input_required", TaskState.TASK_STATE_INPUT_REQUIRED),
    ],
)
def test_each_errand_status_has_its_task_state(status: str, state: TaskState) -> None:
    assert task_state(status) == state


def test_every_errand_status_is_mapped() -> None:
    assert {s.value for s in Status} <= set(STATES)


def test_message_text_joins_the_text_parts_only() -> None:
    message = Message(
        role=Role.ROLE_USER, parts=[Part(text="one"), Part(url="https://x/y"), Part(text="two")]
    )
    assert message_text(message) == "one\n\ntwo"


def test_a_completed_request_is_a_task_with_its_result_artifact_and_input() -> None:
    req = stored_request(
        id="req_abc~k:0", session_id="ctx-1", result=Result(text="the answer"), message="the question", seq=7
    )
    task = to_task(req)
    assert (task.id, task.context_id) == ("req_abc", "ctx-1")  # the public id, the session
    assert task.status.state == TaskState.TASK_STATE_COMPLETED
    assert [a.artifact_id for a in task.artifacts] == [RESULT_ARTIFACT]
    assert task.artifacts[0].parts[0].text == "the answer"
    assert task.history[0].role == Role.ROLE_USER and task.history[0].parts[0].text == "the question"
    assert task.metadata[SEQ_KEY] == 7


def test_a_failed_task_says_why_in_its_status_message() -> None:
    req = stored_request(status=Status.FAILED, error=ErrorInfo(type="ValueError", message="bad input"))
    task = to_task(req)
    assert task.status.state == TaskState.TASK_STATE_FAILED
    assert task.status.message.parts[0].text == "ValueError: bad input"
    assert not task.artifacts


def test_a_running_task_shows_its_progress_and_a_tombstone_no_input() -> None:
    running = to_task(stored_request(status=Status.PROCESSING, progress=Progress(message="step 2")))
    assert running.status.message.parts[0].text == "step 2"
    assert not to_task(stored_request(expired=True)).history


def test_content_is_an_appended_chunk_of_the_result_artifact() -> None:
    [chunk] = stream_events(Event("req_1", 4, "content", {"text": "Hel"}, 1.0), "req_1", "c", None)
    assert isinstance(chunk, TaskArtifactUpdateEvent)
    assert chunk.append and not chunk.last_chunk
    assert chunk.artifact.artifact_id == RESULT_ARTIFACT and chunk.artifact.parts[0].text == "Hel"
    assert chunk.metadata[SEQ_KEY] == 4
    assert not is_final(chunk)


def test_completed_is_the_whole_result_then_the_final_status() -> None:
    last, done = stream_events(Event("req_1", 9, "completed", {}, 2.0), "req_1", "c", "Hello")
    assert isinstance(last, TaskArtifactUpdateEvent) and last.last_chunk and not last.append
    assert last.artifact.parts[0].text == "Hello"
    assert isinstance(done, TaskStatusUpdateEvent)
    assert done.status.state == TaskState.TASK_STATE_COMPLETED
    assert done.metadata[SEQ_KEY] == last.metadata[SEQ_KEY] == 9
    assert (last.metadata[RESUME_KEY], done.metadata[RESUME_KEY]) == ("9.1", "9")  # distinct positions
    assert is_final(done)


def test_every_event_has_its_resume_position() -> None:
    [chunk] = stream_events(Event("req_1", 4, "content", {"text": "Hel"}, 1.0), "req_1", "c", None)
    [started] = stream_events(Event("req_1", 2, "started", {}, 1.0), "req_1", "c", None)
    assert (chunk.metadata[RESUME_KEY], started.metadata[RESUME_KEY]) == ("4", "2")


def test_an_input_required_task_shows_the_prompt_and_the_question() -> None:
    ask = InputAsk("inp_7", "Approve?", {"type": "boolean"}, None)
    task = to_task(
        stored_request(status=Status.INPUT_REQUIRED, input_request=ask, progress=Progress(message="x"))
    )
    assert task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
    text, data = task.status.message.parts
    assert text.text == "Approve?"
    assert MessageToDict(data.data)["input_request"] == ask.public()
    [update] = stream_events(
        Event("req_1", 5, "input_required", {"input_request": ask.public()}, 1.0), "req_1", "c", None
    )
    assert isinstance(update, TaskStatusUpdateEvent)
    assert MessageToDict(update.status.message.parts[1].data)["input_request"]["id"] == "inp_7"


@pytest.mark.parametrize(
    ("type", "data", "state", "note", "final"),
    [
        ("started", {}, TaskState.TASK_STATE_WORKING, None, False),
        ("progress", {"message": "half way"}, TaskState.TASK_STATE_WORKING, "half way", False),
        (
            "retry",
            {"error": {"type": "T", "message": "busy"}},
            TaskState.TASK_STATE_WORKING,
            "T: busy",
            False,
        ),
        ("failed", {"error": {"type": "E", "message": "no"}}, TaskState.TASK_STATE_FAILED, "E: no", True),
        ("cancelled", {}, TaskState.TASK_STATE_CANCELED, None, True),
        (
            "input_required",
            {"status": "input_required", "input_request": {"id": "inp_1", "prompt": "Which?"}},
            TaskState.TASK_STATE_INPUT_REQUIRED,
            "Which?",
            True,
        ),
    ],
)
def test_status_events(
    type: str, data: dict[str, object], state: TaskState, note: str | None, final: bool
) -> None:
    [update] = stream_events(Event("req_1", 3, type, data, 1.5), "req_1", "c", None)
    assert isinstance(update, TaskStatusUpdateEvent)
    assert update.status.state == state
    assert (update.status.message.parts[0].text if note else None) == note
    assert update.metadata["errand_event"] == type
    assert is_final(update) is final


def test_the_card_names_agents_triggers_interface_and_bearer_auth() -> None:
    card = agent_card(
        "form",
        "1.2.3",
        "http://127.0.0.1:8000/",
        [
            AgentConfig(id="echo", handler="errand.agents.builtin:echo", default=True),
            AgentConfig(id="writer", handler="errand.agents.builtin:echo", description="Writes"),
        ],
        [Trigger(name="bug", source="Bug", description="File a bug")],
    )
    assert [s.id for s in card.skills] == ["echo", "writer", "trigger:bug"]
    assert card.skills[1].description == "Writes" and "default" in card.skills[0].tags
    assert card.supported_interfaces[0].url == "http://127.0.0.1:8000" + A2A_PATH
    assert card.supported_interfaces[0].protocol_binding == "JSONRPC"
    assert card.capabilities.streaming and card.capabilities.push_notifications
    assert card.security_schemes[SCHEME].http_auth_security_scheme.scheme == "bearer"
    assert SCHEME in card.security_requirements[0].schemes
