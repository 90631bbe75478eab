"""Artifact Hub metadata of Chart.yaml and the chart's CHANGELOG.md stay true to the chart.

Artifact Hub reads the ``artifacthub.io/*`` annotations as YAML inside strings; a value that
does not parse is dropped without an error on the hub, so it is parsed here. The images list
must be exactly what the chart deploys with its defaults, and the changelog's newest entry
must be the version Chart.yaml declares.
"""

from __future__ import annotations

import itertools
import re
import tomllib
from functools import cache
from typing import Any

import pytest
import yaml

from .conftest import CHART, ROOT, WORKLOAD_KINDS, RenderFn, all_containers, pod_spec

#: https://artifacthub.io/docs/topics/annotations/helm/ (supported kinds of a change).
CHANGE_KINDS = {"added", "changed", "deprecated", "removed", "fixed", "security"}
POD_KINDS = (*WORKLOAD_KINDS, "DaemonSet", "Job", "CronJob", "Pod")
VERSION_HEADING = re.compile(r"^## (\d+\.\d+\.\d+)\s*$", re.M)


@cache
def chart_meta() -> dict[str, Any]:
    meta = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert isinstance(meta, dict)
    return meta


def annotation(name: str) -> Any:
    """The annotation's value, parsed as YAML when Artifact Hub parses it."""
    value = chart_meta()["annotations"][f"artifacthub.io/{name}"]
    assert isinstance(value, str), f"artifacthub.io/{name} must be a string"
    return yaml.safe_load(value)


@pytest.mark.parametrize(("name", "keys"), [
    ("changes", {"kind", "description"}),
    ("links", {"name", "url"}),
    ("images", {"name", "image"}),
])  # fmt: skip
def test_list_annotations_are_yaml_lists_of_the_documented_shape(name: str, keys: set[str]) -> None:
    items = annotation(name)
    assert isinstance(items, list) and items, f"artifacthub.io/{name} is not a non-empty list"
    for item in items:
        assert isinstance(item, dict) and set(item) == keys, item
        assert all(isinstance(v, str) and v.strip() for v in item.values()), item


def test_changes_use_the_kinds_artifact_hub_knows() -> None:
    kinds = {c["kind"] for c in annotation("changes")}
    assert kinds <= CHANGE_KINDS, kinds - CHANGE_KINDS


def test_links_are_https() -> None:
    for link in annotation("links"):
        assert link["url"].startswith("https://"), link


def test_license_is_the_projects() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert chart_meta()["annotations"]["artifacthub.io/license"] == project["license"]


def test_boolean_annotations_are_quoted_booleans() -> None:
    for name in ("prerelease", "containsSecurityUpdates"):
        assert chart_meta()["annotations"][f"artifacthub.io/{name}"] in ("true", "false"), name


def deployed_images(docs: list[dict[str, Any]]) -> set[str]:
    return {
        c["image"]
        for doc in docs
        if doc["kind"] in POD_KINDS
        for c in all_containers(pod_spec(doc))
    }


def test_images_are_exactly_what_the_chart_deploys_by_default(render: RenderFn) -> None:
    listed = {i["image"] for i in annotation("images")}
    assert listed == deployed_images(render().docs)


def test_images_list_follows_app_version() -> None:
    """The services' tag defaults to appVersion: a bump must update the list too."""
    app = chart_meta()["appVersion"]
    for item in annotation("images"):
        if item["name"] in ("strata-critical", "strata-ml", "strata-cache"):
            assert item["image"] == f"{item['name']}:{app}", item


def changelog_versions() -> list[str]:
    return VERSION_HEADING.findall((CHART / "CHANGELOG.md").read_text())


def test_changelog_opens_with_the_chart_version() -> None:
    versions = changelog_versions()
    assert versions and versions[0] == chart_meta()["version"], versions


def test_changelog_versions_are_unique_and_newest_first() -> None:
    versions = changelog_versions()
    keys = [tuple(int(p) for p in v.split(".")) for v in versions]
    assert keys == sorted(set(keys), reverse=True), versions


def test_every_version_after_the_first_has_upgrade_notes() -> None:
    text = (CHART / "CHANGELOG.md").read_text()
    versions = changelog_versions()
    for newer, older in itertools.pairwise(versions):
        section = text.split(f"## {newer}\n", 1)[1].split(f"## {older}\n", 1)[0]
        assert f"### Upgrading from {older}" in section, newer


def test_changes_annotation_kinds_have_their_changelog_sections() -> None:
    """Each kind in the annotation is a section of the newest changelog entry."""
    text = (CHART / "CHANGELOG.md").read_text()
    versions = changelog_versions()
    newest = text.split(f"## {versions[0]}\n", 1)[1]
    if len(versions) > 1:
        newest = newest.split(f"## {versions[1]}\n", 1)[0]
    for kind in {c["kind"] for c in annotation("changes")}:
        assert f"### {kind.capitalize()}" in newest, kind
