"""Proof by traffic for the annotations ``kexpose import`` converts with the model's Gateway API
path features (issue 9), edge auth (issue 10), route timeouts and CORS (issue 12).

The input is ``tests/fixtures/import/annotations``. It is imported twice with the real CLI:
``--to ingress`` (auth and source ranges as kexpose.dev annotations) served by kexpose-proxy in
static mode, and ``--to gateway`` (rewrites, redirects, app-root, upstream-vhost,
x-forwarded-prefix, canaries, custom timeouts, CORS, character-prefix paths, ssl-redirect; auth
and source ranges as EdgeAuth objects the HTTPRoutes name) served by kexpose-proxy in static
mode with ``--gateway-addresses``. The auth rows run against both. Each row states what
ingress-nginx answers for the *original* Ingress, citing the user-guide section, and checks that
kexpose-proxy answers the same; the rows of approximations check where they agree, and
:data:`DIFFERENCES` (and the ``kexpose`` part of a CORS row) where they differ as the report
says.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from tests.proxy import process
from tests.proxy.backends import Client, EchoBackend

from kexpose.model.auth import htpasswd_line
from kexpose.proxy.routes import Claim, ObjectSet, build_table

pytestmark = [pytest.mark.slow]

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "import" / "annotations"
ANNOTATIONS = (
    "https://kubernetes.github.io/ingress-nginx/user-guide/nginx-configuration/annotations/"
)
AUTH_DOC = f"{ANNOTATIONS}#authentication"
DENY_DOC = f"{ANNOTATIONS}#denylist-source-range"
REWRITE_DOC = f"{ANNOTATIONS}#rewrite"
PERMANENT_DOC = f"{ANNOTATIONS}#permanent-redirect"
TEMPORAL_DOC = f"{ANNOTATIONS}#temporal-redirect"
VHOST_DOC = f"{ANNOTATIONS}#custom-nginx-upstream-vhost"
PREFIX_DOC = f"{ANNOTATIONS}#x-forwarded-prefix-header"
CANARY_DOC = f"{ANNOTATIONS}#canary"
TIMEOUTS_DOC = f"{ANNOTATIONS}#custom-timeouts"
CORS_DOC = f"{ANNOTATIONS}#enable-cors"
HTTPS_DOC = f"{ANNOTATIONS}#server-side-https-enforcement-through-redirect"
PATHS_DOC = "https://kubernetes.github.io/ingress-nginx/user-guide/ingress-path-matching/"
#: What ingress-nginx answers for "Enable CORS" is its nginx.tmpl ``CORS`` block (the user
#: guide links enable-cors.org's nginx recipe it follows): preflights 204, the headers below.
CORS_TEMPLATE = (
    "https://github.com/kubernetes/ingress-nginx/blob/controller-v1.15.1/"
    "rootfs/etc/nginx/template/nginx.tmpl"
)
NGINX_METHODS = "GET, PUT, POST, DELETE, PATCH, OPTIONS"
NGINX_HEADERS = (
    "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,"
    "Range,Authorization"
)
APP = "https://app.example.com"
#: A pool of loopback addresses no other test uses, for the Gateway's address.
POOL = "127.79.12.0/24"
USER = ("keeper", "open sesame, please")
NGINX = "nginx.ingress.kubernetes.io/"


@dataclass(frozen=True)
class Row:
    """A request, and what ingress-nginx answers for the original Ingress (per ``doc``)."""

    id: str
    host: str
    target: str
    status: int
    doc: str
    backend: str | None = None
    location: str | None = None
    sent: dict[str, str] = field(default_factory=dict)
    seen: dict[str, str] = field(default_factory=dict)
    seen_target: str | None = None


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


INGRESS_ROWS = [
    # auth-type basic + auth-secret (auth-file) + auth-realm -> auth: basic, secret: 401 with
    # the realm's challenge without credentials, the backend with them.
    Row("basic-no-credentials", "vault.edge.example.com", "/", 401, AUTH_DOC),
    Row(
        "basic-wrong-password",
        "vault.edge.example.com",
        "/",
        401,
        AUTH_DOC,
        sent={"authorization": _basic(USER[0], "guess")},
    ),
    Row(
        "basic-right-password",
        "vault.edge.example.com",
        "/kv/a",
        200,
        AUTH_DOC,
        backend="edge/vault",
        sent={"authorization": _basic(*USER)},
        seen_target="/kv/a",
    ),
    # denylist-source-range 127.0.0.0/8: the loopback client is denied (403); a deny list that
    # does not hold it lets it through.
    Row("denylist-denies", "lab.edge.example.com", "/", 403, DENY_DOC),
    Row("denylist-lets-others-in", "open.edge.example.com", "/x", 200, DENY_DOC, "edge/open"),
]

GATEWAY_ROWS = [
    # ImplementationSpecific paths are nginx prefix locations: character prefixes, so '/static'
    # takes '/staticfiles/x'; a '.' in one is a literal dot (paths.yaml).
    Row("char-prefix", "files.edge.example.com", "/staticfiles/x", 200, PATHS_DOC, "edge/files"),
    Row("char-prefix-dot", "files.edge.example.com", "/v1.0beta/x", 200, PATHS_DOC, "edge/files"),
    Row("char-prefix-dot-is-literal", "files.edge.example.com", "/v1x0", 404, PATHS_DOC),
    # ssl-redirect 'false' with TLS: ingress-nginx serves plain HTTP; without it, a 308.
    Row("ssl-redirect-false-served", "shop.edge.example.com", "/a", 200, HTTPS_DOC, "edge/shop"),
    Row(
        "ssl-redirect-default-308",
        "bank.edge.example.com",
        "/a?b=1",
        308,
        HTTPS_DOC,
        location="https://bank.edge.example.com/a?b=1",
    ),
    # rewrite-target /$2 on '/old(/|$)(.*)': "/old/a/b" reaches the backend as "/a/b".
    Row(
        "rewrite-capture-prefix",
        "rw.edge.example.com",
        "/old/a/b?x=1",
        200,
        REWRITE_DOC,
        "edge/app",
        seen_target="/a/b?x=1",
    ),
    Row(
        "rewrite-capture-bare",
        "rw.edge.example.com",
        "/old",
        200,
        REWRITE_DOC,
        "edge/app",
        seen_target="/",
    ),
    # rewrite-target '/' on the literal '/testpath': the whole path becomes '/', query kept.
    Row(
        "rewrite-full-path",
        "rw2.edge.example.com",
        "/testpath/deeper?q=2",
        200,
        REWRITE_DOC,
        "edge/app",
        seen_target="/?q=2",
    ),
    # app-root: "/" answers 302 to the root, other paths reach the backend.
    Row(
        "app-root-redirects",
        "grafana.edge.example.com",
        "/",
        302,
        REWRITE_DOC,
        location="http://grafana.edge.example.com/dashboards",
    ),
    Row(
        "app-root-other-paths",
        "grafana.edge.example.com",
        "/dashboards",
        200,
        REWRITE_DOC,
        "edge/grafana",
        seen_target="/dashboards",
    ),
    # permanent-redirect: 301 to the URL, whatever the path.
    Row(
        "permanent-redirect",
        "moved.edge.example.com",
        "/anything",
        301,
        PERMANENT_DOC,
        location="https://new.edge.example.com/landing",
    ),
    # upstream-vhost + x-forwarded-prefix: the backend sees Host hooks.internal and the prefix.
    Row(
        "upstream-vhost-and-prefix",
        "hooks.edge.example.com",
        "/events",
        200,
        VHOST_DOC,
        "edge/hooks",
        seen={"host": "hooks.internal", "x-forwarded-prefix": "/hooks"},
    ),
    # canary-by-header without a value: 'always' -> canary, 'never' -> main, absent -> weight
    # (0 here, so main).
    Row(
        "canary-header-always",
        "api.edge.example.com",
        "/",
        200,
        CANARY_DOC,
        "edge/api-v2",
        sent={"x-canary": "always"},
    ),
    Row(
        "canary-header-never",
        "api.edge.example.com",
        "/",
        200,
        CANARY_DOC,
        "edge/api",
        sent={"x-canary": "never"},
    ),
    Row("canary-header-absent", "api.edge.example.com", "/", 200, CANARY_DOC, "edge/api"),
    # proxy-read-timeout '1': a backend that answers at once is served.
    Row("timeout-prompt-backend", "slow.edge.example.com", "/", 200, TIMEOUTS_DOC, "edge/slow"),
    # canary-by-header-value 'on' plus canary-weight 100: the header or the weight sends every
    # request to the canary.
    Row(
        "canary-value",
        "beta.edge.example.com",
        "/",
        200,
        CANARY_DOC,
        "edge/beta-v2",
        sent={"x-beta": "on"},
    ),
    Row("canary-weight-100", "beta.edge.example.com", "/", 200, CANARY_DOC, "edge/beta-v2"),
]


@dataclass(frozen=True)
class Difference:
    """An approximation the report states: ingress-nginx's answer (per ``doc``) and
    kexpose-proxy's."""

    id: str
    row: Row
    nginx: str
    said_by: tuple[str, str]
    kexpose_status: int
    kexpose_location: str | None = None


