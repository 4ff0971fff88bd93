"""Each ErrandError class's HTTP status, and the class a bare HTTP status stands for.

The one table of errors and statuses (errors.py itself knows no HTTP). The server answers by it
(api/errors.py) and documents each route's statuses by it (api/openapi.py); read backwards, it
names an error answer that has no errand envelope -- Starlette's routing 404/405 on the server,
a proxy's 502 in the SDK -- so both sides class it alike. A leaf: the SDK imports it without
the server.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from errand import errors
from errand.errors import ErrandError

__all__ = ["BY_STATUS", "STATUS", "status_of_class"]

STATUS: Final[Mapping[type[ErrandError], int]] = MappingProxyType(
    {
        errors.MalformedBody: 400,
        errors.MethodNotAllowed: 405,
        errors.InvalidRequest: 422,
        errors.Unauthorized: 401,
        errors.Forbidden: 403,
        errors.NotFound: 404,
        errors.Conflict: 409,
        errors.RequestExpired: 410,
        errors.PayloadTooLarge: 413,
        errors.HeadersTooLarge: 431,
        errors.RequestTimeout: 408,
        errors.RateLimited: 429,
        errors.ServiceUnavailable: 503,
        errors.ErrandError: 500,
    }
)
"""The one mapping of error classes to HTTP statuses (most specific class wins)."""

BY_STATUS: Final[Mapping[int, type[ErrandError]]] = MappingProxyType(
    {status: cls for cls, status in STATUS.items() if status not in (400, 404, 500)}
    | {
        400: errors.InvalidRequest,
        404: errors.ResourceNotFound,
        502: errors.ServiceUnavailable,
        504: errors.ServiceUnavailable,
    }
)
"""The class an error answer without errand's envelope stands for, by its status alone: a bare
400 is any invalid request, a bare 404 an unknown route or resource (never a request's id), a
gateway's 502/504 the service out of reach. A status missing here is the caller's to default."""


def status_of_class(cls: type[ErrandError]) -> int:
    """HTTP status of an errand error class: the first class of its MRO found in STATUS."""
    for klass in cls.__mro__:
        status = STATUS.get(klass)
        if status is not None:
            return status
    return 500  # pragma: no cover - ErrandError itself is in the table
