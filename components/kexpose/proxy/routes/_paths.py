"""Request paths: normalisation, and matching against Ingress paths by pathType and precedence.

Rules (Ingress concept page, "Path types", "Examples" and "Multiple matches",
https://kubernetes.io/docs/concepts/services-networking/ingress/#path-types):

1. ``Exact`` matches the URL path exactly, case-sensitively; a trailing slash is never ignored
   (``Exact /foo`` matches ``/foo`` but not ``/foo/``).
2. ``Prefix`` matches element by element, the path split on ``/``. ``Prefix /aaa/bbb`` matches
   ``/aaa/bbb``, ``/aaa/bbb/`` and ``/aaa/bbb/ccc`` but not ``/aaa/bbbxyz``; the Prefix path's own
   trailing slash is ignored (``Prefix /aaa/bbb/`` matches ``/aaa/bbb``).
3. ``ImplementationSpecific`` is "up to the IngressClass". We do what ingress-nginx does: a
   plain nginx prefix location, i.e. a *character* prefix (``/icons`` also matches
   ``/iconsets``). An empty path counts as ``/``.
4. "Precedence will be given first to the longest matching path. If two paths are still equally
   matched, precedence will be given to paths with an exact path type over prefix path type."

The precedence among the paths that match one request (``PathMatcher.match`` follows it):

=====================  ===============================  ====================================
rank                   length compared                  why
=====================  ===============================  ====================================
Exact                  always first                     an Exact path that matches *is* the
                                                        request path, so no other path can be
                                                        longer except a Prefix that differs
                                                        only by its ignored trailing slash;
                                                        that tie goes to Exact (rule 4, and
                                                        ingress-nginx's ``location =``).
Prefix                 the path without trailing ``/``  element-wise, so ``/foo`` and ``/foo/``
                                                        are the same path; the older Ingress
                                                        keeps it.
ImplementationSpecific its characters                   beats a Prefix only when strictly
                                                        longer than the Prefix's nginx
                                                        location (``/foo`` -> ``/foo/``), since
                                                        nginx picks the longest prefix
                                                        location.
=====================  ===============================  ====================================

Request paths are normalised before matching, as nginx does (its locations see the normalised
URI while the upstream gets the original request target): ``%XX`` escapes decoded, ``//``
merged, ``.`` and ``..`` segments removed (RFC 3986 §5.2.4). A ``..`` above the root, a bad
escape or an escaped NUL makes the request invalid (400).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final, Generic, Literal, TypeVar, get_args

__all__ = ["PATH_TYPES", "PathMatcher", "PathType", "normalize_path", "prefix_key"]

PathType = Literal["Exact", "Prefix", "ImplementationSpecific"]
PATH_TYPES: Final[tuple[PathType, ...]] = get_args(PathType)

_HEX: Final = frozenset("0123456789abcdefABCDEF")

T = TypeVar("T")


def prefix_key(path: str) -> str:
    """The element-wise identity of a Prefix path: trailing slashes dropped (``/`` -> ``""``)."""
    return path.rstrip("/")


def normalize_path(raw: str) -> str | None:
    """The path a request is matched by, or None when the request target is invalid.

    ``raw`` is the path part of an origin-form request target (RFC 9112 §3.2.1), without the
    query. Already-clean paths (the common case) are returned unchanged without copying.
    """
    if not raw.startswith("/"):
        return None
    if "%" not in raw and "//" not in raw and "/." not in raw:
        return raw
    if "%" in raw:
        decoded = _percent_decode(raw)
        if decoded is None:
            return None
        raw = decoded
    return _remove_dot_segments(raw)


def _percent_decode(raw: str) -> str | None:
    out = bytearray()
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        if c == "%":
            pair = raw[i + 1 : i + 3]
            if len(pair) != 2 or not (pair[0] in _HEX and pair[1] in _HEX):
                return None
            byte = int(pair, 16)
            if byte == 0:
                return None
            out.append(byte)
            i += 3
        else:
            out += c.encode("utf-8", "surrogateescape")
            i += 1
    # Ingress paths are text; bytes that are not UTF-8 can never equal one, but must not fail.
    return out.decode("utf-8", "surrogateescape")


def _remove_dot_segments(path: str) -> str | None:
    trailing = path.endswith(("/", "/.", "/.."))
    out: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if not out:
                return None  # above the root: nginx answers 400, so do we
            out.pop()
            continue
        out.append(segment)
    result = "/" + "/".join(out)
    if trailing and out:
        result += "/"
    return result


@dataclass(slots=True)
class PathMatcher(Generic[T]):
    """The paths of one virtual host. Filled once with :meth:`add`, then only read.

    ``add`` keeps the first value for a path (callers add Ingresses oldest first, so the
    oldest wins a duplicate, as in ingress-nginx).
    """

    _exact: dict[str, T] = field(default_factory=dict)
    _prefix: dict[str, tuple[int, T]] = field(default_factory=dict)
    _specific: list[tuple[str, T]] = field(default_factory=list)
    _seen_specific: set[str] = field(default_factory=set)

    def add(self, path: str, path_type: PathType, value: T) -> bool:
        """Add a path; False when an earlier one already holds it (the caller reports that)."""
        if path_type == "Exact":
            if path in self._exact:
                return False
            self._exact[path] = value
        elif path_type == "Prefix":
            key = prefix_key(path)
            if key in self._prefix:
                return False
            # Compared with ImplementationSpecific paths as nginx compares locations: a Prefix
            # ``/foo`` is the location ``/foo/``, one character longer than its key.
            self._prefix[key] = (len(key) + 1, value)
        else:
            path = path or "/"
            if path in self._seen_specific:
                return False
            self._seen_specific.add(path)
            self._specific.append((path, value))
            # Longest first, so the first character-prefix hit is the longest one.
            self._specific.sort(key=lambda item: -len(item[0]))
        return True

    def __bool__(self) -> bool:
        return bool(self._exact or self._prefix or self._specific)

    def entries(self) -> Iterable[tuple[str, PathType, T]]:
        for path, value in self._exact.items():
            yield path, "Exact", value
        for key, (_, value) in self._prefix.items():
            yield key or "/", "Prefix", value
        for path, value in self._specific:
            yield path, "ImplementationSpecific", value

    def match(self, path: str) -> T | None:
        """The value of the highest-precedence path matching ``path`` (normalised), or None."""
        hit = self._exact.get(path)
        if hit is not None:
            return hit
        prefixes = self._prefix
        best_len = -1
        best: T | None = None
        if prefixes:
            # Candidates are the request path cut at each '/', longest first; the first one
            # present is the longest element-wise match (rule 2). A trailing slash on the
            # request is an empty last element and matches like the path without it.
            candidate = path[:-1] if path.endswith("/") else path
            while True:
                found = prefixes.get(candidate)
                if found is not None:
                    best_len, best = found
                    break
                if not candidate:
                    break
                candidate = candidate[: candidate.rfind("/")]
        for spec, value in self._specific:
            if len(spec) <= best_len:
                break  # equal length: Prefix ranks first (table above)
            if path.startswith(spec):
                return value
        return best