DIFFERENCES = [
    # nginx 'return 307 URL' sends the code and URL as written; the model's RequestRedirect has
    # 301/302 only.
    Difference(
        "temporal-redirect-307-becomes-302",
        Row("x", "detour.edge.example.com", "/", 307, TEMPORAL_DOC),
        nginx="307 to https://maint.edge.example.com/",
        said_by=("Ingress/edge/detour", f"{NGINX}temporal-redirect-code"),
        kexpose_status=302,
        kexpose_location="https://maint.edge.example.com/",
    ),
    # '~* ^/testpath' took '/testpathology' too; the Prefix path matches whole segments.
    Difference(
        "rewrite-segment-prefix",
        Row("x", "rw2.edge.example.com", "/testpathology", 200, REWRITE_DOC),
        nginx="200 from edge/app, rewritten to /",
        said_by=("Ingress/edge/full-rewrite", f"{NGINX}rewrite-target"),
        kexpose_status=404,
    ),
]


@dataclass(frozen=True)
class CorsRow:
    """A CORS request (a preflight when ``preflight`` names the method asked for) and what
    ingress-nginx answers for the original Ingress: status, whether the backend answered, and
    the CORS headers (None: absent). Only the headers a browser reads on that answer are
    compared (Fetch standard: Allow-Origin, -Credentials, -Expose-Headers on responses;
    -Methods, -Headers, Max-Age on preflights too); lists compare as sets. ``kexpose`` holds
    what kexpose-proxy answers differently, as the enable-cors row of the report says."""

    id: str
    host: str
    origin: str
    status: int
    backend: bool
    headers: dict[str, str | None]
    preflight: str | None = None
    kexpose: dict[str, Any] = field(default_factory=dict)


