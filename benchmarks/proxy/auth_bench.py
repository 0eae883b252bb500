"""Edge auth's cost: kexpose-proxy's requests/s with auth, relative to the same route without.

``bench.py --auth`` runs this instead of the nginx comparison. One kexpose-proxy (static mode,
``--workers 1``, pinned to the proxy core) serves five hosts in front of the same nginx backend:

* ``none.bench``: no auth, the reference;
* ``basic.bench``: basic auth, an htpasswd Secret with a bcrypt hash (cost 10), the same valid
  credentials on every request, so after the first one the verified-credential cache answers;
* ``jwt.bench``: JWT, RS256 (2048-bit key) from a JWK Set Secret, issuer and audience checked,
  one token for every request (the verified-token cache answers after the first);
* ``jwt-fresh.bench``: the same JWT route, but a different token on every request (more tokens
  than the cache holds, cycled), so every request verifies an RS256 signature;
* ``forward.bench``: forward auth against a local auth service (an nginx ``return 204`` on the
  load core), one subrequest per request over a kept-alive connection.

Runs alternate between the hosts for several rounds so that drifts in machine load hit all
alike; medians and ratios to ``none`` are printed as a Markdown table.
"""

from __future__ import annotations

import argparse
import base64
import socket
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.proxy.bench import TICKS, cpu_ticks, parse_wrk, process, wait_port

# Ports of their own, so that this mode can run while the nginx comparison runs.
BACKEND_PORT, AUTH_PORT, KX_HTTP, KX_HTTPS, KX_HEALTH = 18180, 18190, 18182, 18545, 18354
#: The fixed ports above, which bench.py shifts by its --port-offset.
PORT_NAMES = ("BACKEND_PORT", "AUTH_PORT", "KX_HTTP", "KX_HTTPS", "KX_HEALTH")
#: More distinct tokens than the proxy's verified-token cache holds (10 000): cycled in order,
#: every request misses it.
FRESH_TOKENS = 12_000

BACKEND = """
worker_processes 1;
pid {run}/auth-backend.pid;
error_log {run}/auth-backend.err;
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
  server {{
    listen 127.0.0.1:{auth};
    location / {{ return 204; }}
  }}
}}
"""

_PATH = "rules: [{{host: {host}, http: {{paths: [{{path: /, pathType: Prefix, backend: {{service: {{name: backend, port: {{number: 80}}}}}}}}]}}}}]"  # noqa: E501

INGRESS = """
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {name}
  namespace: default
  annotations: {annotations}
spec:
  ingressClassName: kexpose
  {rules}
"""

COMMON = """
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {{name: kexpose}}
spec: {{controller: kexpose.dev/ingress-controller}}
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
---
apiVersion: v1
kind: Secret
metadata: {{name: users, namespace: default}}
data: {{auth: {htpasswd}}}
---
apiVersion: v1
kind: Secret
metadata: {{name: keys, namespace: default}}
data: {{jwks.json: {jwks}}}
"""

WRK_SCRIPT = """
local tokens = {{}}
for line in io.lines("{tokens}") do tokens[#tokens + 1] = line end
local i = 0
request = function()
  i = i % #tokens + 1
  return wrk.format("GET", "/", {{["Host"] = "jwt-fresh.bench",
                                  ["Authorization"] = "Bearer " .. tokens[i]}})
end
"""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _material(run: Path) -> tuple[str, str, str, Path]:
    """Manifests, the basic credentials, one token, and the file of fresh tokens."""
    import bcrypt
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    password = _b64(run.name.encode())  # made per run; never a real credential
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(10)).decode()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {**jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "k1"}
    import json

    jwks = json.dumps({"keys": [jwk]})
    claims = {
        "iss": "https://issuer.bench",
        "aud": "bench",
        "sub": "u",
        "exp": int(time.time()) + 7200,
    }
    token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})
    tokens = run / "tokens.txt"
    with tokens.open("w") as out:
        for i in range(FRESH_TOKENS):
            out.write(
                jwt.encode({**claims, "jti": str(i)}, key, algorithm="RS256", headers={"kid": "k1"})
            )
            out.write("\n")
    jwt_notes = (
        '{"kexpose.dev/auth-type": jwt, "kexpose.dev/auth-jwks-secret": keys, '
        '"kexpose.dev/auth-jwt-issuer": "https://issuer.bench", '
        '"kexpose.dev/auth-jwt-audiences": bench}'
    )
    ingresses = {
        "none": "{}",
        "basic": '{"kexpose.dev/auth-type": basic, "kexpose.dev/auth-secret": users}',
        "jwt": jwt_notes,
        "jwt-fresh": jwt_notes,
        "forward": (
            '{"kexpose.dev/auth-type": forward, '
            f'"kexpose.dev/auth-url": "http://127.0.0.1:{AUTH_PORT}/check"}}'
        ),
    }
    manifests = COMMON.format(
        backend=BACKEND_PORT,
        htpasswd=_b64(f"bench:{hashed}\n".encode()),
        jwks=_b64(jwks.encode()),
    )
    for name, notes in ingresses.items():
        rules = _PATH.format(host=f"{name}.bench")
        manifests += INGRESS.format(name=name, annotations=notes, rules=rules)
    credentials = "Basic " + _b64(f"bench:{password}".encode())
    return manifests, credentials, token, tokens


