"""The PostgreSQL image's pgBackRest helper (k8s/postgres/strata_pgbackrest.py): metrics from
`pgbackrest info` and pg_stat_archiver, their text format, and the bootstrap restore command.
The sidecar against a real repository: tests/integration/critical/test_backup_restore.py."""

from __future__ import annotations

import http.server
import importlib.util
import json
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "k8s" / "postgres" / "strata_pgbackrest.py"
STANZA = "strata-postgresql-critical"


@pytest.fixture(scope="module")
def sb() -> ModuleType:
    spec = importlib.util.spec_from_file_location("strata_pgbackrest", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def backup(kind: str, start: int, stop: int, error: bool = False) -> dict[str, Any]:
    """One entry of `pgbackrest info --output=json` (the fields the sidecar reads)."""
    return {
        "type": kind,
        "error": error,
        "label": f"{start}{kind[0].upper()}",
        "timestamp": {"start": start, "stop": stop},
        "info": {
            "size": 1000 + start,
            "delta": 10,
            "repository": {"size": 500, "delta": 50 + start},
        },
    }


def info(*backups: dict[str, Any], code: int = 0) -> list[dict[str, Any]]:
    return [{"name": STANZA, "status": {"code": code, "message": "ok"}, "backup": list(backups)}]


def test_info_metrics_newest_backup_of_each_type(sb: ModuleType) -> None:
    got = sb.info_metrics(
        STANZA,
        info(backup("full", 100, 160), backup("diff", 200, 230), backup("full", 300, 390),
             backup("diff", 400, 401, error=True)),
    )  # fmt: skip
    lab = f'stanza="{STANZA}"'
    assert got[f"strata_pgbackrest_stanza_status{{{lab}}}"] == 0
    full = f'{lab},type="full"'
    assert got[f"strata_pgbackrest_backups{{{full}}}"] == 2
    assert got[f"strata_pgbackrest_backup_last_completion_timestamp_seconds{{{full}}}"] == 390
    assert got[f"strata_pgbackrest_backup_last_duration_seconds{{{full}}}"] == 90
    assert got[f"strata_pgbackrest_backup_last_size_bytes{{{full}}}"] == 1300
    assert got[f"strata_pgbackrest_backup_last_repository_bytes{{{full}}}"] == 350
    diff = f'{lab},type="diff"'
    # The failed (error) diff does not count: the newest good one ended at 230.
    assert got[f"strata_pgbackrest_backups{{{diff}}}"] == 1
    assert got[f"strata_pgbackrest_backup_last_completion_timestamp_seconds{{{diff}}}"] == 230
    incr = f'{lab},type="incr"'
    assert got[f"strata_pgbackrest_backups{{{incr}}}"] == 0
    assert f"strata_pgbackrest_backup_last_completion_timestamp_seconds{{{incr}}}" not in got


def test_info_metrics_without_the_stanza(sb: ModuleType) -> None:
    assert sb.info_metrics(STANZA, [{"name": "other", "status": {"code": 0}}]) == {
        f'strata_pgbackrest_stanza_status{{stanza="{STANZA}"}}': 99
    }
    missing = sb.info_metrics(STANZA, info(code=1))
    assert missing[f'strata_pgbackrest_stanza_status{{stanza="{STANZA}"}}'] == 1
    assert 1 in sb.CREATE_STANZA_CODES and 5 not in sb.CREATE_STANZA_CODES


def test_archiver_metrics(sb: ModuleType) -> None:
    primary = sb.archiver_metrics(STANZA, "0|42|3|1796148459.5|1796148000\n", 2)
    lab = f'stanza="{STANZA}"'
    assert primary == {
        f"strata_pgbackrest_postgresql_primary{{{lab}}}": 1.0,
        f"strata_pgbackrest_archiver_archived_total{{{lab}}}": 42.0,
        f"strata_pgbackrest_archiver_failed_total{{{lab}}}": 3.0,
        f"strata_pgbackrest_archiver_last_archived_timestamp_seconds{{{lab}}}": 1796148459.5,
        f"strata_pgbackrest_archiver_last_failed_timestamp_seconds{{{lab}}}": 1796148000.0,
        f"strata_pgbackrest_archive_ready_wal_files{{{lab}}}": 2.0,
    }
    replica = sb.archiver_metrics(STANZA, "1|0|0|0|0", 0)
    assert replica[f"strata_pgbackrest_postgresql_primary{{{lab}}}"] == 0.0
    with pytest.raises(ValueError):
        sb.archiver_metrics(STANZA, "", 0)


def test_listing_bytes(sb: ModuleType) -> None:
    listing = {
        ".": {"type": "path"},
        "15-1": {"type": "path"},
        "15-1/0000000100000000/000000010000000000000001-abc.lz4": {"type": "file", "size": 2001360},
        "archive.info": {"type": "file", "size": 253},
        "link": {"type": "link"},
    }
    assert sb.listing_bytes(listing) == 2001613


def test_render_is_the_prometheus_text_format(sb: ModuleType) -> None:
    text = sb.render(
        {
            'strata_pgbackrest_archiver_failed_total{stanza="s"}': 3.0,
            'strata_pgbackrest_backups{stanza="s",type="full"}': 1.0,
            'strata_pgbackrest_backups{stanza="s",type="diff"}': 0.0,
            "strata_pgbackrest_collect_timestamp_seconds": 1796148459.123,
        }
    )
    lines = text.splitlines()
    assert lines.count("# TYPE strata_pgbackrest_backups gauge") == 1
    assert "# TYPE strata_pgbackrest_archiver_failed_total counter" in lines
    assert 'strata_pgbackrest_backups{stanza="s",type="full"} 1.0' in lines
    assert "strata_pgbackrest_collect_timestamp_seconds 1796148459.123" in lines
    assert text.endswith("\n")
    # Every sample line: name{labels} value, parseable as a float.
    for line in lines:
        if not line.startswith("#"):
            float(line.rsplit(" ", 1)[1])


def test_restore_command(sb: ModuleType) -> None:
    env = {"STRATA_RESTORE_STANZA": "old-postgresql-critical"}
    latest = sb.restore_command(env, "/data/pgdata")
    assert latest == [
        "pgbackrest",
        "--config=/etc/pgbackrest-restore/pgbackrest.conf",
        "--stanza=old-postgresql-critical",
        "--pg1-path=/data/pgdata",
        "--log-level-console=info",
        "restore",
    ]
    at = sb.restore_command(
        {**env, "STRATA_RESTORE_TARGET_TIME": "2026-12-01 17:30:00+00", "STRATA_RESTORE_SET": "X"},
        "/data/pgdata",
    )
    assert at[-5:] == [
        "--set=X",
        "--type=time",
        "--target=2026-12-01 17:30:00+00",
        "--target-action=promote",
        "restore",
    ]


# ---------------------------------------------------------------------------------------
# restore_command: a replica declines the history of a timeline beyond its leader's


def cluster(leader: str, timeline: int, *others: str) -> dict[str, Any]:
    """Patroni's GET /cluster with one leader on `timeline` and streaming replicas."""
    members = [{"name": leader, "role": "leader", "state": "running", "timeline": timeline}]
    members += [{"name": o, "role": "replica", "state": "streaming"} for o in others]
    return {"members": members}


@pytest.mark.parametrize(
    ("name", "timeline"),
    [
        ("0000000C.history", 12),
        ("00000001.history", 1),
        ("0000000C0000000000000010", None),
        ("0000000A0000000000000010.partial", None),
        ("0000000B.00000028.backup", None),
        ("ZZZZZZZZ.history", None),
        ("C.history", None),
    ],
)
def test_history_timeline_reads_only_history_file_names(
    sb: ModuleType, name: str, timeline: int | None
) -> None:
    assert sb.history_timeline(name) == timeline


def test_a_replica_declines_the_history_of_a_timeline_beyond_its_leaders(sb: ModuleType) -> None:
    view = cluster("pg-2", 11, "pg-0", "pg-1")
    # The dead timeline 12 of a promotion that lost the race: a replica must not target it.
    assert sb.declines("0000000C.history", "pg-0", view) is True
    # Timelines up to the leader's are served (a replica catching up follows every switch).
    assert sb.declines("0000000B.history", "pg-0", view) is False
    assert sb.declines("0000000A.history", "pg-0", view) is False
    # WAL segments are never declined.
    assert sb.declines("0000000C0000000000000012", "pg-0", view) is False


def test_the_leader_and_a_member_that_cannot_tell_see_the_whole_archive(sb: ModuleType) -> None:
    # A promoting member holds the lock: it must see every used timeline ID to skip them.
    assert sb.declines("0000000C.history", "pg-2", cluster("pg-2", 11, "pg-0")) is False
    # No leader (an election under way), two, or no timeline yet: nothing is declined.
    assert sb.declines("0000000C.history", "pg-0", None) is False
    assert sb.declines("0000000C.history", "pg-0", {"members": []}) is False
    two = cluster("pg-2", 11)
    two["members"].append({"name": "pg-1", "role": "leader", "timeline": 11})
    assert sb.declines("0000000C.history", "pg-0", two) is False
    no_timeline = cluster("pg-2", 11)
    del no_timeline["members"][0]["timeline"]
    assert sb.declines("0000000C.history", "pg-0", no_timeline) is False


def test_patroni_cluster_reads_the_rest_api_and_gives_up_quietly(sb: ModuleType) -> None:
    view = cluster("pg-2", 11, "pg-0")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(view).encode() if self.path == "/cluster" else b"not json"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        assert sb.patroni_cluster(f"{base}/cluster") == view
        assert sb.patroni_cluster(f"{base}/other") is None  # not JSON
    finally:
        server.shutdown()
        server.server_close()
    # Patroni not listening: the caller falls back to serving the whole archive.
    assert sb.patroni_cluster(f"{base}/cluster", timeout=1.0) is None


def test_archive_get_declines_without_asking_the_repository(
    sb: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATRONI_NAME", "pg-0")
    monkeypatch.setattr(sb, "patroni_cluster", lambda: cluster("pg-2", 11, "pg-0"))
    # pgbackrest is not on this PATH: reaching it would raise, so a 1 here means declined.
    monkeypatch.setenv("PATH", str(tmp_path))
    assert sb.archive_get("strata-x", "0000000C.history", str(tmp_path / "h")) == 1
    assert not (tmp_path / "h").exists()
    with pytest.raises(FileNotFoundError):
        sb.archive_get("strata-x", "0000000B.history", str(tmp_path / "h"))
