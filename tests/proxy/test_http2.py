"""HTTP/2 toward clients over loopback: ALPN on the TLS listener, prior knowledge on the plain
one, multiplexed streams on the same routes as HTTP/1.1, bodies streamed both ways within flow
control, trailers, faithful translation to HTTP/1.1 endpoints, and the graceful GOAWAY."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hpack import Decoder
from hyperframe.frame import DataFrame, GoAwayFrame, HeadersFrame
from tests.proxy import process
from tests.proxy.backends import EchoBackend, ScriptedBackend
from tests.proxy.conftest import Pki, Proxy, ProxyFactory, backend_objects
from tests.proxy.h2client import H2Client, h2_context
from tests.proxy.objects import (
    endpoint,
    endpoint_slice,
    ingress,
    ingress_class,
    path,
    rule,
    service,
    sport,
    tls,
    tls_secret,
)

pytestmark = pytest.mark.asyncio


async def _site(
    start_proxy: ProxyFactory, echo: Callable[..., Any], pki: Pki
) -> tuple[Proxy, EchoBackend]:
    web = await echo("web")
    proxy: Proxy = await start_proxy()
    proxy.load(
        ingress(
            "site",
            rule("app.example.com", path("/", "web")),
            tls=[tls("app-tls", "app.example.com")],
        ),
        tls_secret("app-tls", pki.pairs["app"]),
        *backend_objects("web", [web]),
    )
    return proxy, web


def _echo(r: Any) -> dict[str, Any]:
    assert r.status == 200, (r.status, bytes(r.body))
    info: dict[str, Any] = json.loads(bytes(r.body))
    return info


def _tls(pki: Pki, *protocols: str) -> ssl.SSLContext:
    return h2_context(pki.client_context(), protocols or ("h2",))


async def test_alpn_h2_on_the_tls_listener(
    start_proxy: ProxyFactory, echo: Callable[..., Any], pki: Pki
) -> None:
    proxy, _ = await _site(start_proxy, echo, pki)
    c = await H2Client.connect(proxy.https, tls=_tls(pki, "h2", "http/1.1"), sni="app.example.com")
    assert c.alpn == "h2"
    r = await c.request("/a?b=c", headers=[("user-agent", "t/1")])
    info = _echo(r)
    assert info["method"] == "GET"
    assert info["target"] == "/a?b=c"
    headers = dict(info["headers"])
    assert headers["host"] == "app.example.com"
    assert headers["x-forwarded-proto"] == "https"
    assert headers["user-agent"] == "t/1"
    assert not any(n.startswith(":") for n, _ in info["headers"])
    # Connection-specific fields the endpoint sent do not reach the stream (RFC 9113 §8.2.2).
    names = {n for n, _ in r.headers}
    assert b"connection" not in names
    assert b"keep-alive" not in names
    assert r.header(b"content-type") == b"application/json"
    await c.close()


async def test_alpn_http11_stays_http11(
    start_proxy: ProxyFactory, echo: Callable[..., Any], pki: Pki
) -> None:
    proxy, _ = await _site(start_proxy, echo, pki)
    c = await proxy.client(tls=_tls(pki, "http/1.1"), sni="app.example.com")
    assert c.writer.get_extra_info("ssl_object").selected_alpn_protocol() == "http/1.1"
    r = await c.request("GET", "/", host="app.example.com")
    assert r.status == 200
    await c.close()


async def test_prior_knowledge_on_the_plain_listener(
    start_proxy: ProxyFactory, echo: Callable[..., Any], pki: Pki
) -> None:
    proxy, _ = await _site(start_proxy, echo, pki)
    proxy.load(
        ingress("plain", rule("app.example.com", path("/", "web"))),
        *backend_objects("web", [await echo("web2")]),
    )
    c = await H2Client.connect(proxy.http)
    info = _echo(await c.request("/x"))
    assert dict(info["headers"])["x-forwarded-proto"] == "http"
    assert info["backend"] == "web2"
    await c.close()


async def test_preface_in_pieces_and_http11_beside_it(
    start_proxy: ProxyFactory, echo: Callable[..., Any], pki: Pki
) -> None:
    proxy, _ = await _site(start_proxy, echo, pki)
    proxy.load(
        ingress("plain", rule("app.example.com", path("/", "web"))),
        *backend_objects("web", [await echo("web")]),
    )
    reader, writer = await asyncio.open_connection(*proxy.http)
    c = H2Client(reader, writer)
    c.conn.initiate_connection()
    data = c.conn.data_to_send()
    for i in range(len(data)):  # one byte at a time: the preface is recognised all the same
        writer.write(data[i : i + 1])
        await writer.drain()
    _echo(await c.request("/"))
    await c.close()
    # A request line that starts like the preface's "PRI" but is not is HTTP/1.1's to judge.
    h1 = await proxy.client()
    r = await h1.request("GET", "/", host="app.example.com")
    assert r.status == 200
    await h1.close()


async def test_streams_are_multiplexed(
    start_proxy: ProxyFactory, echo: Callable[..., Any], pki: Pki
) -> None:
    proxy, _ = await _site(start_proxy, echo, pki)
    c = await H2Client.connect(proxy.https, tls=_tls(pki), sni="app.example.com")
    stuck = c.send_request("/stuck", headers=[("x-echo", "hang")])  # never answered
    fast = [c.send_request(f"/n/{i}") for i in range(30)]
    done = await c.wait(*fast)
    # Thirty answers while the first is still waiting: no head-of-line blocking.
    assert [_echo(r)["target"] for r in done] == [f"/n/{i}" for i in range(30)]
    assert not c.responses[stuck].done
    c.conn.reset_stream(stuck)
    c.flush()
    _echo(await c.request("/after"))
    await c.close()


async def test_request_body_streams_with_and_without_length(
    start_proxy: ProxyFactory, echo: Callable[..., Any], pki: Pki
) -> None:
    proxy, _ = await _site(start_proxy, echo, pki)
    c = await H2Client.connect(proxy.https, tls=_tls(pki), sni="app.example.com")
    body = bytes(range(256)) * 8192  # 2 MiB: many times any window
    sized = c.send_request(
        "/up", method="POST", headers=[("content-length", str(len(body)))], body=body
    )
    unsized = c.send_request("/up", method="POST", body=body)
    for r in await c.wait(sized, unsized, timeout=20):
        info = _echo(r)
        assert info["size"] == len(body)
        assert info["sha256"] == hashlib.sha256(body).hexdigest()
    headers = [dict(_echo(c.responses[s])["headers"]) for s in (sized, unsized)]
    assert headers[0]["content-length"] == str(len(body))
    assert headers[1]["transfer-encoding"] == "chunked"  # no length given: chunked upstream
    await c.close()


async def test_response_body_streams_within_the_window(
    start_proxy: ProxyFactory, echo: Callable[..., Any], pki: Pki
) -> None:
    proxy, _ = await _site(start_proxy, echo, pki)
    c = await H2Client.connect(proxy.https, tls=_tls(pki), sni="app.example.com")
    size = 8 * 1024 * 1024
    sids = [c.send_request("/big", headers=[("x-echo", f"stream:{size}")]) for _ in range(3)]
    for r in await c.wait(*sids, timeout=30):
        assert r.status == 200
        assert len(r.body) == size
        assert set(bytes(r.body[:65536])) == {ord("y")}
    await c.close()


async def test_head_204_and_local_answers(
    start_proxy: ProxyFactory, echo: Callable[..., Any], pki: Pki
) -> None:
    proxy, _ = await _site(start_proxy, echo, pki)
    c = await H2Client.connect(proxy.https, tls=_tls(pki), sni="app.example.com")
    head = await c.request("/", method="HEAD")
    assert head.status == 200
    assert head.body == b""
    assert head.header(b"content-length") is not None
    nothing = await c.request("/", headers=[("x-echo", "status:204")])
    assert (nothing.status, bytes(nothing.body)) == (204, b"")
    # Another host on this certificate's connection: 421, on its stream only (RFC 9113
    # §9.1.1: a client may then retry on a connection of its own for that host).
    other = await c.request("/", authority="nobody.example.com")
    assert other.status == 421
    trace = await c.request("/", method="TRACE")
    assert trace.status == 405
    # The connection is still good after all of that.
    _echo(await c.request("/again"))
    await c.close()


async def test_cookies_are_joined_and_authority_is_host(
    start_proxy: ProxyFactory, echo: Callable[..., Any], pki: Pki
) -> None:
    proxy, _ = await _site(start_proxy, echo, pki)
    c = await H2Client.connect(proxy.https, tls=_tls(pki), sni="app.example.com")
    r = await c.request("/", headers=[("cookie", "a=1"), ("cookie", "b=2"), ("te", "trailers")])
    headers = _echo(r)["headers"]
    assert [v for n, v in headers if n == "cookie"] == ["a=1; b=2"]  # RFC 9113 §8.2.3
    assert [v for n, v in headers if n == "host"] == ["app.example.com"]
    assert "te" not in dict(headers)  # hop-by-hop toward HTTP/1.1
    await c.close()


class _Trailers(ScriptedBackend):
    """Reads a chunked request with trailers, answers chunked with trailers of its own."""

    seen: bytes = b""

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = b""
        while not data.endswith(b"\r\n\r\n") or data.count(b"\r\n\r\n") < 2:
            more = await reader.read(65536)
            if not more:
                return
            data += more
        type(self).seen = data
        writer.write(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-type: application/grpc"
            b"\r\n\r\n5\r\nhello\r\n0\r\ngrpc-status: 0\r\ngrpc-message: fine\r\n\r\n"
        )
        await writer.drain()
        writer.close()


async def test_trailers_both_ways(start_proxy: ProxyFactory, pki: Pki) -> None:
    backend = await _Trailers().start()
    try:
        proxy: Proxy = await start_proxy()
        proxy.load(
            ingress("t", rule("app.example.com", path("/", "trail"))),
            service("trail", sport(80, "http", name="http")),
            endpoint_slice("trail", [endpoint("127.0.0.2")], [("http", backend.port)]),
        )
        c = await H2Client.connect(proxy.http)
        sid = c.send_request(
            "/t", method="POST", headers=[("te", "trailers")], body=b"abc", end=False
        )
        c.conn.send_headers(
            sid, [(b"x-checksum", b"42"), (b"content-length", b"9")], end_stream=True
        )
        c.flush()
        (r,) = await c.wait(sid)
        assert r.status == 200
        assert bytes(r.body) == b"hello"
        assert dict(r.trailers) == {b"grpc-status": b"0", b"grpc-message": b"fine"}
        # The client's trailer arrived in the last chunk; one a trailer must not carry did not.
        assert b"\r\n0\r\nx-checksum: 42\r\n\r\n" in _Trailers.seen
        assert b"content-length: 9" not in _Trailers.seen
        await c.close()
    finally:
        await backend.stop()


async def test_client_reset_cancels_the_exchange(
    start_proxy: ProxyFactory, echo: Callable[..., Any], pki: Pki
) -> None:
    proxy, web = await _site(start_proxy, echo, pki)
    c = await H2Client.connect(proxy.https, tls=_tls(pki), sni="app.example.com")
    sid = c.send_request("/hang", headers=[("x-echo", "hang")])
    async with asyncio.timeout(5):
        while not web.open:
            await asyncio.sleep(0.01)
    c.conn.reset_stream(sid)
    c.flush()
    async with asyncio.timeout(5):
        while web.open:  # the endpoint's connection is cut: it learns the client went away
            await asyncio.sleep(0.01)
    _echo(await c.request("/after"))
    await c.close()


async def test_drain_sends_goaway_and_finishes_streams(start_proxy: ProxyFactory) -> None:
    gate = await _Gate().start()
    try:
        proxy: Proxy = await start_proxy()
        proxy.load(
            ingress("site", rule("app.example.com", path("/", "gate"))),
            service("gate", sport(80, "http", name="http")),
            endpoint_slice("gate", [endpoint("127.0.0.2")], [("http", gate.port)]),
        )
        c = await H2Client.connect(proxy.http)
        sid = c.send_request("/slow")
        await asyncio.wait_for(gate.got.wait(), 5)  # under way, held by the endpoint
        drained = asyncio.create_task(proxy.plane.drain(timeout=5))
        # Read raw: h2's client state machine would stop at the first GOAWAY, as its server
        # side would (which is why the proxy writes its first GOAWAY beside h2).
        goaways: list[GoAwayFrame] = []
        status = b""
        ended = False
        decoder = Decoder()
        while (frame := await c.next_frame()) is not None:
            if isinstance(frame, GoAwayFrame):
                goaways.append(frame)
                gate.release.set()  # told first; now the answer may come
            elif isinstance(frame, HeadersFrame) and frame.stream_id == sid:
                assert goaways, "GOAWAY comes first, before the stream under way is answered"
                status = dict(decoder.decode(frame.data, raw=True))[b":status"]
            elif isinstance(frame, DataFrame) and frame.stream_id == sid:
                ended = ended or "END_STREAM" in frame.flags
        assert status == b"200"
        assert ended  # the stream under way finished
        assert [(g.error_code, g.last_stream_id) for g in goaways] == [(0, sid), (0, sid)]
        assert await drained == 0
        await c.close()
    finally:
        gate.release.set()
        await gate.stop()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
async def test_curl_http2(start_proxy: ProxyFactory, echo: Callable[..., Any], pki: Pki) -> None:
    proxy, _ = await _site(start_proxy, echo, pki)
    proxy.load(
        ingress("plain", rule("plain.example.com", path("/", "web"))),
        ingress(
            "site",
            rule("app.example.com", path("/", "web")),
            tls=[tls("app-tls", "app.example.com")],
        ),
        tls_secret("app-tls", pki.pairs["app"]),
        *backend_objects("web", [await echo("web")]),
    )
    runs = [
        [
            "--http2",
            "--cacert",
            str(pki.ca_file),
            "--resolve",
            f"app.example.com:{proxy.https[1]}:127.0.0.1",
            f"https://app.example.com:{proxy.https[1]}/c?q=1",
        ],
        [
            "--http2-prior-knowledge",
            "-H",
            "Host: plain.example.com",
            f"http://127.0.0.1:{proxy.http[1]}/c?q=1",
        ],
    ]
    for args in runs:
        proc = await asyncio.create_subprocess_exec(
            "curl",
            "-sS",
            "-w",
            "\\n%{http_version} %{http_code}",
            "-d",
            "payload",
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        assert proc.returncode == 0, err
        body, _, tail = out.rpartition(b"\n")
        assert tail == b"2 200"
        info = json.loads(body)
        assert info["target"] == "/c?q=1"
        assert info["size"] == len("payload")


class _Gate(ScriptedBackend):
    """Answers every request at once, except /slow, which waits for ``release``."""

    def __init__(self) -> None:
        super().__init__()
        self.got = asyncio.Event()
        self.release = asyncio.Event()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if b" /slow " in head.split(b"\r\n", 1)[0]:
                    self.got.set()
                    await self.release.wait()
                body = b'{"target": "ok"}'
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%b" % (len(body), body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


@pytest.mark.slow
async def test_sigterm_goaway_then_drain(tmp_path: Path) -> None:
    gate = await _Gate().start()
    folder = tmp_path / "manifests"
    folder.mkdir()
    docs = [
        ingress_class(),
        ingress("web", rule(None, path("/", "web"))),
        service("web", sport(80, "http", name="http")),
        endpoint_slice("web", [endpoint("127.0.0.2")], [("http", gate.port)]),
    ]
    (folder / "app.yaml").write_text(yaml.safe_dump_all(docs))
    proxy = process.start(
        ["kexpose-proxy", "--manifests", str(folder), "--no-access-log"], tmp_path
    )
    try:
        await proxy.wait_ready()
        c = await H2Client.connect(("127.0.0.1", proxy.http))
        assert (await c.request("/warm")).status == 200
        sid = c.send_request("/slow")
        await asyncio.wait_for(gate.got.wait(), 10)  # the endpoint has it, and holds it
        proxy.terminate()
        # The client is told at once (GOAWAY NO_ERROR naming the stream under way), the stream
        # still gets its whole answer, then the connection closes and the process exits 0.
        assert await c.outcome(sid) == ("goaway", 0)
        gate.release.set()
        assert await c.outcome(sid) == ("status", 200)
        assert await c.outcome(sid) == ("goaway", 0)
        assert await c.next_frame() is None
        await c.close()
        assert await proxy.wait_exit() == 0
    finally:
        proxy.kill()
        gate.release.set()
        await gate.stop()
    assert "drained; 0 connection(s) cut" in proxy.logs()
