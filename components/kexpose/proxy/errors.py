"""The proxy's errors, under the project's one root.

Only the kinds a caller handles differently get a class: the CLI maps ``ProxyConfigError``
to exit code 2; the control plane retries ``KubeError`` and relists on ``WatchGoneError``.
"""

from __future__ import annotations

from kexpose.errors import KexposeError

__all__ = ["KubeError", "ProxyConfigError", "ProxyError", "WatchGoneError"]


class ProxyError(KexposeError):
    """Root of the proxy's errors."""


class ProxyConfigError(ProxyError):
    """A flag, a file or a certificate given to the proxy cannot be used (exit code 2)."""


class KubeError(ProxyError):
    """The Kubernetes API failed a request; ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class WatchGoneError(KubeError):
    """410 Gone: the watch's resourceVersion is too old; list again, then watch from there."""

    def __init__(self, message: str = "resourceVersion too old (410 Gone)") -> None:
        super().__init__(message, status=410)
