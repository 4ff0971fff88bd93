"""FileGuard: notices when the database path no longer names the files errand has open.

SQLite keeps writing to a file descriptor: unlink (or replace) `errand.db`, its `-wal` or its
`-shm` while errand runs, and commits still succeed, into a file nothing will ever open again
(after a restart every accepted id is gone). So after each group commit, before any caller is
told "done", the writer compares the (st_dev, st_ino) each path names now with the one it named
when first seen: three stat calls per commit, not per request. Once they differ the store
refuses every read and write (StoreUnavailable: 503, `/ready` 503) until it is reopened.
"""

from __future__ import annotations

import logging
import os

from errand.errors import StoreUnavailable

log = logging.getLogger(__name__)

SUFFIXES = ("", "-wal", "-shm")
"""The database file and the two files WAL mode keeps beside it for as long as it is open."""


class FileGuard:
    """The identity of the database's files, as first seen by the writer, and the verdict."""

    def __init__(self, path: str) -> None:
        self._paths = tuple(path + suffix for suffix in SUFFIXES)
        self._known: dict[str, tuple[int, int]] = {}
        self.broken: str | None = None
        """Why the store refuses to serve, once a path stopped naming its file."""

    def refuse_if_broken(self) -> None:
        """StoreUnavailable once the files were found replaced (no system call)."""
        if self.broken is not None:
            raise StoreUnavailable(self.broken)

    def check(self) -> None:
        """Record the files not seen yet; StoreUnavailable if one seen before is gone or another.
        The -wal and -shm files appear with the first transaction and stay while a connection
        is open (the writer's always is), so a missing one that was there is a deletion."""
        self.refuse_if_broken()
        for path in self._paths:
            try:
                st = os.stat(path)
            except FileNotFoundError:
                now = None
            except OSError as exc:
                raise StoreUnavailable(f"sqlite: cannot stat {path!r}: {exc.strerror}") from exc
            else:
                now = (st.st_dev, st.st_ino)
            known = self._known.get(path)
            if known is None:
                if now is not None:
                    self._known[path] = now
            elif now != known:
                self._break(path, "deleted" if now is None else "replaced")

    def _break(self, path: str, how: str) -> None:
        self.broken = (
            f"sqlite: {path!r} was {how} while errand had it open; what is written now would be "
            "lost, so the store refuses reads and writes until errand is restarted"
        )
        log.error("%s", self.broken)
        raise StoreUnavailable(self.broken)
