"""checkov over the rendered chart: every finding is fixed, or accepted for the resources and
with the reason charts/strata/checkov-skips.yaml gives; any other finding fails the test.

checkov runs once over every ci/ scenario (objects identical to one already written are
scanned once) plus a deliberately bad canary Pod, which proves a new finding is caught.
checkov comes from its own virtualenv (.venv-checkov, made by `make venv`): it pins
packaging<24, which the project's pytest cannot use.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import CHART, CI_VALUES, ROOT, RenderFn, ci_id

CONFIG = CHART / ".checkov.yaml"
SKIPS = yaml.safe_load((CHART / "checkov-skips.yaml").read_text())["skips"]
CANARY = "zz-canary"
#: A Pod with the mistakes a chart change could introduce (privileged, root, no limits).
CANARY_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "canary", "namespace": "strata"},
    "spec": {
        "containers": [{"name": "c", "image": "busybox:1", "securityContext": {"privileged": True}}]
    },
}
#: Every object that runs an image (checkov's resource names).
IMAGE_RESOURCES = {
    "Deployment.strata.strata-critical",
    "Deployment.strata.strata-ml",
    "Deployment.strata.strata-cache",
    "Pod.strata.strata-test-api",
    "StatefulSet.strata.strata-postgresql-critical",
    "StatefulSet.strata.strata-postgresql-ml",
    "StatefulSet.strata.strata-redis",
    # pgBackRest: the repository host, the backup CronJobs and the archiving helm test pods.
    "StatefulSet.strata.strata-pgbackrest",
    "CronJob.strata.strata-postgresql-critical-backup-full",
    "CronJob.strata.strata-postgresql-critical-backup-diff",
    "CronJob.strata.strata-postgresql-ml-backup-full",
    "CronJob.strata.strata-postgresql-ml-backup-diff",
    "Pod.strata.strata-test-archiving-postgresql-critical",
    "Pod.strata.strata-test-archiving-postgresql-ml",
}


@dataclass(frozen=True)
class Finding:
    check: str
    name: str
    resource: str
    scenario: str

    def __str__(self) -> str:
        return f"{self.check} ({self.name}) on {self.resource} [{self.scenario}]"


@dataclass(frozen=True)
class Scan:
    failed: list[Finding]
    passed: list[Finding]

    def chart_failures(self) -> list[Finding]:
        return [f for f in self.failed if f.scenario != CANARY]


def checkov_binary() -> str:
    """$CHECKOV, else the project's .venv-checkov (made by `make venv`)."""
    explicit = os.environ.get("CHECKOV")
    if explicit:
        return explicit
    local = ROOT / ".venv-checkov" / "bin" / "checkov"
    if not local.exists():
        pytest.fail(
            "checkov is not installed: `make venv` creates .venv-checkov with the version "
            "pinned in pyproject.toml (extra chart-scan), or point $CHECKOV at a checkov"
        )
    return str(local)


def _findings(checks: list[dict[str, Any]]) -> list[Finding]:
    return [
        Finding(c["check_id"], c["check_name"], c["resource"], Path(c["file_path"]).stem)
        for c in checks
    ]


def unaccepted(findings: list[Finding]) -> list[Finding]:
    """The findings checkov-skips.yaml does not accept."""
    accepted = {(s["check"], r) for s in SKIPS for r in s["resources"]}
    return [f for f in findings if (f.check, f.resource) not in accepted]


@pytest.fixture(scope="module")
def scan(render: RenderFn, tmp_path_factory: pytest.TempPathFactory) -> Scan:
    out = tmp_path_factory.mktemp("checkov")
    seen: set[str] = set()
    for values in CI_VALUES:
        docs = []
        for doc in render(str(values)).docs:
            key = json.dumps(doc, sort_keys=True)
            if key not in seen:
                seen.add(key)
                docs.append(doc)
        (out / f"{ci_id(values)}.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    (out / f"{CANARY}.yaml").write_text(yaml.safe_dump(CANARY_POD, sort_keys=False))
    proc = subprocess.run(
        [checkov_binary(), "--config-file", str(CONFIG), "--directory", str(out)],
        cwd=out,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    # Exit 1 means failed checks (the canary always has some); anything else is an error.
    assert proc.returncode == 1, f"checkov exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    report = json.loads(proc.stdout)
    (k8s,) = report if isinstance(report, list) else [report]
    assert k8s["check_type"] == "kubernetes"
    assert k8s["summary"]["parsing_errors"] == 0, k8s["summary"]
    results = k8s["results"]
    return Scan(_findings(results["failed_checks"]), _findings(results["passed_checks"]))


def test_no_finding_outside_the_accepted_list(scan: Scan) -> None:
    new = unaccepted(scan.chart_failures())
    assert not new, (
        "checkov findings neither fixed nor accepted in charts/strata/checkov-skips.yaml:\n  "
        + "\n  ".join(sorted({str(f) for f in new}))
    )


def test_a_new_finding_fails_the_scan(scan: Scan) -> None:
    """The canary's privileged container is found and is not accepted: the filter can fail."""
    canary = [f for f in scan.failed if f.scenario == CANARY]
    assert {f.check for f in unaccepted(canary)} >= {"CKV_K8S_16", "CKV_K8S_13"}, canary


def test_every_accepted_finding_has_a_reason_and_still_occurs(scan: Scan) -> None:
    found = {(f.check, f.resource) for f in scan.chart_failures()}
    pairs: list[tuple[str, str]] = []
    for skip in SKIPS:
        assert set(skip) == {"check", "resources", "reason"}, skip
        assert re.fullmatch(r"CKV_K8S_[0-9]+", skip["check"]), skip["check"]
        assert len(skip["reason"].split()) >= 20, f"{skip['check']}: give a real reason"
        assert skip["resources"], f"{skip['check']}: no blanket skips, name the resources"
        for resource in skip["resources"]:
            assert re.fullmatch(r"[A-Za-z]+\.strata\.strata-[a-z0-9-]+", resource), resource
            pairs.append((skip["check"], resource))
    assert len(pairs) == len(set(pairs)), "an accepted finding is listed twice"
    stale = sorted(p for p in pairs if p not in found)
    assert not stale, f"accepted in checkov-skips.yaml but no longer found (remove): {stale}"


def test_digests_satisfy_the_image_checks(scan: Scan) -> None:
    """With every image pinned (ci/digests) the two accepted image findings disappear."""
    checks = {"CKV_K8S_43", "CKV_K8S_15"}
    failed = [f for f in scan.failed if f.scenario == "digests" and f.check in checks]
    assert not failed, failed
    passed = {(f.check, f.resource) for f in scan.passed if f.scenario == "digests"}
    assert {(c, r) for c in checks for r in IMAGE_RESOURCES} <= passed
