"""Each endpoint declared once: route, scopes, query parameters, body model and OpenAPI entry.

A service's api modules declare their handlers on a :class:`Routes` (one per resource,
like a blueprint). At start-up the Flask or the Sanic glue reads the declarations once to
register every route behind its scope check, and the OpenAPI document is built from the
same declarations, so the two cannot disagree. Per request nothing is looked up that was
not fixed at start-up. Nothing here imports a web framework.

Why not spectree, flask-openapi3 or sanic-ext: none serves Flask and Sanic alike, and each
renders its own validation errors and document (Strata's 422 ``validation-failed`` shape,
its per-status problem types, HEAD wherever GET, the ``:bulk``-style paths); bending them
to the contract would take more code than this module.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from services.common.operation import Operation
from services.common.problems import from_validation_error

M = TypeVar("M", bound=BaseModel)
H = TypeVar("H", bound=Callable[..., Any])
_PATH_NAME = re.compile(r"{([^}]+)}")


def validated(model: type[M], payload: Any) -> M:
    """``payload`` as ``model``; 422 ``validation-failed`` listing each failing field.

    The one place a request body's validation errors are shaped, for every service.
    """
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise from_validation_error(exc, ("body",)) from None


class Body(Generic[M]):
    """A handler's request body, read and validated as ``M`` when the handler calls it.

    A handler asks for it with a parameter ``body: Body[Model]``; that annotation is the
    endpoint's request model (and its OpenAPI request schema). It is read lazily so that
    each handler keeps the order of its checks: a request refused on its path or headers
    never has its body parsed, and answers the same as before.
    """

    __slots__ = ("_model", "_read", "payload")

    def __init__(self, model: type[M], read: Callable[[], Any]) -> None:
        self._model = model
        self._read = read
        #: The parsed JSON value once the body has been read (e.g. for a fingerprint).
        self.payload: Any = None

    def __call__(self) -> M:
        """Read, parse and validate the body (400, 413, 415 or 422 problems)."""
        self.payload = self._read()
        return validated(self._model, self.payload)


# Compared and hashed by identity: Sanic hashes route options, and an operation holds dicts.
@dataclass(frozen=True, eq=False)
class Endpoint:
    """One declared endpoint: its OpenAPI operation, handler and routing details."""

    operation: Operation
    handler: Callable[..., Any]
    #: The framework's own rule where the OpenAPI path cannot be routed as written.
    rule: str | None = None
    #: False for path parameters this route does not answer (405 names the others).
    applies: Callable[[Mapping[str, Any]], bool] | None = None
    #: Extra framework route options (e.g. Sanic's ``stream``).
    options: Mapping[str, Any] = field(default_factory=dict)
    #: The query parameters it takes (from ``operation.params``).
    query: frozenset[str] = frozenset()
    #: The request model, from the handler's ``body: Body[Model]`` parameter.
    body: type[BaseModel] | None = None
    #: Whether the handler takes the caller (``who``).
    wants_caller: bool = False

    @property
    def name(self) -> str:
        """The route name: the handler's."""
        return self.handler.__name__

    @property
    def path_names(self) -> tuple[str, ...]:
        """The names of the path parameters, in order."""
        return tuple(_PATH_NAME.findall(self.operation.path))


def _body_model(handler: Callable[..., Any]) -> type[BaseModel] | None:
    """``Model`` of a handler's ``body: Body[Model]`` parameter, if it has one."""
    if "body" not in inspect.signature(handler).parameters:
        return None
    hint = typing.get_type_hints(handler)["body"]
    if typing.get_origin(hint) is not Body:
        raise TypeError(f"{handler.__qualname__}: `body` must be annotated Body[Model]")
    model: type[BaseModel] = typing.get_args(hint)[0]
    return model


def _camel(name: str) -> str:
    """``get_account`` -> ``getAccount``."""
    first, *rest = name.strip("_").split("_")
    return first + "".join(part.capitalize() for part in rest)


class Routes:
    """The endpoints of one resource, declared by decorating their handlers."""

    def __init__(self) -> None:
        self.endpoints: list[Endpoint] = []

    def __call__(
        self,
        method: str,
        path: str,
        summary: str,
        *,
        rule: str | None = None,
        applies: Callable[[Mapping[str, Any]], bool] | None = None,
        options: Mapping[str, Any] | None = None,
        **operation: Any,
    ) -> Callable[[H], H]:
        """Declare the decorated handler as ``method path``; ``operation`` fills the
        :class:`Operation` (scopes, response, status, errors, problems, params, ...)."""

        def declare(handler: H) -> H:
            model = _body_model(handler)
            op = Operation(
                method,
                path,
                summary,
                request=model,
                operation_id=operation.pop("operation_id", None) or _camel(handler.__name__),
                **operation,
            )
            self.endpoints.append(
                Endpoint(
                    op,
                    handler,
                    rule=rule,
                    applies=applies,
                    options=dict(options or {}),
                    query=frozenset(p.name for p in op.params if p.location == "query"),
                    body=model,
                    wants_caller="who" in inspect.signature(handler).parameters,
                )
            )
            return handler

        return declare
