"""The pure parts of the console's session checks: the cookie digest and the same-host rule."""

from __future__ import annotations

import hashlib

import pytest

from errand.api.session_auth import same_host, session_hash


def test_the_store_keeps_the_sha256_of_the_cookie_not_the_cookie() -> None:
    assert session_hash("abc") == hashlib.sha256(b"abc").hexdigest()
    assert session_hash("abc") != "abc"


@pytest.mark.parametrize(
    ("origin", "host", "same"),
    [
        ("http://127.0.0.1:8001", "127.0.0.1:8001", True),
        ("https://errand.example.com", "errand.example.com", True),  # TLS ended at a proxy
        ("https://Errand.Example.com", "errand.example.com", True),
        ("http://127.0.0.1:8002", "127.0.0.1:8001", False),
        ("https://evil.example", "errand.example.com", False),
        ("https://errand.example.com.evil.example", "errand.example.com", False),
        ("null", "errand.example.com", False),
        ("", "errand.example.com", False),
        ("http://[::1", "::1", False),
    ],
)
def test_same_host(origin: str, host: str, same: bool) -> None:
    assert same_host(origin, host) is same
