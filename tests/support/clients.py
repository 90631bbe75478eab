"""Clients generated from a service's own OpenAPI document, as its users would make them.

Python: ``openapi-python-client`` (pinned in the dev extra) writes a package, which is
imported and then used against the real service by the tests. TypeScript:
``openapi-typescript`` writes the types and ``tsc --strict`` compiles them with a small
program that uses them (both pinned with their whole npm tree in
tests/support/typescript). Either step failing fails the test: a document that cannot
produce a working client is a broken contract.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.support import npm

TYPESCRIPT_PROJECT = Path(__file__).resolve().parent / "typescript"
_CONFIG = Path(__file__).resolve().parent / "openapi-python-client.yaml"
_BIN = Path(sys.executable).parent  # the venv's: the generator formats its output with ruff


def python_client(spec: dict[str, Any], work: Path, package: str) -> ModuleType:
    """Generate the client package ``package`` from ``spec`` under ``work`` and import it.

    ``--fail-on-warning``: an operation or schema the generator had to skip fails here.
    Its submodules import through the package (``package.api.default.<operationId>``).
    """
    source = work / f"{package}.json"
    source.write_text(json.dumps(spec))
    proc = subprocess.run(
        [
            str(_BIN / "openapi-python-client"),
            "generate",
            "--path",
            str(source),
            "--meta",
            "none",
            "--output-path",
            str(work / package),
            "--fail-on-warning",
            "--config",
            str(_CONFIG),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**os.environ, "PATH": f"{_BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
    )
    assert proc.returncode == 0, f"openapi-python-client:\n{proc.stdout}\n{proc.stderr}"
    sys.path.insert(0, str(work))
    try:
        return importlib.import_module(package)
    finally:
        sys.path.remove(str(work))


def openapi_document(base_url: str) -> dict[str, Any]:
    """The document a running service serves at ``/openapi.json``."""
    document: dict[str, Any] = httpx.get(f"{base_url}/openapi.json", timeout=30).json()
    return document


def typescript_check(spec: dict[str, Any], work: Path, usage: str) -> None:
    """Generate ``api.d.ts`` from ``spec`` and compile ``usage`` (TypeScript) against it.

    Skips (pytest) on a machine without node and npm; CI has both.
    """
    why = npm.node_tools_missing()
    if why:
        pytest.skip(f"openapi-typescript needs node and npm: {why}")
    modules = npm.installed_tree(TYPESCRIPT_PROJECT, "typescript-clients", "openapi-typescript")
    source = work / "openapi.json"
    source.write_text(json.dumps(spec))
    generator = modules / "openapi-typescript" / "bin" / "cli.js"
    _node(generator, str(source), "-o", str(work / "api.d.ts"))
    (work / "usage.ts").write_text(usage)
    _node(
        modules / "typescript" / "bin" / "tsc",
        "--strict",
        "--noEmit",
        "--target",
        "es2022",
        "--module",
        "es2022",
        "--moduleResolution",
        "bundler",
        str(work / "usage.ts"),
    )


def _node(script: Path, *args: str) -> None:
    proc = subprocess.run(
        ["node", str(script), *args], capture_output=True, text=True, timeout=180, check=False
    )
    assert proc.returncode == 0, f"{script.name} {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
