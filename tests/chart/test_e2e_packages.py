"""tests/e2e/packages.sh, the one installer of Debian packages for .ci/run and the e2e targets.

It runs here for real, without touching the machine: a dry run, a non-root run (as `nobody`
when the tests run as root), and the root path with a stand-in ``apt-get`` first on PATH and
the policy-rc.d in a temp dir. Then every entry point is checked to go through it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import ROOT

SCRIPT = ROOT / "tests" / "e2e" / "packages.sh"
MISSING = "strata-no-such-package"
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="the install path runs only as root")


def run(
    *args: str, env: dict[str, str] | None = None, as_nobody: bool = False
) -> subprocess.CompletedProcess[str]:
    """bash packages.sh ARGS, the script read from stdin (so `nobody` needs no access)."""
    cmd = ["bash", "-s", "--", *args]
    if as_nobody:
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
    return subprocess.run(
        cmd,
        input=SCRIPT.read_text(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_nothing_missing_is_silent_success() -> None:
    proc = run("bash", "coreutils", "anything:sh")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


def test_dry_run_lists_only_what_is_missing() -> None:
    proc = run("--dry-run", "bash", MISSING, "x-pkg:sh", "y-pkg:strata-no-such-command")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"would install: {MISSING} y-pkg"


def test_dry_run_from_the_environment_when_sourced() -> None:
    proc = subprocess.run(
        ["bash", "-c", f'source "{SCRIPT}"; need_packages {MISSING}'],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "STRATA_PACKAGES_DRY_RUN": "1"},
    )  # fmt: skip
    assert (proc.returncode, proc.stdout.strip()) == (0, f"would install: {MISSING}")


def test_a_command_in_sbin_counts_for_a_user_without_sbin_on_path(tmp_path: Path) -> None:
    sbin = next((d for d in ("/usr/sbin", "/sbin") if Path(d).is_dir() and os.listdir(d)), None)
    if sbin is None:
        pytest.skip("no sbin directory with a command in it")
    command = sorted(p.name for p in Path(sbin).iterdir() if os.access(p, os.X_OK))[0]
    proc = run("--dry-run", f"some-pkg:{command}", env={"PATH": "/usr/bin:/bin"})
    assert (proc.returncode, proc.stdout) == (0, ""), proc.stderr


def fake_apt(tmp_path: Path, status: int = 0) -> tuple[Path, Path]:
    """A stand-in apt-get that records its arguments and whether policy-rc.d was in place."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    calls = tmp_path / "calls"
    policy = tmp_path / "policy-rc.d"
    (bindir / "apt-get").write_text(
        "#!/bin/sh\n"
        f'echo "$* | policy:$(cat {policy} 2>/dev/null | tail -n1)" >>{calls}\n'
        f"exit {status}\n"
    )
    (bindir / "apt-get").chmod(0o755)
    return bindir, calls


def test_not_root_names_the_packages_and_installs_nothing(tmp_path: Path) -> None:
    bindir, calls = fake_apt(tmp_path)
    tmp_path.chmod(0o755)
    env = {"PATH": f"{bindir}:{os.environ['PATH']}"}
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("setpriv (util-linux) is missing: cannot drop root")
        proc = run(MISSING, "bash", env=env, as_nobody=True)
    else:
        proc = run(MISSING, "bash", env=env)
    assert proc.returncode == 2, proc.stderr
    assert f"missing Debian packages: {MISSING}\n" in proc.stderr
    assert f"apt-get install -y --no-install-recommends {MISSING}" in proc.stderr
    assert not calls.exists()


@ROOT_ONLY
def test_root_installs_the_missing_ones_with_services_kept_stopped(tmp_path: Path) -> None:
    bindir, calls = fake_apt(tmp_path)
    policy = tmp_path / "policy-rc.d"
    env = {"PATH": f"{bindir}:{os.environ['PATH']}", "STRATA_PACKAGES_POLICY_RC_D": str(policy)}
    proc = run("bash", MISSING, "x-pkg:strata-no-such-command", env=env)
    assert proc.returncode == 0, proc.stderr
    assert calls.read_text().splitlines() == [
        "update -q | policy:exit 101",
        f"install -y -q --no-install-recommends {MISSING} x-pkg | policy:exit 101",
    ]
    assert not policy.exists(), "the policy-rc.d it created is removed"


@ROOT_ONLY
def test_root_keeps_an_existing_policy_and_reports_a_failed_install(tmp_path: Path) -> None:
    bindir, calls = fake_apt(tmp_path, status=100)
    policy = tmp_path / "policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 0\n")
    env = {"PATH": f"{bindir}:{os.environ['PATH']}", "STRATA_PACKAGES_POLICY_RC_D": str(policy)}
    proc = run(MISSING, env=env)
    assert proc.returncode == 1
    assert f"apt-get install {MISSING} failed" in proc.stderr
    assert calls.read_text().splitlines() == ["update -q | policy:exit 0"]
    assert policy.read_text() == "#!/bin/sh\nexit 0\n"


#: Every entry point that needs Debian packages, and the packages it must ask for.
ENTRY_POINTS = {
    ".ci/run": ("docker.io", "debootstrap", "docker-registry", "postgresql", "pgbackrest"),
    "tests/e2e/cluster/lib.sh": ("docker.io:dockerd", "debootstrap", "etcd-server", "npm:npm"),
    "tests/e2e/kind/host.sh": ("docker.io:dockerd", "debootstrap", "busybox-static"),
    "Makefile": ("docker.io:dockerd", "debootstrap", "wrk:wrk", "python3-venv"),
}


@pytest.mark.parametrize("path", sorted(ENTRY_POINTS))
def test_entry_points_ask_for_their_packages(path: str) -> None:
    text = (ROOT / path).read_text()
    for package in ENTRY_POINTS[path]:
        assert re.search(rf"(?<![\w.:-]){re.escape(package)}(?![\w.:-])", text), (path, package)


def test_only_packages_sh_runs_apt_get_install() -> None:
    scripts = [
        ROOT / ".ci" / "run",
        ROOT / "Makefile",
        *sorted((ROOT / "tests" / "e2e").rglob("*.sh")),
    ]
    offenders = [
        str(p.relative_to(ROOT))
        for p in scripts
        if p != SCRIPT
        for line in p.read_text().splitlines()
        if re.search(r"^\s*[^#\"]*\bapt-get (-\S+ )*install\b", line)
    ]
    assert not offenders, offenders


def test_e2e_targets_and_scripts_go_through_packages_sh() -> None:
    makefile = (ROOT / "Makefile").read_text()
    target = makefile.split("\ntest-images:", 1)[1].split("\n\n", 1)[0]
    assert "tests/e2e/packages.sh" in target
    for script in ("tests/e2e/cluster/prepare.sh", "tests/e2e/cluster/run.sh",
                   "tests/e2e/kind/host.sh", "tests/e2e/kind.sh", ".ci/run"):  # fmt: skip
        assert "tests/e2e/packages.sh" in (ROOT / script).read_text(), script
    run_sh = (ROOT / "tests/e2e/cluster/run.sh").read_text()
    assert "tests/e2e/docker/dockerd.sh" in run_sh, "e2e-cluster starts the Docker engine itself"
