"""Benchmark: ``kexpose check`` against checkov's Kubernetes checks, on the same manifests.

Generates rendered-stack-like manifests, then times, in the same run (below). Per app: a
Deployment, a Service and a kubernetes.io/tls Secret holding a certificate generated here, and
its door: half the apps an Ingress with TLS (every third of those behind edge auth: basic with an
htpasswd Secret, or JWT with a JWKS URL, issuer and audience), the other half an HTTPRoute on a
Gateway. Each file of apps gets its Gateway (an HTTPS listener per routed host, certificates
from the apps' namespaces), a ReferenceGrant per app namespace for those certificates, and a
plain-HTTP Gateway whose one HTTPRoute redirects to HTTPS:

- ``kexpose check DIR --environment prod --output json`` (the installed command, process wall
  time, best of ``--repeat``), and the library split (YAML loading vs ``evaluate``) in-process;
- ``checkov -d DIR --framework kubernetes -o json`` from its own virtualenv (created on first
  use under ~/.cache/kexpose/bench-checkov from PyPI, never the project's).

Sizes default to 1,000 and 10,000 resources, to show growth. Results go to
``benchmarks/results/policy-<time>.json`` (ignored by git) and a table on stdout.

    .venv/bin/python benchmarks/policy/bench.py [--sizes 1000 10000] [--skip-checkov]
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from kexpose.certs import self_signed
from kexpose.policy import PolicyConfig, evaluate
from kexpose.policy.loader import load_manifests

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
CHECKOV_VENV = Path.home() / ".cache" / "kexpose" / "bench-checkov"
CHECKOV_SPEC = "checkov"  # newest from PyPI; the version is recorded with the results
APPS_PER_FILE = 25  # a rendered stack directory: one file per small group of apps
NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


GW_API = "gateway.networking.k8s.io/v1"


def _names(i: int) -> tuple[str, str, str]:
    name = f"app-{i:05d}"
    return name, f"team-{i % 40:02d}", f"{name}.bench.example.com"


def _routed(i: int) -> bool:
    """Odd apps are exposed through the Gateway API, even ones through an Ingress."""
    return i % 2 == 1


def _auth(i: int, name: str, ns: str) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Edge-auth annotations for every third Ingress app, and the Secrets they name."""
    if i % 6 == 0:
        htpasswd = f"ops:$2y$10${'x' * 53}\n".encode()
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {"name": f"{name}-users", "namespace": ns},
            "data": {"auth": base64.b64encode(htpasswd).decode()},
        }
        notes = {
            "kexpose.dev/auth-type": "basic",
            "kexpose.dev/auth-secret": f"{name}-users",
            "kexpose.dev/auth-exempt-paths": "/healthz",
        }
        return notes, [secret]
    if i % 6 == 2:
        # A deliberate problem now and then: the JWKS URL aimed at the metadata endpoint.
        url = (
            "http://169.254.169.254/jwks"
            if i % 194 == 2
            else "https://id.bench.example.com/.well-known/jwks.json"
        )
        return {
            "kexpose.dev/auth-type": "jwt",
            "kexpose.dev/auth-jwks-url": url,
            "kexpose.dev/auth-jwt-issuer": "https://id.bench.example.com/",
            "kexpose.dev/auth-jwt-audiences": name,
        }, []
    return {}, []  # fmt: skip


