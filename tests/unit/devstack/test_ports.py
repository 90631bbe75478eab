"""Free loopback ports for test servers."""

from __future__ import annotations

import socket

from services.devstack.ports import free_ports


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = free_ports(64)
    assert len(set(ports)) == 64
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in ports]
    try:
        for sock, port in zip(socks, ports, strict=True):
            sock.bind(("127.0.0.1", port))
    finally:
        for sock in socks:
            sock.close()
