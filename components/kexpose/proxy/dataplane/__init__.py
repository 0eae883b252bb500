"""The HTTP data plane: sockets, connections and the bytes of each exchange.

``server`` holds ``DataPlane`` (listeners, table swaps, deadlines, staged drain); its private
modules are ``_downstream`` (client connections), ``_exchange`` (one request), ``_upstream``
(endpoint connections and their pool), ``_plans``/``_gwplan``/``_messages`` (heads), ``_chunked``,
``_balancer`` and ``_tls``. The data plane knows only the route core's immutable tables; it never
talks to the Kubernetes API.
"""