def _wrk(
    wrk_bin: str, core: str, args: argparse.Namespace, headers: list[str], script: Path | None
) -> str:
    import subprocess

    argv = ["taskset", "-c", core, wrk_bin, "-t1", f"-c{args.connections}", f"-d{args.duration}s"]
    for header in headers:
        argv += ["-H", header]
    if script is not None:
        argv += ["-s", str(script)]
    argv += ["--latency", f"http://127.0.0.1:{KX_HTTP}/"]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"wrk failed ({done.returncode}): {done.stdout}{done.stderr}")
    return done.stdout


def run_auth(args: argparse.Namespace, *, nginx: str, wrk_bin: str, kexpose: str) -> None:
    for port in (BACKEND_PORT, AUTH_PORT, KX_HTTP, KX_HTTPS, KX_HEALTH):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                raise SystemExit(f"port {port} is in use (another benchmark?); not measuring it")
    run = Path(tempfile.mkdtemp(prefix="kexpose-auth-bench-"))
    manifests, credentials, token, tokens = _material(run)
    (run / "manifests.yaml").write_text(manifests)
    (run / "backend.conf").write_text(BACKEND.format(run=run, backend=BACKEND_PORT, auth=AUTH_PORT))
    script = run / "fresh.lua"
    script.write_text(WRK_SCRIPT.format(tokens=tokens))
    cases: dict[str, tuple[list[str], Path | None]] = {
        "none": (["Host: none.bench"], None),
        "basic (cached)": (["Host: basic.bench", f"Authorization: {credentials}"], None),
        "jwt RS256 (cached)": (["Host: jwt.bench", f"Authorization: Bearer {token}"], None),
        "jwt RS256 (verified each time)": ([], script),
        "forward": (["Host: forward.bench"], None),
    }
    kx_args = [
        "--manifests", str(run / "manifests.yaml"), "--bind", "127.0.0.1",
        "--http-port", str(KX_HTTP), "--https-port", str(KX_HTTPS),
        "--health-port", str(KX_HEALTH), "--workers", "1",
    ]  # fmt: skip
    results: dict[str, list[tuple[float, float, float, int]]] = {name: [] for name in cases}
    with (
        process(
            [
                "taskset",
                "-c",
                args.load_core,
                nginx,
                "-g",
                "daemon off;",
                "-c",
                str(run / "backend.conf"),
            ],
            log=run / "backend.log",
        ),
        process(
            ["taskset", "-c", args.proxy_core, kexpose, *kx_args],
            log=run / "kexpose.log",
            env={"KEXPOSE_PROXY_LOG_FORMAT": "json"},
        ) as kx,
    ):
        for port in (BACKEND_PORT, AUTH_PORT, KX_HTTP):
            wait_port(port)
        short = argparse.Namespace(connections=args.connections, duration=2)
        for headers, lua in cases.values():  # warm up: pools, caches, the first bcrypt
            _wrk(wrk_bin, args.load_core, short, headers, lua)
        for r in range(1, args.rounds + 1):
            for name, (headers, lua) in cases.items():
                before = cpu_ticks([kx.pid])
                out = _wrk(wrk_bin, args.load_core, args, headers, lua)
                used = cpu_ticks([kx.pid]) - before
                rps, _, p99, total, errors = parse_wrk(out)
                cpu_us = used / TICKS * 1e6 / max(total, 1)
                results[name].append((rps, p99, cpu_us, errors))
                print(
                    f"round {r} {name:32s} {rps:9.0f} req/s  p99 {p99:7.2f} ms  "
                    f"{cpu_us:6.1f} CPU-us/req  non-2xx/errors {errors}",
                    flush=True,
                )
    print()
    print(
        f"wrk -t1 -c{args.connections} -d{args.duration}s, {args.rounds} interleaved rounds; "
        f"kexpose-proxy --workers 1 on core {args.proxy_core}, wrk + backend + auth service on "
        f"core {args.load_core}. Medians."
    )
    print()
    print(
        "| route | req/s | p99 ms | CPU µs/req | req/s vs no auth | "
        "per-core (CPU/req) vs no auth | errors |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    base = statistics.median(r[0] for r in results["none"])
    base_cpu = statistics.median(r[2] for r in results["none"])
    for name, rows in results.items():
        rps = statistics.median(r[0] for r in rows)
        p99 = statistics.median(r[1] for r in rows)
        cpu = statistics.median(r[2] for r in rows)
        errors = sum(r[3] for r in rows)
        print(
            f"| {name} | {rps:.0f} | {p99:.2f} | {cpu:.1f} | {rps / base:.2f}x | "
            f"{base_cpu / cpu:.2f}x | {errors} |"
        )
