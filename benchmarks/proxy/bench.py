"""kexpose-proxy against nginx and Traefik as reverse proxies, on loopback, pinned, interleaved.

What runs (all on 127.0.0.1):

* nginx (Debian package) as the common backend: one worker, a fixed 46-byte answer, and the
  value of the ``X-Bench-Route`` request header it received echoed in a response header (how
  the runs check that a header-modifier filter really ran);
* nginx as a comparison proxy: one worker, an upstream keep-alive pool, the request headers
  ingress-nginx sets (Host, X-Request-ID, X-Real-IP, X-Forwarded-*), a buffered access log;
* Traefik (built by ``scripts/toolchain.sh traefik``; ``traefik`` on PATH after
  ``eval "$(scripts/toolchain.sh --print-env)"``) as the second comparison proxy: its file
  provider with the same routes, a buffered access log;
* kexpose-proxy in static mode with the same routes: one process (``--workers 1``), its JSON
  access log to a file, metrics on;
* wrk (Debian package) as the load generator.

Two kinds of route, each over plain HTTP and TLS:

* ``ingress``: an Ingress with one ``Prefix /`` path (nginx: one ``location /``; Traefik: a
  ``PathPrefix(`/`)`` router);
* ``gateway``: a Gateway API HTTPRoute that matches a header (``X-Bench: on``, wrk sends it) and
  sets a request header with a ``RequestHeaderModifier`` filter (``X-Bench-Route: gateway``).
  kexpose-proxy reads the GatewayClass, Gateway (an HTTP and an HTTPS listener, the latter's
  certificate from a TLS Secret) and HTTPRoute from the same manifests (``--gateway-addresses``);
  nginx does the same with a map on the header, a 404 otherwise and ``proxy_set_header``;
  Traefik with a ``Header(`X-Bench`, `on`)`` rule and a ``headers`` middleware. Before
  measuring, every proxy is checked to answer 404 without the header and to deliver the set
  header to the backend with it.

The proxies are pinned (``taskset``) to one core; wrk and the backend to the other, so proxy
and load generator never share a core. Runs alternate between the proxies (for each route
kind, plain HTTP, then TLS) for several rounds, so drifts in machine load hit all alike. For
each run it reports requests/s, p50/p99 latency (wrk) and the proxy's CPU time per request
(from /proc), which is the fairest per-core figure when the machine is shared. Finally
``--workers 2`` is measured against ``--workers 1``.

Nothing is installed unless ``--install`` is given, which runs ``apt-get install -y nginx wrk``
(Debian/Ubuntu). ``--h2`` adds HTTP/2 over TLS rounds on the Ingress route with h2load
(``nghttp2-client``): nginx's ``http2`` listener against kexpose's (and Traefik's) HTTPS port
(ALPN h2), ``--h2-streams`` per connection. ``--auth`` measures edge auth instead
(auth_bench.py). Results go to stdout as a Markdown table and to benchmarks/results/ as JSON.

    python benchmarks/proxy/bench.py [--duration 10] [--rounds 3] [--connections 64]
        [--peers nginx,traefik] [--traefik PATH] [--kinds ingress,gateway] [--h2]
        [--port-offset N] [--no-scaling] [--baseline DIR] [--auth]

``--baseline DIR`` runs a second kexpose-proxy from another source tree (its ``components/``
first on ``PYTHONPATH``, e.g. ``git worktree add /tmp/base <commit>``) in the same interleaved
rounds, labelled ``baseline``: a before/after comparison in one run, under the same load
(Ingress routes only: an older tree may know nothing of the Gateway API).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BACKEND_PORT, NGINX_HTTP, NGINX_HTTPS, KX_HTTP, KX_HTTPS, KX_HEALTH = (
    18080,
    18081,
    18444,
    18082,
    18445,
    18254,
)
BASE_HTTP, BASE_HTTPS, BASE_HEALTH = 18083, 18446, 18255
# nginx's HTTP/2 listener for --h2 (kexpose and Traefik offer h2 by ALPN on their HTTPS ports).
NGINX_H2 = 18448
# The Gateway API column: each proxy's listeners for the HTTPRoute.
NGINX_GW_HTTP, NGINX_GW_HTTPS, KX_GW_HTTP, KX_GW_HTTPS = 18091, 18454, 18092, 18455
TRAEFIK_HTTP, TRAEFIK_HTTPS, TRAEFIK_GW_HTTP, TRAEFIK_GW_HTTPS, TRAEFIK_API = (
    18084,
    18447,
    18094,
    18457,
    18256,
)
#: Every fixed port above, shifted together by --port-offset (two runs on one machine).
PORT_NAMES = (
    "BACKEND_PORT",
    "NGINX_HTTP",
    "NGINX_HTTPS",
    "KX_HTTP",
    "KX_HTTPS",
    "KX_HEALTH",
    "BASE_HTTP",
    "BASE_HTTPS",
    "BASE_HEALTH",
    "NGINX_H2",
    "NGINX_GW_HTTP",
    "NGINX_GW_HTTPS",
    "KX_GW_HTTP",
    "KX_GW_HTTPS",
    "TRAEFIK_HTTP",
    "TRAEFIK_HTTPS",
    "TRAEFIK_GW_HTTP",
    "TRAEFIK_GW_HTTPS",
    "TRAEFIK_API",
)
KINDS = ("ingress", "gateway")
PEERS = ("nginx", "traefik")
# What wrk sends for the gateway column (the route's header match), and what the route's filter
# sets on the way to the backend (the backend echoes it in X-Seen-Route).
MATCH_HEADER, MATCH_VALUE = "X-Bench", "on"
SET_HEADER, SET_VALUE = "X-Bench-Route", "gateway"
TICKS = os.sysconf("SC_CLK_TCK")

NGINX_BACKEND = """
worker_processes 1;
pid {run}/backend.pid;
error_log {run}/backend.err;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  client_body_temp_path {run}/t1; proxy_temp_path {run}/t2; fastcgi_temp_path {run}/t3;
  uwsgi_temp_path {run}/t4; scgi_temp_path {run}/t5;
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{backend};
    location / {{
      default_type text/plain;
      add_header X-Seen-Route "$http_x_bench_route";
      return 200 "hello from the backend, a small response body\\n";
    }}
  }}
}}
"""

# The headers and timeouts ingress-nginx's template sets for a plain Service backend.
NGINX_PROXY = """
worker_processes 1;
pid {run}/proxy.pid;
error_log {run}/proxy.err;
events {{ worker_connections 8192; }}
http {{
  log_format upstreaminfo '$remote_addr - $remote_user [$time_local] "$request" $status '
      '$body_bytes_sent "$http_referer" "$http_user_agent" $request_length $request_time '
      '$upstream_addr $upstream_response_length $upstream_response_time $upstream_status $req_id';
  access_log {run}/nginx-access.log upstreaminfo buffer=64k;
  client_body_temp_path {run}/p1; proxy_temp_path {run}/p2; fastcgi_temp_path {run}/p3;
  uwsgi_temp_path {run}/p4; scgi_temp_path {run}/p5;
  keepalive_requests 1000000;
  map $http_x_request_id $req_id {{ default $http_x_request_id; "" $request_id; }}
  upstream backend {{ server 127.0.0.1:{backend}; keepalive 320; keepalive_timeout 60s; }}
  server {{
    listen 127.0.0.1:{http};
    listen 127.0.0.1:{https} ssl;
    listen 127.0.0.1:{h2} ssl http2;
    ssl_certificate {run}/tls.crt; ssl_certificate_key {run}/tls.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {{
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Request-ID $req_id;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Host $http_host;
      proxy_set_header X-Forwarded-Port $server_port;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Scheme $scheme;
      proxy_connect_timeout 5s; proxy_read_timeout 60s; proxy_send_timeout 60s;
      proxy_buffering on;
    }}
  }}
  # The gateway column: a header match (404 without it, as an HTTPRoute with no other rule) and a
  # request header set on the way to the backend.
  map $http_x_bench $bench_match {{ "on" 1; default 0; }}
  server {{
    listen 127.0.0.1:{gw_http};
    listen 127.0.0.1:{gw_https} ssl;
    ssl_certificate {run}/tls.crt; ssl_certificate_key {run}/tls.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {{
      if ($bench_match = 0) {{ return 404; }}
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Request-ID $req_id;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Host $http_host;
      proxy_set_header X-Forwarded-Port $server_port;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Scheme $scheme;
      proxy_set_header X-Bench-Route gateway;
      proxy_connect_timeout 5s; proxy_read_timeout 60s; proxy_send_timeout 60s;
      proxy_buffering on;
    }}
  }}
}}
"""

# Traefik's static configuration: one entry point per (route kind, scheme), the file provider,
# a buffered access log like nginx's, no dashboard, no version check or anonymous usage report.
TRAEFIK_STATIC = """
entryPoints:
  ing-http: {{address: "127.0.0.1:{http}"}}
  ing-https: {{address: "127.0.0.1:{https}"}}
  gw-http: {{address: "127.0.0.1:{gw_http}"}}
  gw-https: {{address: "127.0.0.1:{gw_https}"}}
  ping: {{address: "127.0.0.1:{api}"}}