_ALL_NGINX: dict[str, str | None] = {
    "access-control-allow-origin": "*",
    "access-control-allow-credentials": "true",
}
CORS_ROWS = [
    # enable-cors alone: the defaults of the user guide; origin '*' answers every origin.
    CorsRow(
        "defaults-preflight",
        "cors.edge.example.com",
        APP,
        204,
        False,
        {
            **_ALL_NGINX,
            "access-control-allow-methods": NGINX_METHODS,
            "access-control-allow-headers": NGINX_HEADERS,
            "access-control-max-age": "1728000",
        },
        preflight="PUT",
        kexpose={"status": 200, "access-control-allow-origin": APP},
    ),
    CorsRow(
        "defaults-simple-request",
        "cors.edge.example.com",
        "https://other.example.org",
        200,
        True,
        _ALL_NGINX,
        kexpose={"access-control-allow-origin": "https://other.example.org"},
    ),
    # An allowed origin, credentials off, max-age 600, an exposed header.
    CorsRow(
        "origin-preflight",
        "cors2.edge.example.com",
        APP,
        204,
        False,
        {
            "access-control-allow-origin": APP,
            "access-control-allow-credentials": None,
            "access-control-allow-methods": "GET, POST",
            "access-control-allow-headers": NGINX_HEADERS,
            "access-control-expose-headers": "X-Total",
            "access-control-max-age": "600",
        },
        preflight="POST",
        kexpose={"status": 200},
    ),
    CorsRow(
        "origin-simple-request",
        "cors2.edge.example.com",
        APP,
        200,
        True,
        {
            "access-control-allow-origin": APP,
            "access-control-allow-credentials": None,
            "access-control-expose-headers": "X-Total",
        },
    ),
    # Another origin: no CORS headers (the browser refuses the answer). ingress-nginx passes
    # its OPTIONS to the backend; kexpose-proxy answers it itself, still without them.
    CorsRow(
        "other-origin-preflight",
        "cors2.edge.example.com",
        "https://evil.example.org",
        200,
        True,
        {"access-control-allow-origin": None, "access-control-allow-methods": None},
        preflight="POST",
        kexpose={"backend": False},
    ),
    CorsRow(
        "other-origin-simple-request",
        "cors2.edge.example.com",
        "https://evil.example.org",
        200,
        True,
        {"access-control-allow-origin": None},
    ),
]


