"""Every timeout and limit of the proxy, each a named setting that says why it has its value.

Defaults follow ingress-nginx's (and so nginx's) defaults unless a reason is given, so that
applications behave the same behind either controller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network
from typing import Literal

__all__ = [
    "Balance",
    "ControlSettings",
    "DataPlaneSettings",
    "Http2Limits",
    "Limits",
    "Timeouts",
    "WorkerSettings",
]

Balance = Literal["round_robin", "least_request"]


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds."""

    header: float = 60.0
    """A client must send a complete request head this long after starting it (or after
    connecting): nginx's ``client_header_timeout``. It is the slowloris defence; on expiry the
    client gets 408 and the connection is closed."""

    client_body: float = 60.0
    """Longest gap between two reads of a request body (nginx ``client_body_timeout``)."""

    keepalive: float = 75.0
    """An idle client keep-alive connection is closed after this (nginx ``keepalive_timeout``)."""

    upstream_connect: float = 5.0
    """Connecting to an endpoint (ingress-nginx ``proxy-connect-timeout``); on expiry the next
    endpoint is tried, then 504."""

    upstream_read: float = 60.0
    """Longest gap between two reads from the endpoint while a response is due or streaming
    (ingress-nginx ``proxy-read-timeout``): 504 before the response starts, a cut connection
    after."""

    upstream_idle: float = 4.0
    """An idle pooled upstream connection is closed after this. Shorter than the 5 s
    keep-alive timeout of Node.js's HTTP server, the shortest common backend default, so that we
    close first and rarely reuse a connection the backend is closing (ingress-nginx uses 60 s
    and relies on retries)."""

    tunnel_idle: float = 3600.0
    """An upgraded (WebSocket) connection with no traffic either way is closed after this. Longer
    than nginx's 60 s ``proxy_read_timeout`` because WebSocket apps often ping less often."""

    tls_handshake: float = 10.0
    """A TLS handshake must complete within this; a stalled handshake holds a socket and memory
    like a slowloris head does."""

    drain: float = 25.0
    """After SIGTERM, in-flight requests get this long to finish before connections are cut.
    Below Kubernetes' default 30 s ``terminationGracePeriodSeconds``, so we exit before SIGKILL."""

    shutdown_delay: float = 0.0
    """After SIGTERM, keep accepting for this long before draining, so that Service endpoints
    can be updated first (like a ``preStop`` sleep). 0 by default; in-cluster deployments that
    do not use a preStop hook should set a few seconds."""


@dataclass(frozen=True, slots=True)
class Limits:
    max_head_bytes: int = 32 * 1024
    """Request line plus headers. Larger heads get 431 (RFC 6585 §5); nginx's default buffers
    (4 x 8 KiB) allow about this much."""

    max_response_head_bytes: int = 64 * 1024
    """An endpoint's response head beyond this is a bad gateway (502)."""

    high_water: int = 64 * 1024
    """Bytes buffered toward a slow peer before we stop reading from the other side (the same
    64 KiB as uvicorn's ``HIGH_WATER_LIMIT``); bodies stream through, never wholly buffered."""

    upstream_keepalive: int = 320
    """Idle connections kept per endpoint (ingress-nginx ``upstream-keepalive-connections``)."""

    upstream_keepalive_requests: int = 10_000
    """Requests per upstream connection before it is closed and replaced (ingress-nginx
    ``upstream-keepalive-requests``), so that long-lived connections do not pin memory."""

    connect_attempts: int = 3
    """Endpoints tried when connecting fails (ingress-nginx ``proxy-next-upstream-tries``)."""


