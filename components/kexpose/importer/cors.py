"""An Ingress's CORS annotations as the CORS filter of its paths (``api: gateway``).

ingress-nginx ("Enable CORS" in the annotations guide; internal/ingress/annotations/cors and the
``CORS`` block of nginx.tmpl) with ``enable-cors: "true"``:

- ``cors-allow-origin`` (default ``*``): comma-separated ``scheme://host[:port]``, a host's first
  label may be ``*`` (one label); an entry it cannot parse is skipped. With ``*`` every response
  gets ``Access-Control-Allow-Origin: *``; otherwise a request whose ``Origin`` matches
  (case-insensitively) gets its origin echoed.
- ``cors-allow-methods`` (default ``GET, PUT, POST, DELETE, PATCH, OPTIONS``),
  ``cors-allow-headers`` (default ``DNT,Keep-Alive,User-Agent,X-Requested-With,
  If-Modified-Since,Cache-Control,Content-Type,Range,Authorization``), ``cors-expose-headers``
  (default none), ``cors-allow-credentials`` (default ``true``), ``cors-max-age`` (default
  1728000); a value that does not parse falls back to the default.
- An ``OPTIONS`` request from an allowed origin is answered 204 with the headers, in nginx's
  rewrite phase, before auth and source ranges (access phase); other requests get the same
  headers added to their response.

The Gateway API's HTTPCORSFilter says the same in its own terms; kexpose-proxy answers a
preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) with 200 and the
allow headers, echoes the origin (never ``*``), and adds ``Access-Control-Allow-Origin``,
``-Credentials`` and ``-Expose-Headers`` to actual responses (the ones browsers read there).
It answers the preflight before edge auth, as nginx does (a browser sends it without
credentials: Fetch standard, "CORS-preflight fetch"), but after the source-range allow-list
(edge-auth.md's order), where nginx answers it before that too. Those differences make
``enable-cors`` *approximated*; the report says how.
"""

from __future__ import annotations

import re
from typing import Any, Final, get_args

from pydantic import TypeAdapter, ValidationError

from kexpose.importer.annotations import flag
from kexpose.importer.catalogue import NGINX_PREFIX, doc_url
from kexpose.importer.findings import Findings
from kexpose.importer.source import SourceIngress
from kexpose.model.route import CorsOrigin, HttpMethod

__all__ = ["CORS_KEYS", "DEFAULT_HEADERS", "DEFAULT_MAX_AGE", "DEFAULT_METHODS", "read_cors"]

