"""The echo-basic stand-in (tests/e2e/echo_basic.py) against echo-basic's Go source
(conformance@v1.6.3 `echo-basic/echo-basic.go`) and net/http's behaviour: pure answers as
tables, then the server over real loopback sockets (framing, keep-alive, the retry RST)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from tests.e2e.echo_basic import (
    EchoBasicServer,
    EchoContext,
    Incoming,
    RetrySimulation,
    answer,
    canonical_header_key,
    clean_path,
    parse_go_duration,
    plan,
)
from tests.e2e.echo_pods import echo_basic_address

CONTEXT = EchoContext(namespace="gateway-conformance-infra", pod="infra-backend-v1-7d9c-abcde")


def incoming(target: str, *headers: tuple[str, str], method: str = "GET") -> Incoming:
    return Incoming(method, target, "1.1", (("Host", "gw.example"), *headers))


def reply_of(
    target: str, *headers: tuple[str, str], method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    reply = answer(
        incoming(target, *headers, method=method),
        CONTEXT,
        http_port="3000",
        retries=RetrySimulation(),
    )
    return reply.status, dict(reply.headers), reply.body


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("x-foo-bar", "X-Foo-Bar"),
        ("X-FOO", "X-Foo"),
        ("content-type", "Content-Type"),
        ("x_under", "X_under"),
        ("with space", "with space"),  # not a token: Go leaves it alone
        ("-x", "-X"),
    ],
)
def test_header_names_are_canonical_as_go_makes_them(name: str, canonical: str) -> None:
    assert canonical_header_key(name) == canonical


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1.0), ("300ms", 0.3), ("1.5m", 90.0), ("1h2m", 3720.0), ("0", 0.0), ("-2s", -2.0),
     ("10us", 1e-5), ("1\u00b5s", 1e-6), (".5s", 0.5)],
)  # fmt: skip
def test_go_durations_parse(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'time: invalid duration ""'),
        ("soon", 'time: invalid duration "soon"'),
        ("1", 'time: missing unit in duration "1"'),
        ("1d", 'time: unknown unit "d" in duration "1d"'),
        (".s", 'time: invalid duration ".s"'),
    ],
)
def test_bad_durations_fail_with_gos_message(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        parse_go_duration(text)


@pytest.mark.parametrize(
    ("path", "cleaned"),
    [("/", "/"), ("/a/b/", "/a/b/"), ("/a/./b", "/a/b"), ("/a/../b/", "/b/"), ("/..", "/"),
     ("", "/"), ("a", "/a")],
)  # fmt: skip
def test_paths_clean_as_servemux_cleans_them(path: str, cleaned: str) -> None:
    assert clean_path(path) == cleaned


@pytest.mark.parametrize(
    ("target", "route"),
    [
        ("/", ("echo", "")),
        ("/health", ("health", "")),
        ("/healthz", ("echo", "")),
        ("/status/500", ("status", "")),
        ("/status", ("redirect", "/status/")),  # ServeMux: a subtree's root without its slash
        ("/retry?uuid=1", ("redirect", "/retry/?uuid=1")),
        ("/retry/x?uuid=1", ("retry", "")),
        ("/ws", ("ws", "")),
        ("//prefix//x", ("echo", "")),  # preserveSlashes: `//` never reaches the mux
        ("///x", ("redirect", "/x")),
        ("/a/../b?q=1", ("redirect", "/b?q=1")),
        ("/%2e%2e/b", ("redirect", "/b")),
        ("http://other.example/status/201", ("status", "")),
    ],
)
def test_echo_basic_routes_as_its_mux_does(target: str, route: tuple[str, str]) -> None:
    assert plan(incoming(target)) == route


def test_the_echo_is_gos_indented_json_of_the_request() -> None:
    status, headers, body = reply_of(
        "/p?a=1&b=<x>",
        ("x-custom", "one"),
        ("X-CUSTOM", "two"),
        ("Transfer-Encoding", "chunked"),
        ("Pragma", "no-cache"),
    )
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert body.startswith(b'{\n "path": "/p?a=1\\u0026b=\\u003cx\\u003e",\n "host": "gw.example",')
    echoed = json.loads(body)
    assert list(echoed) == [
        "path", "host", "method", "proto", "headers", "httpPort", "namespace", "ingress",
        "service", "pod",
    ]  # fmt: skip
    assert echoed["path"] == "/p?a=1&b=<x>"
    assert echoed["headers"] == {
        "Cache-Control": ["no-cache"],  # net/http's fixPragmaCacheControl
        "Pragma": ["no-cache"],
        "X-Custom": ["one", "two"],
    }
    assert (echoed["namespace"], echoed["pod"], echoed["httpPort"]) == (
        CONTEXT.namespace,
        CONTEXT.pod,
        "3000",
    )
    assert (echoed["method"], echoed["proto"], echoed["ingress"], echoed["service"]) == (
        "GET",
        "HTTP/1.1",
        "",
        "",
    )


def test_x_echo_set_header_pairs_become_response_headers() -> None:
    reply = answer(
        incoming(
            "/",
            ("X-Echo-Set-Header", "X-Foo: bar, x-lower:v1,x-lower: v2"),
            ("x-echo-set-header", "X-Second:2,bad name:dropped,:empty"),
        ),
        CONTEXT,
        http_port="3000",
        retries=RetrySimulation(),
    )
    assert [h for h in reply.headers if h[0] not in ("Content-Type", "X-Content-Type-Options")] == [
        ("X-Foo", "bar"),
        ("x-lower", "v1,v2"),
        ("X-Second", "2"),
    ]
    # The handler's own Content-Type wins over an echoed one of the same (canonical) name.
    replaced = reply_of("/", ("X-Echo-Set-Header", "Content-Type:text/plain,content-type:x"))[1]
    assert (replaced["Content-Type"], replaced["content-type"]) == ("application/json", "x")
    # What the suite always sends when it expects no header: `X-Echo-Set-Header:` (empty).
    assert reply_of("/", ("X-Echo-Set-Header", ""))[1].keys() == {
        "Content-Type",
        "X-Content-Type-Options",
    }


@pytest.mark.parametrize(
    ("target", "status"),
    [("/status/418", 418), ("/status/200", 200), ("/status/41", 400), ("/status/418?x=1", 400),
     ("/status/4180", 400)],
)  # fmt: skip
def test_status_answers_the_code_of_the_raw_target(target: str, status: int) -> None:
    assert reply_of(target) == (status, {}, b"")


def test_delay_errors_and_health() -> None:
    assert reply_of("/x?delay=soon") == (
        500,
        {"Content-Type": "application/json", "X-Content-Type-Options": "nosniff"},
        b'{"message":"time: invalid duration \\"soon\\""}',
    )
    ok = answer(incoming("/x?delay=250ms"), CONTEXT, http_port="3000", retries=RetrySimulation())
    assert (ok.status, ok.delay_s) == (200, 0.25)
    assert reply_of("/health") == (200, {"Content-Type": "text/plain; charset=utf-8"}, b"OK")
    assert reply_of("*", method="OPTIONS")[0] == 200
    assert reply_of("/a/./b?q", method="POST")[:2] == (301, {"Location": "/a/b?q"})


def test_retries_fail_until_succeed_after_then_echo() -> None:
    retries = RetrySimulation()

    def attempt(query: str) -> tuple[int, bool]:
        reply = answer(incoming(f"/retry/r?{query}"), CONTEXT, http_port="3000", retries=retries)
        return reply.status, reply.reset

    assert [attempt("uuid=a&succeedAfter=2&responseCode=503") for _ in range(3)] == [
        (503, False),
        (503, False),
        (200, False),
    ]
    assert [attempt("uuid=b&succeedAfter=1")[1] for _ in range(2)] == [True, False]
    assert attempt("succeedAfter=1") == (400, False)
    assert attempt("uuid=c&succeedAfter=x") == (400, False)
    assert attempt("uuid=a&succeedAfter=2") == (200, False)  # its attempts are used up


def test_only_ready_echo_basic_pods_in_http_mode_are_served() -> None:
    def pod(**changes: object) -> dict[str, object]:
        env: list[dict[str, object]] = [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            *changes.pop("env", []),  # type: ignore[misc]
        ]
        image = changes.pop("image", "registry.k8s.io/gateway-api/echo-basic:v1.5.1")
        ready = {"type": "Ready", "status": changes.pop("ready", "True")}
        return {
            "metadata": {"name": "web-backend-1", "namespace": "ns"},
            "spec": {"containers": [{"image": image, "env": env}]},
            "status": {"podIP": "10.244.0.7", "conditions": [ready]},
        }

    assert echo_basic_address(pod()) == (
        ("10.244.0.7", 3000),
        EchoContext(namespace="ns", pod="web-backend-1"),
    )
    assert echo_basic_address(pod(env=[{"name": "HTTP_PORT", "value": "3005"}])) is not None
    assert echo_basic_address(pod(env=[{"name": "HTTP_PORT", "value": "3005"}]))[0][1] == 3005  # type: ignore[index]
    assert echo_basic_address(pod(ready="False")) is None
    assert echo_basic_address(pod(image="registry.k8s.io/coredns/coredns:v1.12.2")) is None
    assert echo_basic_address(pod(env=[{"name": "GRPC_ECHO_SERVER", "value": "1"}])) is None
    assert echo_basic_address(pod(env=[{"name": "TCP_ECHO_SERVER", "value": "1"}])) is None


# ---- over loopback -------------------------------------------------------------------------------


@pytest_asyncio.fixture
async def server(unused_tcp_port: int) -> AsyncIterator[EchoBasicServer]:
    echo = EchoBasicServer("127.0.0.1", unused_tcp_port, CONTEXT)
    await echo.start()
    yield echo
    await echo.stop()


async def exchange(server: EchoBasicServer, raw: bytes) -> bytes:
    """Send `raw`, then read until the server closes the connection."""
    reader, writer = await asyncio.open_connection(server.ip, server.port)
    writer.write(raw)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
    await writer.wait_closed()
    return data


@pytest.mark.asyncio
async def test_small_bodies_get_a_length_large_ones_are_chunked(server: EchoBasicServer) -> None:
    small = await exchange(server, b"GET /s HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    head, _, body = small.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert f"Content-Length: {len(body)}".encode() in head
    assert json.loads(body)["path"] == "/s"
    big = await exchange(
        server,
        b"GET /b HTTP/1.1\r\nHost: a\r\nX-Pad: " + b"p" * 3000 + b"\r\nConnection: close\r\n\r\n",
    )
    head, _, body = big.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    assert b"Content-Length" not in head
    assert body.endswith(b"0\r\n\r\n")


@pytest.mark.asyncio
async def test_keep_alive_serves_requests_in_turn_and_drops_their_bodies(
    server: EchoBasicServer,
) -> None:
    data = await exchange(
        server,
        b"POST /one HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
        b"PUT /two HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        b"GET /three HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    assert data.count(b"HTTP/1.1 200 OK") == 3
    bodies = [part.split(b"\r\n\r\n", 1)[1] for part in data.split(b"HTTP/1.1 200 OK")[1:]]
    assert [json.loads(body)["method"] for body in bodies] == ["POST", "PUT", "GET"]
    assert b'"Transfer-Encoding"' not in data  # consumed by the chunked reader, as in Go


@pytest.mark.asyncio
async def test_a_malformed_request_gets_400_and_a_close(server: EchoBasicServer) -> None:
    data = await exchange(server, b"GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 400 Bad Request\r\n")


@pytest.mark.asyncio
async def test_a_failing_retry_attempt_resets_the_connection(server: EchoBasicServer) -> None:
    key = uuid.uuid4().hex
    target = f"/retry/x?uuid={key}&succeedAfter=1".encode()
    with pytest.raises(ConnectionResetError):
        await exchange(server, b"GET " + target + b" HTTP/1.1\r\nHost: a\r\n\r\n")
    ok = await exchange(
        server, b"GET " + target + b" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    )
    assert ok.startswith(b"HTTP/1.1 200 OK")
    assert any(
        f"Echoing back request made to {target.decode()} to client" in line
        for line in server.log_lines()
    )


@pytest.mark.asyncio
async def test_stop_ends_a_connection_waiting_out_a_delay(unused_tcp_port: int) -> None:
    echo = EchoBasicServer("127.0.0.1", unused_tcp_port, CONTEXT)
    await echo.start()
    reader, writer = await asyncio.open_connection(echo.ip, echo.port)
    writer.write(b"GET /?delay=60s HTTP/1.1\r\nHost: a\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(0.1)
    await asyncio.wait_for(echo.stop(), timeout=5)
    assert await asyncio.wait_for(reader.read(), timeout=5) == b""
    writer.close()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(echo.ip, echo.port)


@pytest.mark.asyncio
async def test_the_websocket_handler_accepts_and_echoes_frames(server: EchoBasicServer) -> None:
    # RFC 6455 §1.3's example key and accept value; frames masked by the client (§5.3).
    handshake = (
        b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    mask = b"\x01\x02\x03\x04"

    def frame(opcode: int, payload: bytes) -> bytes:
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked

    data = await exchange(
        server,
        handshake
        + frame(0x1, b"Websocket Support!")
        + frame(0x2, bytes(range(1, 8)))
        + frame(0x8, b""),
    )
    head, _, frames = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 ")
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head
    assert frames == (
        bytes([0x81, 18])
        + b"Websocket Support!"
        + bytes([0x82, 7])
        + bytes(range(1, 8))
        + bytes([0x88, 0])
    )