def _door(i: int, gateway: str) -> list[dict[str, Any]]:
    """How app ``i`` is reached: an HTTPRoute on ``gateway``, or an Ingress (maybe with auth)."""
    name, ns, host = _names(i)
    path = "/etc" if i % 97 == 0 else "/"
    if _routed(i):
        # A deliberate problem now and then: a listener name the Gateway does not have.
        section = "https-missing" if i % 101 == 1 else f"https-{name}"
        return [
            {"apiVersion": GW_API, "kind": "HTTPRoute",
             "metadata": {"name": name, "namespace": ns},
             "spec": {"parentRefs": [{"name": gateway, "namespace": "gateways",
                                      "sectionName": section}],
                      "hostnames": [host],
                      "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                                 "backendRefs": [{"name": name, "port": 80}]},
                                {"matches": [{"path": {"type": "PathPrefix", "value": "/"},
                                              "headers": [{"name": "X-Canary",
                                                           "value": "always"}]}],
                                 "backendRefs": [{"name": name, "port": 80, "weight": 1}]}]}},
        ]  # fmt: skip
    notes, secrets = _auth(i, name, ns)
    return [
        {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
         "metadata": {"name": name, "namespace": ns, **({"annotations": notes} if notes else {})},
         "spec": {"ingressClassName": "kexpose",
                  "tls": [{"hosts": [host], "secretName": f"{name}-tls"}],
                  "rules": [{"host": host, "http": {"paths": [{
                      "path": path, "pathType": "Prefix",
                      "backend": {"service": {"name": name, "port": {"number": 80}}}}]}}]}},
        *secrets,
    ]  # fmt: skip


def _gateways(batch: int, apps: list[int]) -> list[dict[str, Any]]:
    """A file's Gateway API controller side: its HTTPS Gateway, and a plain-HTTP Gateway whose
    only route redirects to HTTPS."""
    gateway, plain = f"edge-{batch:04d}", f"edge-http-{batch:04d}"
    routed = [i for i in apps if _routed(i)]
    listeners = [
        {"name": f"https-{name}", "protocol": "HTTPS", "port": 443, "hostname": host,
         "tls": {"mode": "Terminate",
                 "certificateRefs": [{"name": f"{name}-tls", "namespace": ns}]},
         "allowedRoutes": {"namespaces": {"from": "Selector", "selector": {"matchExpressions": [
             {"key": "kubernetes.io/metadata.name", "operator": "In", "values": [ns]}]}}}}
        for name, ns, host in map(_names, routed)
    ]  # fmt: skip
    return [
        {"apiVersion": GW_API, "kind": "Gateway",
         "metadata": {"name": gateway, "namespace": "gateways"},
         "spec": {"gatewayClassName": "kexpose", "listeners": listeners}},
        {"apiVersion": GW_API, "kind": "Gateway",
         "metadata": {"name": plain, "namespace": "gateways"},
         "spec": {"gatewayClassName": "kexpose", "listeners": [
             {"name": "http", "protocol": "HTTP", "port": 80,
              "allowedRoutes": {"namespaces": {"from": "Same"}}}]}},
        {"apiVersion": GW_API, "kind": "HTTPRoute",
         "metadata": {"name": f"{plain}-redirect", "namespace": "gateways"},
         "spec": {"parentRefs": [{"name": plain, "sectionName": "http"}],
                  "hostnames": [_names(i)[2] for i in apps],
                  "rules": [{"filters": [{"type": "RequestRedirect",
                                          "requestRedirect": {"scheme": "https",
                                                              "statusCode": 301}}]}]}},
    ]  # fmt: skip


def _grants() -> list[dict[str, Any]]:
    """One ReferenceGrant per app namespace: the Gateways of namespace ``gateways`` may read
    its certificate Secrets."""
    return [
        {"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
         "metadata": {"name": "gateways-read-certificates", "namespace": f"team-{n:02d}"},
         "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                            "namespace": "gateways"}],
                  "to": [{"group": "", "kind": "Secret"}]}}
        for n in range(40)
    ]  # fmt: skip


def _filler(n: int) -> dict[str, Any]:
    """An app's ConfigMap: fills the last file up to the exact object count."""
    name, ns, _ = _names(n)
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": f"{name}-config", "namespace": ns},
            "data": {"LOG_LEVEL": "info"}}  # fmt: skip