ping: {{entryPoint: ping}}
providers:
  file: {{filename: "{run}/traefik-dynamic.yaml", watch: false}}
log: {{level: ERROR, filePath: "{run}/traefik.err"}}
accessLog: {{filePath: "{run}/traefik-access.log", bufferingSize: 100}}
global: {{checkNewVersion: false, sendAnonymousUsage: false}}
"""

# The same routes for Traefik's file provider. A router with a `tls` section serves only TLS,
# one without only plain HTTP, so each route has one router per scheme.
TRAEFIK_DYNAMIC = """
http:
  routers:
    ing-http: {{rule: "PathPrefix(`/`)", entryPoints: [ing-http], service: backend}}
    ing-https: {{rule: "PathPrefix(`/`)", entryPoints: [ing-https], service: backend, tls: {{}}}}
    gw-http:
      rule: "PathPrefix(`/`) && Header(`X-Bench`, `on`)"
      entryPoints: [gw-http]
      middlewares: [set-route]
      service: backend
    gw-https:
      rule: "PathPrefix(`/`) && Header(`X-Bench`, `on`)"
      entryPoints: [gw-https]
      middlewares: [set-route]
      service: backend
      tls: {{}}
  middlewares:
    set-route:
      headers: {{customRequestHeaders: {{X-Bench-Route: gateway}}}}
  services:
    backend:
      loadBalancer:
        servers: [{{url: "http://127.0.0.1:{backend}"}}]
        passHostHeader: true
