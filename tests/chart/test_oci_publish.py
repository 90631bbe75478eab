"""The published chart: ``helm package``, ``helm push`` to a real OCI registry (Debian's
``docker-registry`` on loopback), and what users then read and render from ``oci://`` is the
chart of this tree.

The registry binary comes from the Debian package ``docker-registry`` (.ci/run installs it
with tests/e2e/packages.sh). Without it these tests skip and say so, unless
``STRATA_REQUIRE_DOCKER_REGISTRY=1`` (set by .ci/run), where they fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.support.oci_registry import OciRegistry, registry_for_test

from .conftest import CHART, ROOT, run_helm
from .publish import chart_version, is_loopback, oci_ref, package, push

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"


@dataclass(frozen=True)
class Published:
    registry: OciRegistry
    tgz: Path
    ref: str  # oci://host/strata/strata
    version: str


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OciRegistry]:
    with registry_for_test(tmp_path_factory.mktemp("oci-registry")) as reg:
        yield reg


@pytest.fixture(scope="module")
def published(
    helm: str, registry: OciRegistry, tmp_path_factory: pytest.TempPathFactory
) -> Published:
    tgz = package(helm, tmp_path_factory.mktemp("dist"))
    out = push(helm, tgz, registry.host, "strata")
    assert "Digest:" in out, out
    return Published(registry, tgz, f"{oci_ref(registry.host, 'strata')}/strata", chart_version())


def helm_ok(helm: str, *args: str) -> str:
    proc = run_helm(helm, *args)
    assert proc.returncode == 0, f"helm {' '.join(args)}:\n{proc.stderr}"
    return proc.stdout


def test_the_registry_holds_the_chart_as_a_helm_oci_artifact(published: Published) -> None:
    assert published.registry.tags("strata/strata") == [published.version]
    resp = requests.get(
        f"http://{published.registry.host}/v2/strata/strata/manifests/{published.version}",
        headers={"Accept": OCI_MANIFEST},
        timeout=5,
    )
    resp.raise_for_status()
    manifest = resp.json()
    assert manifest["config"]["mediaType"] == HELM_CONFIG
    assert [layer["mediaType"] for layer in manifest["layers"]] == [HELM_LAYER]
    assert manifest["layers"][0]["size"] == published.tgz.stat().st_size


def test_show_chart_from_oci_is_chart_yaml(helm: str, published: Published) -> None:
    remote = helm_ok(
        helm, "show", "chart", published.ref, "--version", published.version, "--plain-http"
    )
    local = helm_ok(helm, "show", "chart", str(CHART))
    assert remote == local
    meta = yaml.safe_load(remote)
    assert meta["version"] == published.version
    assert "artifacthub.io/changes" in meta["annotations"]


def masked(manifests: str) -> list[dict[str, Any]]:
    """Rendered objects with generated Secret values masked (each render draws new ones)."""
    docs = [d for d in yaml.safe_load_all(manifests) if d]
    for doc in docs:
        if doc["kind"] == "Secret":
            for key in ("data", "stringData"):
                if key in doc:
                    doc[key] = dict.fromkeys(doc[key], "<generated>")
    return docs


def test_template_from_oci_renders_what_the_chart_directory_renders(
    helm: str, published: Published
) -> None:
    args = ("template", "strata", "--namespace", "strata", "--kube-version", "1.30.0")
    values = str(CHART / "ci" / "sentinel-values.yaml")
    for extra in ((), ("-f", values)):
        remote = helm_ok(helm, *args[:2], published.ref, *args[2:], *extra,
                         "--version", published.version, "--plain-http")  # fmt: skip
        local = helm_ok(helm, *args[:2], str(CHART), *args[2:], *extra)
        again = helm_ok(helm, *args[:2], str(CHART), *args[2:], *extra)
        # Masking hides only randomness: two local renders are then equal too.
        assert masked(local) == masked(again)
        assert masked(remote) == masked(local), f"values {extra or 'defaults'}"


def test_the_package_carries_the_chart_and_not_the_dev_files(published: Published) -> None:
    with tarfile.open(published.tgz) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for wanted in ("Chart.yaml", "values.yaml", "values.schema.json", "README.md", "CHANGELOG.md"):
        assert wanted in names, wanted
    assert any(n.startswith("templates/") for n in names)
    for unwanted in ("checkov-skips.yaml", ".checkov.yaml"):
        assert unwanted not in names, unwanted


def test_the_make_targets_cli_packages_and_pushes(
    helm: str, registry: OciRegistry, tmp_path: Path
) -> None:
    """What `make chart-push REGISTRY=...` runs, into another repository path."""
    proc = subprocess.run(
        [sys.executable, "-m", "tests.chart.publish", "push", "--registry", registry.host,
         "--path", "cli/charts", "--dest", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "HELM": helm},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / f"strata-{chart_version()}.tgz").is_file()
    assert registry.tags("cli/charts/strata") == [chart_version()]
    assert f"oci://{registry.host}/cli/charts/strata --version {chart_version()}" in proc.stdout


def manifest_digest(published: Published) -> str:
    resp = requests.head(
        f"http://{published.registry.host}/v2/strata/strata/manifests/{published.version}",
        headers={"Accept": OCI_MANIFEST},
        timeout=5,
    )
    resp.raise_for_status()
    return str(resp.headers["Docker-Content-Digest"])


def test_a_published_version_is_not_pushed_again(
    helm: str, published: Published, tmp_path: Path
) -> None:
    """helm package is not reproducible (timestamps): a re-push would change the version's
    content under its users, so it is refused, and the artifact stays as it was."""
    before = manifest_digest(published)
    repackaged = package(helm, tmp_path)
    with pytest.raises(RuntimeError, match="already published"):
        push(helm, repackaged, published.registry.host, "strata")
    assert manifest_digest(published) == before


@pytest.mark.parametrize(("registry_host", "loopback"), [
    ("127.0.0.1:5000", True),
    ("127.3.2.1", True),
    ("localhost:5000", True),
    ("[::1]:5000", True),
    ("registry.example.com", False),
    ("registry.example.com:5000/team", False),
    ("10.0.0.1:5000", False),
])  # fmt: skip
def test_plain_http_only_for_loopback_registries(registry_host: str, loopback: bool) -> None:
    assert is_loopback(registry_host) is loopback
