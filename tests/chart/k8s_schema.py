"""Strict validation of rendered objects against kubernetes-validate's JSON schemas, cached.

``kubernetes_validate.validate`` reloads the big definitions file on every call; here one
validator per (version, apiVersion, kind) is built once and reused.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import jsonschema
import kubernetes_validate
from kubernetes_validate import utils
from referencing import Registry, Resource


class UnknownKindError(LookupError):
    """No schema for this apiVersion/kind in this Kubernetes version."""


@cache
def _validator(version: str, api_version: str, kind: str) -> jsonschema.protocols.Validator:
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema_dir = f"v{version}-local-strict"
    try:
        schema = utils.schema_contents(
            f"kubernetes-json-schema/{schema_dir}/{kind.lower()}-{group_version}.json", version
        )
    except FileNotFoundError:
        raise UnknownKindError(
            f"{api_version}/{kind} does not exist in Kubernetes {version}"
        ) from None
    definitions = _definitions(schema_dir, version)
    registry: Registry = Resource.from_contents(schema) @ Registry()
    registry = definitions @ registry
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


@cache
def _definitions(schema_dir: str, version: str) -> Resource:
    return Resource.from_contents(
        utils.schema_contents(f"kubernetes-json-schema/{schema_dir}/_definitions.json", version)
    )


def validate(obj: dict[str, Any], version: str) -> None:
    """Raise jsonschema.ValidationError (strict: unknown fields rejected) or UnknownKindError."""
    _validator(version, obj["apiVersion"], obj["kind"]).validate(obj)


def shipped_versions() -> list[str]:
    return list(kubernetes_validate.utils.all_versions())
