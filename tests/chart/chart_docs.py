"""The chart's README parameter tables and values.schema.json descriptions, generated from the
``## @param`` lines of values.yaml by bitnami's readme-generator-for-helm (``make chart-docs``).

values.yaml is the one place a value is described. The generator (npm
``@bitnami/readme-generator-for-helm``) and its whole dependency tree are pinned, with
integrity hashes, by tests/chart/readme-generator/package-lock.json: its own dependencies
are ``^`` ranges, and a drifted ``yaml`` or ``markdown-table`` would change the generated
docs. ``npm ci`` installs exactly that tree into ``$STRATA_CACHE_DIR`` or ``~/.cache/strata``
(never committed), in a directory named by the lockfile's hash, so a cached tree is reused
offline and a changed lockfile installs afresh. The generator rewrites the README's
``## Parameters`` section and
emits a basic schema (types, defaults, descriptions). That schema is not the chart's: the
committed values.schema.json is strict (closed objects, enums, patterns, bounds), so only its
``description`` of every ``@param`` path is taken from the generated one; everything else in
it is written by hand. ``python -m tests.chart.chart_docs`` regenerates both files in place;
``--out DIR`` writes them to DIR instead (what the test compares with the committed files).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from tests.support import npm

GENERATOR_PACKAGE = "@bitnami/readme-generator-for-helm"
#: package.json (the exact generator version) and package-lock.json (everything below it).
PROJECT = Path(__file__).resolve().parent / "readme-generator"
GENERATOR_VERSION = npm.pinned_version(PROJECT, GENERATOR_PACKAGE)
CHART = Path(__file__).resolve().parents[2] / "charts" / "strata"
PARAM = re.compile(r"^## @param (\S+) ", re.M)


class ChartDocsError(RuntimeError):
    """The generator failed or values.yaml and the schema disagree."""


def lock_digest() -> str:
    """The first 16 hex digits of the lockfile's sha256: names the cached tree it installs."""
    return npm.lock_digest(PROJECT)


def node_tools_missing() -> str | None:
    """Why the generator cannot run here (no node or npm), or None."""
    return npm.node_tools_missing()


def find_generator() -> Path:
    """The pinned readme-generator entry point, installed by ``npm ci`` on first use."""
    try:
        modules = npm.installed_tree(PROJECT, "readme-generator", GENERATOR_PACKAGE)
    except npm.NpmTreeError as exc:
        raise ChartDocsError(str(exc)) from None
    return modules / GENERATOR_PACKAGE / "bin" / "index.js"


def _descriptions(node: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Dotted path -> description of every node of the generated schema that has one."""
    found: dict[str, str] = {}
    for key, child in node.get("properties", {}).items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(child.get("description"), str):
            found[path] = child["description"]
        found.update(_descriptions(child, path))
    return found


def merge_descriptions(
    schema: dict[str, Any], generated: dict[str, Any], params: list[str]
) -> None:
    """Set the description of every ``@param`` path of the strict schema from the generated one."""
    described = _descriptions(generated)
    problems = []
    for path in params:
        node: dict[str, Any] | None = schema
        for part in path.split("."):
            node = (node or {}).get("properties", {}).get(part)
        if node is None:
            problems.append(f"{path}: not in values.schema.json (every value needs a schema)")
        elif path not in described:
            problems.append(f"{path}: the generator gave it no description")
        else:
            node["description"] = described[path]
    if problems:
        raise ChartDocsError("\n".join(problems))


def generate(out: Path, chart: Path = CHART) -> None:
    """Write README.md and values.schema.json, regenerated from chart's values.yaml, to out."""
    entry = find_generator()
    values = chart / "values.yaml"
    out.mkdir(parents=True, exist_ok=True)
    readme = out / "README.md"
    if readme.resolve() != (chart / "README.md").resolve():
        shutil.copyfile(chart / "README.md", readme)
    with tempfile.TemporaryDirectory() as tmp:
        basic = Path(tmp) / "schema.json"
        paths = ["--values", str(values), "--readme", str(readme), "--schema", str(basic)]
        proc = subprocess.run(
            ["node", str(entry), *paths],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if proc.returncode != 0:
            # Its own findings go to stdout; node's stack trace to stderr, after the message.
            errors = [line for line in proc.stdout.splitlines() if line.startswith("ERROR")]
            errors += [line for line in proc.stderr.splitlines() if line.startswith("Error")]
            raise ChartDocsError("\n".join(errors) or proc.stderr)
        generated = json.loads(basic.read_text())
    schema = json.loads((chart / "values.schema.json").read_text())
    merge_descriptions(schema, generated, PARAM.findall(values.read_text()))
    text = json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
    (out / "values.schema.json").write_text(text)


def main() -> None:
    """``make chart-docs``: regenerate the README tables and schema descriptions in place."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=CHART, help="directory to write to")
    args = parser.parse_args()
    try:
        generate(args.out)
    except ChartDocsError as exc:
        raise SystemExit(f"chart-docs: {exc}") from None
    print(f"chart-docs: wrote {args.out / 'README.md'} and {args.out / 'values.schema.json'}")


if __name__ == "__main__":
    main()
