"""Images reach a cluster the way users' do: ``docker push`` to a registry, then a pull from it.

The registry is Debian's ``docker-registry`` on a free loopback port (tests/support/
oci_registry.py); the Docker engine allows plain HTTP to 127.0.0.0/8 by default, so nothing
in the shared daemon is reconfigured. The image is a one-file image built here (the service
images are pushed the same way; this keeps the test to a few seconds).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.e2e.images.dockerlib import docker
from tests.support.oci_registry import OciRegistry, registry_for_test

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[OciRegistry]:
    with registry_for_test(tmp_path / "registry") as reg:
        yield reg


def test_an_image_pushed_to_the_local_registry_pulls_back_identical(
    engine: str, registry: OciRegistry, tmp_path: Path
) -> None:
    token = secrets.token_hex(8)
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "payload").write_text(token)
    (context / "Dockerfile").write_text("FROM scratch\nCOPY payload /payload\n")
    ref = f"{registry.host}/strata/push-test:{token}"
    docker("build", "-q", "-t", ref, str(context), timeout=300)
    try:
        local_id = docker("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()
        out = docker("push", ref, timeout=300).stdout
        assert "digest: sha256:" in out, out
        assert registry.tags("strata/push-test") == [token]
        manifest = requests.get(
            f"http://{registry.host}/v2/strata/push-test/manifests/{token}",
            headers={"Accept": DOCKER_MANIFEST},
            timeout=5,
        )
        manifest.raise_for_status()
        assert manifest.json()["config"]["digest"] == local_id
        # Gone from the engine, then pulled from the registry: the same image comes back.
        docker("image", "rm", ref)
        docker("pull", ref, timeout=300)
        assert docker("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip() == local_id
    finally:
        docker("image", "rm", "--force", ref, check=False)
