"""Time ``kexpose preview`` on generated stacks of growing size; report seconds and peak memory.

Usage: .venv/bin/python benchmarks/preview/bench.py [--sizes 50,200,500,1000] [--repeat 1]

Each size runs in a fresh process (``kexpose preview --stack bench -o json``), so the figures
include interpreter start-up and imports, as a user sees them. Peak memory is the child's
maximum resident set size (wait4 rusage). The growth column is seconds per app relative to the
smallest size: linear growth keeps it near 1.0.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def app(i: int) -> dict[str, Any]:
    name = f"app-{i:04d}"
    return {
        "name": name,
        "namespace": f"team-{i % 20:02d}",
        "workload": {
            "image": "registry.k8s.io/e2e-test-images/agnhost:2.52",
            "args": ["netexec", "--http-port=8080"],
            "ports": [{"name": "http", "containerPort": 8080}],
            "readiness": {"port": "http", "path": "/healthz"},
        },
        "service": {"ports": [{"name": "http", "port": 80}]},
        "ingress": {
            "rules": [
                {
                    "host": f"{name}.staging.example.com",
                    "paths": [{"path": "/", "port": "http"}],
                }
            ]
        },
        "tls": {"mode": "self-signed", "validityDays": 90},
    }


def project(n: int, where: Path) -> Path:
    (where / "stacks").mkdir(parents=True)
    shutil.copy(ROOT / "Pulumi.yaml", where)
    config = {
        "kexpose:environment": "staging",
        "kexpose:controller": {"kind": "kexpose", "replicas": 2},
        "kexpose:apps": [app(i) for i in range(n)],
    }
    (where / "stacks" / "Pulumi.bench.yaml").write_text(yaml.safe_dump({"config": config}))
    return where


def run(n: int) -> tuple[float, float, int]:
    """Seconds, peak RSS in MB and objects of one ``kexpose preview`` of ``n`` apps."""
    with tempfile.TemporaryDirectory() as tmp:
        proj = project(n, Path(tmp) / "project")
        out_path = Path(tmp) / "out.json"
        kexpose = Path(sys.executable).with_name("kexpose")
        cmd = [
            str(kexpose),
            "preview",
            "--stack",
            "bench",
            "--project-dir",
            str(proj),
            "-o",
            "json",
        ]
        with out_path.open("wb") as out:
            start = time.perf_counter()
            child = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE)
            assert child.stderr is not None
            err = child.stderr.read()
            # wait4 gives this child's own rusage (ru_maxrss in KiB on Linux).
            _, status, usage = os.wait4(child.pid, 0)
            elapsed = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"preview of {n} apps failed: {err.decode()[-2000:]}")
        objects = out_path.read_bytes().count(b'"kind"')
        return elapsed, usage.ru_maxrss / 1024, objects


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="50,200,500,1000")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"{'apps':>6} {'objects':>8} {'seconds':>8} {'s/app (ms)':>10} {'growth':>7} {'peak MB':>8}"
    )
    base = None
    for n in sizes:
        best = min((run(n) for _ in range(args.repeat)), key=lambda r: r[0])
        elapsed, peak, objects = best
        per_app = elapsed / n
        base = base or per_app
        row = (f"{n:>6}", f"{objects:>8}", f"{elapsed:>8.2f}", f"{per_app * 1000:>10.1f}")
        print(*row, f"{per_app / base:>7.2f}", f"{peak:>8.0f}")


if __name__ == "__main__":
    main()
