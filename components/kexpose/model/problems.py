"""Turn pydantic's validation errors into one ConfigError a person can act on.

Each problem names the stack file, the app, the field path as the user wrote it (camelCase,
``kexpose:apps[0].service.ports[1].port``), the value given and what is allowed.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from kexpose.errors import ConfigError
from kexpose.model.base import DEFERRABLE_TYPES
from kexpose.problems import summarize

__all__ = ["config_error", "format_path"]

_MAX_SHOWN = 80
Path = list[int | str]


def format_path(root: str, loc: Sequence[int | str]) -> str:
    """``("apps", 0, "service")`` under ``kexpose:`` -> ``kexpose:apps[0].service``."""
    out = root
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not out or out.endswith(":"):
            out += part
        else:
            out += f".{part}"
    return out


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _inner_model(annotation: object) -> type[BaseModel] | None:
    """The model class inside a field annotation (through Optional, tuple, list, dict)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        if typing.get_origin(annotation) is typing.Annotated:
            return _inner_model(arg)
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _walk(model: type[BaseModel], loc: Sequence[int | str]) -> tuple[Path, type[BaseModel] | None]:
    """Follow ``loc`` through field aliases; return the cleaned path and the model reached.

    Pydantic puts union member tags (``'int'``, ``'function-after[...]'``) into ``loc``; inside
    a model, a part that is no field alias is such a tag and is dropped. Inside a plain dict
    (labels, annotations) keys are the user's and are kept.
    """
    current: type[BaseModel] | None = model
    in_model = True
    path: Path = []
    for part in loc:
        if isinstance(part, int):
            path.append(part)
            continue
        if current is None:
            if not in_model:
                path.append(part)
            continue
        fields = {(f.alias or n): f for n, f in current.model_fields.items()}
        field = fields.get(part)
        if field is None:
            continue
        path.append(part)
        current = _inner_model(field.annotation)
        in_model = current is not None or typing.get_origin(field.annotation) is not dict
    return path, current


def _describe(model: type[BaseModel], err: ErrorDetails) -> tuple[Path, str]:
    loc = err["loc"]
    msg = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if err["type"] == "extra_forbidden":
        path, parent = _walk(model, loc[:-1])
        path.append(loc[-1])
        if parent is not None:
            allowed = sorted((f.alias or n) for n, f in parent.model_fields.items())
            msg = f"unknown field {loc[-1]!r}; allowed fields: {', '.join(allowed)}"
        return path, msg
    path, _ = _walk(model, loc)
    if err["type"] == "missing":
        return path, "is required"
    given = err.get("input")
    if DEFERRABLE_TYPES and isinstance(given, tuple(DEFERRABLE_TYPES)):
        return path, (
            "must be a plain value, not a computed Output: validation and policies need it "
            "before anything is deployed"
        )
    if not isinstance(given, Mapping | list | tuple):
        msg = f"{msg}; given: {_shown(given)}"
    return path, msg


def _app_of(raw: Mapping[str, Any] | None, path: Path) -> str | None:
    if raw is None or len(path) < 2 or path[0] != "apps" or not isinstance(path[1], int):
        return None
    try:
        name = raw["apps"][path[1]]["name"]
    except (KeyError, IndexError, TypeError):
        return None
    return name if isinstance(name, str) else None


def config_error(
    exc: ValidationError,
    *,
    model: type[BaseModel],
    root: str,
    stack_file: str | None = None,
    raw: Mapping[str, Any] | None = None,
    app: str | None = None,
) -> ConfigError:
    """One ConfigError listing every problem of ``exc``.

    Problems at the same path are merged (a union field reports once per member).
    """
    problems: dict[tuple[int | str, ...], list[str]] = {}
    errors = exc.errors(include_url=False)
    locs = [e["loc"] for e in errors]
    for err in errors:
        # A list whose only item failed also reports "too short"; that is an echo, not news.
        if err["type"] == "too_short" and any(
            len(o) > len(err["loc"]) and o[: len(err["loc"])] == err["loc"] for o in locs
        ):
            continue
        path, msg = _describe(model, err)
        msgs = problems.setdefault(tuple(path), [])
        if msg not in msgs:
            msgs.append(msg)
    where = stack_file or "component args"
    places: list[tuple[str, str]] = []
    first_field = None
    first_app = app
    for key, msgs in problems.items():
        name = app or _app_of(raw, list(key))
        field = format_path(root, key) or root
        first_field = first_field or field
        first_app = first_app or name
        label = f"app {name!r}, " if name else ""
        places.append((f"{label}{field}", " | or: ".join(msgs)))
    message = summarize(places, title=f"{where}: invalid exposure config")
    return ConfigError(message, stack=stack_file, app=first_app, field=first_field)
