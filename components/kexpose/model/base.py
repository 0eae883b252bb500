"""The base of every user-facing model: frozen, closed, camelCase in YAML, snake_case in Python.

Also the small value types the models share (names, ports, deferred values).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel
from pydantic_core import InitErrorDetails, PydanticCustomError

from kexpose.metadata import annotation_problems, label_problems

__all__ = [
    "DEFERRABLE_TYPES",
    "Annotations",
    "DNSLabel",
    "Deferrable",
    "DeferrableAnnotations",
    "Deferred",
    "Frozen",
    "Labels",
    "NodePort",
    "PortName",
    "PortNumber",
    "Problems",
    "check_dns_label",
    "check_port_name",
]


class Frozen(BaseModel):
    """Immutable, rejects unknown keys, reads camelCase (stack config) and snake_case (Python)."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        arbitrary_types_allowed=True,
    )


@dataclass(frozen=True, slots=True)
class Deferred:
    """A value only the deployment engine knows yet (a ``pulumi.Output``), carried through as is.

    The core never looks inside: builders place ``value`` where the plain value would go, and the
    Pulumi shell hands the manifest to the engine, which resolves it. Only fields that policies do
    not need may be deferred (image, annotation and env values, provided TLS material).
    """

    value: object
    label: str = "<computed>"

    def __repr__(self) -> str:
        return f"Deferred({self.label})"


#: Types of engine-computed values (``pulumi.Output``) that deferrable fields accept and wrap in
#: Deferred. The Pulumi shell registers its Output type here when imported; the core itself
#: knows no engine.
DEFERRABLE_TYPES: set[type] = set()


def _defer_foreign(value: object) -> object:
    if isinstance(value, tuple(DEFERRABLE_TYPES)):
        return Deferred(value)
    return value


#: A string that may also be computed at deployment (an Output): image, annotation and env
#: values, provided TLS material. Policy-relevant fields are never Deferrable.
Deferrable = Annotated[str | Deferred, BeforeValidator(_defer_foreign)]

_NOTHING = object()


class Problems:
    """Collects the semantic problems of one model so that all are reported at once, each at
    its own field path (pydantic prefixes the path of the enclosing models)."""

    def __init__(self, title: str) -> None:
        self._title = title
        self._details: list[InitErrorDetails] = []

    def add(self, loc: tuple[int | str, ...], message: str, given: object = _NOTHING) -> None:
        # The message is passed as a context value so that braces in user input are not
        # taken for format fields.
        error = PydanticCustomError("kexpose", "{message}", {"message": message})
        detail = InitErrorDetails(type=error, loc=loc, input=None if given is _NOTHING else given)
        if given is _NOTHING:
            detail["input"] = {}
        self._details.append(detail)

    def check(self) -> None:
        if self._details:
            raise ValidationError.from_exception_data(self._title, self._details)


# RFC 1123 label, as Kubernetes validates names of Namespaces, Services and most objects
# (IsDNS1123Label: lower-case alphanumerics and '-', at most 63, alphanumeric at both ends).
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# IANA service name, as Kubernetes validates port names (IsValidPortName, RFC 6335 §5.1):
# at most 15 characters, lower-case alphanumerics and '-', at least one letter, no '--', and
# no '-' at either end.
_PORT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?$")


def check_dns_label(value: str) -> str:
    if not _DNS_LABEL.match(value):
        raise ValueError(
            f"{value!r} is not an RFC 1123 label: use lower-case letters, digits and '-', "
            "1-63 characters, starting and ending with a letter or digit"
        )
    return value


def check_port_name(value: str) -> str:
    if not _PORT_NAME.match(value) or "--" in value or not re.search(r"[a-z]", value):
        raise ValueError(
            f"{value!r} is not a valid port name (RFC 6335 service name): at most 15 "
            "lower-case letters, digits and '-', with at least one letter, no '--', and no "
            "'-' at either end"
        )
    return value


DNSLabel = Annotated[str, AfterValidator(check_dns_label)]
PortName = Annotated[str, AfterValidator(check_port_name)]
PortNumber = Annotated[int, Field(ge=1, le=65535, strict=True)]
#: The API server's default --service-node-port-range is 30000-32767.
NodePort = Annotated[int, Field(ge=30000, le=32767, strict=True)]


def check_labels(value: dict[str, str]) -> dict[str, str]:
    """Labels (or a selector) as the API server validates them (``kexpose.metadata``)."""
    problems = [problem for _, problem in label_problems(value)]
    if problems:
        raise ValueError("invalid label: " + "; ".join(problems))
    return value


def check_annotations(value: dict[str, Any]) -> dict[str, Any]:
    """Annotation keys and their total size as the API server validates them."""
    problems = [problem for _, problem in annotation_problems(value)]
    if problems:
        raise ValueError("invalid annotations: " + "; ".join(problems))
    return value


Labels = Annotated[dict[str, str], AfterValidator(check_labels)]
Annotations = Annotated[dict[str, str], AfterValidator(check_annotations)]
DeferrableAnnotations = Annotated[dict[str, Deferrable], AfterValidator(check_annotations)]
