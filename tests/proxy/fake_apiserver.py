"""A tiny fake kube-apiserver over loopback HTTP, enough for lightkube's list/watch/get/patch.

Lists return what ``objects`` holds; watches play the queued streams for their kind (JSON
lines, chunked), then stay open with nothing to say until the test ends. A stream entry is an
event dict ``{"type": ..., "object": ...}``; ``GONE`` sends the ERROR event with a 410 Status
the real API server sends for a too-old resourceVersion.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httptools

GONE = {
    "type": "ERROR",
    "object": {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": "too old resource version: 1 (5)",
        "reason": "Expired",
        "code": 410,
    },
}

# URL path (cluster-wide list) -> kind
PATHS = {
    "/apis/networking.k8s.io/v1/ingressclasses": "IngressClass",
    "/apis/networking.k8s.io/v1/ingresses": "Ingress",
    "/api/v1/services": "Service",
    "/apis/discovery.k8s.io/v1/endpointslices": "EndpointSlice",
    "/api/v1/secrets": "Secret",
}


@dataclass
class FakeApiServer:
    objects: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    watches: dict[str, list[list[dict[str, Any]]]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    patches: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    leases: dict[str, dict[str, Any]] = field(default_factory=dict)
    version: int = 5
    port: int = 0
    _server: asyncio.Server | None = None
    _open: set[asyncio.Transport] = field(default_factory=set)

    async def start(self) -> FakeApiServer:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Handler(self), "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for t in list(self._open):
                t.abort()
            await self._server.wait_closed()

    def kubeconfig(self) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": f"http://127.0.0.1:{self.port}"}}],
            "users": [{"name": "fake", "user": {"token": "t"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
            "current-context": "fake",
        }

    def answer(self, method: str, target: str, body: bytes) -> Iterator[bytes] | bytes:
        url = urlsplit(target)
        query = parse_qs(url.query)
        self.requests.append((method, target))
        kind = PATHS.get(url.path)
        if kind is not None and method == "GET":
            if query.get("watch") == ["true"] or query.get("watch") == ["1"]:
                return self._watch(kind)
            listing = {
                "kind": f"{kind}List",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": str(self.version)},
                "items": self.objects.get(kind, []),
            }
            return _response(200, listing)
        if method == "PATCH" and url.path.endswith("/status"):
            self.patches.append((url.path, json.loads(body)))
            return _response(
                200,
                {
                    "kind": "Ingress",
                    "apiVersion": "networking.k8s.io/v1",
                    "metadata": {"name": url.path.split("/")[-2]},
                },
            )
        if "/leases" in url.path:
            return self._lease(method, url.path, body)
        if method == "GET" and "/services/" in url.path:
            _, _, rest = url.path.partition("/namespaces/")
            namespace, _, name = rest.partition("/services/")
            for svc in self.objects.get("Service", []):
                meta = svc["metadata"]
                if meta["name"] == name and meta.get("namespace") == namespace:
                    return _response(200, svc)
        return _response(
            404,
            {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "reason": "NotFound",
                "code": 404,
                "message": "not found",
            },
        )

    def _lease(self, method: str, path: str, body: bytes) -> bytes:
        """Leases with the API server's optimistic concurrency (resourceVersion, 409)."""
        if method == "POST":
            lease = json.loads(body)
            path = f"{path}/{lease['metadata']['name']}"
            if path in self.leases:
                return _status(409, "AlreadyExists")
        elif method == "PUT":
            lease = json.loads(body)
            current = self.leases.get(path)
            if current is None:
                return _status(404, "NotFound")
            if lease["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
                return _status(409, "Conflict")
        else:
            found = self.leases.get(path)
            return _response(200, found) if found else _status(404, "NotFound")
        self.version += 1
        lease["metadata"]["resourceVersion"] = str(self.version)
        lease.setdefault("apiVersion", "coordination.k8s.io/v1")
        lease.setdefault("kind", "Lease")
        self.leases[path] = lease
        return _response(201 if method == "POST" else 200, lease)

    def _watch(self, kind: str) -> Iterator[bytes]:
        streams = self.watches.get(kind) or []
        events = streams.pop(0) if streams else []
        yield (
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )
        for event in events:
            line = json.dumps(event).encode() + b"\n"
            yield b"%x\r\n%b\r\n" % (len(line), line)
        if events and events[-1] is GONE:
            yield b"0\r\n\r\n"


def _status(code: int, reason: str) -> bytes:
    return _response(
        code,
        {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "reason": reason,
            "code": code,
            "message": reason,
        },
    )


def _response(status: int, obj: dict[str, Any]) -> bytes:
    body = json.dumps(obj).encode()
    return b"HTTP/1.1 %d X\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%b" % (
        status,
        len(body),
        body,
    )


class _Handler(asyncio.Protocol):
    def __init__(self, server: FakeApiServer) -> None:
        self.server = server
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server._open.add(self.transport)  # type: ignore[arg-type]

    def connection_lost(self, exc: Exception | None) -> None:
        self.server._open.discard(self.transport)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        assert self.transport is not None
        out = self.server.answer(self.parser.get_method().decode(), self.url.decode(), self.body)
        self.url = self.body = b""
        if isinstance(out, bytes):
            self.transport.write(out)
        else:
            for piece in out:
                self.transport.write(piece)
