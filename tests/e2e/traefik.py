"""Traefik (built by scripts/toolchain.sh, step `traefik`) run out of cluster against the e2e API
server, the way `proxy.py` runs kexpose-proxy.

Traefik finds the cluster through KUBECONFIG (its Kubernetes providers build an external client
from that file when they are not in a pod), so it authenticates with the admin client
certificate like every other e2e client. Each entry point listens on 127.0.0.1 at a port chosen
free at start; Traefik's Gateway API provider serves a Gateway listener on the entry point whose
port equals the listener's `port`, so a test's Gateway uses `TraefikProcess.web_port` (plain
HTTP) or `websecure_port` (TLS). `start()` returns once `/ping` answers 200; `stop()` ends the
process group by PID (also on failure).
"""

from __future__ import annotations

import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import yaml

from .cluster import _die_with_parent, free_ports, stop_process_group, wait_until

__all__ = [
    "GATEWAY_CONTROLLER",
    "INGRESS_CLASS_CONTROLLER",
    "Provider",
    "TraefikProcess",
    "crd_settings_of",
]

#: The GatewayClass `spec.controllerName` Traefik's Gateway API provider claims.
GATEWAY_CONTROLLER = "traefik.io/gateway-controller"
#: The IngressClass `spec.controller` Traefik's Ingress provider claims.
INGRESS_CLASS_CONTROLLER = "traefik.io/ingress-controller"
#: Traefik's Kubernetes providers that the e2e tests use (static configuration keys).
Provider = Literal["kubernetesCRD", "kubernetesGateway", "kubernetesIngress"]
# The providers list every watched kind before the first configuration; a few seconds locally.
READY_TIMEOUT_S = 60.0
# Traefik stops its entry points on SIGTERM after their `lifeCycle.graceTimeOut` (1 s below).
STOP_GRACE_S = 15.0
LOG_TAIL_LINES = 40


_CRD_FLAG = "--providers.kubernetescrd."


def crd_settings_of(args: Sequence[str]) -> dict[str, Any]:
    """The `kubernetesCRD` provider options in a controller's command line (`--providers.
    kubernetescrd.<option>=<value>`, as kexpose.manifests.controller writes them), as static
    configuration: the out-of-cluster Traefik then reads Middlewares exactly as the stack's
    Deployment would have it (namespaces, label selector, safe naming, no cross-namespace
    references). Traefik takes one static configuration source, file or flags, not both."""
    out: dict[str, Any] = {}
    for arg in args:
        if not arg.lower().startswith(_CRD_FLAG):
            continue
        key, _, value = arg[len(_CRD_FLAG) :].partition("=")
        if key == "namespaces":
            out[key] = value.split(",")
        elif value in ("true", "false"):
            out[key] = value == "true"
        else:
            out[key] = value
    return out


@dataclass
class TraefikProcess:
    """One `traefik --configFile=...` process with a plain and a TLS entry point on 127.0.0.1."""

    binary: Path
    workdir: Path
    kubeconfig: Path
    providers: Sequence[Provider] = ("kubernetesGateway",)
    status_address: str = "127.0.0.1"
    """What the Gateway provider writes into `status.addresses` of the Gateways it programs (and
    the Ingress provider into `status.loadBalancer`)."""
    extra_static: Mapping[str, Any] = field(default_factory=dict)
    """More static configuration, merged at the top level (e.g. `accessLog`)."""
    crd_settings: Mapping[str, Any] = field(default_factory=dict)
    """Options of the `kubernetesCRD` provider (which reads the apps' Middlewares), e.g. those
    a stack's controller Deployment gives Traefik (`crd_settings_of`)."""
    web_port: int = field(init=False, default=0)
    websecure_port: int = field(init=False, default=0)
    ping_port: int = field(init=False, default=0)
    log_path: Path = field(init=False)
    _process: subprocess.Popen[bytes] | None = field(init=False, default=None)
    _log: IO[bytes] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.log_path = self.workdir / "traefik.log"

    def static_configuration(self) -> dict[str, Any]:
        """Traefik's static configuration for this process (pure, once the ports are chosen)."""
        providers: dict[str, Any] = {}
        if "kubernetesGateway" in self.providers:
            providers["kubernetesGateway"] = {
                "statusAddress": {"ip": self.status_address},
                # Apply changes as they arrive; the default throttle only adds latency to tests.
                "throttleDuration": "0s",
            }
        if "kubernetesIngress" in self.providers:
            providers["kubernetesIngress"] = {
                "ingressEndpoint": {"ip": self.status_address},
                "throttleDuration": "0s",
                # `Prefix` paths match whole path elements, as the Ingress spec says; Traefik's
                # default is a character prefix (/app would match /application).
                "strictPrefixMatching": True,
            }
        if "kubernetesCRD" in self.providers:
            providers["kubernetesCRD"] = {"throttleDuration": "0s", **self.crd_settings}
        # Stop serving one second after SIGTERM instead of the default ten.
        quick = {"lifeCycle": {"graceTimeOut": "1s"}}
        return {
            "entryPoints": {
                name: {"address": f"127.0.0.1:{port}", "transport": quick}
                for name, port in (
                    ("web", self.web_port),
                    ("websecure", self.websecure_port),
                    ("ping", self.ping_port),
                )
            },
            "ping": {"entryPoint": "ping"},
            "providers": providers,
            "log": {"level": "INFO", "noColor": True},
            "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
            **self.extra_static,
        }

    def start(self) -> None:
        self.web_port, self.websecure_port, self.ping_port = free_ports(3)
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "traefik.yaml"
        config.write_text(yaml.safe_dump(self.static_configuration()))
        env = dict(os.environ)
        env["KUBECONFIG"] = str(self.kubeconfig)
        # Out of cluster: these would make the providers build an in-cluster client instead.
        for name in ("KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"):
            env.pop(name, None)
        self._log = self.log_path.open("wb")
        self._process = subprocess.Popen(
            [str(self.binary), f"--configFile={config}"],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.workdir,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        try:
            wait_until(self._ready, timeout=READY_TIMEOUT_S, what="traefik /ping")
        except BaseException:
            self.stop()
            raise

    def _ready(self) -> bool | None:
        assert self._process is not None
        code = self._process.poll()
        if code is not None:
            raise AssertionError(f"traefik exited with {code}:\n{self.tail()}")
        try:
            url = f"http://127.0.0.1:{self.ping_port}/ping"
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
