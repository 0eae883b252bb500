"""Time ``kexpose preview`` on generated stacks of growing size; report seconds and peak memory.

Usage: .venv/bin/python benchmarks/preview/bench.py [--sizes 50,200,500,1000] [--repeat 1]
       [--baseline OTHER/.venv/bin/kexpose]

Each size runs in a fresh process (``kexpose preview --stack bench -o json``), so the figures
include interpreter start-up and imports, as a user sees them. ``cpu`` is the child's user plus
system time and peak memory its maximum resident set size (wait4 rusage); on a shared machine
the cpu column moves less than the wall clock. ``+ms/app`` is the cpu time each app added
since the previous size (start-up and imports cancel out): linear growth keeps it flat.

``--baseline`` runs another tree's ``kexpose`` (for example the main branch's virtualenv) on
the same stack files, alternating with this one, and adds its figures and the ratio
baseline/this: the side-by-side comparison that holds up under a varying machine load.
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
from typing import Any, NamedTuple

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


class Figures(NamedTuple):
    seconds: float
    cpu: float
    peak_mb: float
    objects: int


def run(kexpose: Path, proj: Path, out_path: Path) -> Figures:
    """One ``kexpose preview`` of the stack ``bench`` in ``proj``."""
    cmd = [str(kexpose), "preview", "--stack", "bench", "--project-dir", str(proj), "-o", "json"]
    with out_path.open("wb") as out:
        start = time.perf_counter()
        child = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE)
        assert child.stderr is not None
        err = child.stderr.read()
        # wait4 gives this child's own rusage (ru_maxrss in KiB on Linux).
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{kexpose} preview failed: {err.decode()[-2000:]}")
    objects = out_path.read_bytes().count(b'"kind"')
    return Figures(elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, objects)


def best(runs: list[Figures]) -> Figures:
    return min(runs, key=lambda f: f.seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="50,200,500,1000")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--baseline", type=Path, help="another tree's kexpose executable")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    this = Path(sys.executable).with_name("kexpose")
    head = f"{'apps':>6} {'objects':>8} {'seconds':>8} {'cpu':>7} {'+ms/app':>8} {'peak MB':>8}"
    if args.baseline:
        head += f" | {'base s':>7} {'base cpu':>8} {'+ms/app':>8} {'base MB':>8}"
        head += f" {'x wall':>7} {'x cpu':>6}"
    print(head, flush=True)
    previous: dict[str, tuple[int, float]] = {}

    def added(side: str, n: int, cpu: float) -> str:
        """Milliseconds of cpu per app added since the previous size of ``side``."""
        last = previous.get(side)
        previous[side] = (n, cpu)
        return f"{(cpu - last[1]) / (n - last[0]) * 1000:>8.1f}" if last else f"{'':>8}"

    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            proj = project(n, Path(tmp) / "project")
            out = Path(tmp) / "out.json"
            ours: list[Figures] = []
            theirs: list[Figures] = []
            for _ in range(args.repeat):
                ours.append(run(this, proj, out))
                if args.baseline:
                    theirs.append(run(args.baseline, proj, out))
        f = best(ours)
        row = f"{n:>6} {f.objects:>8} {f.seconds:>8.2f} {f.cpu:>7.2f} {added('this', n, f.cpu)}"
        row += f" {f.peak_mb:>8.0f}"
        if theirs:
            b = best(theirs)
            if b.objects != f.objects:
                raise SystemExit(f"{n} apps: baseline {b.objects} objects, here {f.objects}")
            row += f" | {b.seconds:>7.2f} {b.cpu:>8.2f} {added('base', n, b.cpu)} {b.peak_mb:>8.0f}"
            row += f" {b.seconds / f.seconds:>7.2f} {b.cpu / f.cpu:>6.2f}"
        print(row, flush=True)


if __name__ == "__main__":
    main()
