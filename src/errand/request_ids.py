"""Request ids: a generated id is global; a client-chosen one is unique per owner.

The contract says a client-chosen `request_id` is unique per owner (client key + end user), so
two owners may choose the same one, and choosing an id another owner holds must neither fail
nor tell that it exists. The store keeps one global primary key, so a chosen id is stored
*qualified*: `<chosen>~<scope>`, where scope is 12 hex digits of the owner's hash (`~` cannot
occur in a chosen or a generated id). Clients only ever see and send the chosen part; the
document shows `public_id()`. A path id is resolved as the caller's: first as written (every
generated id, a qualified id), then qualified with the caller's scope (see `lookup_ids`).

Admins see every owner's requests, so their documents show the stored (qualified) id, which
is how an admin addresses one client-chosen id among several owners' equal ones.
"""

from __future__ import annotations

import hashlib
import re

SCOPE_MARK = "~"
SCOPE_HEX = 12
CHOSEN_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
"""Client-chosen request ids: 1-128 url-safe characters, starting with a letter or digit."""
_ANY_ID = re.compile(CHOSEN_PATTERN.removesuffix("$") + rf"(?:{SCOPE_MARK}[0-9a-f]{{{SCOPE_HEX}}})?$")


def is_request_id(text: str) -> bool:
    """Could `text` be a stored or a public id at all? (If not, no lookup is needed: 404.)"""
    return _ANY_ID.match(text) is not None


def owner_scope(owner: str, user_id: str) -> str:
    """The owner's scope: 12 hex digits of sha256(owner, user), stable across restarts."""
    return hashlib.sha256(f"{owner}\x00{user_id}".encode()).hexdigest()[:SCOPE_HEX]


def stored_id(chosen: str, owner: str, user_id: str) -> str:
    """The id a client-chosen id is stored under: unique per owner."""
    return f"{chosen}{SCOPE_MARK}{owner_scope(owner, user_id)}"


def public_id(stored: str) -> str:
    """The id the owner knows a request by (a generated id is its own public id)."""
    return stored.partition(SCOPE_MARK)[0]


def lookup_ids(path_id: str, owner: str, user_id: str) -> tuple[str, ...]:
    """The stored ids a caller's path id may name, in the order they are tried: as written,
    then as the caller's own chosen id (not for an id that is already qualified)."""
    if SCOPE_MARK in path_id:
        return (path_id,)
    return (path_id, stored_id(path_id, owner, user_id))
