"""Webhook URL policy: only http(s) to public addresses, unless the host is explicitly allowed.

A webhook URL is supplied by an API client, and errand POSTs to it from inside the operator's
network: without this check any client could make errand reach 127.0.0.1, the cloud metadata
service or an internal admin panel (SSRF). The check runs at submit (422 before anything is
stored) and again at send time, because DNS answers change; `resolve_target` also returns the
addresses it approved so the dispatcher can connect to exactly those (no rebinding between the
check and the connection).

A refusal names the class of address (loopback, private, link-local, ...), never the address a
name resolved to: the message is the client's, and an address would make the guard a DNS oracle
for the operator's internal names.

Numeric host spellings that `inet_aton` (and therefore `getaddrinfo`) accept -- 2130706433,
0177.0.0.1, 0x7f.1 -- are normalised here without DNS, so they cannot slip past as "names".
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

from errand.errors import InvalidRequest, UnresolvableHost

__all__ = [
    "Resolver",
    "Target",
    "UnresolvableHost",
    "check_url_async",
    "resolve_target",
    "system_resolver",
]

Resolver = Callable[[str, int], Iterable[str]]
"""(host, port) -> IP address strings. The default asks the system (socket.getaddrinfo)."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_DEFAULT_PORTS = {"http": 80, "https": 443}
_FORBIDDEN_CHARS = re.compile(r"[\x00-\x20\x7f\\]")
_NUMERIC_HOST = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+))*\.?$")

_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, Oracle
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure WireServer (a public address, so listed by hand)
        "192.0.0.192",  # Oracle Cloud (legacy)
    )
)
_SHARED = ipaddress.ip_network("100.64.0.0/10")

RESOLVER_THREADS = 8
_RESOLVER_POOL = ThreadPoolExecutor(max_workers=RESOLVER_THREADS, thread_name_prefix="errand-dns")
"""Lookups run here, never in asyncio's default pool: code in that pool (an async agent's
`asyncio.to_thread`, say) must not make a submit's URL check or a webhook send wait."""
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


@dataclass(frozen=True, slots=True)
class Target:
    """An approved URL: its host (lower case, as written), port and the approved addresses."""

    host: str
    port: int
    addresses: tuple[str, ...]
    allowed: bool  # listed in allow_hosts: the address policy was waived


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for host (A and AAAA), in its preference order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _inet_part(part: str) -> int:
    """One inet_aton component: 0x.. hex, 0.. octal, else decimal."""
    if part.startswith("0x"):
        return int(part, 16)
    if len(part) > 1 and part.startswith("0"):
        return int(part, 8)
    return int(part)


def _parse_numeric_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The address inet_aton would read from `host` (1-4 parts, decimal/octal/hex), else None.

    Raises InvalidRequest for numeric-looking hosts no resolver could use (e.g. 1.2.3.4.5).
    """
    if not _NUMERIC_HOST.match(host):
        return None
    parts = host.rstrip(".").split(".")
    if len(parts) > 4:
        raise InvalidRequest(f"webhook_url host {host!r} is not a valid IP address")
    try:
        values = [_inet_part(p) for p in parts]
    except ValueError:
        raise InvalidRequest(f"webhook_url host {host!r} is not a valid IP address") from None
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (5 - len(values)):
        raise InvalidRequest(f"webhook_url host {host!r} is not a valid IP address")
    number = 0
    for v in head:
        number = number << 8 | v
    return ipaddress.IPv4Address(number << (8 * (5 - len(values))) | last)


def _literal(host: str) -> IPAddress | None:
    """The IP address written in the URL, if the host is an address rather than a name."""
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            raise InvalidRequest(f"webhook_url host {host!r} is not a valid IPv6 address") from None
    return _parse_numeric_ipv4(host)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """An IPv4 address an IPv6 address stands for (mapped, NAT64, 6to4), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def refusal_reason(ip: IPAddress) -> str | None:
    """Why errand must not connect to `ip` on a client's behalf, or None when it is public."""
    if ip in _METADATA:
        return "a cloud metadata address"
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            inner = refusal_reason(embedded)
            return f"an IPv6 form of {inner}" if inner else None
    checks = (
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED, "a shared address (100.64.0.0/10)"),
        (ip.is_reserved, "a reserved address"),
        (ip.is_private, "a private address"),
        (not ip.is_global, "not a publicly routable address"),
    )
    return next((what for hit, what in checks if hit), None)