@dataclass
class Served:
    proxy: process.ProxyProcess
    address: tuple[str, int]
    report: dict[str, Any]


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def _serve(
    tmp: Path, target: str, backends: dict[str, EchoBackend]
) -> tuple[Path, list[Any], dict[str, Any]]:
    folder = tmp / "manifests"
    folder.mkdir()
    rendered = folder / "imported.yaml"
    run = subprocess.run(
        [
            str(Path(sys.executable).with_name("kexpose")), "import", str(FIXTURE), "-e", "dev",
            "--to", target, "--out", str(rendered), "--output", "json",
        ],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    report = json.loads(run.stdout)["report"]
    mandatory = {v["rule"] for v in report["violations"] if v["enforcement"] == "mandatory"}
    # vault's auth-secret names the cluster's Secret, which the stack does not provision
    # (auth-secret-provisioned, at the Ingress annotation or the EdgeAuth's spec.secret); the
    # cluster here holds it, as the original did.
    assert mandatory == {"auth-secret-provisioned"}, run.stderr + run.stdout
    objects = [o for o in yaml.safe_load_all(rendered.read_text()) if o is not None]
    extra: list[dict[str, Any]] = []
    for obj in objects:
        meta = obj["metadata"]
        if obj["kind"] != "Service" or meta["namespace"] == "kexpose-system":
            continue
        key = f"{meta['namespace']}/{meta['name']}"
        if key not in backends:
            backends[key] = await EchoBackend(key).start()
        backend = backends[key]
        extra.append(
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": f"{meta['name']}-x",
                    "namespace": meta["namespace"],
                    "labels": {"kubernetes.io/service-name": meta["name"]},
                },
                "addressType": "IPv4",
                "endpoints": [{"addresses": [backend.host], "conditions": {"ready": True}}],
                "ports": [
                    {"name": p["name"], "port": backend.port, "protocol": "TCP"}
                    for p in obj["spec"]["ports"]
                ],
            }
        )
    extra.append(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {"name": "vault-users", "namespace": "edge"},
            "data": {"auth": _b64(htpasswd_line(*USER, scope="test", cost=4) + "\n")},
        }
    )
    (folder / "cluster.yaml").write_text(yaml.safe_dump_all(extra))
    return folder, [*objects, *extra], report


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def backends() -> AsyncIterator[dict[str, EchoBackend]]:
    made: dict[str, EchoBackend] = {}
    yield made
    for b in made.values():
        await b.stop()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def as_ingress(
    tmp_path_factory: pytest.TempPathFactory, backends: dict[str, EchoBackend]
) -> AsyncIterator[Served]:
    tmp = tmp_path_factory.mktemp("import-ingress")
    folder, _, report = await _serve(tmp, "ingress", backends)
    proxy = process.start(
        [sys.executable, "-m", "kexpose.proxy", "--manifests", str(folder), "--no-access-log"],
        tmp,
    )
    try:
        await proxy.wait_ready()
        yield Served(proxy, ("127.0.0.1", proxy.http), report)
    finally:
        proxy.terminate()
        await proxy.wait_exit()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def as_gateway(
    tmp_path_factory: pytest.TempPathFactory, backends: dict[str, EchoBackend]
) -> AsyncIterator[Served]:
    tmp = tmp_path_factory.mktemp("import-gateway")
    folder, docs, report = await _serve(tmp, "gateway", backends)
    # The address the proxy will give the Gateway: the same pure function, same objects.
    objects, _ = ObjectSet.from_documents(docs)
    claim = Claim(
        "kexpose.dev/ingress-controller",
        gateway_controller="kexpose.dev/gateway-controller",
        gateway_pool=ipaddress.ip_network(POOL),
    )
    [status] = build_table(objects, claim=claim).gateway.gateways
    proxy = process.start(
        [
            sys.executable, "-m", "kexpose.proxy", "--manifests", str(folder),
            "--gateway-addresses", POOL, "--no-access-log",
        ],
        tmp,
    )  # fmt: skip
    try:
        await proxy.wait_ready()
        address = (status.addresses[0], 80)
        for _ in range(100):  # the Gateway socket opens right after the first table
            try:
                await (await Client.connect(address)).close()
                break
            except OSError:
                await _pause()
        yield Served(proxy, address, report)
    finally:
        proxy.terminate()
        await proxy.wait_exit()


