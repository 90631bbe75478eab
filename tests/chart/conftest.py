"""Fixtures for the chart tests: the real helm (pinned, checksum-verified: helm_binary.py) and
cached renders."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from .helm_binary import find_helm

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "strata"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))

#: Oldest schema kubernetes-validate ships, a middle one, the newest. (1.20, the CI cluster's
#: version, has no published schemas in that package; 1.20 renders are checked structurally.)
SCHEMA_VERSIONS = ("1.25.0", "1.30.0", "1.37.0")
FLOOR_VERSION = "1.20.2"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test of this directory `chart` (the marker pyproject.toml declares)."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.chart)


@pytest.fixture(scope="session")
def helm() -> str:
    """Path of the helm binary the tests run."""
    return find_helm()


@dataclass
class Render:
    """The objects `helm template` rendered, with lookups by kind and name."""

    docs: list[dict[str, Any]]
    values_file: str
    kube_version: str
    by_kind: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for doc in self.docs:
            self.by_kind.setdefault(doc["kind"], []).append(doc)

    def kind(self, kind: str) -> list[dict[str, Any]]:
        return self.by_kind.get(kind, [])

    def get(self, kind: str, name: str) -> dict[str, Any]:
        for doc in self.kind(kind):
            if doc["metadata"]["name"] == name:
                return doc
        raise KeyError(f"{kind}/{name} not rendered ({self.values_file})")

    def names(self, kind: str) -> set[str]:
        return {d["metadata"]["name"] for d in self.kind(kind)}


def run_helm(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm, *args], capture_output=True, text=True, timeout=120, check=False)


def refusal(helm: str, sets: Sequence[str]) -> str:
    """``helm template`` of the chart with these ``--set`` values, which must fail: its stderr."""
    args = ["template", "strata", str(CHART)]
    for s in sets:
        args += ["--set", s]
    proc = run_helm(helm, *args)
    assert proc.returncode != 0, f"{list(sets)} was accepted"
    return proc.stderr


RenderFn = Callable[..., Render]


@pytest.fixture(scope="session")
def render(helm: str) -> RenderFn:
    """``render(values_file=None, kube_version="1.30.0", sets=())`` -> Render, cached per args."""

    @cache
    def cached(
        values_file: str | None, kube_version: str, sets: tuple[str, ...], release: str
    ) -> Render:
        args = ["template", release, str(CHART), "--namespace", "strata"]
        args += ["--kube-version", kube_version]
        if values_file:
            args += ["-f", values_file]
        for s in sets:
            args += ["--set", s]
        proc = run_helm(helm, *args)
        if proc.returncode != 0:
            raise AssertionError(f"helm template failed ({values_file}, {sets}):\n{proc.stderr}")
        docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
        return Render(docs=docs, values_file=values_file or "<defaults>", kube_version=kube_version)

    def _render(
        values_file: str | None = None,
        kube_version: str = "1.30.0",
        sets: tuple[str, ...] = (),
        release: str = "strata",
    ) -> Render:
        return cached(values_file, kube_version, tuple(sets), release)

    # Render the scenario matrix concurrently up front: helm's start-up dominates each call.
    combos = [(str(v), k) for v in CI_VALUES for k in (*SCHEMA_VERSIONS, FLOOR_VERSION)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda c: _prefetch(_render, *c), combos))
    return _render


def _prefetch(fn: Callable[..., Render], *args: str) -> None:
    """A failing render is reported by the test that needs it, not here."""
    with contextlib.suppress(AssertionError):
        fn(*args)


LINT_VERSIONS = (FLOOR_VERSION, "1.25.0", "1.37.0")


@pytest.fixture(scope="session")
def lint_results(helm: str) -> dict[tuple[str, str], subprocess.CompletedProcess[str]]:
    """`helm lint --strict` of every scenario at each version, run concurrently."""
    combos = [(str(v), k) for v in CI_VALUES for k in LINT_VERSIONS]

    def lint(combo: tuple[str, str]) -> subprocess.CompletedProcess[str]:
        values_file, kube_version = combo
        return run_helm(
            helm, "lint", "--strict", "--kube-version", kube_version, "-f", values_file, str(CHART)
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(combos, pool.map(lint, combos), strict=True))


def ci_id(path: Path) -> str:
    return path.name.removesuffix("-values.yaml")


@pytest.fixture(params=CI_VALUES, ids=ci_id)
def ci_values(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def rendered(render: RenderFn, ci_values: str) -> Render:
    """The chart rendered with one ci/*-values.yaml at the middle supported version."""
    return render(ci_values)


@cache
def load_values() -> dict[str, Any]:
    data = yaml.safe_load((CHART / "values.yaml").read_text())
    assert isinstance(data, dict)
    return data


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    if obj["kind"] == "Pod":
        return obj["spec"]
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


def all_containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def projected_items(vol: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    """path -> (kind, name, key) of a projected volume's items."""
    out = {}
    for src in vol["projected"]["sources"]:
        kind = "secret" if "secret" in src else "configMap"
        for item in src[kind]["items"]:
            out[item["path"]] = (kind, src[kind]["name"], item["key"])
    return out


WORKLOAD_KINDS = ("Deployment", "StatefulSet")