def _app(i: int, cert_pem: str) -> list[dict[str, Any]]:
    name, ns, _ = _names(i)
    labels = {"app.kubernetes.io/name": name}
    # A few deliberate problems, so both tools have findings to report.
    service_type = "NodePort" if i % 50 == 0 else "ClusterIP"
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": name, "namespace": ns, "labels": labels},
         "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels}, "spec": {"containers": [{
                      "name": "app", "image": f"registry.example.com/{name}:1.0.{i % 7}",
                      "ports": [{"name": "http", "containerPort": 8080}],
                      "resources": {"requests": {"cpu": "50m", "memory": "64Mi"},
                                    "limits": {"memory": "128Mi"}},
                      "securityContext": {"runAsNonRoot": True,
                                          "allowPrivilegeEscalation": False,
                                          "readOnlyRootFilesystem": True},
                  }]}}}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": name, "namespace": ns, "labels": labels},
         "spec": {"type": service_type, "selector": labels,
                  "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}},
        {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
         "metadata": {"name": f"{name}-tls", "namespace": ns},
         "data": {"tls.crt": base64.b64encode(cert_pem.encode()).decode(),
                  "tls.key": base64.b64encode(b"benchmark placeholder, not a key").decode()}},
    ]  # fmt: skip


def generate(directory: Path, resources: int) -> None:
    """``resources`` objects under ``directory``, certificates made here.

    Files of up to ``APPS_PER_FILE`` apps, each with its Gateways; the first also holds the
    ReferenceGrants. Apps are added while they fit; ConfigMaps fill the rest, so that every
    reference stays whole and the count is exact.
    """
    directory.mkdir(parents=True, exist_ok=True)
    written, batch, i = 0, 0, 0
    while written < resources:
        objects = _grants() if batch == 0 else []
        gateway = f"edge-{batch:04d}"
        apps: list[list[dict[str, Any]]] = []
        for _ in range(APPS_PER_FILE):
            host = _names(i)[2]
            cert = self_signed([host], days=365, now=NOW).cert_pem
            made = [*_app(i, cert), *_door(i, gateway)]
            if written + len(objects) + sum(map(len, apps)) + len(made) + 3 > resources:
                break
            apps.append(made)
            i += 1
        first = i - len(apps)
        if apps:
            objects.extend(_gateways(batch, list(range(first, i))))
            for made in apps:
                objects.extend(made)
        while written + len(objects) < resources and len(apps) < APPS_PER_FILE:
            objects.append(_filler(written + len(objects)))
        objects = objects[: resources - written]
        path = directory / f"apps-{batch:04d}.yaml"
        path.write_text(yaml.safe_dump_all(objects, sort_keys=False))
        written += len(objects)
        batch += 1


def ensure_checkov() -> Path:
    exe = CHECKOV_VENV / "bin" / "checkov"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(CHECKOV_VENV)], check=True)
        pip = str(CHECKOV_VENV / "bin" / "pip")
        subprocess.run([pip, "install", "--quiet", "--upgrade", "pip"], check=True)
        subprocess.run([pip, "install", "--quiet", CHECKOV_SPEC], check=True)
    return exe


def _timed(command: list[str], *, env: dict[str, str] | None = None) -> tuple[float, int, int]:
    """(seconds, exit code, bytes of stdout) of one run."""
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, env=env, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        sys.stderr.write(done.stderr.decode(errors="replace")[-2000:])
        raise SystemExit(f"{command[0]} failed with exit {done.returncode}")
    return elapsed, done.returncode, len(done.stdout)


def bench_kexpose(directory: Path, repeat: int) -> dict[str, Any]:
    exe = str(Path(sys.executable).with_name("kexpose"))
    runs = [
        _timed([exe, "check", str(directory), "--environment", "prod", "--output", "json"])
        for _ in range(repeat)
    ]
    start = time.perf_counter()
    objects = load_manifests([str(directory)])
    loaded = time.perf_counter()
    violations = evaluate(objects, environment="prod", config=PolicyConfig.project())
    evaluated = time.perf_counter()
    return {
        "command": f"kexpose check {directory} --environment prod --output json",
        "wall_seconds": min(r[0] for r in runs),
        "wall_seconds_all": [round(r[0], 3) for r in runs],
        "exit_code": runs[0][1],
        "objects": len(objects),
        "kinds": dict(sorted(Counter(str(o.get("kind")) for o in objects).items())),
        "violations": len(violations),
        "rules_reported": dict(sorted(Counter(v.rule for v in violations).items())),
        "load_seconds": loaded - start,
        "evaluate_seconds": evaluated - loaded,
    }