@dataclass(frozen=True, slots=True)
class Http2Limits:
    """Bounds on what one HTTP/2 client connection can make the proxy do (RFC 9113 §10.5).
    Past a budget the connection is closed with GOAWAY ENHANCE_YOUR_CALM. Budgets are token
    buckets: a burst, refilled at a steady rate, so that long-lived connections with keep-alive
    PINGs or the odd cancelled call never run dry, while floods do at once."""

    max_concurrent_streams: int = 128
    """SETTINGS_MAX_CONCURRENT_STREAMS we advertise; a client opening more is a protocol error
    (nginx: ``http2_max_concurrent_streams`` 128)."""

    resets_burst: int = 200
    """Streams the client may cancel (RST_STREAM) in a burst: the rapid reset attack
    (CVE-2023-44487) opens and cancels streams to start backend work without limit."""

    resets_per_second: float = 50.0

    control_burst: int = 100
    """PING and SETTINGS frames in a burst; each makes us answer (an ACK), so a flood of them
    is work and output we did not choose (RFC 9113 §10.5)."""

    control_per_second: float = 10.0


@dataclass(frozen=True, slots=True)
class DataPlaneSettings:
    timeouts: Timeouts = field(default_factory=Timeouts)
    limits: Limits = field(default_factory=Limits)
    http2: Http2Limits = field(default_factory=Http2Limits)
    balance: Balance = "round_robin"
    ssl_redirect: bool = True
    """Answer plain HTTP for hosts with TLS with a 308 to HTTPS (ingress-nginx ``ssl-redirect``)."""
    https_redirect_port: int = 443
    """The port redirects point at: the Service's public HTTPS port, not the container's."""
    access_log: bool = True
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()
    """``--trusted-proxies``: peers whose ``X-Forwarded-For`` names the client for
    ``kexpose.dev/allow-source-ranges`` (edge-auth.md). Empty, so a client's own header is
    never believed unless the operator says which proxies front this one."""
    sweep_interval: float = 0.5
    """How often deadlines are checked. Timeouts fire up to this late; checking in one periodic
    pass is far cheaper per request than a timer per connection."""


@dataclass(frozen=True, slots=True)
class ControlSettings:
    """The control plane's timing (kopf ``WatchingSettings`` style)."""

    watch_timeout: int = 290
    """Server-side ``timeoutSeconds`` of one watch request. The API server ends watches after
    a random 5-10 min anyway; asking for less than 5 min makes the end ours and predictable."""

    backoff_initial: float = 0.5
    """First wait after a failed list or watch."""

    backoff_max: float = 30.0
    """Longest wait between retries; doubling from 0.5 s reaches it in 6 failures."""

    debounce: float = 0.1
    """Changes arriving within this window are folded into one table rebuild (a rollout moves
    many EndpointSlices at once)."""

    status_resync: float = 60.0
    """How often the leader re-checks every owned Ingress's status, besides reacting to changes
    (another writer may have overwritten it)."""

    lease_duration: float = 15.0
    """A leader that has not renewed for this long is presumed dead (client-go's default)."""

    lease_renew_deadline: float = 10.0
    """A leader that could not renew for this long steps down, before others may take over."""

    lease_retry_period: float = 2.0
    """How often leaders renew and followers try to acquire (client-go's default)."""


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """How the ``--workers`` supervisor replaces a worker that died (see ``workers``)."""

    restart_backoff_initial: float = 0.1
    """Seconds before a dead worker is restarted, doubled for each other death within
    ``restart_window``. The first restart is almost at once: the pod serves with one worker
    fewer until then, and a one-off death (an OOM kill, a rare crash) needs no pause."""

    restart_backoff_max: float = 10.0
    """The longest wait before a restart, so that a worker that keeps dying does not spin the
    CPU the surviving workers serve with."""

    restart_limit: int = 5
    """Restarts allowed within ``restart_window``; one more death in the window ends the pod
    (exit 1) instead. A bug that kills workers at startup, or a request that kills whichever
    worker receives it, then shows up where operators look (the container's restart count,
    ``CrashLoopBackOff``) rather than being papered over by endless restarts inside a pod that
    looks healthy. Five is systemd's default ``StartLimitBurst``."""

    restart_window: float = 60.0
    """Seconds over which deaths are counted against ``restart_limit`` and the backoff; a worker
    death older than this is forgiven."""
