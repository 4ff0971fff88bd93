"""`errand init`: the starter files of a new formation (commented config, agent stub, trigger).

The templates are plain strings so that what a user gets is readable here, as they will read it.
Keys are generated per formation and stored as `${ENV:-default}` defaults, so the environment
still overrides them; `errand init` prints them once.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from pathlib import Path

FORMATION_FILE = "formation.yaml"
AGENT_FILE = "my_agent.py"
TRIGGER_FILE = "triggers/github-issue.md"

FORMATION_TEMPLATE = """\
# errand formation "{name}", written by `errand init`.
# Start it:   errand serve --config formation.yaml    (API + workers, http://127.0.0.1:8001)
# Every key is optional unless marked; unknown keys and bad values are rejected at start, naming
# the key. Any string may use ${{VAR}} or ${{VAR:-default}}: the value comes from the environment.
name: {name}

# API keys. Callers send `X-Muxi-Client-Key: <client key>`; `X-Muxi-Admin-Key` grants admin
# (sees every user's requests). At least one key is required, each 8+ characters.
# The defaults below were generated for this formation and printed once by `errand init`;
# set ERRAND_CLIENT_KEY / ERRAND_ADMIN_KEY to override them, and keep this file private.
keys:
  client: ["${{ERRAND_CLIENT_KEY:-{client_key}}}"]
  admin: ["${{ERRAND_ADMIN_KEY:-{admin_key}}}"]
  # viewer: ["${{ERRAND_VIEWER_KEY}}"]     # read-only: the console (/ui) and every GET; changes 403
  # metrics: ["${{ERRAND_METRICS_KEY}}"]   # may read /metrics only (see metrics.require_key)

# Where requests live. SQLite needs no server (a relative path is relative to this folder);
# PostgreSQL (postgresql://user:pass@host/db) lets many API and worker processes share the work.
storage:
  url: "${{ERRAND_STORAGE_URL:-sqlite:///errand.db}}"
  sqlite_synchronous: full    # full: fsync before every 202 (survives power loss); normal: faster
  # pool_size: 10             # PostgreSQL connections per process (+1 LISTEN, +1 worker locks)
  # sqlite_busy_timeout_seconds: 5   # a write waits this long for another process's lock, then 503

async:
  mode: auto                  # auto | sync | async: what a request that does not say gets
  threshold_seconds: 30       # auto: go async when the estimated duration is at least this
  # sync_wait_seconds: 30     # a sync call answers 202 (work goes on) after this; default: threshold
  webhook_url: null           # a default webhook for every request (makes requests async)
  # webhook_secret: "${{ERRAND_WEBHOOK_SECRET}}"   # HMAC secret webhooks are signed with.
  #   Default: a whsec_ secret generated once for this database and shared by every process on it
  #   (print it with `errand webhook-secret`); never the admin key. MUXI receivers that verify
  #   with the admin key keep working with the admin key line's value, i.e.
  #   webhook_secret: "${{ERRAND_ADMIN_KEY:-{admin_key}}}"
  webhook_retries: 3          # more tries after a failed delivery (exponential backoff, jitter)
  webhook_timeout: 10         # seconds per delivery attempt
  # webhook_initial_delay: 1   # first retry after ~1 s, then doubling (+-25% jitter)
  # webhook_max_delay: 1h      # cap on the wait between two retries
  # webhook_concurrency: 32    # webhook POSTs in flight at once per process
  # webhook_allow_hosts: [localhost]   # private/loopback webhook hosts are refused unless listed
  result_ttl: 24h             # finished results stay readable this long, then answer 410
  # purge_interval: 5m         # how often expired results are deleted (410 holds before that)
  # max_result_bytes: 10485760  # an agent result larger than this (as JSON) fails the request

workflow:
  task_timeout: 300           # seconds per attempt; a longer attempt fails (and may be retried)
  retry: {{max_attempts: 3, initial_delay: 1.0, max_delay: 60.0, backoff_factor: 2.0}}

