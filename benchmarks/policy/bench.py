"""Benchmark: ``kexpose check`` against checkov's Kubernetes checks, on the same manifests.

Generates rendered-stack-like manifests (per app: Deployment, Service, Ingress with TLS, a
kubernetes.io/tls Secret holding a certificate generated here), then times, in the same run:

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


def _app(i: int, cert_pem: str) -> list[dict[str, Any]]:
    name, ns = f"app-{i:05d}", f"team-{i % 40:02d}"
    host = f"{name}.bench.example.com"
    labels = {"app.kubernetes.io/name": name}
    # A few deliberate problems, so both tools have findings to report.
    service_type = "NodePort" if i % 50 == 0 else "ClusterIP"
    path = "/etc" if i % 97 == 0 else "/"
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
        {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
         "metadata": {"name": name, "namespace": ns},
         "spec": {"ingressClassName": "kexpose",
                  "tls": [{"hosts": [host], "secretName": f"{name}-tls"}],
                  "rules": [{"host": host, "http": {"paths": [{
                      "path": path, "pathType": "Prefix",
                      "backend": {"service": {"name": name, "port": {"number": 80}}}}]}}]}},
        {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
         "metadata": {"name": f"{name}-tls", "namespace": ns},
         "data": {"tls.crt": base64.b64encode(cert_pem.encode()).decode(),
                  "tls.key": base64.b64encode(b"benchmark placeholder, not a key").decode()}},
    ]  # fmt: skip


def generate(directory: Path, resources: int) -> None:
    """``resources`` objects (four per app) under ``directory``, certificates made here."""
    apps = resources // 4
    directory.mkdir(parents=True, exist_ok=True)
    batch: list[dict[str, Any]] = []
    for i in range(apps):
        host = f"app-{i:05d}.bench.example.com"
        batch.extend(_app(i, self_signed([host], days=365, now=NOW).cert_pem))
        if (i + 1) % APPS_PER_FILE == 0 or i == apps - 1:
            path = directory / f"apps-{i // APPS_PER_FILE:04d}.yaml"
            path.write_text(yaml.safe_dump_all(batch, sort_keys=False))
            batch = []


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
        "violations": len(violations),
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
