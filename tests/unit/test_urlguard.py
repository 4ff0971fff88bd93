"""errand.delivery.urlguard: every refused address class, numeric spellings, the allow list."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from errand.delivery.urlguard import (
    check_url_async,
    refusal_reason,
    resolve_target,
)
from errand.errors import InvalidRequest, UnresolvableHost


class Resolver:
    """An injected resolver: a fixed table, and a record of every lookup (to prove none happened)."""

    def __init__(self, table: dict[str, list[str]] | None = None) -> None:
        self.table = table or {}
        self.calls: list[str] = []

    def __call__(self, host: str, port: int) -> Iterable[str]:
        self.calls.append(host)
        if host not in self.table:
            raise OSError(f"unknown host {host}")
        return self.table[host]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/hook", "loopback"),
        ("http://127.8.9.10:8080/hook", "loopback"),
        ("http://[::1]/hook", "loopback"),
        ("http://[::ffff:127.0.0.1]/hook", "IPv6 form of a loopback"),
        ("http://[::ffff:7f00:1]/hook", "IPv6 form of a loopback"),
        ("http://10.1.2.3/hook", "private"),
        ("http://172.16.5.4/hook", "private"),
        ("http://172.31.255.255/hook", "private"),
        ("http://192.168.1.1/hook", "private"),
        ("http://[fd12::1]/hook", "private"),
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("http://[fd00:ec2::254]/", "cloud metadata"),
        ("http://100.100.100.200/", "cloud metadata"),
        ("http://169.254.1.1/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://100.64.0.1/", "shared"),
        ("http://100.127.255.254/", "shared"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://[::]/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
        ("http://239.255.255.250/", "multicast"),
        ("http://[ff02::1]/", "multicast"),
        ("http://240.0.0.1/", "reserved"),
        ("http://192.0.2.1/", "private"),  # TEST-NET: documentation only
        ("http://[64:ff9b::a00:1]/", "IPv6 form of a private"),  # NAT64 form of 10.0.0.1
        ("http://[2002:7f00:1::]/", "IPv6 form of a loopback"),  # 6to4 form of 127.0.0.1
        ("http://2130706433/", "loopback"),  # decimal 127.0.0.1
        ("http://0177.0.0.1/", "loopback"),  # octal
        ("http://0x7f000001/", "loopback"),  # hex
        ("http://0x7f.1/", "loopback"),  # hex + short form
        ("http://127.1/", "loopback"),  # short form
        ("http://0/", "unspecified"),
        ("http://017700000001/", "loopback"),  # octal as one number
        ("http://0xa9.0xfe.0xa9.0xfe/", "cloud metadata"),  # hex 169.254.169.254
        ("http://127.0.0.1./", "loopback"),  # trailing dot
    ],
)
def test_refused_address_literals_without_dns(url: str, reason: str) -> None:
    resolver = Resolver()
    with pytest.raises(InvalidRequest) as info:
        resolve_target(url, [], resolve=resolver)
    assert reason in info.value.message
    assert "webhook_allow_hosts" in info.value.message
    assert resolver.calls == []  # literals never reach DNS


def test_localhost_resolving_to_loopback_is_refused() -> None:
    with pytest.raises(InvalidRequest, match=r"resolves to a loopback address;"):
        resolve_target("http://localhost:9000/hook", [])  # the system resolver: /etc/hosts, no network


def test_injected_resolver_mapping_a_name_to_loopback_is_refused() -> None:
    resolver = Resolver({"hooks.example.com": ["93.184.216.34", "127.0.0.1"]})
    with pytest.raises(InvalidRequest, match=r"resolves to a loopback address;"):
        resolve_target("https://hooks.example.com/x", [], resolve=resolver)
    assert resolver.calls == ["hooks.example.com"]


def test_a_name_resolving_to_public_addresses_passes_and_returns_them() -> None:
    resolver = Resolver({"hooks.example.com": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]})
    target = resolve_target("https://Hooks.Example.com./x", [], resolve=resolver)
    assert target.host == "hooks.example.com"
    assert target.port == 443
    assert target.addresses == ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946")
    assert target.allowed is False


def test_public_ip_literal_passes_without_any_lookup() -> None:
    resolver = Resolver()
    resolve_target("http://93.184.216.34/hook", [], resolve=resolver)
    resolve_target("https://[2606:4700:4700::1111]:8443/hook", [], resolve=resolver)
    assert resolver.calls == []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/x", "http or https"),
        ("file:///etc/passwd", "http or https"),
        ("gopher://example.com/", "http or https"),
        ("example.com/hook", "http or https"),
        ("http:///nohost", "must name a host"),
        ("http://user:pw@93.184.216.34/", "credentials"),
        ("http://user@93.184.216.34/", "credentials"),
        ("http://93.184.216.34:99999/", "invalid port"),
        ("http://93.184.216.34/a b", "spaces"),
        ("http://93.184.216.34\\@127.0.0.1/", "backslash"),
        ("http://93.184.216.34/\n", "control"),
        ("http://1.2.3.4.5/", "not a valid IP"),
        ("http://08.0.0.1/", "not a valid IP"),
        ("http://256.1.1.1/", "not a valid IP"),
        ("http://[::1::]/", "not a valid URL"),
        ("http://[zz]/", "not a valid URL"),
        ("", "non-empty"),
        ("http://93.184.216.34/" + "a" * 2100, "too long"),
    ],
)
def test_bad_url_shapes(url: str, message: str) -> None:
    resolver = Resolver()
    with pytest.raises(InvalidRequest, match=message):
        resolve_target(url, [], resolve=resolver)
    assert resolver.calls == []


def test_unresolvable_host_is_an_invalid_request() -> None:
    with pytest.raises(UnresolvableHost, match="cannot be resolved") as info:
        resolve_target("https://nowhere.invalid/x", [], resolve=Resolver())
    assert isinstance(info.value, InvalidRequest)
    with pytest.raises(UnresolvableHost, match="no addresses"):
        resolve_target("https://empty.example/x", [], resolve=Resolver({"empty.example": []}))


def test_allow_hosts_by_host_and_by_host_port() -> None:
    resolver = Resolver({"localhost": ["127.0.0.1"], "hooks.internal": ["10.0.0.7"]})
    resolve_target("http://127.0.0.1:8080/hook", ["127.0.0.1"], resolve=resolver)
    resolve_target("http://localhost:8080/hook", ["LOCALHOST"], resolve=resolver)
    resolve_target("http://hooks.internal/hook", ["hooks.internal:80"], resolve=resolver)
    resolve_target("http://[::1]:9000/hook", ["[::1]:9000"], resolve=resolver)
    resolve_target("http://[::1]:9000/hook", ["::1"], resolve=resolver)
    target = resolve_target("http://localhost:8080/hook", ["localhost:8080"], resolve=resolver)
    assert target.allowed and target.addresses == ("127.0.0.1",)
    with pytest.raises(InvalidRequest, match="loopback"):
        resolve_target("http://localhost:8081/hook", ["localhost:8080"], resolve=resolver)  # other port
    with pytest.raises(InvalidRequest, match="loopback"):
        resolve_target("http://2130706433/", ["127.0.0.1"], resolve=resolver)  # matched as written
    with pytest.raises(InvalidRequest, match="http or https"):
        resolve_target("ftp://localhost/", ["localhost"], resolve=resolver)  # the scheme rule still holds


def test_refusal_reason_of_public_addresses_is_none() -> None:
    import ipaddress

    for text in ("93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"):
        assert refusal_reason(ipaddress.ip_address(text)) is None
    assert refusal_reason(ipaddress.ip_address("168.63.129.16")) == "a cloud metadata address"


async def test_async_variant_runs_the_resolver_off_the_loop() -> None:
    import threading

    seen: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        seen.append(threading.current_thread().name)
        return ["127.0.0.1"]

    with pytest.raises(InvalidRequest, match="loopback"):
        await check_url_async("http://rebind.example/x", [], resolve=resolver)
    assert seen and seen[0] != threading.main_thread().name
    await check_url_async("http://rebind.example/x", ["rebind.example"], resolve=resolver)
