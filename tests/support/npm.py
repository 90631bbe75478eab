"""Pinned npm trees for the tests' node tools, installed once and cached by lockfile hash.

A project directory in the repository holds ``package.json`` (exact versions) and
``package-lock.json`` (the whole tree with integrity hashes). ``npm ci`` installs exactly
that tree into ``$STRATA_CACHE_DIR`` or ``~/.cache/strata`` (never committed), in a
directory named by the lockfile's hash: a cached tree is reused offline, a changed lockfile
installs afresh. Used by the chart docs generator and the TypeScript client check.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

PROJECT_FILES = ("package.json", "package-lock.json")


class NpmTreeError(RuntimeError):
    """``npm ci`` failed, or npm is missing."""


def lock_digest(project: Path) -> str:
    """The first 16 hex digits of the lockfile's sha256: names the cached tree it installs."""
    return hashlib.sha256((project / "package-lock.json").read_bytes()).hexdigest()[:16]


def pinned_version(project: Path, package: str) -> str:
    """The exact version ``package.json`` of ``project`` names for ``package``."""
    version: str = json.loads((project / "package.json").read_text())["dependencies"][package]
    return version


def node_tools_missing() -> str | None:
    """Why node tools cannot run here (no node or npm), or None."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    return f"{' and '.join(missing)} not on PATH" if missing else None


def installed_tree(project: Path, name: str, package: str) -> Path:
    """The cached ``node_modules`` of ``project``, installed by ``npm ci`` when missing.

    ``package`` (a direct dependency) tells a complete install from a partial one.
    """
    target = _cache_root() / f"{name}-{pinned_version(project, package)}-{lock_digest(project)}"
    if _installed_version(target, package) == pinned_version(project, package):
        return target / "node_modules"
    npm = shutil.which("npm")
    if npm is None:
        raise NpmTreeError(f"npm is needed to install {name}")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{target.name}.", dir=target.parent))
    for file_name in PROJECT_FILES:
        shutil.copyfile(project / file_name, staging / file_name)
    # npm ci installs the lockfile's tree or fails (it never re-resolves a range), checks each
    # tarball's integrity hash, and runs no install scripts: none of these tools needs one.
    proc = subprocess.run(
        [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--silent"],
        cwd=staging,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0 or _installed_version(staging, package) != pinned_version(
        project, package
    ):
        shutil.rmtree(staging, ignore_errors=True)
        raise NpmTreeError(f"npm ci ({project / 'package-lock.json'}): {proc.stderr}")
    shutil.rmtree(target, ignore_errors=True)
    staging.replace(target)  # a parallel run sees the old tree or the whole new one
    return target / "node_modules"


def _cache_root() -> Path:
    return Path(os.environ.get("STRATA_CACHE_DIR") or str(Path.home() / ".cache" / "strata"))


def _installed_version(prefix: Path, package: str) -> str | None:
    manifest = prefix / "node_modules" / package / "package.json"
    if not manifest.exists():
        return None
    version = json.loads(manifest.read_text()).get("version")
    return version if isinstance(version, str) else None
