"""Gateway API objects the chart renders, validated against the real CRDs' openAPIV3Schema.

The CRDs are vendored, byte for byte, in tests/chart/crds/ from the Go module
sigs.k8s.io/gateway-api at GATEWAY_API_VERSION (config/crd/standard/; Apache-2.0, its LICENSE
beside them; crds/README.md says how to refresh them). Vendored rather than read from the Go
module cache at test time: the tests then need neither Go nor the module proxy, and a refresh
is a reviewed diff. That version is the one Traefik's go.mod requires (the controller of the
in-cluster proof), so the schema checked here is the one its API server will enforce.

What is checked: every field, type, enum, pattern, length and item bound of the served
version's schema, with every object closed (``additionalProperties: false`` wherever the CRD
lists properties and does not preserve unknown fields): the API server prunes unknown fields
silently, or rejects them with ``fieldValidation=Strict``; a misspelt ``sectionNme`` fails here.
Not checked: the CRD's CEL rules (``x-kubernetes-validations``, e.g. no ``//`` in a path, a
sectionName required for some parentRef kinds) and its ``x-kubernetes-*`` list semantics, which
the ``jsonschema`` library does not evaluate; ``metadata`` is only an object here, as in the CRD.
"""

from __future__ import annotations

import hashlib
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

#: The sigs.k8s.io/gateway-api module version the CRDs in crds/ come from.
GATEWAY_API_VERSION = "v1.6.1"
CRDS = Path(__file__).resolve().parent / "crds"
#: kind -> (vendored file, its sha256): a hand edit of a vendored CRD fails the tests.
CRD_FILES: dict[str, tuple[str, str]] = {
    "HTTPRoute": (
        "gateway.networking.k8s.io_httproutes.yaml",
        "a424a0d6c953b162e71d1d97bb7e75012d8f1ac264e7274f2763d1b96ab39852",
    ),
    "ReferenceGrant": (
        "gateway.networking.k8s.io_referencegrants.yaml",
        "8c645e9333cfa67790cc2a53e0c00076f88b2bd4230d2b49688c78bc34f9b2c3",
    ),
}


def file_digest(kind: str) -> str:
    """sha256 of the vendored CRD file of ``kind``."""
    return hashlib.sha256((CRDS / CRD_FILES[kind][0]).read_bytes()).hexdigest()


@cache
def crd(kind: str) -> dict[str, Any]:
    """The vendored CustomResourceDefinition of ``kind``."""
    doc: dict[str, Any] = yaml.safe_load((CRDS / CRD_FILES[kind][0]).read_text())
    return doc


def served_schemas(kind: str) -> dict[str, dict[str, Any]]:
    """apiVersion (group/version) -> openAPIV3Schema of every version the CRD serves."""
    spec = crd(kind)["spec"]
    return {
        f"{spec['group']}/{v['name']}": v["schema"]["openAPIV3Schema"]
        for v in spec["versions"]
        if v.get("served")
    }


#: (apiVersion, kind) of every Gateway API object the vendored CRDs serve.
KINDS = {(api_version, kind) for kind in CRD_FILES for api_version in served_schemas(kind)}


def closed(schema: Any) -> Any:
    """A copy of an OpenAPI schema with every listed-properties object closed to other fields."""
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: closed(value) for key, value in schema.items()}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@cache
def _validator(api_version: str, kind: str) -> jsonschema.protocols.Validator:
    schema = closed(served_schemas(kind)[api_version])
    # The CRD gives metadata as a bare object (the API server validates ObjectMeta itself);
    # closing it would reject every name and label.
    schema["properties"]["metadata"] = {"type": "object"}
    jsonschema.validators.Draft7Validator.check_schema(schema)
    return jsonschema.validators.Draft7Validator(schema)


def validate(obj: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError for an object the CRD's schema would not take as is."""
    key = (obj.get("apiVersion"), obj.get("kind"))
    if key not in KINDS:
        raise LookupError(f"{key[0]}/{key[1]}: not served by the vendored Gateway API CRDs")
    _validator(obj["apiVersion"], obj["kind"]).validate(obj)


#: CEL rule shapes of the HTTPRoute path matcher that path_rule_violations evaluates.
_GUARD = re.compile(r"^\(self\.type in \[([^\]]*)\]\) \? (.*) : true$")
_CALL = re.compile(r"^(!?)self\.value\.(contains|startsWith|endsWith)\('([^']*)'\)$")
_MATCHES = re.compile(r'^self\.value\.matches\(r"""(.*)"""\)$')


def path_rules() -> list[dict[str, str]]:
    """The CEL rules (x-kubernetes-validations) of HTTPRoute v1's path matcher."""
    spec = served_schemas("HTTPRoute")["gateway.networking.k8s.io/v1"]["properties"]["spec"]
    match = spec["properties"]["rules"]["items"]["properties"]["matches"]["items"]
    rules: list[dict[str, str]] = match["properties"]["path"]["x-kubernetes-validations"]
    return rules


def path_rule_violations(path: dict[str, str]) -> tuple[list[str], int]:
    """Evaluate the path matcher's CEL rules that test the value (the characters allowed, no
    ``//``, absolute...): (messages of the rules ``path`` breaks, number of rules evaluated).
    jsonschema cannot run CEL; these few rules are plain string tests, read from the CRD itself
    so a refresh that changes them changes what is checked."""
    broken: list[str] = []
    evaluated = 0
    for rule in path_rules():
        guard = _GUARD.match(rule["rule"])
        if not guard:
            continue
        types = re.findall(r"'([^']*)'", guard.group(1))
        expr = guard.group(2)
        call, matches = _CALL.match(expr), _MATCHES.match(expr)
        if call:
            negate, method, arg = call.groups()
            value = path["value"]
            result = {
                "contains": arg in value,
                "startsWith": value.startswith(arg),
                "endsWith": value.endswith(arg),
            }[method]
            ok = not result if negate else result
        elif matches:
            ok = re.search(matches.group(1), path["value"]) is not None
        else:
            continue
        evaluated += 1
        if path["type"] in types and not ok:
            broken.append(rule["message"])
    return broken, evaluated
