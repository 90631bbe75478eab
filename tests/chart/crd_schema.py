"""Closed JSON schemas of the Prometheus Operator objects the chart renders.

kubernetes-validate knows only Kubernetes' own kinds, and the operator's CRDs cannot be fetched
offline. These schemas hold the part of monitoring.coreos.com/v1 the chart uses, with the
operator's field names, types, enums and duration pattern (its Go API module,
pkg/apis/monitoring/v1), and reject every other field: a misspelt `scrapeTimout` fails here
as an unknown field, where the API server would silently prune it. A field the chart starts to
render must be added here, checked against the operator's API.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jsonschema

#: The operator's monitoringv1.Duration.
DURATION = {
    "type": "string",
    "pattern": (
        r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?"
        r"(([0-9]+)ms)?)$"
    ),
}
STRING = {"type": "string"}
STRING_MAP = {"type": "object", "additionalProperties": STRING}
LABEL_NAME = {"type": "string", "pattern": r"^[a-zA-Z_][a-zA-Z0-9_]*$"}
DNS_SUBDOMAIN = {
    "type": "string",
    "maxLength": 253,
    "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
}
DNS_LABEL = {"type": "string", "maxLength": 63, "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"}
#: A port name (IANA_SVC_NAME), as Services and containers name their ports.
PORT_NAME = {"type": "string", "maxLength": 15, "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"}

METADATA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "namespace"],
    "properties": {
        "name": DNS_SUBDOMAIN,
        "namespace": DNS_LABEL,
        "labels": STRING_MAP,
        "annotations": STRING_MAP,
    },
}

LABEL_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "matchLabels": STRING_MAP,
        "matchExpressions": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["key", "operator"],
                "properties": {
                    "key": STRING,
                    "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                    "values": {"type": "array", "items": STRING},
                },
            },
        },
    },
}

NAMESPACE_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "any": {"type": "boolean"},
        "matchNames": {"type": "array", "minItems": 1, "items": DNS_LABEL},
    },
}

#: The operator's RelabelConfig actions (both spellings are accepted).
RELABEL_ACTIONS = [
    *("replace", "keep", "drop", "hashmod", "labelmap", "labeldrop", "labelkeep"),
    *("lowercase", "uppercase", "keepequal", "dropequal"),
    *("Replace", "Keep", "Drop", "HashMod", "LabelMap", "LabelDrop", "LabelKeep"),
    *("Lowercase", "Uppercase", "KeepEqual", "DropEqual"),
]

RELABEL_CONFIG = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "sourceLabels": {"type": "array", "items": LABEL_NAME},
        "separator": STRING,
        "targetLabel": STRING,
        "regex": STRING,
        "modulus": {"type": "integer", "minimum": 0},
        "replacement": STRING,
        "action": {"enum": RELABEL_ACTIONS},
    },
}


def _endpoint() -> dict[str, Any]:
    """Endpoint (ServiceMonitor) and PodMetricsEndpoint (PodMonitor): the fields rendered."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["port"],
        "properties": {
            "port": PORT_NAME,
            "path": {"type": "string", "pattern": "^/"},
            "interval": DURATION,
            "scrapeTimeout": DURATION,
            "honorLabels": {"type": "boolean"},
            "relabelings": {"type": "array", "items": RELABEL_CONFIG},
            "metricRelabelings": {"type": "array", "items": RELABEL_CONFIG},
        },
    }


def _object(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "kind": {"const": kind},
            "metadata": METADATA,
            "spec": spec,
        },
    }


def _monitor_spec(endpoints_key: str) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["selector", endpoints_key],
        "properties": {
            "selector": LABEL_SELECTOR,
            "namespaceSelector": NAMESPACE_SELECTOR,
            endpoints_key: {"type": "array", "minItems": 1, "items": _endpoint()},
        },
    }


RULE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["expr"],
    "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
    "properties": {
        "alert": {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"},
        "record": {"type": "string", "pattern": r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"},
        "expr": {"type": "string", "minLength": 1},
        "for": DURATION,
        "keep_firing_for": DURATION,
        "labels": {"type": "object", "propertyNames": LABEL_NAME, "additionalProperties": STRING},
        "annotations": {
            "type": "object",
            "propertyNames": LABEL_NAME,
            "additionalProperties": STRING,
        },
    },
}

RULE_GROUP = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "rules"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "interval": DURATION,
        "rules": {"type": "array", "minItems": 1, "items": RULE},
    },
}

SCHEMAS: dict[str, dict[str, Any]] = {
    "ServiceMonitor": _object("ServiceMonitor", _monitor_spec("endpoints")),
    "PodMonitor": _object("PodMonitor", _monitor_spec("podMetricsEndpoints")),
    "PrometheusRule": _object(
        "PrometheusRule",
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["groups"],
            "properties": {"groups": {"type": "array", "minItems": 1, "items": RULE_GROUP}},
        },
    ),
}

#: (apiVersion, kind) of every custom resource the chart may render.
KINDS = {("monitoring.coreos.com/v1", kind) for kind in SCHEMAS}


@cache
def _validator(kind: str) -> jsonschema.protocols.Validator:
    schema = SCHEMAS[kind]
    jsonschema.validators.Draft202012Validator.check_schema(schema)
    return jsonschema.validators.Draft202012Validator(schema)


def validate(obj: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError for an object the operator's API would not take as is."""
    if (obj.get("apiVersion"), obj.get("kind")) not in KINDS:
        raise LookupError(f"{obj.get('apiVersion')}/{obj.get('kind')}: no schema here")
    _validator(obj["kind"]).validate(obj)
