"""The Kubernetes API as the control plane sees it: a small Protocol, and its lightkube form.

The control plane and leader election talk to :class:`KubeApi` only, so they can be tested
against a scripted fake, and the HTTP library behind it may change: lightkube's and httpx's
exceptions are wrapped here (kopf's ``clients/errors.py`` reasoning) and never escape.
Objects cross the boundary as raw JSON dicts (the ``routes`` TypedDicts), undecoded by
lightkube's models, so that the control plane can reject a malformed one alone.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, Literal, Protocol, TypeAlias, TypedDict, cast

from kexpose.proxy.errors import KubeError, ProxyConfigError, WatchGoneError
from kexpose.proxy.routes import (
    CLUSTER_SCOPED,
    EXTENSION_KINDS,
    GATEWAY_KINDS,
    KINDS,
    ExtensionKind,
    GatewayKind,
    Kind,
    LoadBalancerIngress,
    RawObject,
    Service,
)

__all__ = [
    "AnyKind",
    "EventType",
    "KubeApi",
    "Lease",
    "LeaseSpec",
    "LightkubeApi",
    "conflict",
]

log = logging.getLogger(__name__)

EventType = Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]


class LeaseSpec(TypedDict, total=False):
    holderIdentity: str | None
    leaseDurationSeconds: int
    acquireTime: str
    renewTime: str
    leaseTransitions: int


class LeaseMeta(TypedDict, total=False):
    name: str
    namespace: str
    resourceVersion: str


class Lease(TypedDict, total=False):
    """``coordination.k8s.io/v1`` Lease."""

    apiVersion: str
    kind: str
    metadata: LeaseMeta
    spec: LeaseSpec


#: Every kind the control plane may watch: the Ingress kinds, and the Gateway API ones.
AnyKind: TypeAlias = Kind | GatewayKind | ExtensionKind


class KubeApi(Protocol):
    async def list_objects(
        self, kind: AnyKind, namespace: str | None
    ) -> tuple[list[RawObject], str]:
        """All objects of ``kind`` (in ``namespace``, or everywhere) and the list's
        resourceVersion."""
        ...

    def watch_objects(
        self, kind: AnyKind, namespace: str | None, resource_version: str, *, timeout: int
    ) -> AsyncIterator[tuple[EventType, RawObject]]:
        """Events after ``resource_version``; raises WatchGoneError on 410, KubeError else."""
        ...

    async def patch_status(
        self, kind: GatewayKind, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None:
        """Merge-patch ``status`` into the status subresource of a Gateway API object
        (``namespace`` is ``""`` for a cluster-scoped kind)."""
        ...

    async def get_service(self, namespace: str, name: str) -> Service | None: ...

    async def patch_ingress_status(
        self, namespace: str, name: str, addresses: list[LoadBalancerIngress]
    ) -> None: ...

    async def get_lease(self, namespace: str, name: str) -> Lease | None: ...

    async def create_lease(self, lease: Lease) -> Lease:
        """Raises KubeError with status 409 when it exists already."""
        ...

    async def replace_lease(self, lease: Lease) -> Lease:
        """Optimistic: raises KubeError with status 409 when ``resourceVersion`` is stale."""
        ...

    async def close(self) -> None: ...


def conflict(exc: KubeError) -> bool:
    return exc.status == 409


class LightkubeApi:
    """:class:`KubeApi` over lightkube's AsyncClient."""

    def __init__(self, *, kubeconfig: Path | None = None, field_manager: str = "kexpose-proxy"):
        from lightkube import AsyncClient, ConfigError, KubeConfig

        try:
            config = (
                KubeConfig.from_file(kubeconfig)
                if kubeconfig is not None
                else KubeConfig.from_env()  # in-cluster, then $KUBECONFIG or ~/.kube/config
            )
        except (ConfigError, OSError, KeyError, ValueError) as exc:
            where = str(kubeconfig) if kubeconfig else "in-cluster or ~/.kube/config"
            raise ProxyConfigError(f"no usable Kubernetes configuration ({where}): {exc}") from exc
        self._client = AsyncClient(config=config, field_manager=field_manager)

    @staticmethod
    def _resource(kind: AnyKind) -> Any:
        return _raw_resources()[kind]

    async def list_objects(
        self, kind: AnyKind, namespace: str | None
    ) -> tuple[list[RawObject], str]:
        res = self._resource(kind)
        kwargs: dict[str, Any] = {} if kind in CLUSTER_SCOPED else {"namespace": namespace or "*"}
        try:
            listing = self._client.list(res, **kwargs)
            items = [_raw(obj, kind) async for obj in listing]
            return items, listing.resourceVersion
        except Exception as exc:  # every client failure becomes a KubeError (_wrap)
            raise _wrap(exc, f"list {kind}") from exc

    async def watch_objects(
        self, kind: AnyKind, namespace: str | None, resource_version: str, *, timeout: int
    ) -> AsyncIterator[tuple[EventType, RawObject]]:
        res = self._resource(kind)
        kwargs: dict[str, Any] = {} if kind in CLUSTER_SCOPED else {"namespace": namespace or "*"}
        stream = self._client.watch(
            res, resource_version=resource_version, server_timeout=timeout, **kwargs
        )
        try:
            async for event_type, obj in stream:
                yield cast("EventType", event_type), _raw(obj, kind)
        except Exception as exc:  # every client failure becomes a KubeError (_wrap)
            raise _wrap(exc, f"watch {kind}") from exc
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    async def get_service(self, namespace: str, name: str) -> Service | None:
        obj = await self._get(self._resource("Service"), "Service", namespace, name)
        return None if obj is None else cast("Service", _raw(obj, "Service"))

    async def patch_ingress_status(
        self, namespace: str, name: str, addresses: list[LoadBalancerIngress]
    ) -> None:
        from lightkube.resources.networking_v1 import Ingress
        from lightkube.types import PatchType

        body = {"status": {"loadBalancer": {"ingress": addresses}}}
        try:
            await self._client.patch(
                Ingress.Status, name, body, namespace=namespace, patch_type=PatchType.MERGE
            )
        except Exception as exc:  # wrapped: no client exception escapes
            raise _wrap(exc, f"patch Ingress {namespace}/{name} status") from exc

    async def patch_status(
        self, kind: GatewayKind, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None:
        from lightkube.types import PatchType

        res = _status_resources()[kind]
        kwargs: dict[str, Any] = {} if kind in CLUSTER_SCOPED else {"namespace": namespace}
        try:
            await self._client.patch(
                res, name, {"status": dict(status)}, patch_type=PatchType.MERGE, **kwargs
            )
        except Exception as exc:  # wrapped: no client exception escapes
            where = f"{namespace}/{name}" if namespace else name
            raise _wrap(exc, f"patch {kind} {where} status") from exc

    async def get_lease(self, namespace: str, name: str) -> Lease | None:
        from lightkube.resources.coordination_v1 import Lease as LeaseResource

        obj = await self._get(LeaseResource, "Lease", namespace, name)
        return None if obj is None else cast("Lease", cast("Any", obj).to_dict())

    async def _get(self, resource: Any, kind: str, namespace: str, name: str) -> object | None:
        """The object, or None when the API server answers 404."""
        try:
            obj: object = await self._client.get(resource, name, namespace=namespace)
        except Exception as exc:  # wrapped: no client exception escapes
            error = _wrap(exc, f"get {kind} {namespace}/{name}")
            if error.status == 404:
                return None
            raise error from exc
        return obj

    async def create_lease(self, lease: Lease) -> Lease:
        return await self._write_lease("create", lease)

    async def replace_lease(self, lease: Lease) -> Lease:
        return await self._write_lease("replace", lease)

    async def _write_lease(self, verb: Literal["create", "replace"], lease: Lease) -> Lease:
        from lightkube import codecs

        write = self._client.create if verb == "create" else self._client.replace
        try:
            obj = await write(codecs.from_dict(cast("dict[str, Any]", lease)))
        except Exception as exc:  # wrapped: no client exception escapes
            raise _wrap(exc, f"{verb} Lease") from exc
        return cast("Lease", cast("Any", obj).to_dict())

    async def close(self) -> None:
        await self._client.close()


_PLURALS: Mapping[str, str] = {
    "Ingress": "ingresses",
    "IngressClass": "ingressclasses",
    "Service": "services",
    "EndpointSlice": "endpointslices",
    "Secret": "secrets",
    "GatewayClass": "gatewayclasses",
    "Gateway": "gateways",
    "HTTPRoute": "httproutes",
    "GRPCRoute": "grpcroutes",
    "ReferenceGrant": "referencegrants",
    "Namespace": "namespaces",
    "ConfigMap": "configmaps",
    "EdgeAuth": "edgeauths",
    "ListenerSet": "listenersets",
}


@functools.cache
def _raw_resources() -> dict[AnyKind, Any]:
    """Resource classes that hand objects over as the JSON the API sent.

    lightkube's typed models (``lightkube.resources``) validate every field while decoding, so
    one object of an unexpected shape fails the whole list or watch (issue 14): the informer
    relists, fails again, and no object of that kind is ever updated. Dict-based resources are
    decoded without validation (``decoders.decode_object``); ``routes.object_problems`` then
    rejects a malformed object alone. They are built here, not with
    ``lightkube.generic_resource``, which would register them in place of the typed models.
    """
    from lightkube.core import resource as res
    from lightkube.generic_resource import Generic, create_api_info

    made: dict[AnyKind, Any] = {}
    for kind, plural in _PLURALS.items():
        group, _, version = _API_VERSIONS[kind].rpartition("/")
        base = res.GlobalResource if kind in CLUSTER_SCOPED else res.NamespacedResourceG
        made[cast("AnyKind", kind)] = type(
            kind, (base, Generic), {"_api_info": create_api_info(group, version, kind, plural)}
        )
    return made


@functools.cache
def _status_resources() -> dict[GatewayKind, Any]:
    """The ``status`` subresources of the Gateway API kinds the proxy reports on."""
    from lightkube.core import resource as res
    from lightkube.generic_resource import Generic

    made: dict[GatewayKind, Any] = {}
    kinds: tuple[GatewayKind, ...] = (
        "GatewayClass",
        "Gateway",
        "HTTPRoute",
        "GRPCRoute",
        "ListenerSet",
    )
    for kind in kinds:
        group, _, version = _API_VERSIONS[kind].rpartition("/")
        definition = res.ResourceDef(group, version, kind)
        info = res.ApiInfo(
            resource=definition,
            parent=definition,
            plural=_PLURALS[kind],
            verbs=["get", "patch"],
            action="status",
        )
        base = res.GlobalSubResource if kind in CLUSTER_SCOPED else res.NamespacedSubResource
        made[kind] = type(f"{kind}Status", (base, Generic), {"_api_info": info})
    return made


def _raw(obj: Any, kind: AnyKind) -> RawObject:
    data = cast("dict[str, Any]", obj.to_dict())
    data.setdefault("kind", kind)
    data.setdefault("apiVersion", _API_VERSIONS[kind])
    return cast("RawObject", data)


#: The version each kind is listed and watched in: the one the route core reads (its first).
_API_VERSIONS: Mapping[str, str] = {
    **{str(kind): version for kind, version in KINDS.items()},
    **{str(kind): versions[0] for kind, versions in GATEWAY_KINDS.items()},
    **{str(kind): versions[0] for kind, versions in EXTENSION_KINDS.items()},
}


def _wrap(exc: Exception, doing: str) -> KubeError:
    """Turn a lightkube/httpx failure into our own error, keeping the API server's words."""
    from lightkube import ApiError

    if isinstance(exc, ApiError):
        code = getattr(exc.status, "code", None)
        message = getattr(exc.status, "message", None) or str(exc)
        if code == 410:
            return WatchGoneError(f"{doing}: {message}")
        return KubeError(f"{doing}: {message} ({code})", status=code)
    if isinstance(exc, KubeError):
        return exc
    # A 404 for a resource the API server does not serve at all (a CRD not installed) comes
    # with a plain-text body, which lightkube cannot read as a Status: httpx's error remains.
    response = getattr(exc, "response", None)
    code = getattr(response, "status_code", None)
    status = code if isinstance(code, int) else None
    return KubeError(f"{doing}: {type(exc).__name__}: {exc}", status=status)