async def _pause() -> None:
    import asyncio

    await asyncio.sleep(0.05)


async def _send(served: Served, row: Row) -> tuple[int, str | None, dict[str, Any] | None]:
    client = await Client.connect(served.address)
    try:
        response = await client.request("GET", row.target, host=row.host, headers=row.sent)
    finally:
        await client.close()
    echo = response.json() if response.header("content-type") == "application/json" else None
    return response.status, response.header("location"), echo


def _check(row: Row, answer: tuple[int, str | None, dict[str, Any] | None], logs: str) -> None:
    status, location, echo = answer
    assert status == row.status, (row.doc, logs[-2000:])
    assert location == row.location, row.doc
    if row.backend is None:
        assert echo is None or "backend" not in echo, row.doc
        return
    assert echo is not None, row.doc
    assert echo["backend"] == row.backend, row.doc
    headers = dict(echo["headers"])
    for name, value in row.seen.items():
        assert headers.get(name) == value, (name, row.doc)
    if row.seen_target is not None:
        assert echo["target"] == row.seen_target, row.doc


async def _challenge(served: Served) -> str | None:
    client = await Client.connect(served.address)
    try:
        response = await client.request("GET", "/", host="vault.edge.example.com")
    finally:
        await client.close()
    return response.header("www-authenticate")


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("row", INGRESS_ROWS, ids=[r.id for r in INGRESS_ROWS])
async def test_imported_auth_answers_as_ingress_nginx(as_ingress: Served, row: Row) -> None:
    _check(row, await _send(as_ingress, row), as_ingress.proxy.logs())


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("row", INGRESS_ROWS, ids=[r.id for r in INGRESS_ROWS])
async def test_imported_auth_answers_as_ingress_nginx_with_api_gateway(
    as_gateway: Served, row: Row
) -> None:
    _check(row, await _send(as_gateway, row), as_gateway.proxy.logs())