tls:
  stores:
    default:
      defaultCertificate: {{certFile: "{run}/tls.crt", keyFile: "{run}/tls.key"}}
"""

MANIFESTS = """
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {{name: kexpose}}
spec: {{controller: kexpose.dev/ingress-controller}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: bench, namespace: default}}
spec:
  ingressClassName: kexpose
  rules:
  - http:
      paths:
      - {{path: /, pathType: Prefix, backend: {{service: {{name: backend, port: {{number: 80}}}}}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: backend, namespace: default}}
spec: {{ports: [{{name: http, port: 80, targetPort: {backend}}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: backend-1, namespace: default, labels: {{kubernetes.io/service-name: backend}}}}
addressType: IPv4
endpoints: [{{addresses: [127.0.0.1]}}]
ports: [{{name: http, port: {backend}}}]
"""

# The gateway column for kexpose-proxy: a Gateway on 127.0.0.1 (asked for in spec.addresses,
# inside the --gateway-addresses pool) with an HTTP and an HTTPS listener, and an HTTPRoute with
# a header match and a RequestHeaderModifier filter to the same Service.
GATEWAY_MANIFESTS = """
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: kexpose}}
spec: {{controllerName: kexpose.dev/gateway-controller}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: bench, namespace: default}}
spec:
  gatewayClassName: kexpose
  addresses: [{{type: IPAddress, value: 127.0.0.1}}]
  listeners:
  - {{name: http, port: {gw_http}, protocol: HTTP}}
  - name: https
    port: {gw_https}
    protocol: HTTPS
    tls: {{mode: Terminate, certificateRefs: [{{name: bench-tls}}]}}
