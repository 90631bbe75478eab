"""Package the chart and push it to an OCI registry (``make chart-package``, ``make chart-push``).

``helm package charts/strata`` writes ``strata-<version>.tgz`` into a dist directory;
``helm push <tgz> oci://<registry>/<path>`` stores it as ``<registry>/<path>/strata:<version>``,
from where users run ``helm install oci://<registry>/<path>/strata --version <version>``.
A registry on a loopback address is taken to speak plain HTTP (``--plain-http``), as a local
``docker-registry`` does; any other is reached over HTTPS unless ``plain_http`` says otherwise.
helm is the project's pinned one (helm_binary.py: ``$HELM``, PATH, or the verified cache).
"""

from __future__ import annotations

import argparse
import ipaddress
import subprocess
import sys
from pathlib import Path

import yaml

CHART = Path(__file__).resolve().parents[2] / "charts" / "strata"
DIST = Path(__file__).resolve().parents[2] / "dist" / "charts"


def chart_version(chart: Path = CHART) -> str:
    """The ``version`` field of the chart's Chart.yaml."""
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    return str(meta["version"])


def is_loopback(registry: str) -> bool:
    """True for ``localhost[:port]``, ``127.x.y.z[:port]`` and ``[::1][:port]``."""
    host = registry.split("/", 1)[0]
    if host.startswith("["):
        host = host[1 : host.index("]")]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _run(cmd: list[str]) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc.stdout + proc.stderr


def package(helm: str, dest: Path = DIST, chart: Path = CHART) -> Path:
    """``helm package`` the chart into ``dest``; returns the archive's path."""
    dest.mkdir(parents=True, exist_ok=True)
    _run([helm, "package", str(chart), "--destination", str(dest)])
    tgz = dest / f"{chart.name}-{chart_version(chart)}.tgz"
    if not tgz.is_file():
        raise RuntimeError(f"helm package did not write {tgz}")
    return tgz


def oci_ref(registry: str, path: str) -> str:
    """The ``oci://`` repository helm pushes into (the chart's name is appended by helm)."""
    return f"oci://{registry.rstrip('/')}/{path.strip('/')}" if path else f"oci://{registry}"


def published(helm: str, ref: str, version: str, plain_http: bool) -> bool:
    """True when the registry already holds ``ref`` (``oci://.../strata``) at ``version``."""
    cmd = [helm, "show", "chart", ref, "--version", version, *(["--plain-http"] * plain_http)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    return proc.returncode == 0


def push(
    helm: str,
    tgz: Path,
    registry: str,
    path: str = "strata",
    plain_http: bool | None = None,
    overwrite: bool = False,
) -> str:
    """``helm push`` the archive; returns helm's output (it names the pushed digest).

    A version already in the registry is refused unless ``overwrite``: registries let a tag
    be pushed again, and ``helm package`` is not reproducible (new timestamps), so a re-push
    would change what users of that version pull. Bump Chart.yaml's version instead.
    """
    plain = is_loopback(registry) if plain_http is None else plain_http
    meta = yaml.safe_load(_run([helm, "show", "chart", str(tgz)]).split("\n---", 1)[0])
    version = str(meta["version"])
    ref = f"{oci_ref(registry, path)}/{meta['name']}"
    if not overwrite and published(helm, ref, version, plain):
        raise RuntimeError(f"{ref} {version} is already published: bump the chart's version")
    cmd = [helm, "push", str(tgz), oci_ref(registry, path), *(["--plain-http"] * plain)]
    return _run(cmd)


def main(argv: list[str] | None = None) -> int:
    """CLI: ``package [--dest DIR]`` or ``push --registry HOST[:PORT] [--path P] [--dest DIR]``."""
    from .helm_binary import find_helm  # imports pytest: only when run, not on import

    parser = argparse.ArgumentParser(prog="python -m tests.chart.publish", description=__doc__)
    parser.add_argument("action", choices=("package", "push"))
    parser.add_argument("--dest", type=Path, default=DIST, help="dist directory (dist/charts)")
    parser.add_argument("--registry", help="registry host[:port], e.g. 127.0.0.1:5000")
    parser.add_argument("--path", default="strata", help="repository path in the registry")
    parser.add_argument(
        "--overwrite", action="store_true", help="push a version the registry already holds"
    )
    parser.add_argument(
        "--plain-http",
        choices=("auto", "yes", "no"),
        default="auto",
        help="plain HTTP (auto: only for a loopback registry)",
    )
    args = parser.parse_args(argv)
    if args.action == "push" and not args.registry:
        parser.error("push needs --registry (make chart-push REGISTRY=host:port)")
    helm = find_helm()
    try:
        tgz = package(helm, args.dest)
        print(tgz)
        if args.action == "push":
            plain = None if args.plain_http == "auto" else args.plain_http == "yes"
            print(push(helm, tgz, args.registry, args.path, plain, args.overwrite).strip())
            print(f"{oci_ref(args.registry, args.path)}/strata --version {chart_version()}")
    except RuntimeError as exc:
        print(f"publish: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