@pytest.mark.asyncio(loop_scope="module")
async def test_the_basic_challenge_names_the_realm(as_ingress: Served, as_gateway: Served) -> None:
    assert await _challenge(as_ingress) == 'Basic realm="Vault"'
    assert await _challenge(as_gateway) == 'Basic realm="Vault"'


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("row", GATEWAY_ROWS, ids=[r.id for r in GATEWAY_ROWS])
async def test_imported_routes_answer_as_ingress_nginx(as_gateway: Served, row: Row) -> None:
    _check(row, await _send(as_gateway, row), as_gateway.proxy.logs())


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("diff", DIFFERENCES, ids=[d.id for d in DIFFERENCES])
async def test_approximations_differ_only_as_the_report_says(
    as_gateway: Served, diff: Difference
) -> None:
    status, location, _ = await _send(as_gateway, diff.row)
    assert status == diff.kexpose_status, diff.nginx
    assert location == diff.kexpose_location, diff.nginx
    verdicts = {(i["subject"], i["topic"]): i["verdict"] for i in as_gateway.report["items"]}
    assert verdicts[diff.said_by] == "approximated"


def _items(values: str | None) -> set[str] | None:
    return None if values is None else {v.strip().lower() for v in values.split(",")}


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("row", CORS_ROWS, ids=[r.id for r in CORS_ROWS])
async def test_imported_cors_answers_as_ingress_nginx(as_gateway: Served, row: CorsRow) -> None:
    headers = {"origin": row.origin}
    if row.preflight is not None:
        headers["access-control-request-method"] = row.preflight
    client = await Client.connect(as_gateway.address)
    try:
        response = await client.request(
            "OPTIONS" if row.preflight else "GET", "/items", host=row.host, headers=headers
        )
    finally:
        await client.close()
    want_status = row.kexpose.get("status", row.status)
    assert response.status == want_status, (CORS_DOC, CORS_TEMPLATE)
    echoed = response.header("content-type") == "application/json"
    assert echoed == row.kexpose.get("backend", row.backend), CORS_DOC
    for name, nginx_value in row.headers.items():
        want = row.kexpose.get(name, nginx_value)
        assert _items(response.header(name)) == _items(want), (name, CORS_DOC)
    if row.kexpose:
        verdicts = {(i["subject"], i["topic"]): i for i in as_gateway.report["items"]}
        ingress = "cors-defaults" if row.host.startswith("cors.") else "cors-origin"
        said = verdicts[(f"Ingress/edge/{ingress}", f"{NGINX}enable-cors")]
        assert said["verdict"] == "approximated"
        if "status" in row.kexpose:
            assert "200 where ingress-nginx answers 204" in said["detail"]
        if "access-control-allow-origin" in row.kexpose:
            assert "echoes the request's Origin where ingress-nginx sends '*'" in said["detail"]


