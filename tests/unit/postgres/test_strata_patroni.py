"""The PostgreSQL image's helper (k8s/postgres/strata_patroni.py): candidate choice on a
planned leader stop, and the dynamic-configuration patch it applies after an upgrade."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "k8s" / "postgres" / "strata_patroni.py"


@pytest.fixture(scope="module")
def sp() -> ModuleType:
    spec = importlib.util.spec_from_file_location("strata_patroni", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def member(name: str, role: str = "replica", state: str = "streaming", **extra: Any) -> dict:
    return {"name": name, "role": role, "state": state, **extra}


def test_ordinal(sp: ModuleType) -> None:
    assert sp.ordinal("strata-postgresql-critical-2") == 2
    assert sp.ordinal("no-ordinal-x") == -1


def test_candidate_prefers_members_already_rolled(sp: ModuleType) -> None:
    """A StatefulSet rolls from the highest ordinal down: those run the new revision."""
    members = [
        member("pg-0", lag=0),
        member("pg-1", role="leader", state="running"),
        member("pg-2", role="quorum_standby", lag=4096),
    ]
    assert sp.choose_candidate("pg-1", members) == "pg-2"
    # Without a higher ordinal, the least lagging replica.
    members = [member("pg-0", lag=10), member("pg-1", lag=0), member("pg-2", role="leader")]
    assert sp.choose_candidate("pg-2", members) == "pg-1"


def test_candidate_must_be_healthy_and_eligible(sp: ModuleType) -> None:
    members = [
        member("pg-0", role="leader", state="running"),
        member("pg-1", state="starting"),
        member("pg-2", tags={"nofailover": True}),
    ]
    assert sp.choose_candidate("pg-0", members) is None
    assert sp.choose_candidate("pg-0", [member("pg-0", role="leader")]) is None


def test_config_patch_is_only_what_differs(sp: ModuleType) -> None:
    desired = {
        "ttl": 30,
        "synchronous_mode": "quorum",
        "postgresql": {"parameters": {"max_connections": 150, "work_mem": "8MB"}},
    }
    current = {
        "ttl": 30,
        "synchronous_mode": "quorum",
        "loop_wait": 10,
        "postgresql": {"parameters": {"max_connections": 100, "work_mem": "8MB"}},
    }
    assert sp.config_patch(desired, current) == {
        "postgresql": {"parameters": {"max_connections": 150}}
    }
    assert sp.config_patch(desired, desired) is None
    assert sp.config_patch({"synchronous_mode": False}, {"synchronous_mode": "quorum"}) == {
        "synchronous_mode": False
    }


def test_passwords_come_from_the_mounted_files(sp: ModuleType, tmp_path: Path) -> None:
    """The chart mounts the passwords as files; Patroni gets them as PATRONI_*_PASSWORD."""
    (tmp_path / "su").write_text("owner-secret\n")  # a Secret made --from-file keeps its newline
    (tmp_path / "api").write_text("rest-secret")
    environ = {
        "STRATA_PG_SUPERUSER_PASSWORD_FILE": str(tmp_path / "su"),
        "STRATA_PG_REPLICATION_PASSWORD_FILE": str(tmp_path / "su"),
        "STRATA_PG_RESTAPI_PASSWORD_FILE": str(tmp_path / "api"),
    }
    loaded = sp.load_secret_files(environ)
    assert sorted(loaded) == [
        "PATRONI_REPLICATION_PASSWORD",
        "PATRONI_RESTAPI_PASSWORD",
        "PATRONI_SUPERUSER_PASSWORD",
    ]
    assert environ["PATRONI_SUPERUSER_PASSWORD"] == "owner-secret"
    assert environ["PATRONI_REPLICATION_PASSWORD"] == "owner-secret"
    assert environ["PATRONI_RESTAPI_PASSWORD"] == "rest-secret"


def test_pgbackrest_secrets_come_from_the_mounted_files(sp: ModuleType, tmp_path: Path) -> None:
    """pgBackRest containers run through the entrypoint: the repository's passphrase and keys
    become PGBACKREST_* options, the sidecar's password libpq's PGPASSWORD; nothing else."""
    for name in ("cipher", "key", "secret", "pw"):
        (tmp_path / name).write_text(f"{name}-value\n")
    environ = {
        "STRATA_PGBACKREST_REPO1_CIPHER_PASS_FILE": str(tmp_path / "cipher"),
        "STRATA_PGBACKREST_REPO1_S3_KEY_FILE": str(tmp_path / "key"),
        "STRATA_PGBACKREST_REPO1_S3_KEY_SECRET_FILE": str(tmp_path / "secret"),
        "STRATA_PGPASSWORD_FILE": str(tmp_path / "pw"),
    }
    loaded = sp.load_secret_files(environ)
    assert sorted(loaded) == [
        "PGBACKREST_REPO1_CIPHER_PASS",
        "PGBACKREST_REPO1_S3_KEY",
        "PGBACKREST_REPO1_S3_KEY_SECRET",
        "PGPASSWORD",
    ]
    assert environ["PGBACKREST_REPO1_CIPHER_PASS"] == "cipher-value"
    assert environ["PGPASSWORD"] == "pw-value"
    assert not any(k.startswith("PATRONI_") for k in environ)


def test_a_password_already_set_wins_and_a_missing_file_stops(
    sp: ModuleType, tmp_path: Path
) -> None:
    environ = {
        "PATRONI_SUPERUSER_PASSWORD": "given",
        "STRATA_PG_SUPERUSER_PASSWORD_FILE": str(tmp_path / "absent"),
    }
    assert sp.load_secret_files(environ) == []
    assert environ["PATRONI_SUPERUSER_PASSWORD"] == "given"
    with pytest.raises(SystemExit, match="STRATA_PG_RESTAPI_PASSWORD_FILE"):
        sp.load_secret_files({"STRATA_PG_RESTAPI_PASSWORD_FILE": str(tmp_path / "absent")})


def test_synchronous_mode_hands_over_to_a_synchronous_standby_only(sp: ModuleType) -> None:
    """Patroni refuses a switchover to a replica outside the synchronous set."""
    members = [
        member("pg-0", role="quorum_standby", lag=0),
        member("pg-1", role="leader", state="running"),
        member("pg-2", role="replica", lag=0),  # just restarted: not synchronous yet
    ]
    assert sp.choose_candidate("pg-1", members) == "pg-0"
    members[2] = member("pg-2", role="quorum_standby", lag=0)
    assert sp.choose_candidate("pg-1", members) == "pg-2"


@pytest.mark.parametrize("state", ["running", "streaming", "in archive recovery"])
def test_leaderless_member_whose_postgres_runs_is_ready(sp: ModuleType, state: str) -> None:
    # "in archive recovery": a replica with pgBackRest's restore_command and nobody to stream
    # from (a reinstall over kept volumes whose member 0 was a quorum standby). Not Ready, it
    # would keep the StatefulSet from starting the members whose votes it needs.
    cluster = {"members": [member("pg-0", state=state)]}
    assert sp.ready_without_leader(cluster, "pg-0")


@pytest.mark.parametrize(
    ("cluster", "me"),
    [
        ({"members": [member("pg-0"), member("pg-1", role="leader", state="running")]}, "pg-0"),
        ({"members": [member("pg-0", role="standby_leader", state="running")]}, "pg-1"),
        ({"members": [member("pg-0", state="starting")]}, "pg-0"),
        ({"members": [member("pg-0", state="stopped")]}, "pg-0"),
        ({"members": [member("pg-1")]}, "pg-0"),
        ({"members": []}, "pg-0"),
        ({}, "pg-0"),
        ([], "pg-0"),
    ],
)
def test_not_ready_without_leader_otherwise(sp: ModuleType, cluster: Any, me: str) -> None:
    assert not sp.ready_without_leader(cluster, me)


def test_scram_verifier_matches_postgresql(sp: ModuleType) -> None:
    """RFC 7677's test vector (user/pencil), in PostgreSQL's stored format."""
    import base64

    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    assert sp.scram_verifier("pencil", salt=salt) == (
        "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"
        "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
        "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
    )
    assert sp.scram_verifier("pencil") != sp.scram_verifier("pencil")  # a fresh salt each time


def test_monitor_role_is_left_alone_without_its_settings(
    sp: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STRATA_PG_MONITOR_USERNAME", raising=False)
    monkeypatch.setenv("STRATA_PG_MONITOR_PASSWORD", "x")
    assert sp.ensure_monitor_role("host=/nonexistent") is False


def test_callback_acts_on_the_primary_only(sp: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(sp, "ensure_monitor_role", lambda c: calls.append(c) or True)
    # as Patroni runs a callback: no PATRONI_SUPERUSER_USERNAME, a stale PGPASSWORD
    monkeypatch.delenv("PATRONI_SUPERUSER_USERNAME", raising=False)
    monkeypatch.setenv("STRATA_PG_SUPERUSER_USERNAME", "strata_owner")
    monkeypatch.setenv("PATRONI_SUPERUSER_PASSWORD", "owner-secret")
    monkeypatch.setenv("PGPASSWORD", "someone-else")
    for role in ("replica", "standby_leader", "demoted", ""):
        assert sp.callback("on_role_change", role) == 0
    assert calls == []
    assert sp.callback("on_start", "primary") == 0
    assert sp.callback("on_role_change", "master") == 0
    assert len(calls) == 2
    assert "host=/var/run/postgresql" in calls[0] and "user=strata_owner" in calls[0]
    assert os.environ["PGPASSWORD"] == "owner-secret"
