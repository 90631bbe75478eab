"""The readme generator's whole npm tree is pinned: what generates the chart docs cannot drift.

tests/chart/readme-generator/package-lock.json is the one source of the tree chart_docs.py
installs with ``npm ci``; these tests check it pins every package by version and integrity
hash, and that the tree actually installed (cached, so offline after the first run) is it.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from . import chart_docs

PACKAGE = json.loads((chart_docs.PROJECT / "package.json").read_text())
LOCK = json.loads((chart_docs.PROJECT / "package-lock.json").read_text())
#: An exact semver version: no range operator, wildcard or tag.
EXACT = re.compile(r"^\d+\.\d+\.\d+$")


def locked_packages(lock: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every installed package of a lockfile (``node_modules/...`` keys), the root left out."""
    return {path: entry for path, entry in lock["packages"].items() if path}


def test_package_json_pins_the_generator_exactly() -> None:
    assert PACKAGE["private"] is True  # never published by accident
    assert list(PACKAGE["dependencies"]) == [chart_docs.GENERATOR_PACKAGE]
    assert EXACT.match(chart_docs.GENERATOR_VERSION), chart_docs.GENERATOR_VERSION


def test_lockfile_matches_package_json_and_pins_every_package_by_hash() -> None:
    assert LOCK["lockfileVersion"] == 3
    assert LOCK["packages"][""]["dependencies"] == PACKAGE["dependencies"]
    packages = locked_packages(LOCK)
    generator = packages[f"node_modules/{chart_docs.GENERATOR_PACKAGE}"]
    assert generator["version"] == chart_docs.GENERATOR_VERSION
    # The generator's own ranges (^13.1.0, ...) are what could drift: each is locked below.
    for name in generator["dependencies"]:
        assert f"node_modules/{name}" in packages, name
    for path, entry in packages.items():
        assert EXACT.match(entry["version"]), path
        assert entry["integrity"].startswith("sha512-"), path


def test_the_installed_tree_is_the_locked_one() -> None:
    why = chart_docs.node_tools_missing()
    if why:
        pytest.skip(f"readme-generator-for-helm needs node and npm: {why}")
    entry = chart_docs.find_generator()
    installed_root = entry.parents[3]  # <cache>/node_modules/@bitnami/<pkg>/bin/index.js
    assert installed_root.name == "node_modules"
    # npm records the tree it installed in node_modules/.package-lock.json.
    installed = json.loads((installed_root / ".package-lock.json").read_text())
    versions = {path: e["version"] for path, e in locked_packages(installed).items()}
    assert versions == {path: e["version"] for path, e in locked_packages(LOCK).items()}
    assert chart_docs.lock_digest() in str(installed_root)
