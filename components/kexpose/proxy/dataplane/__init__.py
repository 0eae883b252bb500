"""The HTTP data plane: sockets, connections and the bytes of each exchange.

``server`` holds ``DataPlane`` (listeners, table swaps, deadlines, staged drain); its private
modules are ``_downstream`` (HTTP/1.1 client connections, which hand HTTP/2 ones over to
``_http2`` and its ``_http2_stream``), ``_exchange`` (one request), ``_roles`` (the Protocols
they know each other by), ``_upstream`` (HTTP/1.1 endpoint connections and their pool),
``_upstream_h2c`` and ``_h2c_stream`` (h2c endpoint connections and their streams),
``_translation`` (HTTP/2 headers to HTTP/1.1 heads), ``_grpc``, ``_plans``/``_gwplan``/
``_messages`` (heads), ``_chunked``, ``_balancer`` and ``_tls``. The data plane knows only the
route core's immutable tables; it never talks to the Kubernetes API.
"""
