"""errand.logs: both formats, request ids from extras and from the context, secrets masked."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from errand import logs
from errand.config import build_config
from errand.errors import ConfigError

SECRET = 'key-with-"quote"\\and-slash'


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    yield out
    logs.shutdown()
    logs.SECRETS.clear()
    logging.getLogger().setLevel(logging.WARNING)
    for name in (*logs.UVICORN_LOGGERS, *logs.QUIET_LOGGERS):  # as they were before
        logging.getLogger(name).setLevel(logging.NOTSET)
        logging.getLogger(name).propagate = True


def lines(out: io.StringIO) -> list[str]:
    logs.shutdown()  # the listener writes everything queued before it stops
    return out.getvalue().splitlines()


def test_json_lines_carry_request_id_extras_and_the_traceback(stream: io.StringIO) -> None:
    logs.configure(logs.LogSettings(level="debug", format="json"), stream=stream)
    log = logging.getLogger("errand.test")
    log.info("accepted %s", "req_1", extra={"request_id": "req_1", "attempt": 2})
    token = logs.REQUEST_ID.set("req_ctx")
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        log.exception("failed")
    finally:
        logs.REQUEST_ID.reset(token)
    log.debug("about nothing")
    records = [json.loads(line) for line in lines(stream)]
    assert len(records) == 3
    first, failed, plain = records
    assert first["message"] == "accepted req_1" and first["request_id"] == "req_1" and first["attempt"] == 2
    assert (first["level"], first["logger"]) == ("INFO", "errand.test")
    assert first["time"].endswith("Z") and first["time"][10] == "T"
    assert failed["request_id"] == "req_ctx" and failed["level"] == "ERROR"
    assert failed["traceback"].startswith("Traceback") and "ValueError: bad\nvalue" in failed["traceback"]
    assert plain["request_id"] is None


def test_text_lines_name_the_request_and_mask_secrets(stream: io.StringIO) -> None:
    logs.configure(logs.LogSettings(format="text"), secrets=[SECRET, "short"], stream=stream)
    log = logging.getLogger("errand.test")
    log.info("presented %s", SECRET, extra={"request_id": "req_9"})
    log.info("a %s word stays", "short")
    log.debug("below the level")
    out = lines(stream)
    assert len(out) == 2
    assert out[0].endswith(" INFO errand.test [req_9] presented ****")
    assert out[1].endswith(" INFO errand.test a short word stays")  # too short to be a secret


def test_json_masks_a_secret_as_json_escapes_it(stream: io.StringIO) -> None:
    logs.configure(logs.LogSettings(format="json"), secrets=[SECRET], stream=stream)
    logging.getLogger("errand.test").warning("header %s", SECRET, extra={"echo": SECRET})
    logs.mask_secret("whsec_learnt-at-run-time")
    logging.getLogger("errand.test").warning("signed with whsec_learnt-at-run-time")
    text = "\n".join(lines(stream))
    assert SECRET not in text and json.dumps(SECRET)[1:-1] not in text
    assert "learnt-at-run-time" not in text
    first = json.loads(text.splitlines()[0])
    assert first["message"] == "header ****" and first["echo"] == "****"


def test_uvicorn_access_lines_share_the_format(stream: io.StringIO) -> None:
    logs.configure(logs.LogSettings(format="json"), stream=stream)
    logs.REQUEST_ID.set("req_a")
    access = logging.getLogger("uvicorn.access")
    access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "GET", "/v1/requests/req_a", "1.1", 200)
    (record,) = (json.loads(line) for line in lines(stream))
    assert record["logger"] == "uvicorn.access" and record["request_id"] == "req_a"
    assert (record["method"], record["path"], record["status"]) == ("GET", "/v1/requests/req_a", 200)


def test_access_log_off_stops_uvicorn_access_lines(stream: io.StringIO) -> None:
    logs.configure(logs.LogSettings(access_log=False), stream=stream)
    assert not logging.getLogger("uvicorn.access").hasHandlers()  # uvicorn then skips the line
    logging.getLogger("uvicorn.error").info("Uvicorn running")
    assert len(lines(stream)) == 1


def test_brief_cuts_long_messages() -> None:
    assert logs.brief("x" * 10, 20) == "x" * 10
    assert logs.brief("x" * 30, 20) == "x" * 20 + "... (30 characters)"


def test_logging_section_of_the_formation() -> None:
    cfg = build_config({"keys": {"client": ["k" * 8]}, "logging": {"level": "DEBUG", "format": "json"}})
    assert (cfg.logging.level, cfg.logging.format, cfg.logging.access_log) == ("debug", "json", True)
    with pytest.raises(ConfigError, match=r"logging\.format"):
        build_config({"keys": {"client": ["k" * 8]}, "logging": {"format": "xml"}})


def test_json_keeps_every_line_one_object_for_awkward_values(stream: io.StringIO) -> None:
    logs.configure(logs.LogSettings(format="json"), stream=stream)
    log = logging.getLogger("errand.test")
    log.warning("lone \ud800 surrogate", extra={"request_id": "req_s", "when": object()})
    (surrogate,) = (json.loads(line) for line in lines(stream))
    assert surrogate["request_id"] == "req_s" and surrogate["message"] == "lone \ud800 surrogate"
    assert surrogate["when"].startswith("<object object")


def test_an_error_is_in_the_stream_when_the_call_returns(stream: io.StringIO) -> None:
    logs.configure(logs.LogSettings(format="text"), stream=stream)
    logging.getLogger("errand.test").info("accepted", extra={"request_id": "req_e"})
    logging.getLogger("errand.test").error("failed", extra={"request_id": "req_e"})
    assert stream.getvalue().splitlines()[-1].endswith("ERROR errand.test [req_e] failed")
