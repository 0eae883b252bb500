"""kexpose-proxy run out of cluster as the stacks' Ingress controller, against the local cluster.

The stacks' in-cluster controller Deployment runs on kwok nodes, where no container ever starts;
this process is the controller that actually serves: it watches the same API server, claims the
IngressClasses whose `spec.controller` is kexpose's, writes every served Ingress's
`status.loadBalancer` (which pulumi-kubernetes' Ingress await waits for) with `--publish-address`,
and proxies real requests on loopback ports chosen free at start.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from kexpose.defaults import CONTROLLER_NAME

from .cluster import _die_with_parent, free_ports, stop_process_group, wait_until

__all__ = ["PUBLISH_ADDRESS", "ProxyProcess"]

#: What the proxy writes into Ingress status (`--publish-address`).
PUBLISH_ADDRESS = "127.0.0.1"
# The first complete object set (a list of each watched kind) arrives within a second or two.
READY_TIMEOUT_S = 60.0
# Its drain is bounded by --drain-timeout below; the rest is interpreter shutdown.
STOP_GRACE_S = 15.0
LOG_TAIL_LINES = 40


@dataclass
class ProxyProcess:
    """One `kexpose-proxy --kubeconfig ...` process; `start()` returns once /readyz says 200."""

    kubeconfig: Path
    workdir: Path
    extra_args: tuple[str, ...] = ()
    """More flags, e.g. ``--gateway-addresses`` and its own ``--controller-name``."""
    http_port: int = field(init=False, default=0)
    https_port: int = field(init=False, default=0)
    health_port: int = field(init=False, default=0)
    log_path: Path = field(init=False)
    _process: subprocess.Popen[bytes] | None = field(init=False, default=None)
    _log: IO[bytes] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.log_path = self.workdir / "kexpose-proxy.log"

    def start(self) -> None:
        self.http_port, self.https_port, self.health_port = free_ports(3)
        executable = Path(sys.executable).parent / "kexpose-proxy"
        argv = [
            str(executable),
            f"--kubeconfig={self.kubeconfig}",
            f"--controller-name={CONTROLLER_NAME}",
            f"--publish-address={PUBLISH_ADDRESS}",
            "--bind=127.0.0.1",
            f"--http-port={self.http_port}",
            f"--https-port={self.https_port}",
            f"--health-port={self.health_port}",
            # Redirects to HTTPS name the port this process really listens on.
            f"--https-redirect-port={self.https_port}",
            "--log-format=text",
            "--drain-timeout=2",
            *self.extra_args,
        ]
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        env = dict(os.environ)
        # Out of cluster: no pod identity; the leader-election Lease goes to `default`.
        for name in ("POD_NAME", "POD_NAMESPACE"):
            env.pop(name, None)
        self._process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        try:
            wait_until(self._ready, timeout=READY_TIMEOUT_S, what="kexpose-proxy /readyz")
        except BaseException:
            self.stop()
            raise

    def _ready(self) -> bool | None:
        assert self._process is not None
        code = self._process.poll()
        if code is not None:
            raise AssertionError(f"kexpose-proxy exited with {code}:\n{self.tail()}")
        url = f"http://127.0.0.1:{self.health_port}/readyz"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return True if response.status == 200 else None
        except (OSError, urllib.error.URLError):
            return None

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def tail(self) -> str:
        if self._log is not None:
            self._log.flush()
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-LOG_TAIL_LINES:])

    def stop(self) -> None:
        process = self._process
        stop_process_group(process, STOP_GRACE_S)
        self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None
