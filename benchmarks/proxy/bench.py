"""kexpose-proxy against nginx as a reverse proxy, on loopback, pinned, interleaved.

What runs (all on 127.0.0.1):

* nginx (Debian package) as the common backend: one worker, a fixed 46-byte answer;
* nginx as the comparison proxy: one worker, an upstream keep-alive pool, the request headers
  ingress-nginx sets (Host, X-Request-ID, X-Real-IP, X-Forwarded-*), a buffered access log;
* kexpose-proxy in static mode with the same route: one process (``--workers 1``), its JSON
  access log to a file, metrics on;
* wrk (Debian package) as the load generator.

The proxies are pinned (``taskset``) to one core; wrk and the backend to the other, so proxy
and load generator never share a core. Runs alternate between the proxies (plain HTTP, then
TLS) for several rounds, so drifts in machine load hit both alike. For each run it reports
requests/s, p50/p99 latency (wrk) and the proxy's CPU time per request (from /proc), which
is the fairest per-core figure when the machine is shared. Finally ``--workers 2`` is measured
against ``--workers 1``.

Nothing is installed unless ``--install`` is given, which runs ``apt-get install -y nginx wrk``
(Debian/Ubuntu). ``--h2`` adds HTTP/2 over TLS rounds with h2load (``nghttp2-client``):
nginx's ``http2`` listener against kexpose's HTTPS port (ALPN h2), ``--h2-streams`` per
connection. Results go to stdout as a Markdown table and to benchmarks/results/ as JSON.

    python benchmarks/proxy/bench.py [--duration 10] [--rounds 3] [--connections 64]
        [--baseline DIR]

``--baseline DIR`` runs a second kexpose-proxy from another source tree (its ``components/``
first on ``PYTHONPATH``, e.g. ``git worktree add /tmp/base <commit>``) in the same interleaved
rounds, labelled ``baseline``: a before/after comparison in one run, under the same load.
"""

from __future__ import annotations

import argparse
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
NGINX_H2 = 18447  # nginx's HTTP/2 listener (kexpose offers h2 by ALPN on its HTTPS port)
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
}}
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


@dataclass
class Run:
    target: str
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


