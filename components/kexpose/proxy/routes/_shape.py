"""The shape of raw objects: whether the route table can read one, and if not, which field.

Objects reach the proxy from hand-written YAML and from the API watch; either may carry a field
of the wrong type (``host: 123``, ``port: "80"``, ``rules: ["x"]``). The table builder reads
fields with ``.get`` and trusts their types, so :func:`object_problems` checks every field it
reads, at every depth, before an object is let in; the shells (static mode, the control plane)
reject an object that has problems, alone, and say which field was wrong.

Rules, from the v1 API references the ``_kube`` TypedDicts cite:

- Only fields the proxy reads are checked; others (a Deployment's template, ``managedFields``)
  pass untouched, whatever they hold.
- ``null`` is an unset optional field ("null ... is the same as omitting the field", API
  conventions, https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md#optional-vs-required),
  except inside lists and string maps, where the API cannot hold one either.
- ``metadata.name`` is required: objects are keyed by it.
- Ports are TCP ports, 1-65535 (``true`` is not a number, though Python's ``bool`` is an
  ``int``); names are DNS subdomains of at most 253 characters, namespaces labels of at most 63.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

__all__ = ["MAX_SHOWN", "object_problems", "shown"]

#: Characters of a wrong value quoted in a message: enough to recognise it, never a megabyte.
MAX_SHOWN: Final = 60

#: Problems listed per object; the rest are counted.
_MAX_PROBLEMS: Final = 5


def shown(value: object, *, typed: bool = True) -> str:
    """``value`` for a message: its repr, cut to :data:`MAX_SHOWN` characters, and its type."""
    text = repr(value)
    if len(text) > MAX_SHOWN:
        text = f"{text[:MAX_SHOWN]}... ({len(text)} characters)"
    return f"{text} ({type(value).__name__})" if typed else text


class _Spec:
    def check(self, value: object, where: str, out: list[str]) -> None:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class _Str(_Spec):
    max_len: int = 0

    @property
    def expected(self) -> str:
        return "a string" + (f" of at most {self.max_len} characters" if self.max_len else "")

    def check(self, value: object, where: str, out: list[str]) -> None:
        if not isinstance(value, str) or (self.max_len and len(value) > self.max_len):
            out.append(f"{where} is {shown(value)}, expected {self.expected}")


@dataclass(frozen=True, slots=True)
class _Port(_Spec):
    expected = "a port number from 1 to 65535"

    def check(self, value: object, where: str, out: list[str]) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
            out.append(f"{where} is {shown(value)}, expected {self.expected}")


@dataclass(frozen=True, slots=True)
class _Bool(_Spec):
    expected = "true or false"

    def check(self, value: object, where: str, out: list[str]) -> None:
        if not isinstance(value, bool):
            out.append(f"{where} is {shown(value)}, expected {self.expected}")


@dataclass(frozen=True, slots=True)
class _PortOrName(_Spec):
    """``targetPort`` (IntOrString)."""

    expected = "a port number from 1 to 65535 or a port name"

    def check(self, value: object, where: str, out: list[str]) -> None:
        if isinstance(value, str) and 0 < len(value) <= 63:
            return
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
            out.append(f"{where} is {shown(value)}, expected {self.expected}")


@dataclass(frozen=True, slots=True)
class _StrMap(_Spec):
    """``map[string]string``: labels, annotations, Secret data."""

    expected = "a map of strings to strings"

    def check(self, value: object, where: str, out: list[str]) -> None:
        if not isinstance(value, Mapping):
            out.append(f"{where} is {shown(value)}, expected {self.expected}")
            return
        for key, item in value.items():
            if not isinstance(key, str):
                out.append(f"{where} has the key {shown(key)}, expected {self.expected}")
                return
            if not isinstance(item, str):
                out.append(f"{where}[{key[:MAX_SHOWN]!r}] is {shown(item)}, expected a string")
                return


@dataclass(frozen=True, slots=True)
class _List(_Spec):
    item: _Spec

    def check(self, value: object, where: str, out: list[str]) -> None:
        if not isinstance(value, list):
            out.append(f"{where} is {shown(value)}, expected a list")
            return
        for i, item in enumerate(value):
            if len(out) >= _MAX_PROBLEMS + 1:
                return  # a list of a million wrong items is one problem, told once
            self.item.check(item, f"{where}[{i}]", out)


@dataclass(frozen=True, slots=True)
class _Object(_Spec):
    fields: Mapping[str, _Spec]
    required: tuple[str, ...] = ()

    @property
    def expected(self) -> str:
        return "a mapping (fields " + ", ".join(self.fields) + ")"

    def check(self, value: object, where: str, out: list[str]) -> None:
        if not isinstance(value, Mapping):
            out.append(f"{where or 'the object'} is {shown(value)}, expected {self.expected}")
            return
        for name in self.required:
            if value.get(name) is None:
                out.append(f"{where + '.' if where else ''}{name} is missing")
        for name, spec in self.fields.items():
            item = value.get(name)
            if item is not None:
                spec.check(item, f"{where}.{name}" if where else name, out)


_DNS_NAME: Final = _Str(253)
_PORT: Final = _Port()

_METADATA: Final = _Object(
    {
        "name": _DNS_NAME,
        "namespace": _Str(63),
        "resourceVersion": _Str(),
        "creationTimestamp": _Str(),
        "labels": _StrMap(),
        "annotations": _StrMap(),
    },
    required=("name",),
)

_LOAD_BALANCER: Final = _Object(
    {"loadBalancer": _Object({"ingress": _List(_Object({"ip": _Str(), "hostname": _Str()}))})}
)

_BACKEND: Final = _Object(
    {
        "service": _Object(
            {"name": _DNS_NAME, "port": _Object({"name": _Str(), "number": _PORT})},
            required=("name",),
        ),
        "resource": _Object({"apiGroup": _Str(), "kind": _Str(), "name": _Str()}),
    }
)

_INGRESS: Final = _Object(
    {
        "metadata": _METADATA,
        "spec": _Object(
            {
                "ingressClassName": _Str(),
                "defaultBackend": _BACKEND,
                "rules": _List(
                    _Object(
                        {
                            "host": _Str(),
                            "http": _Object(
                                {
                                    "paths": _List(
                                        _Object(
                                            {
                                                "path": _Str(),
                                                "pathType": _Str(),
                                                "backend": _BACKEND,
                                            }
                                        )
                                    )
                                }
                            ),
                        }
                    )
                ),
                "tls": _List(_Object({"hosts": _List(_Str()), "secretName": _DNS_NAME})),
            }
        ),
        "status": _LOAD_BALANCER,
    },
    required=("metadata",),
)

_INGRESS_CLASS: Final = _Object(
    {"metadata": _METADATA, "spec": _Object({"controller": _Str()})}, required=("metadata",)
)

_SERVICE: Final = _Object(
    {
        "metadata": _METADATA,
        "spec": _Object(
            {
                "type": _Str(),
                "clusterIP": _Str(),
                "externalName": _Str(),
                "externalIPs": _List(_Str()),
                "ports": _List(
                    _Object(
                        {
                            "name": _Str(),
                            "port": _PORT,
                            "targetPort": _PortOrName(),
                            "protocol": _Str(),
                        }
                    )
                ),
            }
        ),
        "status": _LOAD_BALANCER,
    },
    required=("metadata",),
)

_ENDPOINT_SLICE: Final = _Object(
    {
        "metadata": _METADATA,
        "addressType": _Str(),
        "endpoints": _List(
            _Object(
                {
                    "addresses": _List(_Str()),
                    "conditions": _Object(
                        {"ready": _Bool(), "serving": _Bool(), "terminating": _Bool()}
                    ),
                }
            )
        ),
        "ports": _List(_Object({"name": _Str(), "port": _PORT, "protocol": _Str()})),
    },
    required=("metadata",),
)

_SECRET: Final = _Object(
    {"metadata": _METADATA, "type": _Str(), "data": _StrMap(), "stringData": _StrMap()},
    required=("metadata",),
)

#: Kind -> the shape the proxy reads. A table, so a new field read is a new line here.
# Gateway API objects: only metadata is checked here. Their translation (``_gateway``,
# ``_httproute``) reads every other field defensively and reports a wrong shape in the object's
# own status, which is where the Gateway API wants users to look.
_METADATA_ONLY: Final = _Object({"metadata": _METADATA}, required=("metadata",))

_SHAPES: Final[Mapping[str, _Object]] = {
    "Ingress": _INGRESS,
    "IngressClass": _INGRESS_CLASS,
    "Service": _SERVICE,
    "EndpointSlice": _ENDPOINT_SLICE,
    "Secret": _SECRET,
    "GatewayClass": _METADATA_ONLY,
    "Gateway": _METADATA_ONLY,
    "HTTPRoute": _METADATA_ONLY,
    "GRPCRoute": _METADATA_ONLY,
    "ReferenceGrant": _METADATA_ONLY,
    "Namespace": _METADATA_ONLY,
    "ConfigMap": _METADATA_ONLY,
    "EdgeAuth": _METADATA_ONLY,  # its spec is read by ``_auth``, which reports each field
    "ListenerSet": _METADATA_ONLY,
}


def object_problems(obj: object, kind: str) -> tuple[str, ...]:
    """What is wrong with the fields of ``obj`` (a ``kind``) that the proxy reads; () if none.

    Each problem names the field path, what it holds and what was expected:
    ``spec.rules[0].host is 123 (int), expected a string``.
    """
    shape = _SHAPES.get(kind)
    if shape is None:
        return (f"kind {shown(kind)} is not read by the proxy",)
    found: list[str] = []
    given = obj.get("kind") if isinstance(obj, Mapping) else None
    if given is not None and given != kind:
        # A watch of one kind carrying another (or ``kind: []``): readers dispatch on it.
        found.append(f"kind is {shown(given)}, expected {kind!r}")
    shape.check(obj, "", found)
    if len(found) > _MAX_PROBLEMS:
        found[_MAX_PROBLEMS:] = [f"and {len(found) - _MAX_PROBLEMS} more"]
    return tuple(found)
