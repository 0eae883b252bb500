"""gRPC unary calls per second through kexpose-proxy (h2c both ways) against calling the backend
directly, interleaved rounds on loopback.

The backend is a grpcio server with one generic unary method (raw bytes, an echo); the proxy
runs from this tree in static mode (``--manifests``), the Service port says
``appProtocol: kubernetes.io/h2c``; the client is grpcio with ``--inflight`` calls in flight on
one channel. The client is the same Python grpcio either way, so the ratio is what the proxy
costs a caller, not the proxy's own ceiling (``bench.py --h2`` measures that with h2load).

    python benchmarks/proxy/grpc_bench.py [--duration 5] [--rounds 3] [--inflight 32]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc

PROXY_PORT, HEALTH_PORT = 18090, 18256
MANIFESTS = """
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {{name: kexpose}}
spec: {{controller: kexpose.dev/ingress-controller}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: grpc, namespace: default}}
spec:
  ingressClassName: kexpose
  rules:
  - http:
      paths:
      - {{path: /, pathType: Prefix, backend: {{service: {{name: grpc, port: {{number: 50051}}}}}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: grpc, namespace: default}}
spec: {{ports: [{{name: grpc, port: 50051, targetPort: {port}, appProtocol: kubernetes.io/h2c}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: grpc-1, namespace: default, labels: {{kubernetes.io/service-name: grpc}}}}
addressType: IPv4
endpoints: [{{addresses: [127.0.0.1]}}]
ports: [{{name: grpc, port: {port}}}]
"""


def backend() -> tuple[Any, int]:
    handler = grpc.method_handlers_generic_handler(
        "bench.Echo", {"Call": grpc.unary_unary_rpc_method_handler(lambda req, ctx: req)}
    )
    server = grpc.server(ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def calls_per_second(target: str, duration: float, inflight: int) -> float:
    """Unary calls completed per second with ``inflight`` outstanding on one channel."""
    with grpc.insecure_channel(target, options=[("grpc.default_authority", "grpc.bench")]) as ch:
        call = ch.unary_unary("/bench.Echo/Call")
        call(b"warm-up", timeout=5)
        done = 0
        lock = threading.Lock()
        stop = time.monotonic() + duration
        slots = threading.Semaphore(inflight)

        def finished(_: Any) -> None:
            nonlocal done
            with lock:
                done += 1
            slots.release()

        start = time.monotonic()
        while time.monotonic() < stop:
            slots.acquire()
            call.future(b"x" * 64, timeout=10).add_done_callback(finished)
        for _ in range(inflight):
            slots.acquire()
        return done / (time.monotonic() - start)


def wait_port(port: int, timeout: float = 20.0) -> None:
    limit = time.monotonic() + timeout
    while time.monotonic() < limit:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--inflight", type=int, default=32)
    args = ap.parse_args()
    server, port = backend()
    run = Path(tempfile.mkdtemp(prefix="kexpose-grpc-bench-"))
    (run / "manifests.yaml").write_text(MANIFESTS.format(port=port))
    kexpose = str(Path(sys.executable).with_name("kexpose-proxy"))
    argv = [kexpose, "--manifests", str(run / "manifests.yaml"), "--bind", "127.0.0.1"]
    argv += ["--http-port", str(PROXY_PORT), "--https-port", "0", "--health-port"]
    argv += [str(HEALTH_PORT), "--workers", "1", "--no-access-log"]
    log = (run / "proxy.log").open("wb")
    proxy = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
    try:
        wait_port(PROXY_PORT)
        results: dict[str, list[float]] = {"direct": [], "kexpose": []}
        targets = {"direct": f"127.0.0.1:{port}", "kexpose": f"127.0.0.1:{PROXY_PORT}"}
        for r in range(1, args.rounds + 1):
            for name, target in targets.items():
                cps = calls_per_second(target, args.duration, args.inflight)
                results[name].append(cps)
                print(f"round {r} {name:8s} {cps:8.0f} calls/s", flush=True)
        direct, via = (statistics.median(results[n]) for n in ("direct", "kexpose"))
        print(
            f"\ngRPC unary, {args.inflight} in flight, medians of {args.rounds}: direct "
            f"{direct:.0f} calls/s, through kexpose-proxy {via:.0f} calls/s ({via / direct:.2f}x)"
        )
    finally:
        proxy.terminate()
        proxy.wait(30)
        server.stop(None)


if __name__ == "__main__":
    main()