workers:
  concurrency: 64             # requests run at once per worker process (sync agents: as many threads)
  # block_warning_seconds: 1.0  # log the stack of an agent that blocks the event loop this long (0: off)
  # kill_grace_seconds: 5.0     # isolation: process agents: SIGTERM, then SIGKILL this much later
  lease_seconds: 30           # a hung or cut-off worker's request is taken over after this
  # liveness_interval: 1      # s between looks for dead workers (taken over at once); 0: off

# limits:                     # scheduling, enforced in the database across every process
  # fair: true                # round-robin across users (or a request's fairness_key); false: oldest first
  # max_running: null         # requests running at once in the whole formation
  # max_running_per_user: null  # per user (client key + user id)
  # max_queued_per_user: null   # pending per user; more answers 429 with Retry-After
  # queue_full_retry_after: 5   # the Retry-After of that 429, seconds
  # priority_aging_seconds: 60  # waiting this long is worth one priority level (1 first .. 5)
  # weights: {{}}               # fairness-key weights, e.g. {{"tenant-a": 2}}: two turns per round

# schedules:                  # the scheduler (POST /v1/schedules, `schedule:` in a trigger's front matter)
  # enabled: true             # run it beside this process's workers (each fire time fires once in all)
  # tick: 1s                  # look for due schedules this often
  # max_failures: 5           # disable a schedule after this many consecutive failed firings (0: never)
  # misfire_grace: 60s        # a fire time later than this is missed (catch_up: skip | one)

server:
  max_body_bytes: 262144      # larger request bodies answer 413
  # max_wait_seconds: 60      # longest ?wait= long-poll
  # max_connections: 4096     # open HTTP connections; at the cap the oldest idle one is closed
  #                           #   (503 when all are busy); lowered to fit the open-file limit
  # keepalive_timeout_seconds: 5   # a connection with no request in progress is closed after this
  # header_timeout_seconds: 10     # request line + headers must arrive within this, else 408
  # max_header_bytes: 65536        # request line + headers; larger answers 431
  # max_json_depth: 64            # deeper request bodies answer 422 naming the field

logging:                      # stderr; `errand serve|worker --log-level/--log-format` override
  level: info                 # debug | info (a line per step of every request) | warning | error
  format: text                # text: time level logger [request_id] message; json: one object a line
  # access_log: true          # one line per HTTP request, with its request id
# OpenTelemetry traces (pip install 'errand[otel]'). Off unless OTEL_EXPORTER_OTLP_ENDPOINT or
# OTEL_TRACES_EXPORTER is set (OTEL_SDK_DISABLED=true turns it off); the other OTEL_* variables
# (headers, sampler, batch timings, resource) are read by the SDK. A caller's traceparent is
# stored with each request either way.
# tracing:
#   enabled: true             # default: follow the OTEL_* variables above
#   service_name: errand      # default: OTEL_SERVICE_NAME, else errand
#   exporter: otlp            # default: OTEL_TRACES_EXPORTER, else otlp (OTLP/HTTP); or console
# ui:                           # the web console at /ui: sign in with an admin or viewer key
#   enabled: true               # `errand serve --no-ui` turns it off for one run
#   session_ttl_seconds: 28800  # a sign-in lasts this long (the cookie's Max-Age)
#   signin_failures_per_minute: 10  # per client address, then 429
# metrics:                      # GET /metrics (Prometheus); names in the README
#   require_key: true           # need an admin or keys.metrics key (Authorization: Bearer);
#                               #   unset: open on a loopback address only, else required
#   cache_seconds: 2            # queue gauges read from the database at most this often
#   timeout_seconds: 1          # a slower read answers the last values, errand_metrics_stale 1
#   port: 9464                  # `errand worker` serves /metrics here (unset: none)
#   host: 127.0.0.1
# a2a:                          # A2A (Agent2Agent) server: /.well-known/agent-card.json, POST /a2a
#   enabled: true               # served when pip install 'errand[a2a]'; false: not served