def bench_checkov(exe: Path, directory: Path) -> dict[str, Any]:
    env = dict(os.environ)
    # No network here: keep checkov from reaching out for guidelines or a newer version.
    env.update(BC_SKIP_MAPPING="TRUE", CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false")
    command = [
        str(exe),
        "-d",
        str(directory),
        "--framework",
        "kubernetes",
        "-o",
        "json",
        "--skip-download",
        "--compact",
        "--quiet",
    ]
    seconds, code, size = _timed(command, env=env)
    version = subprocess.run(
        [str(exe), "--version"], capture_output=True, text=True, check=False, env=env
    ).stdout.strip()
    return {
        "command": " ".join(["checkov", *command[1:]]),
        "wall_seconds": seconds,
        "exit_code": code,
        "output_bytes": size,
        "version": version,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=3, help="kexpose runs per size (best)")
    parser.add_argument("--skip-checkov", action="store_true")
    parser.add_argument("--keep", type=Path, help="generate into this directory and keep it")
    args = parser.parse_args()

    checkov = None if args.skip_checkov else ensure_checkov()
    scratch = args.keep or Path(tempfile.mkdtemp(prefix="kexpose-bench-"))
    results: dict[str, Any] = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, {platform.python_version()}",
        "sizes": {},
    }
    try:
        for size in args.sizes:
            directory = scratch / f"resources-{size}"
            start = time.perf_counter()
            generate(directory, size)
            print(
                f"generated {size} resources in {time.perf_counter() - start:.1f}s: {directory}",
                flush=True,
            )
            row: dict[str, Any] = {"kexpose": bench_kexpose(directory, args.repeat)}
            print(f"  kexpose check: {row['kexpose']['wall_seconds']:.2f}s", flush=True)
            if checkov is not None:
                row["checkov"] = bench_checkov(checkov, directory)
                row["speedup"] = row["checkov"]["wall_seconds"] / row["kexpose"]["wall_seconds"]
                print(
                    f"  checkov:       {row['checkov']['wall_seconds']:.2f}s "
                    f"({row['speedup']:.1f}x)",
                    flush=True,
                )
            results["sizes"][str(size)] = row
    finally:
        if args.keep is None:
            shutil.rmtree(scratch, ignore_errors=True)

    sizes = sorted(results["sizes"], key=int)
    if len(sizes) >= 2:
        small, large = results["sizes"][sizes[0]], results["sizes"][sizes[-1]]
        factor = int(sizes[-1]) / int(sizes[0])
        results["growth"] = {
            "resources_factor": factor,
            "evaluate_factor": large["kexpose"]["evaluate_seconds"]
            / small["kexpose"]["evaluate_seconds"],
            "load_factor": large["kexpose"]["load_seconds"] / small["kexpose"]["load_seconds"],
            "wall_factor": large["kexpose"]["wall_seconds"] / small["kexpose"]["wall_seconds"],
        }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"policy-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(results, indent=2))

    print(
        f"\n{'resources':>10} {'kexpose s':>10} {'load s':>8} {'evaluate s':>11} "
        f"{'checkov s':>10} {'speedup':>8}"
    )
    for size in sizes:
        row = results["sizes"][size]
        k = row["kexpose"]
        c = row.get("checkov", {}).get("wall_seconds")
        speed = f"{row['speedup']:.1f}x" if "speedup" in row else "-"
        print(
            f"{size:>10} {k['wall_seconds']:>10.2f} {k['load_seconds']:>8.2f} "
            f"{k['evaluate_seconds']:>11.3f} {c if c is None else round(c, 2)!s:>10} "
            f"{speed:>8}"
        )
    if "growth" in results:
        g = results["growth"]
        print(
            f"growth x{g['resources_factor']:.0f} resources: "
            f"evaluate x{g['evaluate_factor']:.1f}, load x{g['load_factor']:.1f}, "
            f"wall x{g['wall_factor']:.1f}"
        )
    print(f"results: {out}")


if __name__ == "__main__":
    main()
