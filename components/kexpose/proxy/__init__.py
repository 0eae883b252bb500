"""kexpose-proxy: an Ingress controller in Python.

Package map (import-linter keeps ``routes`` and ``filters`` free of I/O and of every part
below, and the two planes independent of each other):

- ``routes``: the route core, pure. Kubernetes objects (Ingress, Gateway API) in, immutable
  tables out: hosts, paths by pathType and precedence, Gateway listeners and HTTPRoute rules,
  Service ports resolved to ready EndpointSlice addresses, certificates by SNI name, status.
- ``filters``: the steps a matched route applies (header changes, redirects, rewrites, CORS).
- ``dataplane``: the HTTP data plane (``server.DataPlane``): listeners, connections, exchanges,
  the upstream pool, TLS. It knows only the route core's tables.
- ``control``: where the objects come from: the Kubernetes API (``plane``, ``kubeapi``,
  ``lease``) or YAML files (``static``); status writing.
- ``ops``: health, metrics, access and process logs.
- ``runner`` (one process), ``workers`` (``--workers N``), ``cli`` (``kexpose-proxy``),
  ``settings`` and ``errors`` at the top.

In a cluster the proxy needs: get/list/watch on ingresses, ingressclasses, services,
endpointslices and secrets; patch on ingresses/status; get/create/update on leases in the
namespace of ``--publish-service``; and, for a stable leader identity, ``POD_NAME`` and
``POD_NAMESPACE`` from the downward API.
"""

from __future__ import annotations

from kexpose.proxy.errors import ProxyError

__all__ = ["ProxyError"]
