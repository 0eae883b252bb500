"""Reading a live cluster for ``kexpose import --kubeconfig``: read-only, and no Secret at all.

Lists Ingresses (``networking.k8s.io/v1``: the API server converts what older clients wrote,
and serves no other version since Kubernetes 1.22) and Services, cluster-wide or in one
namespace, with lightkube's synchronous client. Nothing is written; Secrets are not listed,
since the import needs neither their data nor their names. RBAC needed: ``list`` on ingresses
and services.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from kexpose.errors import InputError, KexposeError
from kexpose.importer import Origin

__all__ = ["ClusterError", "read_cluster"]


class ClusterError(KexposeError):
    """The cluster could not be read (unreachable, forbidden): not the input's fault."""


def read_cluster(
    kubeconfig: str, *, namespace: str | None, context: str | None = None
) -> list[tuple[Mapping[str, Any], Origin]]:
    from lightkube import ApiError, Client, ConfigError, KubeConfig
    from lightkube.resources.core_v1 import Service
    from lightkube.resources.networking_v1 import Ingress

    try:
        config = KubeConfig.from_file(kubeconfig).get(context_name=context)
    except (ConfigError, OSError, ValueError, KeyError) as exc:
        raise InputError(f"{kubeconfig}: not a usable kubeconfig: {exc}", file=kubeconfig) from None
    if config is None:
        raise InputError(f"{kubeconfig}: names no current context; pass --context", file=kubeconfig)
    where = f"cluster {config.context_name}"
    client = Client(config=config, trust_env=False)
    out: list[tuple[Mapping[str, Any], Origin]] = []
    try:
        for resource in (Ingress, Service):
            for obj in client.list(resource, namespace=namespace or "*"):
                # Every lightkube resource object is a dataclass with to_dict (camelCase JSON).
                data: dict[str, Any] = cast(Any, obj).to_dict()
                meta = data.get("metadata") or {}
                ref = f"{resource.__name__}/{meta.get('namespace')}/{meta.get('name')}"
                origin = Origin(f"{where}: {ref}")
                out.append((data, origin))
    except ApiError as exc:
        raise ClusterError(f"{where}: listing failed: {exc.status.message}") from None
    except Exception as exc:  # the HTTP library behind lightkube may change (as kubeapi wraps)
        raise ClusterError(f"{where}: cannot reach the API server: {exc}") from None
    return out
