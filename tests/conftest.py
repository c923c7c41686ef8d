"""Shared test setup: everything runs offline.

`HF_HUB_OFFLINE` stops Hugging Face clients from reaching the hub. The `no_network` fixture goes further for the
tests that run Inspect end to end: any attempt to open a connection to a non-local address fails the test with
the address named, so a code path that would download (a tokenizer, a model, a data set) is caught, not hidden
by a cache.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

_LOCAL_HOSTS = ("127.0.0.1", "::1", "localhost", "0.0.0.0")


def _is_local(address: Any) -> bool:
    if isinstance(address, tuple) and address:
        return str(address[0]) in _LOCAL_HOSTS
    return isinstance(address, str | bytes)  # AF_UNIX paths are local


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Refuse connections to non-local addresses; yields the list of addresses that were attempted."""
    attempts: list[Any] = []
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        if not _is_local(address):
            attempts.append(address)
            raise OSError(f"test is offline: connection to {address!r} refused")
        return connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> Any:
        if not _is_local(address):
            attempts.append(address)
            raise OSError(f"test is offline: connection to {address!r} refused")
        return connect_ex(self, address)

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and str(host) not in _LOCAL_HOSTS:
            attempts.append(host)
            raise OSError(f"test is offline: name lookup of {host!r} refused")
        return getaddrinfo(host, *args, **kwargs)

    getaddrinfo = socket.getaddrinfo
    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    yield attempts
    assert not attempts, f"the test tried to reach the network: {attempts}"
