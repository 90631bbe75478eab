"""Token keys in the chart: one per service, mounted into that service alone, as a file.

The rendered configuration is also fed to the services' own settings and verifier: a
token signed with one service's key must be refused by every other service.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import CHART, Render, RenderFn, all_containers, pod_spec, refusal, run_helm
from .test_objects import SERVICES, effective_values

MOUNT = "/var/run/secrets/strata"


def jwt_secret_names(values: dict[str, Any]) -> dict[str, str]:
    """service -> the Secret its token key lives in (from the effective values)."""
    return {s: values["auth"][s]["existingSecret"] or f"strata-{s}-jwt" for s in SERVICES}


def referenced_secrets(spec: dict[str, Any]) -> set[str]:
    names = set()
    for c in all_containers(spec):
        for env in c.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                names.add(ref["name"])
    for volume in spec.get("volumes", []):
        if "secret" in volume:
            names.add(volume["secret"]["secretName"])
        for source in volume.get("projected", {}).get("sources", []):
            if "secret" in source:
                names.add(source["secret"]["name"])
    return names


def test_each_service_holds_only_its_own_key_as_a_file(rendered: Render) -> None:
    values = effective_values(rendered)
    own = jwt_secret_names(values)
    for svc in SERVICES:
        spec = pod_spec(rendered.get("Deployment", f"strata-{svc}"))
        refs = referenced_secrets(spec)
        assert not refs & {own[o] for o in SERVICES if o != svc}, f"{svc} gets another's key"
        env = {e["name"]: e for c in all_containers(spec) for e in c.get("env", [])}
        assert all(own[svc] != e.get("valueFrom", {}).get("secretKeyRef", {}).get("name")
                   for e in env.values()), f"{svc}: its token key is in an env var"  # fmt: skip
        a = values["auth"][svc]
        if a["jwksUrl"]:
            assert own[svc] not in refs, f"{svc} verifies with a JWKS and needs no Secret"
            continue
        (volume,) = [v for v in spec["volumes"] if v["name"] == "secrets"]
        (source,) = [
            src["secret"]
            for src in volume["projected"]["sources"]
            if "secret" in src and src["secret"]["name"] == own[svc]
        ]
        (item,) = source["items"]  # one key of the Secret, nothing else in it
        hs = a["algorithms"] == ["HS256"]
        assert item["path"] == ("jwt-secret" if hs else "public-key.pem")
        assert item["key"] == (a["existingSecretKey"] or item["path"])
        name = f"STRATA_{svc.upper()}_" + ("JWT_SECRET_FILE" if hs else "JWT_PUBLIC_KEY_FILE")
        assert env[name]["value"] == f"{MOUNT}/{item['path']}"
        (container,) = spec["containers"]
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        assert mounts["secrets"] == {"name": "secrets", "mountPath": MOUNT, "readOnly": True}
        init_volumes = {
            m["name"] for i in spec.get("initContainers", []) for m in i.get("volumeMounts", [])
        }
        for v in spec["volumes"]:
            if v["name"] in init_volumes and "projected" in v:
                names = {
                    src["secret"]["name"] for src in v["projected"]["sources"] if "secret" in src
                }
                assert own[svc] not in names, f"{svc}: an init container gets the token key"


def test_the_default_generates_a_separate_secret_per_service(render: RenderFn) -> None:
    r = render(None)
    generated = {}
    for svc in SERVICES:
        secret = r.get("Secret", f"strata-{svc}-jwt")
        assert set(secret["data"]) == {"jwt-secret"}
        assert secret["metadata"]["labels"]["app.kubernetes.io/component"] == svc
        assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        generated[svc] = base64.b64decode(secret["data"]["jwt-secret"]).decode()
        assert len(generated[svc]) >= 40
        assert r.get("ConfigMap", f"strata-{svc}")["data"][
            f"STRATA_{svc.upper()}_JWT_ALGORITHMS"
        ] == "HS256"  # fmt: skip
    assert len(set(generated.values())) == 3
    assert "strata-jwt" not in r.names("Secret"), "no key shared by the three services"


def _settings_from_render(
    r: Render, svc: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Any:
    """The service's settings, from the rendered ConfigMap, env and mounted key file."""
    from services.cache.settings import CacheSettings
    from services.critical.settings import CriticalSettings
    from services.ml.settings import MlSettings

    classes = {"critical": CriticalSettings, "ml": MlSettings, "cache": CacheSettings}
    spec = pod_spec(r.get("Deployment", f"strata-{svc}"))
    env = dict(r.get("ConfigMap", f"strata-{svc}")["data"])
    for e in spec["containers"][0].get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
    for name, value in list(env.items()):
        if name.endswith("_FILE") and value.startswith(MOUNT):
            (volume,) = [v for v in spec["volumes"] if v["name"] == "secrets"]
            file = value.removeprefix(MOUNT + "/")
            ((secret_name, item),) = [
                (src["secret"]["name"], it)
                for src in volume["projected"]["sources"]
                for it in src["secret"]["items"]
                if it["path"] == file
            ]
            secret = r.get("Secret", secret_name)
            path = tmp_path / f"{svc}-{item['path']}"
            path.write_bytes(base64.b64decode(secret["data"][item["key"]]))
            env[name] = str(path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return classes[svc]()


def test_a_token_for_one_service_is_refused_by_the_others(
    render: RenderFn, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from services.common.auth import TokenVerifier, mint_token
    from services.common.problems import Problem

    r = render(None)
    secrets = {
        s: base64.b64decode(r.get("Secret", f"strata-{s}-jwt")["data"]["jwt-secret"]).decode()
        for s in SERVICES
    }
    verifiers = {
        s: TokenVerifier.for_service(_settings_from_render(r, s, monkeypatch, tmp_path), s)
        for s in SERVICES
    }
    for signer in SERVICES:
        for target in SERVICES:
            # The compromised service signs a token with the target's audience and any scope.
            token = mint_token(
                key=secrets[signer], audience=f"strata-{target}", scopes=["ledger:admin"]
            )
            if signer == target:
                assert verifiers[target].verify(token).scopes == {"ledger:admin"}
            else:
                with pytest.raises(Problem) as refused:
                    verifiers[target].verify(token)
                assert refused.value.status == 401


def test_a_public_key_in_values_is_what_the_service_verifies_with(
    render: RenderFn, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from services.common.auth import TokenVerifier
    from tests.support.jwks import SigningKey

    idp = SigningKey.generate("ES256", "k1")
    values = tmp_path / "idp.yaml"
    values.write_text(
        yaml.safe_dump(
            {"auth": {"ml": {"algorithms": ["ES256"], "publicKey": idp.public_pem, "issuer": "i"}}}
        )
    )
    r = render(str(values))
    secret = r.get("Secret", "strata-ml-jwt")
    assert set(secret["data"]) == {"public-key.pem"}
    settings = _settings_from_render(r, "ml", monkeypatch, tmp_path)
    assert settings.jwt_algorithms == ["ES256"]
    assert settings.jwt_secret is None
    verifier = TokenVerifier.for_service(settings, "ml")
    assert verifier.verify(idp.token("ml", "docs:read", issuer="i")).scopes == {"docs:read"}


def test_the_identity_provider_scenario(render: RenderFn) -> None:
    r = render(str(CHART / "ci" / "identity-provider-values.yaml"))
    for svc, port in (("critical", 443), ("ml", 8443)):
        data = r.get("ConfigMap", f"strata-{svc}")["data"]
        assert data[f"STRATA_{svc.upper()}_JWT_JWKS_URL"].startswith("https://idp.example.com")
        assert data[f"STRATA_{svc.upper()}_JWT_ISSUER"] == "https://idp.example.com/realms/strata"
        assert f"strata-{svc}-jwt" not in r.names("Secret")
        np = r.get("NetworkPolicy", f"strata-{svc}-jwks")["spec"]
        assert np["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == svc
        (rule,) = np["egress"]
        assert rule["to"] == [{"ipBlock": {"cidr": "203.0.113.0/24"}}]
        assert rule["ports"] == [{"protocol": "TCP", "port": port}]
    assert r.get("ConfigMap", "strata-ml")["data"]["STRATA_ML_JWT_ALGORITHMS"] == "RS256,ES256"
    pem = base64.b64decode(r.get("Secret", "strata-cache-jwt")["data"]["public-key.pem"])
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert "strata-cache-jwks" not in r.names("NetworkPolicy")
    pod = r.get("Pod", "strata-test-api")  # (the archiving test pods hold no token key)
    assert "jwt" not in {v["name"] for v in pod["spec"]["volumes"]}, "no HS256 service to test"


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (
            ["auth.critical.algorithms={HS256,RS256}"],
            "auth.critical.algorithms must not mix HS256 with RS256/ES256",
        ),
        (
            ["auth.ml.algorithms={RS256}"],
            "auth.ml.algorithms RS256 needs auth.ml.jwksUrl",
        ),
        (
            ["auth.ml.jwksUrl=https://idp/jwks"],
            "auth.ml.publicKey and auth.ml.jwksUrl need auth.ml.algorithms RS256 or ES256",
        ),
        (
            ["auth.cache.algorithms={ES256}", "auth.cache.secret=" + "s" * 40],
            "auth.cache.secret must be empty with RS256/ES256",
        ),
        (
            [
                "auth.cache.algorithms={ES256}",
                "auth.cache.jwksUrl=https://idp/jwks",
                "auth.cache.existingSecret=k",
            ],
            "auth.cache: set jwksUrl, or publicKey/existingSecret, not both",
        ),
        (
            ["auth.cache.algorithms={RS256}", "auth.cache.jwksUrl=http://idp/jwks"],
            "auth.cache.jwksUrl must be https://",
        ),
        (
            ["auth.critical.secret=" + "x" * 40, "auth.cache.secret=" + "x" * 40],
            "auth.cache and auth.critical use the same HS256 secret",
        ),
        (
            ["auth.critical.existingSecret=one", "auth.ml.existingSecret=one"],
            "auth.ml and auth.critical use the same HS256 secret",
        ),
    ],
)
def test_auth_values_that_would_share_or_leak_a_key_fail_early(
    helm: str, sets: list[str], message: str
) -> None:
    assert message in refusal(helm, sets)


def test_a_private_key_given_as_public_key_fails_early(helm: str, tmp_path: Path) -> None:
    from tests.support.jwks import SigningKey

    key = SigningKey.generate("RS256", "k")
    values = tmp_path / "private.yaml"
    # A PKCS#8 private key would fail the schema's pattern; a certificate bundle holding a
    # private key after the certificate would not: validateValues catches it by content.
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n" + key.private_pem
    values.write_text(yaml.safe_dump({"auth": {"ml": {"algorithms": ["RS256"], "publicKey": pem}}}))
    proc = run_helm(helm, "template", "strata", str(CHART), "-f", str(values))
    assert proc.returncode != 0
    assert "auth.ml.publicKey holds a PRIVATE key" in proc.stderr


def test_http_jwks_is_allowed_in_development(render: RenderFn) -> None:
    r = render(
        None,
        sets=(
            "environment=development",
            "auth.cache.algorithms={RS256}",
            "auth.cache.jwksUrl=http://keycloak.idp:8080/certs",
        ),
    )
    np = r.get("NetworkPolicy", "strata-cache-jwks")["spec"]
    assert np["egress"][0]["ports"] == [{"protocol": "TCP", "port": 8080}]