---
apiVersion: v1
kind: Secret
type: kubernetes.io/tls
metadata: {{name: bench-tls, namespace: default}}
data: {{tls.crt: {crt}, tls.key: {key}}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: bench, namespace: default}}
spec:
  parentRefs: [{{name: bench}}]
  rules:
  - matches:
    - path: {{type: PathPrefix, value: /}}
      headers: [{{name: X-Bench, value: "on"}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {{set: [{{name: X-Bench-Route, value: gateway}}]}}
    backendRefs: [{{name: backend, port: 80}}]
"""


@dataclass
class Run:
    target: str
    kind: str
    scheme: str
    round: int
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us: float
    errors: int


def need(tool: str, install: bool) -> str:
    found = shutil.which(tool) or (
        f"/usr/sbin/{tool}" if Path(f"/usr/sbin/{tool}").exists() else None
    )
    if found:
        return found
    packages = ["nghttp2-client"] if tool == "h2load" else ["nginx", "wrk"]
    if install:
        subprocess.run(["apt-get", "install", "-y", *packages], check=True)
        return need(tool, install=False)
    sys.exit(f"{tool} not found: run with --install, or: apt-get install -y {' '.join(packages)}")


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port} after {timeout}s")


def require_free(ports: list[int]) -> None:
    """Refuse to start when another run (or anything else) holds one of the fixed ports: the
    readiness checks would find its listeners and measure them."""
    for port in ports:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                raise SystemExit(f"127.0.0.1:{port} is in use (another benchmark run?)")


def cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total


def children(pid: int) -> list[int]:
    out = subprocess.run(
        ["ps", "--ppid", str(pid), "-o", "pid=,args="], capture_output=True, text=True, check=False
    ).stdout
    return [int(line.split()[0]) for line in out.splitlines() if "resource_tracker" not in line]


_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def parse_wrk(out: str) -> tuple[float, float, float, int, int]:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    pct = {}
    for p, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M):
        pct[p] = float(value) * _UNIT[unit]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, pct["50"], pct["99"], total, errors + (int(non2xx.group(1)) if non2xx else 0)


def wrk(
    wrk_bin: str,
    core: str,
    url: str,
    duration: int,
    connections: int,
    headers: tuple[str, ...] = (),
) -> str:
    extra = [arg for header in headers for arg in ("-H", header)]
    return subprocess.run(
        [
            "taskset",
            "-c",
            core,
            wrk_bin,
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            *extra,
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@contextmanager
def process(
    argv: list[str], *, log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def probe(port: int, headers: dict[str, str]) -> tuple[int, str | None]:
    """(status, the X-Seen-Route the backend echoed) of one plain-HTTP request to a port."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/", headers=headers)
        answer = conn.getresponse()
        answer.read()
        return answer.status, answer.getheader("X-Seen-Route")
    finally:
        conn.close()


def check_routes(name: str, ingress_port: int, gateway_port: int) -> None:
    """Refuse to measure a proxy whose routes do not do what the columns claim: the Ingress
    route passes, the HTTPRoute answers 404 without its header and, with it, delivers the
    header its filter sets to the backend."""
    cases: list[tuple[int, dict[str, str], int, str | None]] = [
        (ingress_port, {}, 200, ""),
        (gateway_port, {MATCH_HEADER: MATCH_VALUE}, 200, SET_VALUE),
        (gateway_port, {}, 404, None),
    ]
    for port, headers, status, seen in cases:
        got: tuple[int, str | None] | None = None
        for _ in range(100):  # a Gateway's listeners open right after the first route table
            try:
                got = probe(port, headers)
            except OSError:
                got = None
            if got is not None and got[0] == status:
                break
            time.sleep(0.1)
        if got is None or got[0] != status or (seen is not None and (got[1] or "") != seen):
            raise SystemExit(
                f"{name}: port {port} with {headers or 'no headers'} answered {got} "
                f"(status, backend's {SET_HEADER}); expected {status}, {seen!r}"
            )


def find_traefik(explicit: Path | None) -> str:
    if explicit is not None:
        return str(explicit)
    found = shutil.which("traefik") or shutil.which(
        "traefik", path=os.environ.get("KEXPOSE_TOOLCHAIN_BIN", "")
    )
    if found:
        return found
    sys.exit(
        "traefik not found: build it with `bash scripts/toolchain.sh traefik` and run "
        'eval "$(scripts/toolchain.sh --print-env)", pass --traefik PATH, or leave it out '
        "with --peers nginx"
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--duration", type=int, default=10, help="seconds per run")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--proxy-core", default="0")
    ap.add_argument("--load-core", default="1", help="wrk and the backend")
    ap.add_argument(
        "--install", action="store_true", help="apt-get install -y nginx wrk if missing"
    )
    ap.add_argument(
        "--peers",
        default=",".join(PEERS),
        help="comma-separated peers to compare with (nginx is always run: it is the backend)",
    )
    ap.add_argument("--traefik", type=Path, help="the traefik binary (default: from PATH)")
    ap.add_argument(
        "--kinds", default=",".join(KINDS), help="comma-separated route kinds to measure"
    )
    ap.add_argument(
        "--port-offset",
        type=int,
        default=0,
        help="add this to every listening port (another run holds the default ones)",
    )
    ap.add_argument(
        "--no-scaling", action="store_true", help="skip the --workers 1 vs 2 measurement"
    )
    ap.add_argument(
        "--h2",
        action="store_true",
        help="also HTTP/2 over TLS with h2load (nghttp2-client) on the Ingress route, "
        "each peer (nginx: an http2 listener) and kexpose",
    )
    ap.add_argument("--h2-streams", type=int, default=10, help="h2load -m: streams per connection")
    ap.add_argument(
        "--baseline",
        type=Path,
        help="another source tree whose kexpose-proxy runs beside this one (before/after)",
    )
    ap.add_argument(
        "--auth",
        action="store_true",
        help="measure edge auth against the same route without it instead (auth_bench.py)",
    )
    args = ap.parse_args()
    for name in PORT_NAMES:
        globals()[name] += args.port_offset
    peers = [p for p in args.peers.split(",") if p]
    kinds = [k for k in args.kinds.split(",") if k]
    if not set(peers) <= set(PEERS) or not set(kinds) <= set(KINDS) or not kinds:
        sys.exit(f"--peers takes {','.join(PEERS)}; --kinds takes {','.join(KINDS)}")
    nginx, wrk_bin = need("nginx", args.install), need("wrk", args.install)
    kexpose = str(Path(sys.executable).with_name("kexpose-proxy"))
    if args.auth:
        sys.path.insert(0, str(REPO))
        from benchmarks.proxy import auth_bench

        # Its own fixed ports, shifted by --port-offset like this module's.
        for name in auth_bench.PORT_NAMES:
            setattr(auth_bench, name, getattr(auth_bench, name) + args.port_offset)
        auth_bench.run_auth(args, nginx=nginx, wrk_bin=wrk_bin, kexpose=kexpose)
        return
    if args.h2:
        if "ingress" not in kinds:
            sys.exit("--h2 measures the Ingress route: leave ingress in --kinds")
        need("h2load", args.install)
    traefik = find_traefik(args.traefik) if "traefik" in peers else None
    sys.path.insert(0, str(REPO / "components"))
    from kexpose.certs import self_signed

    run_dir = Path(tempfile.mkdtemp(prefix="kexpose-bench-"))
    pair = self_signed(["localhost", "127.0.0.1"])
    (run_dir / "tls.crt").write_text(pair.cert_pem)
    (run_dir / "tls.key").write_text(pair.key_pem)
    (run_dir / "ingress.yaml").write_text(MANIFESTS.format(backend=BACKEND_PORT))
    (run_dir / "manifests").mkdir()
    (run_dir / "manifests" / "ingress.yaml").write_text(MANIFESTS.format(backend=BACKEND_PORT))
    (run_dir / "manifests" / "gateway.yaml").write_text(
        GATEWAY_MANIFESTS.format(
            gw_http=KX_GW_HTTP,
            gw_https=KX_GW_HTTPS,
            crt=base64.b64encode(pair.cert_pem.encode()).decode(),
            key=base64.b64encode(pair.key_pem.encode()).decode(),
        )
    )
    conf = {
        "run": run_dir,
        "backend": BACKEND_PORT,
        "http": NGINX_HTTP,
        "https": NGINX_HTTPS,
        "h2": NGINX_H2,
        "gw_http": NGINX_GW_HTTP,
        "gw_https": NGINX_GW_HTTPS,
    }
    (run_dir / "backend.conf").write_text(NGINX_BACKEND.format(**conf))
    (run_dir / "proxy.conf").write_text(NGINX_PROXY.format(**conf))
    traefik_conf = {
        "run": run_dir,
        "backend": BACKEND_PORT,
        "http": TRAEFIK_HTTP,
        "https": TRAEFIK_HTTPS,
        "gw_http": TRAEFIK_GW_HTTP,
        "gw_https": TRAEFIK_GW_HTTPS,
        "api": TRAEFIK_API,
    }
    (run_dir / "traefik.yaml").write_text(TRAEFIK_STATIC.format(**traefik_conf))
    (run_dir / "traefik-dynamic.yaml").write_text(TRAEFIK_DYNAMIC.format(**traefik_conf))
    require_free([globals()[name] for name in PORT_NAMES])
    pin_proxy = ["taskset", "-c", args.proxy_core]
    pin_load = ["taskset", "-c", args.load_core]
    common = [
        "--bind",
        "127.0.0.1",
        "--health-port",
        str(KX_HEALTH),
        "--default-tls-cert",
        str(run_dir / "tls.crt"),
        "--default-tls-key",
        str(run_dir / "tls.key"),
    ]
    ports = ["--http-port", str(KX_HTTP), "--https-port", str(KX_HTTPS)]
    kx_args = [
        "--manifests",
        str(run_dir / "manifests"),
        "--gateway-addresses",
        "127.0.0.1/32",
        *ports,
        *common,
    ]
    baseline_args = ["--manifests", str(run_dir / "ingress.yaml"), *ports, *common]
    for flag, port in (
        ("--http-port", BASE_HTTP),
        ("--https-port", BASE_HTTPS),
        ("--health-port", BASE_HEALTH),
    ):
        baseline_args[baseline_args.index(flag) + 1] = str(port)
    names = ["nginx", *(["traefik"] if traefik else []), "kexpose"]
    if args.baseline:
        names.append("baseline")
    runs: list[Run] = []
    with (
        ExitStack() as extra,
        process(
            [*pin_load, nginx, "-g", "daemon off;", "-c", str(run_dir / "backend.conf")],
            log=run_dir / "backend.log",
        ),
        process(
            [*pin_proxy, nginx, "-g", "daemon off;", "-c", str(run_dir / "proxy.conf")],
            log=run_dir / "nginx.log",
        ) as ngx,
        process(
            [*pin_proxy, kexpose, *kx_args, "--workers", "1"],
            log=run_dir / "kexpose.log",
            env={"KEXPOSE_PROXY_LOG_FORMAT": "json"},
        ) as kx,
    ):
        for port in (BACKEND_PORT, NGINX_HTTP, NGINX_HTTPS, KX_HTTP, KX_HTTPS):
            wait_port(port)
        ngx_pids = children(ngx.pid)
        listeners = {
            "nginx": ((NGINX_HTTP, NGINX_HTTPS, NGINX_GW_HTTP, NGINX_GW_HTTPS), ngx_pids),
            "kexpose": ((KX_HTTP, KX_HTTPS, KX_GW_HTTP, KX_GW_HTTPS), [kx.pid]),
        }
        if traefik:
            tfk = extra.enter_context(
                process(
                    [*pin_proxy, traefik, f"--configFile={run_dir / 'traefik.yaml'}"],
                    log=run_dir / "traefik.log",
                )
            )
            for port in (TRAEFIK_HTTP, TRAEFIK_HTTPS, TRAEFIK_GW_HTTP, TRAEFIK_GW_HTTPS):
                wait_port(port)
            listeners["traefik"] = (
                (TRAEFIK_HTTP, TRAEFIK_HTTPS, TRAEFIK_GW_HTTP, TRAEFIK_GW_HTTPS),
                [tfk.pid],
            )
        if args.baseline:
            base = extra.enter_context(
                process(
                    [*pin_proxy, kexpose, *baseline_args, "--workers", "1"],
                    log=run_dir / "baseline.log",
                    env={
                        "KEXPOSE_PROXY_LOG_FORMAT": "json",
                        "PYTHONPATH": str(args.baseline.resolve() / "components"),
                    },
                )
            )
            for port in (BASE_HTTP, BASE_HTTPS):
                wait_port(port)
            listeners["baseline"] = ((BASE_HTTP, BASE_HTTPS, 0, 0), [base.pid])
        targets: dict[tuple[str, str, str], tuple[str, list[int]]] = {}
        for name, ((http, https, gw_http, gw_https), pids) in listeners.items():
            if name != "baseline":
                check_routes(name, http, gw_http)
            for kind, plain, tls in (("ingress", http, https), ("gateway", gw_http, gw_https)):
                if kind in kinds and not (name == "baseline" and kind == "gateway"):
                    targets[(name, kind, "http")] = (f"http://127.0.0.1:{plain}/", pids)
                    targets[(name, kind, "https")] = (f"https://127.0.0.1:{tls}/", pids)
        match = (f"{MATCH_HEADER}: {MATCH_VALUE}",)
        for (_, kind, _), (url, _) in targets.items():  # warm up pools, caches, TLS paths
            wrk(
                wrk_bin,
                args.load_core,
                url,
                2,
                args.connections,
                match if kind == "gateway" else (),
            )
        direct = parse_wrk(
            wrk(
                wrk_bin,
                args.load_core,
                f"http://127.0.0.1:{BACKEND_PORT}/",
                args.duration,
                args.connections,
            )
        )
        for r in range(1, args.rounds + 1):
            for kind in kinds:
                for scheme in ("http", "https"):
                    for name in names:
                        if (name, kind, scheme) not in targets:
                            continue
                        url, pids = targets[(name, kind, scheme)]
                        before = cpu_ticks(pids)
                        out = wrk(
                            wrk_bin,
                            args.load_core,
                            url,
                            args.duration,
                            args.connections,
                            match if kind == "gateway" else (),
                        )
                        used = cpu_ticks(pids) - before
                        rps, p50, p99, total, errors = parse_wrk(out)
                        cpu_us = used / TICKS * 1e6 / max(total, 1)
                        runs.append(Run(name, kind, scheme, r, rps, p50, p99, cpu_us, errors))
                        print(
                            f"round {r} {kind:7s} {scheme:5s} {name:8s} {rps:9.0f} req/s  "
                            f"p50 {p50:6.2f} ms  p99 {p99:7.2f} ms  {cpu_us:6.1f} CPU-us/req  "
                            f"errors {errors}",
                            flush=True,
                        )
        if args.h2:  # the Ingress route over HTTP/2 (ALPN h2), interleaved the same way
            wait_port(NGINX_H2)
            h2_targets = {
                "nginx": (f"https://127.0.0.1:{NGINX_H2}/", ngx_pids),
                "kexpose": (f"https://127.0.0.1:{KX_HTTPS}/", [kx.pid]),
            }
            if "traefik" in listeners:
                h2_targets["traefik"] = (
                    f"https://127.0.0.1:{TRAEFIK_HTTPS}/",
                    listeners["traefik"][1],
                )
            runs += h2_rounds(
                {name: h2_targets[name] for name in names if name in h2_targets}, args, run_dir
            )
    # --workers scaling: both cores for kexpose (the load generator shares one of them). CPU
    # per request is summed over the serving processes, so it shows whether workers add cost.
    scaling: dict[int, tuple[float, float]] = {}
    for workers in () if args.no_scaling else (1, 2, 1, 2):
        with (
            process(
                [kexpose, *kx_args, "--workers", str(workers), "--no-access-log"],
                log=run_dir / f"kexpose-w{workers}.log",
            ) as kx,
            process(
                [*pin_load, nginx, "-g", "daemon off;", "-c", str(run_dir / "backend.conf")],
                log=run_dir / "backend2.log",
            ),
        ):
            wait_port(KX_HTTP)
            wait_port(BACKEND_PORT)
            url = f"http://127.0.0.1:{KX_HTTP}/"
            wrk(wrk_bin, args.load_core, url, 2, args.connections)
            pids = children(kx.pid) if workers > 1 else [kx.pid]
            before = cpu_ticks(pids)
            rps, _, _, total, _ = parse_wrk(
                wrk(wrk_bin, args.load_core, url, args.duration, args.connections)
            )
            cpu_us = (cpu_ticks(pids) - before) / TICKS * 1e6 / max(total, 1)
            if rps > scaling.get(workers, (0.0, 0.0))[0]:
                scaling[workers] = (rps, cpu_us)
    report(runs, direct, scaling, args)
    results = REPO / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    (results / f"proxy-{stamp}.json").write_text(
        json.dumps(
            {
                "runs": [asdict(x) for x in runs],
                "direct_rps": direct[0],
                "scaling": scaling,
                "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            },
            indent=2,
        )
    )
    shutil.rmtree(run_dir, ignore_errors=True)


def report(
    runs: list[Run],
    direct: tuple[float, ...],
    scaling: dict[int, tuple[float, float]],
    args: argparse.Namespace,
) -> None:
    print()
    print(
        f"wrk -t1 -c{args.connections} -d{args.duration}s, {args.rounds} interleaved rounds; "
        f"proxy on core {args.proxy_core}, wrk + backend on core {args.load_core}. Medians."
    )
    if args.h2:
        print(
            f"h2 rows: h2load -t1 -c{args.connections} -m{args.h2_streams} -D{args.duration} "
            "over TLS (ALPN h2), on the same cores."
        )
    print()
    print(
        "| route | scheme | proxy | req/s | p50 ms | p99 ms | CPU µs/req | req/s vs nginx | "
        "req/s vs traefik | CPU/req vs nginx (per-core ratio) | CPU/req vs traefik | "
        "p99 vs nginx |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for kind in KINDS:
        for scheme in ("http", "https", "h2"):
            med: dict[str, tuple[float, float, float, float]] = {}
            for name in ("nginx", "traefik", "kexpose", "baseline"):
                sel = [r for r in runs if (r.target, r.kind, r.scheme) == (name, kind, scheme)]
                if sel:
                    med[name] = (
                        statistics.median(r.rps for r in sel),
                        statistics.median(r.p50_ms for r in sel),
                        statistics.median(r.p99_ms for r in sel),
                        statistics.median(r.cpu_us for r in sel),
                    )
            if "nginx" not in med:
                continue
            n, t = med["nginx"], med.get("traefik")
            for name, (rps, p50, p99, cpu) in med.items():
                vs_n = "" if name == "nginx" else f"{rps / n[0]:.2f}x"
                vs_t = "" if t is None or name in ("nginx", "traefik") else f"{rps / t[0]:.2f}x"
                core_n = "" if name == "nginx" else f"{n[3] / cpu:.2f}x"
                core_t = "" if t is None or name in ("nginx", "traefik") else f"{t[3] / cpu:.2f}x"
                p99r = "" if name == "nginx" else f"{p99 / n[2]:.2f}x"
                print(
                    f"| {kind} | {scheme} | {name} | {rps:.0f} | {p50:.2f} | {p99:.2f} | "
                    f"{cpu:.1f} | {vs_n} | {vs_t} | {core_n} | {core_t} | {p99r} |"
                )
    print()
    print(f"backend alone (wrk → nginx backend, same core as wrk): {direct[0]:.0f} req/s")
    if scaling:
        (r1, c1), (r2, c2) = scaling[1], scaling[2]
        print(
            f"kexpose --workers 1: {r1:.0f} req/s, {c1:.1f} CPU-us/req; --workers 2: {r2:.0f} "
            f"req/s, {c2:.1f} CPU-us/req ({r2 / r1:.2f}x req/s; unpinned, on 2 cores that wrk and "
            "the backend share)"
        )


def h2load(core: str, url: str, duration: int, connections: int, streams: int, log: Path) -> str:
    """h2load over TLS (ALPN h2); one thread, ``streams`` concurrent streams per connection."""
    argv = ["taskset", "-c", core, "h2load", "-t1", f"-c{connections}", f"-m{streams}"]
    argv += [f"-D{duration}", "--log-file", str(log), url]
    grace = 30
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, check=True, timeout=duration + grace
        )
    except subprocess.TimeoutExpired:
        # h2load ends a timed run by sending GOAWAY and waiting for the server to close; a
        # server that leaves connections open (kexpose-proxy did at -c64 before a fix, README,
        # HTTP/2) makes it wait forever, so fail with a reason instead.
        raise SystemExit(
            f"h2load -c{connections} against {url} had not exited {grace}s after its {duration}s "
            "run: the server left connections open; try fewer --connections (16)"
        ) from None
    return done.stdout


def parse_h2load(out: str, log: Path) -> tuple[float, float, float, int, int]:
    """(req/s, p50 ms, p99 ms, requests done, failed + errored): h2load prints no percentiles,
    so they come from its per-request log (start µs, status, duration µs)."""
    rps = float(re.search(r"finished in [\d.]+s, ([\d.]+) req/s", out).group(1))  # type: ignore[union-attr]
    m = re.search(
        r"requests: \d+ total, \d+ started, (\d+) done, \d+ succeeded, (\d+) failed, "
        r"(\d+) errored",
        out,
    )
    assert m is not None, out
    durations = sorted(int(line.split()[2]) for line in log.read_text().splitlines() if line)
    p50 = durations[len(durations) // 2] / 1000 if durations else 0.0
    p99 = (
        durations[min(len(durations) - 1, len(durations) * 99 // 100)] / 1000 if durations else 0.0
    )
    return rps, p50, p99, int(m.group(1)), int(m.group(2)) + int(m.group(3))


def h2_rounds(
    targets: dict[str, tuple[str, list[int]]], args: argparse.Namespace, run_dir: Path
) -> list[Run]:
    """The Ingress route over HTTP/2 and TLS, the proxies interleaved as in the HTTP/1.1
    rounds."""
    log = run_dir / "h2load.log"
    for url, _ in targets.values():  # warm-up
        h2load(args.load_core, url, 2, args.connections, args.h2_streams, log)
    runs: list[Run] = []
    for r in range(1, args.rounds + 1):
        for name, (url, pids) in targets.items():
            before = cpu_ticks(pids)
            out = h2load(args.load_core, url, args.duration, args.connections, args.h2_streams, log)
            used = cpu_ticks(pids) - before
            rps, p50, p99, total, errors = parse_h2load(out, log)
            cpu_us = used / TICKS * 1e6 / max(total, 1)
            runs.append(Run(name, "ingress", "h2", r, rps, p50, p99, cpu_us, errors))
            print(
                f"round {r} ingress h2    {name:8s} {rps:9.0f} req/s  p50 {p50:6.2f} ms  "
                f"p99 {p99:7.2f} ms  {cpu_us:6.1f} CPU-us/req  errors {errors}",
                flush=True,
            )
    return runs


if __name__ == "__main__":
    main()