def wrk(wrk_bin: str, core: str, url: str, duration: int, connections: int) -> str:
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
        "--h2",
        action="store_true",
        help="also HTTP/2 over TLS with h2load (nghttp2-client), nginx (http2) and kexpose",
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
    nginx, wrk_bin = need("nginx", args.install), need("wrk", args.install)
    kexpose = str(Path(sys.executable).with_name("kexpose-proxy"))
    if args.auth:
        sys.path.insert(0, str(REPO))
        from benchmarks.proxy.auth_bench import run_auth

        run_auth(args, nginx=nginx, wrk_bin=wrk_bin, kexpose=kexpose)
        return
    sys.path.insert(0, str(REPO / "components"))
    from kexpose.certs import self_signed

    run_dir = Path(tempfile.mkdtemp(prefix="kexpose-bench-"))
    pair = self_signed(["localhost", "127.0.0.1"])
    (run_dir / "tls.crt").write_text(pair.cert_pem)
    (run_dir / "tls.key").write_text(pair.key_pem)
    (run_dir / "manifests.yaml").write_text(MANIFESTS.format(backend=BACKEND_PORT))
    conf = {
        "run": run_dir,
        "backend": BACKEND_PORT,
        "http": NGINX_HTTP,
        "https": NGINX_HTTPS,
        "h2": NGINX_H2,
    }
    (run_dir / "backend.conf").write_text(NGINX_BACKEND.format(**conf))
    (run_dir / "proxy.conf").write_text(NGINX_PROXY.format(**conf))
    pin_proxy = ["taskset", "-c", args.proxy_core]
    pin_load = ["taskset", "-c", args.load_core]
    kx_args = [
        "--manifests",
        str(run_dir / "manifests.yaml"),
        "--bind",
        "127.0.0.1",
        "--http-port",
        str(KX_HTTP),
        "--https-port",
        str(KX_HTTPS),
        "--health-port",
        str(KX_HEALTH),
        "--default-tls-cert",
        str(run_dir / "tls.crt"),
        "--default-tls-key",
        str(run_dir / "tls.key"),
    ]
    baseline_args = list(kx_args)
    for flag, port in (
        ("--http-port", BASE_HTTP),
        ("--https-port", BASE_HTTPS),
        ("--health-port", BASE_HEALTH),
    ):
        baseline_args[baseline_args.index(flag) + 1] = str(port)
    names = ("nginx", "kexpose", "baseline") if args.baseline else ("nginx", "kexpose")
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
        targets = {
            ("nginx", "http"): (f"http://127.0.0.1:{NGINX_HTTP}/", ngx_pids),
            ("kexpose", "http"): (f"http://127.0.0.1:{KX_HTTP}/", [kx.pid]),
            ("nginx", "https"): (f"https://127.0.0.1:{NGINX_HTTPS}/", ngx_pids),
            ("kexpose", "https"): (f"https://127.0.0.1:{KX_HTTPS}/", [kx.pid]),
        }
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
            targets[("baseline", "http")] = (f"http://127.0.0.1:{BASE_HTTP}/", [base.pid])
            targets[("baseline", "https")] = (f"https://127.0.0.1:{BASE_HTTPS}/", [base.pid])
        for url, _ in targets.values():  # warm up pools, caches, TLS session code paths
            wrk(wrk_bin, args.load_core, url, 2, args.connections)
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
            for scheme in ("http", "https"):
                for name in names:
                    url, pids = targets[(name, scheme)]
                    before = cpu_ticks(pids)
                    out = wrk(wrk_bin, args.load_core, url, args.duration, args.connections)
                    used = cpu_ticks(pids) - before
                    rps, p50, p99, total, errors = parse_wrk(out)
                    cpu_us = used / TICKS * 1e6 / max(total, 1)
                    runs.append(Run(name, scheme, r, rps, p50, p99, cpu_us, errors))
                    print(
                        f"round {r} {scheme:5s} {name:8s} {rps:9.0f} req/s  p50 {p50:6.2f} ms  "
                        f"p99 {p99:7.2f} ms  {cpu_us:6.1f} CPU-us/req  errors {errors}",
                        flush=True,
                    )
        if args.h2:
            h2_targets = {
                "nginx": (f"https://127.0.0.1:{NGINX_H2}/", ngx_pids),
                "kexpose": (f"https://127.0.0.1:{KX_HTTPS}/", [kx.pid]),
            }
            runs += h2_rounds(h2_targets, args, run_dir)
    # --workers scaling: both cores for kexpose (the load generator shares one of them). CPU
    # per request is summed over the serving processes, so it shows whether workers add cost.
    scaling: dict[int, tuple[float, float]] = {}
    for workers in (1, 2, 1, 2):
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
    print()
    print(
        "| scheme | proxy | req/s | p50 ms | p99 ms | CPU µs/req | req/s vs nginx | "
        "CPU/req vs nginx (per-core ratio) | p99 vs nginx |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for scheme in ("http", "https", "h2"):
        med = {}
        for name in ("nginx", "kexpose", "baseline"):
            sel = [r for r in runs if r.target == name and r.scheme == scheme]
            if not sel:
                continue
            med[name] = (
                statistics.median(r.rps for r in sel),
                statistics.median(r.p50_ms for r in sel),
                statistics.median(r.p99_ms for r in sel),
                statistics.median(r.cpu_us for r in sel),
            )
        n = med["nginx"]
        for name, (rps, p50, p99, cpu) in med.items():
            ratio = "" if name == "nginx" else f"{rps / n[0]:.2f}x"
            per_core = "" if name == "nginx" else f"{n[3] / cpu:.2f}x"
            p99r = "" if name == "nginx" else f"{p99 / n[2]:.2f}x"
            print(
                f"| {scheme} | {name} | {rps:.0f} | {p50:.2f} | {p99:.2f} | {cpu:.1f} | "
                f"{ratio} | {per_core} | {p99r} |"
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
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


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
    """HTTP/2 over TLS, nginx and kexpose interleaved, as the HTTP/1.1 rounds are."""
    need("h2load", args.install)
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
            runs.append(Run(name, "h2", r, rps, p50, p99, cpu_us, errors))
            print(
                f"round {r} h2    {name:8s} {rps:9.0f} req/s  p50 {p50:6.2f} ms  "
                f"p99 {p99:7.2f} ms  {cpu_us:6.1f} CPU-us/req  errors {errors}",
                flush=True,
            )
    return runs


if __name__ == "__main__":
    main()