CORS_KEYS: Final = frozenset(
    {
        "enable-cors",
        "cors-allow-origin",
        "cors-allow-methods",
        "cors-allow-headers",
        "cors-expose-headers",
        "cors-allow-credentials",
        "cors-max-age",
    }
)
DEFAULT_METHODS: Final = ("GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS")
DEFAULT_HEADERS: Final = (
    "DNT",
    "Keep-Alive",
    "User-Agent",
    "X-Requested-With",
    "If-Modified-Since",
    "Cache-Control",
    "Content-Type",
    "Range",
    "Authorization",
)
DEFAULT_MAX_AGE: Final = 1_728_000
_DOC: Final = doc_url("enable-cors")
# ingress-nginx's validators (internal/ingress/annotations/cors/main.go, parser/validators.go).
_NGINX_ORIGIN: Final = re.compile(r"^([a-z]+://(\*\.)?[A-Za-z0-9\-.]*(:\d+)?|\*|null)?$")
_NGINX_METHODS: Final = re.compile(r"^([A-Za-z]+,?\s?)+$")
_NGINX_HEADERS: Final = re.compile(r"^[A-Za-z0-9-_, ]*$")
_NGINX_EXPOSE: Final = re.compile(r"^(([A-Za-z0-9\-\_]+|\*),?\s?)+$")
_METHODS: Final = frozenset(get_args(HttpMethod))
_ORIGIN_CHECK: Final = TypeAdapter(CorsOrigin)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _unique(values: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for v in values:
        if v.lower() not in seen:
            seen.add(v.lower())
            out.append(v)
    return out


class _Reader:
    def __init__(self, ing: SourceIngress, findings: Findings, a: dict[str, str]) -> None:
        self.ing, self.findings, self.a = ing, findings, a

    def add(self, key: str, verdict: str, detail: str, todo: str = "") -> None:
        self.findings.add(
            self.ing,
            f"{NGINX_PREFIX}{key}",
            verdict,  # type: ignore[arg-type]
            detail,
            todo=todo,
            doc=_DOC,
        )

    def origins(self) -> list[str]:
        text = self.a.get("cors-allow-origin", "")
        if not text:
            return ["*"]
        kept: list[str] = []
        lost: list[str] = []
        for origin in _split(text):
            if origin == "*":
                kept, lost = ["*"], []
                break
            if not _NGINX_ORIGIN.match(origin):
                lost.append(f"{origin!r} (ingress-nginx skips it too)")
                continue
            try:
                _ORIGIN_CHECK.validate_python(origin.rstrip("/"))
            except ValidationError:
                lost.append(f"{origin!r} (not an http(s) origin of the Gateway API)")
                continue
            kept.append(origin.rstrip("/"))
        kept = _unique(kept)
        wild = [o for o in kept if "://*." in o]
        detail = "allowOrigins " + ", ".join(kept) if kept else "no origin left"
        if lost:
            detail += "; left out: " + ", ".join(lost) + ", so browsers there are refused"
        if wild:
            detail += (
                f"; {', '.join(wild)} also allows deeper subdomains (ingress-nginx's '*' is one "
                "label)"
            )
        self.add(
            "cors-allow-origin",
            "approximated" if lost or wild else "converted",
            detail,
            "list the origins as http(s)://host[:port]" if lost else "",
        )
        return kept

    def methods(self) -> list[str]:
        text = self.a.get("cors-allow-methods", "")
        if not text:
            return list(DEFAULT_METHODS)
        if not _NGINX_METHODS.match(text):
            self.add(
                "cors-allow-methods",
                "converted",
                f"{text!r} is not a list of methods; ingress-nginx uses its default "
                f"({', '.join(DEFAULT_METHODS)}), so does the import",
            )
            return list(DEFAULT_METHODS)
        asked = _unique([m.upper() for m in _split(text)])
        kept = [m for m in asked if m in _METHODS]
        lost = [m for m in asked if m not in _METHODS]
        self.add(
            "cors-allow-methods",
            "approximated" if lost else "converted",
            "allowMethods "
            + ", ".join(kept)
            + (
                f"; left out (not an HTTP method of the Gateway API): {', '.join(lost)}"
                if lost
                else ""
            ),
        )
        return kept

    def headers(self) -> list[str]:
        text = self.a.get("cors-allow-headers", "")
        if not text:
            return list(DEFAULT_HEADERS)
        if not _NGINX_HEADERS.match(text) or not _split(text):
            self.add(
                "cors-allow-headers",
                "converted",
                f"{text!r} is not a list of header names; ingress-nginx uses its default, so "
                "does the import",
            )
            return list(DEFAULT_HEADERS)
        kept = _unique(_split(text))
        self.add("cors-allow-headers", "converted", "allowHeaders " + ", ".join(kept))
        return kept

    def expose(self) -> list[str]:
        text = self.a.get("cors-expose-headers", "")
        if not text:
            return []
        if not _NGINX_EXPOSE.match(text):
            self.add(
                "cors-expose-headers",
                "converted",
                f"{text!r} is not a list of header names; ingress-nginx exposes none, nor "
                "does the import",
            )
            return []
        kept = _unique(_split(text))
        self.add("cors-expose-headers", "converted", "exposeHeaders " + ", ".join(kept))
        return kept

    def credentials(self) -> bool:
        text = self.a.get("cors-allow-credentials", "")
        on = flag(text) if text else True
        if text:
            self.add(
                "cors-allow-credentials",
                "converted",
                f"allowCredentials {str(on is not False).lower()}"
                + ("" if on is not None else f" ({text!r} is not a boolean: the default)"),
            )
        return on is not False

    def max_age(self) -> int:
        text = self.a.get("cors-max-age", "")
        if not text:
            return DEFAULT_MAX_AGE
        if not re.fullmatch(r"-?[0-9]{1,10}", text):
            self.add(
                "cors-max-age",
                "converted",
                f"{text!r} is not a number; ingress-nginx uses its default {DEFAULT_MAX_AGE}, so "
                "does the import",
            )
            return DEFAULT_MAX_AGE
        seconds = int(text)
        if seconds < 1:
            self.add(
                "cors-max-age",
                "approximated",
                f"{seconds} (no caching of preflights) becomes 1 s, the least the Gateway API's "
                "maxAge takes",
            )
            return 1
        seconds = min(seconds, 2**31 - 1)
        self.add("cors-max-age", "converted", f"maxAge {seconds}")
        return seconds


def read_cors(
    ing: SourceIngress,
    findings: Findings,
    *,
    api: str,
    authenticated: bool,
    restricted: bool = False,
) -> dict[str, Any] | None:
    """The ``filters.cors`` of every path of ``ing`` (stack config), or None; one report line
    per annotation. ``authenticated``: the Ingress's auth is converted too; ``restricted``: so
    are its source ranges."""
    a = {k.removeprefix(NGINX_PREFIX): v.strip() for k, v in ing.annotations.items()}
    present = sorted(k for k in a if k in CORS_KEYS)
    if not present:
        return None
    r = _Reader(ing, findings, a)
    if flag(a.get("enable-cors", "")) is not True:
        for key in present:
            r.add(
                key,
                "converted",
                "CORS is off (enable-cors is not 'true'): ingress-nginx ignores the cors-* "
                "annotations, and so does the import",
            )
        return None
    if api != "gateway":
        for key in present:
            r.add(
                key,
                "not-convertible",
                "needs the CORS filter (HTTPRoute), which the model renders with controller api: "
                "gateway only (kexpose-proxy reads no CORS annotation on an Ingress); without it "
                "browsers refuse the app's cross-origin answers",
                "import with --to gateway, or answer CORS in the app",
            )
        return None
    origins = r.origins()
    cors: dict[str, Any] = {
        "allowOrigins": origins,
        "allowMethods": r.methods(),
        "allowHeaders": r.headers(),
    }
    expose = r.expose()
    if expose:
        cors["exposeHeaders"] = expose
    cors["allowCredentials"] = r.credentials()
    cors["maxAge"] = r.max_age()
    if not origins:
        r.add(
            "enable-cors",
            "converted",
            "no allowed origin is left, so ingress-nginx never answers CORS; no CORS filter",
        )
        return None
    how = (
        "the CORS filter of every path: kexpose-proxy answers a preflight (OPTIONS with Origin "
        "and Access-Control-Request-Method) 200 where ingress-nginx answers 204, and passes "
        "other OPTIONS requests to the backend; it echoes the request's Origin"
        + (" where ingress-nginx sends '*'" if origins == ["*"] else "")
        + " and sends Allow-Methods, -Headers and Max-Age on preflights only (browsers read "
        "them there only)"
    )
    if authenticated:
        # Fetch standard, CORS-preflight fetch: a preflight never carries credentials, so both
        # answer it before auth (nginx's rewrite phase; kexpose-proxy's CORS filter).
        how += (
            "; a preflight is answered before the Ingress's auth, as by ingress-nginx (browsers "
            "send it without credentials); the actual request needs credentials with both, and "
            "so does an OPTIONS without Access-Control-Request-Method, which ingress-nginx "
            "answers 204 before auth"
        )
    if restricted:
        how += (
            "; a client outside the source ranges gets 403 on its preflight, where "
            "ingress-nginx answered 204 before checking them (its actual request gets 403 from "
            "both)"
        )
    r.add("enable-cors", "approximated", how)
    return cors
