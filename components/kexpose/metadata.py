"""Label and annotation keys and values, checked as the API server checks every object's.

The rules are those of k8s.io/apimachinery ``pkg/util/validation`` (``IsQualifiedName``,
``IsValidLabelValue``) and ``pkg/api/validation/objectmeta.go`` (``ValidateAnnotations``), as
documented in "Labels and Selectors: Syntax and character set" and "Annotations: Syntax and
character set" (kubernetes.io/docs/concepts/overview/working-with-objects/):

- a key is a qualified name: an optional prefix (a DNS subdomain, at most 253 characters) and
  ``/``, then a name of at most 63 characters, alphanumerics with ``-``, ``_`` and ``.`` inside;
- a label value is empty or such a name (at most 63 characters);
- annotation values are free text, but all of an object's annotations (keys and values)
  together may hold at most 256 KiB (``TotalAnnotationSizeLimitB``).

Pure functions: the model, the manifest loader and anything else can ask.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, Final

__all__ = [
    "MAX_ANNOTATIONS_BYTES",
    "MAX_LABEL_VALUE",
    "annotation_problems",
    "label_problems",
    "object_metadata_problems",
]

MAX_NAME: Final = 63
MAX_PREFIX: Final = 253
MAX_LABEL_VALUE: Final = 63
#: TotalAnnotationSizeLimitB: 256 KiB over every key and value of one object.
MAX_ANNOTATIONS_BYTES: Final = 256 * 1024

_NAME: Final = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_SUBDOMAIN: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_SHOWN: Final = 40


def _shown(value: str) -> str:
    return repr(value) if len(value) <= _SHOWN else f"{value[:_SHOWN]!r}... ({len(value):,} chars)"


def _qualified_name(key: object) -> str | None:
    """Why ``key`` is not a qualified name, or None."""
    if not isinstance(key, str):
        return f"key {key!r} is not a string"
    prefix, slash, name = key.rpartition("/")
    if slash and not prefix:
        return f"key {_shown(key)}: the prefix before '/' is empty"
    if prefix and (len(prefix) > MAX_PREFIX or not _SUBDOMAIN.match(prefix)):
        return (
            f"key {_shown(key)}: prefix {_shown(prefix)} must be a DNS subdomain (lower-case "
            f"letters, digits, '-' and '.', at most {MAX_PREFIX} characters)"
        )
    if not name:
        return f"key {_shown(key)}: the name part is empty"
    if len(name) > MAX_NAME or not _NAME.match(name):
        return (
            f"key {_shown(key)}: name part must be at most {MAX_NAME} characters: letters, "
            "digits, '-', '_' and '.', starting and ending with a letter or digit"
        )
    return None


def label_problems(labels: Mapping[Any, Any]) -> Iterator[tuple[str, str]]:
    """``(key, problem)`` for each label the API server would reject."""
    for key, value in labels.items():
        bad = _qualified_name(key)
        if bad is not None:
            yield str(key), bad
            continue
        if not isinstance(value, str):
            yield key, f"value of {key!r} must be a string, given {type(value).__name__}"
        elif value and (len(value) > MAX_LABEL_VALUE or not _NAME.match(value)):
            yield (
                key,
                (
                    f"value {_shown(value)} of {key!r} must be empty or at most {MAX_LABEL_VALUE} "
                    "characters: letters, digits, '-', '_' and '.', starting and ending with a "
                    "letter or digit"
                ),
            )


def annotation_problems(annotations: Mapping[Any, Any]) -> Iterator[tuple[str, str]]:
    """``(key, problem)`` for each annotation key the API server would reject, and ``("",
    problem)`` when all of them together are too large."""
    total = 0
    for key, value in annotations.items():
        # ValidateAnnotations lower-cases the key before IsQualifiedName.
        bad = _qualified_name(key.lower() if isinstance(key, str) else key)
        if bad is not None:
            yield str(key), bad
        total += len(str(key).encode()) + len(str(value).encode())
    if total > MAX_ANNOTATIONS_BYTES:
        yield (
            "",
            (
                f"annotations total {total:,} bytes; the API server allows at most "
                f"{MAX_ANNOTATIONS_BYTES:,} (256 KiB) per object"
            ),
        )


def _metadata(value: object) -> Mapping[Any, Any]:
    return value if isinstance(value, Mapping) else {}


def object_metadata_problems(obj: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """``(field path, problem)`` for the labels and annotations of an object and of its pod
    template (``spec.template.metadata``), if it has one."""
    spec = obj.get("spec")
    template = spec.get("template") if isinstance(spec, Mapping) else None
    places = [("metadata", obj.get("metadata"))]
    if isinstance(template, Mapping):
        places.append(("spec.template.metadata", template.get("metadata")))
    for prefix, meta in places:
        meta = _metadata(meta)
        labels = meta.get("labels")
        if isinstance(labels, Mapping):
            for key, problem in label_problems(labels):
                yield f"{prefix}.labels[{key!r}]", problem
        annotations = meta.get("annotations")
        if isinstance(annotations, Mapping):
            for key, problem in annotation_problems(annotations):
                path = f"{prefix}.annotations" + (f"[{key!r}]" if key else "")
                yield path, problem