def _split(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an acceptable URL shape; InvalidRequest otherwise."""
    if not isinstance(url, str) or not url:
        raise InvalidRequest("webhook_url must be a non-empty string")
    if len(url) > 2048:
        raise InvalidRequest("webhook_url is too long (max 2048 characters)")
    if _FORBIDDEN_CHARS.search(url):
        raise InvalidRequest("webhook_url must not contain spaces, control characters or backslashes")
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. a malformed [IPv6] host
        raise InvalidRequest(f"webhook_url is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise InvalidRequest(f"webhook_url must use http or https, not {scheme or 'no scheme'!r}")
    if "@" in parts.netloc:
        raise InvalidRequest("webhook_url must not contain credentials (user:password@)")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise InvalidRequest("webhook_url must name a host")
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError:
        raise InvalidRequest("webhook_url has an invalid port") from None
    return scheme, host, port


def _allowed(host: str, port: int, allow_hosts: Sequence[str]) -> bool:
    """Is `host` (or `host:port`) listed? IPv6 entries may be bracketed; case is ignored."""
    bracketed = f"[{host}]" if ":" in host else host
    wanted = {host, bracketed, f"{bracketed}:{port}"}
    return any(entry.strip().lower().rstrip(".") in wanted for entry in allow_hosts)


def _resolve(host: str, port: int, resolve: Resolver) -> list[IPAddress]:
    try:
        answers = list(resolve(host, port))
    except (OSError, UnicodeError) as exc:
        raise UnresolvableHost(f"webhook_url host {host!r} cannot be resolved ({exc})") from None
    addresses: list[IPAddress] = []
    for answer in answers:
        try:
            addresses.append(ipaddress.ip_address(answer.split("%", 1)[0]))
        except ValueError:
            raise UnresolvableHost(f"webhook_url host {host!r} resolved to a non-address") from None
    if not addresses:
        raise UnresolvableHost(f"webhook_url host {host!r} has no addresses")
    return addresses


def resolve_target(url: str, allow_hosts: Sequence[str], *, resolve: Resolver = system_resolver) -> Target:
    """Check `url` and return the addresses it may be delivered to.

    Refused (InvalidRequest): a scheme other than http/https, no host, credentials in the URL,
    or any resolved address that is loopback, private, link-local, multicast, reserved,
    unspecified, shared (100.64/10), cloud metadata, or an IPv6 form of one of those -- unless
    the host or host:port is in `allow_hosts`. One bad address refuses the whole host: the
    connection could land on any of them. A host without addresses raises UnresolvableHost.
    """
    _, host, port = _split(url)
    allowed = _allowed(host, port, allow_hosts)
    literal = _literal(host)
    addresses = [literal] if literal is not None else _resolve(host, port, resolve)
    if not allowed:
        for ip in addresses:
            reason = refusal_reason(ip)
            if reason is not None:
                verb = "is" if literal is not None else "resolves to"
                raise InvalidRequest(
                    f"webhook_url host {host!r} {verb} {reason}; list it in async.webhook_allow_hosts "
                    "to allow it",
                    details={"field": "webhook_url"},
                )
    return Target(host=host, port=port, addresses=tuple(str(a) for a in addresses), allowed=allowed)


async def check_url_async(
    url: str, allow_hosts: Sequence[str], *, resolve: Resolver = system_resolver
) -> None:
    """Raise InvalidRequest unless errand may POST to `url` (see resolve_target); the resolver
    runs in a thread of its own pool, so a slow DNS answer never blocks the event loop and
    busy agents never delay the answer."""
    await resolve_target_async(url, allow_hosts, resolve=resolve)


async def resolve_target_async(
    url: str, allow_hosts: Sequence[str], *, resolve: Resolver = system_resolver
) -> Target:
    """resolve_target off the event loop (DNS lookups block), in the resolver's own threads."""
    loop = asyncio.get_running_loop()
    check = functools.partial(resolve_target, url, allow_hosts, resolve=resolve)
    return await loop.run_in_executor(_RESOLVER_POOL, check)