@pytest.mark.asyncio(loop_scope="module")
async def test_cors_with_auth_answers_preflights_before_auth_as_ingress_nginx(
    as_gateway: Served, backends: dict[str, EchoBackend]
) -> None:
    """enable-cors with basic auth: ingress-nginx answers the preflight in nginx's rewrite
    phase, before auth (access phase), with 204 and the CORS headers; a browser sends it
    without credentials (Fetch standard, CORS-preflight fetch). kexpose-proxy's CORS filter
    answers it before auth too, with 200 (as the report's enable-cors row says), and the
    backend sees nothing. The actual request needs credentials with both: 401 without them;
    with them, the backend with Access-Control-Allow-Origin."""
    vault = backends["edge/vault-ui"]
    before = vault.requests
    preflight = {"origin": APP, "access-control-request-method": "PUT"}
    bare = {"origin": APP}
    simple = {"origin": APP, "authorization": _basic(*USER)}
    answers = []
    reached = []  # the backend's count after each request
    for method, headers in (("OPTIONS", preflight), ("GET", bare), ("GET", simple)):
        client = await Client.connect(as_gateway.address)
        try:
            answers.append(
                await client.request(method, "/", host="cors3.edge.example.com", headers=headers)
            )
        finally:
            await client.close()
        reached.append(vault.requests - before)
    answered, refused, served = answers
    assert reached == [0, 0, 1], CORS_DOC  # neither the preflight nor the refusal reached it
    assert answered.status == 200, (CORS_DOC, CORS_TEMPLATE)  # ingress-nginx: 204
    assert answered.header("access-control-allow-origin") == APP
    assert answered.header("access-control-allow-credentials") == "true"
    assert _items(answered.header("access-control-allow-methods")) == _items(NGINX_METHODS)
    assert answered.header("content-type") != "application/json", CORS_DOC  # not the backend
    assert refused.status == 401, AUTH_DOC
    assert served.status == 200, (CORS_DOC, AUTH_DOC)
    assert served.header("access-control-allow-origin") == APP
    assert served.header("access-control-allow-credentials") == "true"
    said = next(
        i
        for i in as_gateway.report["items"]
        if (i["subject"], i["topic"]) == ("Ingress/edge/cors-vault", f"{NGINX}enable-cors")
    )
    assert said["verdict"] == "approximated"
    assert "200 where ingress-nginx answers 204" in said["detail"]
    assert (
        "a preflight is answered before the Ingress's auth, as by ingress-nginx" in said["detail"]
    )


@pytest.mark.asyncio(loop_scope="module")
async def test_a_backend_slower_than_the_imported_timeout_gets_504(as_gateway: Served) -> None:
    """proxy-read-timeout '1' (Custom timeouts): ingress-nginx answers 504 when the backend
    sends nothing for 1 s (nginx proxy_read_timeout, upstream timed out); the imported route's
    timeouts.request (10 s) gives the same 504 for a backend that never answers."""
    client = await Client.connect(as_gateway.address)
    try:
        client.send(b"GET / HTTP/1.1\r\nHost: slow.edge.example.com\r\nx-echo: hang\r\n\r\n")
        response = await client.response(timeout=60)
    finally:
        await client.close()
    assert response.status == 504, (TIMEOUTS_DOC, as_gateway.proxy.logs()[-2000:])
    [timeouts] = {
        i["verdict"]
        for i in as_gateway.report["items"]
        if i["topic"] == f"{NGINX}proxy-read-timeout"
    }
    assert timeouts == "approximated"


@pytest.mark.asyncio(loop_scope="module")
async def test_the_timeout_approximation_lets_a_two_second_answer_through(
    as_gateway: Served,
) -> None:
    """Where they differ, as the report says: ingress-nginx gives up on a backend silent for
    more than the 1 s read timeout (504); the route's 10 s timeout lets its answer through."""
    client = await Client.connect(as_gateway.address)
    try:
        response = await client.request(
            "GET", "/", host="slow.edge.example.com", headers={"x-echo": "sleep:2"}
        )
    finally:
        await client.close()
    assert response.status == 200, TIMEOUTS_DOC
    [said] = [
        i["detail"]
        for i in as_gateway.report["items"]
        if i["topic"] == f"{NGINX}proxy-read-timeout"
    ]
    assert "504 after 10 s (the route's timeout" in said
    assert "after 1 s from ingress-nginx" in said


@pytest.mark.asyncio(loop_scope="module")
async def test_protection_becomes_edge_auth_objects_with_api_gateway(as_gateway: Served) -> None:
    """--to gateway carries each protection as an EdgeAuth object that the app's HTTPRoute
    rules name; no protected Ingress is withheld."""
    withheld = {
        i["subject"]
        for i in as_gateway.report["items"]
        if i["topic"] == "Ingress" and i["verdict"] == "not-convertible"
    }
    assert not withheld & {"Ingress/edge/vault", "Ingress/edge/lab", "Ingress/edge/open-lab"}
