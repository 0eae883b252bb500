"""kexpose-proxy: an Ingress controller in Python.

Module map (import-linter keeps ``routes`` free of I/O and of every module below it):

- ``routes``: the pure core. Kubernetes objects in, an immutable ``RouteTable`` out: hosts,
  paths by pathType and precedence, default backends, class ownership, Service ports resolved
  to ready EndpointSlice addresses, certificates by SNI name, Ingress status values.
- ``server``: the data plane (``DataPlane``): listeners, table swaps, deadlines, staged drain.
  Its private modules: ``_downstream`` (client connections), ``_upstream`` (endpoint
  connections and pool), ``_exchange`` (one request), ``_plans`` and ``_messages`` (heads),
  ``_chunked``, ``_balancer``, ``_tls``.
- ``control``: the control plane: list-then-watch, 410 relist, backoff, status writer;
  ``lease``: Lease leader election; ``kubeapi``: the Kubernetes API boundary (lightkube).
- ``static``: the same objects from YAML files, reloaded on change.
- ``health``, ``metrics``, ``access_log``, ``logs``: operations.
- ``runner`` (one process), ``workers`` (``--workers N``), ``cli`` (``kexpose-proxy``).

In a cluster the proxy needs: get/list/watch on ingresses, ingressclasses, services,
endpointslices and secrets; patch on ingresses/status; get/create/update on leases in the
namespace of ``--publish-service``; and, for a stable leader identity, ``POD_NAME`` and
``POD_NAMESPACE`` from the downward API.
"""

from __future__ import annotations

from kexpose.proxy.errors import ProxyError

__all__ = ["ProxyError"]
