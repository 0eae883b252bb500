"""A private network namespace for the end-to-end session: loopback only, nothing can leave it.

Why: real traffic through kexpose-proxy must reach the stack's own backends, and the proxy connects
to what the EndpointSlices list. The API server refuses loopback endpoint addresses outright
(EndpointSlice validation, `ValidateEndpointIP`: "may not be in the loopback range (127.0.0.0/8,
::1/128)"), both from the endpointslice controller (pods with 127.x IPs) and from a hand-made,
selector-less EndpointSlice. So the pods keep kwok's addresses from the nodes' `spec.podCIDR`,
and the session runs in a network namespace of its own whose only interface is `lo`, with those
pod CIDRs added to `lo`: every address the test, the proxy and the control plane use is an
address of that loopback interface, and there is no route to anything else (a connect to any
other address fails with ENETUNREACH). The echo backends listen on exactly the pod IPs.

Entering needs CAP_SYS_ADMIN (unshare) and CAP_NET_ADMIN (addresses), i.e. root, as in CI.
`unshare(CLONE_NEWNET)` moves only the calling thread; it is called from pytest's main thread,
so every process it spawns and every thread it starts afterwards lives in the namespace.
`leave()` returns the thread to the original namespace, and the kernel frees the private one
when its last process exits.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["NetnsError", "PrivateNetwork"]

_CLONE_NEWNET = 0x40000000
_IP_TIMEOUT_S = 30.0


class NetnsError(RuntimeError):
    """The private network namespace could not be set up."""


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


@dataclass
class PrivateNetwork:
    """Enter a fresh network namespace with `lo` up and `addresses` (CIDRs) added to `lo`."""

    addresses: Sequence[str]
    _original: int | None = field(default=None, init=False)

    def enter(self) -> None:
        if self._original is not None:
            raise NetnsError("already inside the private network namespace")
        original = os.open("/proc/self/ns/net", os.O_RDONLY)
        libc = _libc()
        if libc.unshare(_CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            os.close(original)
            raise NetnsError(
                f"unshare(CLONE_NEWNET) failed: {os.strerror(errno)}; the e2e session needs "
                "root (CAP_SYS_ADMIN and CAP_NET_ADMIN) for its private network namespace"
            )
        self._original = original
        try:
            self._ip("link", "set", "lo", "up")
            for cidr in self.addresses:
                self._ip("addr", "add", cidr, "dev", "lo")
            devices = self.devices()
            if devices != ["lo"]:
                raise NetnsError(f"the private network namespace has interfaces {devices}")
        except BaseException:
            self.leave()
            raise

    def leave(self) -> None:
        if self._original is None:
            return
        try:
            if _libc().setns(self._original, _CLONE_NEWNET) != 0:
                raise NetnsError(f"setns back failed: {os.strerror(ctypes.get_errno())}")
        finally:
            os.close(self._original)
            self._original = None

    @staticmethod
    def devices() -> list[str]:
        """The interfaces of the calling thread's network namespace."""
        lines = Path("/proc/thread-self/net/dev").read_text().splitlines()[2:]
        return sorted(line.split(":", 1)[0].strip() for line in lines)

    @staticmethod
    def _ip(*args: str) -> None:
        try:
            done = subprocess.run(
                ["ip", *args], capture_output=True, text=True, timeout=_IP_TIMEOUT_S, check=False
            )
        except OSError as exc:
            raise NetnsError(f"cannot run `ip {' '.join(args)}` (iproute2): {exc}") from exc
        if done.returncode != 0:
            raise NetnsError(f"`ip {' '.join(args)}` failed: {done.stderr.strip()}")
