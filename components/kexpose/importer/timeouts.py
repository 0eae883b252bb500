"""An Ingress's custom timeouts as the HTTPRoute timeouts of its paths (``api: gateway``).

ingress-nginx ("Custom timeouts" in the annotations guide; the ConfigMap guide's
``proxy-connect-timeout``, ``proxy-send-timeout``, ``proxy-read-timeout``) takes whole seconds
and sets nginx's ``proxy_connect_timeout`` (establishing the connection to the backend),
``proxy_send_timeout`` and ``proxy_read_timeout``, the last two "only between two successive
write/read operations, not for the transmission of the whole request/response". A value that is
not a whole number is ignored (the default applies: 5 s, 60 s, 60 s).

The Gateway API has no gap timeouts: ``timeouts.request`` bounds the whole exchange (GEP-1742).
The mapping is ingress2gateway's (its common emitter: ``request`` = 10 x the largest of the
three): an exchange whose every gap ingress-nginx allowed is cut only after ten times that
gap, and a backend that stops answering gets its 504 from kexpose-proxy's global read timeout
(60 s between reads, ingress-nginx's default) or from the route's timeout, whichever is first.
So the timeouts are always *approximated*, and the report says how for each Ingress.
"""

from __future__ import annotations

from typing import Final

from kexpose.importer.catalogue import NGINX_PREFIX, doc_url
from kexpose.importer.findings import Findings
from kexpose.importer.source import SourceIngress

__all__ = ["MULTIPLIER", "TIMEOUT_KEYS", "gateway_duration", "read_timeouts"]

#: ingress-nginx's defaults (ConfigMap guide), which the annotations override per Ingress.
_DEFAULTS: Final = {"proxy-connect-timeout": 5, "proxy-send-timeout": 60, "proxy-read-timeout": 60}
TIMEOUT_KEYS: Final = frozenset(_DEFAULTS)
#: ingress2gateway's factor from the largest gap timeout to a whole-request timeout.
MULTIPLIER: Final = 10
#: kexpose-proxy's global timeouts (``kexpose.proxy.settings.Timeouts``): connecting to an
#: endpoint, and the longest gap between two reads from it. No route setting raises them.
_PROXY_CONNECT: Final = 5
_PROXY_READ: Final = 60
_DOC: Final = doc_url("custom-timeouts")


def gateway_duration(seconds: int) -> str:
    """Whole seconds as a Gateway API duration (each number at most 5 digits)."""
    if seconds <= 99_999:
        return f"{seconds}s"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return (
        f"{min(hours, 99_999)}h" + (f"{minutes}m" if minutes else "") + (f"{secs}s" if secs else "")
    )


def read_timeouts(ing: SourceIngress, findings: Findings, *, api: str) -> dict[str, str] | None:
    """The ``timeouts`` of every path of ``ing`` (stack config), or None; one report line per
    annotation."""
    a = {k.removeprefix(NGINX_PREFIX): v.strip() for k, v in ing.annotations.items()}
    present = sorted(k for k in a if k in TIMEOUT_KEYS)
    if not present:
        return None

    def add(key: str, verdict: str, detail: str, todo: str = "") -> None:
        findings.add(ing, f"{NGINX_PREFIX}{key}", verdict, detail, todo=todo, doc=_DOC)  # type: ignore[arg-type]

    if api != "gateway":
        for key in present:
            add(
                key,
                "not-convertible",
                "needs HTTPRoute timeouts, which the model renders with controller api: gateway "
                "only (kexpose-proxy reads no timeout annotation on an Ingress); its global "
                f"timeouts apply: {_PROXY_CONNECT} s to connect, {_PROXY_READ} s between reads "
                "(ingress-nginx's defaults)",
                "import with --to gateway, or check that the global timeouts suit the app",
            )
        return None
    given: dict[str, int] = {}
    for key in present:
        text = a[key]
        if text.isdigit() and int(text) > 0:
            given[key] = int(text)
        else:
            add(
                key,
                "converted",
                f"{text!r} is not a whole number of seconds above 0: ingress-nginx ignores it "
                f"and keeps its default ({_DEFAULTS[key]} s), as kexpose-proxy's global "
                "timeouts do",
                "drop it, or give whole seconds",
            )
    if not given:
        return None
    largest = max(given.values())
    request = gateway_duration(MULTIPLIER * largest)
    # A backend that accepts the request and then sends nothing: ingress-nginx answers 504
    # after its read timeout; kexpose-proxy after the route's timeout or its own read timeout.
    nginx_silent = given.get("proxy-read-timeout", _DEFAULTS["proxy-read-timeout"])
    kexpose_silent = min(MULTIPLIER * largest, _PROXY_READ)
    for key, seconds in given.items():
        caveat = ""
        if key == "proxy-connect-timeout" and seconds > _PROXY_CONNECT:
            caveat = (
                f"; kexpose-proxy connects with its global {_PROXY_CONNECT} s timeout (then "
                "tries the next endpoint)"
            )
        add(
            key,
            "approximated",
            f"{seconds} s between two operations becomes HTTPRoute timeouts.request {request} "
            f"for the whole exchange ({MULTIPLIER} x the largest of the Ingress's timeouts, as "
            "ingress2gateway maps them): a response still streaming after it is cut, which "
            "ingress-nginx never did while data flowed; a backend that stops answering gets "
            f"504 after {kexpose_silent} s (the route's timeout, or kexpose-proxy's global "
            f"{_PROXY_READ} s read timeout), after {nginx_silent} s from ingress-nginx{caveat}",
            "check the slowest legitimate response of the app against it",
        )
    return {"request": request}
