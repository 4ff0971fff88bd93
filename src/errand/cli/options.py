"""The command-line options the `errand` commands share (typer `Annotated` aliases).

Client options also read the environment (`envvar=`): typer does, as a composition root may.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from errand.client.base import DEFAULT_URL as CLIENT_DEFAULT_URL
from errand.models import DEFAULT_USER_ID

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="formation.yaml (default: $ERRAND_CONFIG, else ./formation.yaml)"),
]
UrlOpt = Annotated[str, typer.Option("--url", envvar="ERRAND_URL", help="errand server URL.")]
KeyOpt = Annotated[
    str | None,
    typer.Option("--key", envvar="ERRAND_CLIENT_KEY", help="Client key (keys.client of the formation)."),
]
AdminOpt = Annotated[
    str | None,
    typer.Option("--admin-key", envvar="ERRAND_ADMIN_KEY", help="Admin key: sees every user's requests."),
]
UserOpt = Annotated[
    str | None,
    typer.Option(
        "--user",
        envvar="ERRAND_USER_ID",
        help=f"The end user the requests belong to (sent as X-Muxi-User-Id; default {DEFAULT_USER_ID!r}, "
        "as for the SDK's Client without user_id). A client key sees only its own user's requests.",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the server's JSON, for programs.")]
TimeoutOpt = Annotated[
    float, typer.Option("--timeout", min=0.0, help="Give up waiting after this many seconds.")
]
RequestIdArg = Annotated[str, typer.Argument(help="Request id (req_...).")]
NoMigrateOpt = Annotated[
    bool,
    typer.Option(
        "--no-migrate",
        help="Do not apply migrations at start (run `errand migrate` first); "
        "until they are applied, /ready answers 503 and work waits.",
    ),
]

LogLevelOpt = Annotated[
    str | None,
    typer.Option("--log-level", help="debug, info, warning or error (default: logging.level, else info)."),
]
LogFormatOpt = Annotated[
    str | None,
    typer.Option("--log-format", help="text or json lines (default: logging.format, else text)."),
]
AccessLogOpt = Annotated[
    bool | None,
    typer.Option(
        "--access-log/--no-access-log", help="One line per HTTP request (default: logging.access_log, on)."
    ),
]

DEFAULT_URL = CLIENT_DEFAULT_URL
ADMIN_KEY_HINT = "set ERRAND_ADMIN_KEY or pass --admin-key"
"""What to do when a command needs the admin key (the server's 401 only says to send a header)."""
"""Where the client commands look for a server unless --url or $ERRAND_URL says otherwise: the
SDK's default, where `errand serve` listens by default."""