agents:
  # An offline demo that simulates multi-step research with progress; no model, no API key.
  - id: researcher
    description: "DEMO: simulates a multi-step research task with progress (no real research)"
    handler: errand.agents.demo:run
    default: true             # used when a request names no agent_id (else the first agent)
    options: {{step_seconds: 0.6}}
  # Your own Python agent: my_agent.py in this folder (handler: module:function).
  - id: my-agent
    description: An example Python agent to edit
    handler: my_agent:run
    # max_concurrency: 4      # at most this many of its requests run at once, across processes
    # task_timeout: 60        # its own attempt timeout (default: workflow.task_timeout)
    # retry: {{max_attempts: 5}}  # its own retry policy (default: workflow.retry)
    # expected_seconds: 2     # auto mode's estimate until it has run enough to have a history
    # isolation: process      # run each attempt in a child process: cancel/timeout kill it, a crash
    #                         # (segfault, os._exit, OOM) fails or retries only that request
  # An LLM agent (any OpenAI-compatible endpoint):
  # - id: assistant
  #   description: Answers questions
  #   model:
  #     provider: openai
  #     name: gpt-4o-mini
  #     base_url: "${{OPENAI_BASE_URL:-https://api.openai.com/v1}}"
  #     api_key: "${{OPENAI_API_KEY}}"
  #   system_prompt: You are a careful assistant.
"""

AGENT_TEMPLATE = '''\
"""An example errand agent: `handler: my_agent:run` in formation.yaml.

errand calls `run(message, ctx)` in a worker, for one attempt. Return a string (the result text)
or a dict with at least "text". Raise errand.TransientError to be retried with backoff,
errand.PermanentError to fail at once.
"""

from __future__ import annotations

from typing import Any

from errand.agents.base import RunContext


async def run(message: str, ctx: RunContext) -> dict[str, Any]:
    ctx.progress(percent=0, message="Reading the message", step=1, total_steps=2)
    await ctx.checkpoint()  # raises if the request was cancelled meanwhile
    words = message.split()
    ctx.progress(percent=50, message="Counting words", step=2, total_steps=2)
    await ctx.checkpoint()
    return {"text": f"You sent {len(words)} words.", "words": len(words)}
'''

TRIGGER_TEMPLATE = """\
---
agent: researcher
use_async: true
description: Triage a newly opened GitHub issue (point the repository's issues webhook here)
---
A new issue was opened in ${{ data.repository.full_name }} by ${{ data.issue.user.login }}.

Title: ${{ data.issue.title }}

${{ data.issue.body }}

Say whether it is a bug, a feature request or a question, summarize it in two sentences and
suggest labels.
"""


@dataclass(frozen=True, slots=True)
class InitResult:
    directory: Path
    written: tuple[Path, ...]
    client_key: str
    admin_key: str


def formation_name(directory: Path) -> str:
    """A valid formation name from the folder name (letters, digits, `_.-`)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", directory.resolve().name).strip("-.")
    return name or "errand"


def existing(directory: Path) -> list[Path]:
    """The starter files already present, which init would overwrite."""
    return [directory / f for f in (FORMATION_FILE, AGENT_FILE, TRIGGER_FILE) if (directory / f).exists()]


def write_formation(directory: Path) -> InitResult:
    """Write the starter files into `directory` (created if needed), with fresh keys."""
    client_key = "ck_" + secrets.token_urlsafe(24)
    admin_key = "ak_" + secrets.token_urlsafe(24)
    files = {
        FORMATION_FILE: FORMATION_TEMPLATE.format(
            name=formation_name(directory), client_key=client_key, admin_key=admin_key
        ),
        AGENT_FILE: AGENT_TEMPLATE,
        TRIGGER_FILE: TRIGGER_TEMPLATE,
    }
    written = []
    for rel, text in files.items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    (directory / FORMATION_FILE).chmod(0o600)  # it holds keys
    return InitResult(directory, tuple(written), client_key, admin_key)
