"""HTTPRoute matches: what a request must look like to take a rule, and which rule wins.

Semantics (``HTTPRouteMatch``, ``HTTPPathMatch``, ``HTTPHeaderMatch``, ``HTTPQueryParamMatch``,
gateway-api v1.6.3 ``apis/v1/httproute_types.go``):

- A match is a conjunction: path AND method AND every header AND every query parameter. A rule
  with several matches takes a request that satisfies any of them; a rule with none matches
  ``PathPrefix /``.
- ``Exact`` compares the whole path; ``PathPrefix`` compares element by element, the value's own
  trailing slash ignored (``/foo`` matches ``/foo``, ``/foo/`` and ``/foo/bar``, not ``/foobar``),
  exactly as Ingress ``Prefix``; ``RegularExpression`` must match the whole path (Python ``re``
  syntax, a superset of RE2's for what routes use; "implementation-specific" per the spec).
- Header names are case-insensitive, values case-sensitive; a header repeated in the request is
  matched on its values joined with ``,`` (RFC 9110 §5.3). Query parameter names and values are
  case-sensitive; with a parameter repeated, the first value counts. Of several header (or
  query) matches naming the same header, only the first counts.

Precedence across every rule of every route on one host ("HTTPRouteRule.matches"):

======  =============================================================================
1       an ``Exact`` path match (then a ``RegularExpression``: implementation-specific;
        like Envoy Gateway we rank it between Exact and PathPrefix, longer first)
2       a ``PathPrefix`` match with more characters
3       a method match
4       more header matches
5       more query parameter matches
6       the older route (creationTimestamp), then ``namespace/name`` in alphabetical order
7       within a route, the first rule in list order (then the first match of the rule)
======  =============================================================================
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal, get_args

from kexpose.proxy.routes._paths import prefix_key

__all__ = [
    "HEADER_MATCH_TYPES",
    "PATH_MATCH_TYPES",
    "HeaderMatch",
    "MatchError",
    "PathMatch",
    "QueryMatch",
    "RequestMatch",
    "RequestView",
    "ValueMatch",
    "ValueMatchType",
    "compile_regex",
]

PathMatchType = Literal["Exact", "PathPrefix", "RegularExpression"]
PATH_MATCH_TYPES: Final[tuple[PathMatchType, ...]] = get_args(PathMatchType)
ValueMatchType = Literal["Exact", "RegularExpression"]
HEADER_MATCH_TYPES: Final[tuple[ValueMatchType, ...]] = get_args(ValueMatchType)

# A pattern longer than this is refused: routes are written by people, and a huge regular
# expression is a way to make every request expensive.
_MAX_REGEX: Final = 1024


class MatchError(ValueError):
    """A match a route cannot use (bad regular expression, bad type); the message says why."""


def compile_regex(pattern: str) -> re.Pattern[str]:
    if len(pattern) > _MAX_REGEX:
        raise MatchError(f"regular expression longer than {_MAX_REGEX} characters")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise MatchError(f"invalid regular expression {pattern!r}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class RequestView:
    """What matching reads of a request: method, normalised path, headers, query parameters."""

    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    """Lower-case name -> the values of that header joined with ``,``."""
    query: Mapping[str, str] = field(default_factory=dict)
    """Name -> the first value of that parameter (percent-decoded)."""


@dataclass(frozen=True, slots=True)
class PathMatch:
    type: PathMatchType = "PathPrefix"
    value: str = "/"
    regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def make(cls, type_: PathMatchType, value: str) -> PathMatch:
        if type_ == "RegularExpression":
            return cls(type_, value, compile_regex(value))
        if not value.startswith("/"):
            raise MatchError(f"path {value!r} must start with '/'")
        return cls(type_, value)

    def matches(self, path: str) -> bool:
        if self.type == "Exact":
            return path == self.value
        if self.type == "PathPrefix":
            key = prefix_key(self.value)
            if not key:
                return True  # "/" matches everything
            return path == key or path.startswith(key + "/")
        assert self.regex is not None
        return self.regex.fullmatch(path) is not None

    def rank(self) -> tuple[int, int]:
        """Precedence rows 1 and 2 of the module table (lower sorts first)."""
        order = {"Exact": 0, "RegularExpression": 1, "PathPrefix": 2}[self.type]
        return (order, -len(self.value))


@dataclass(frozen=True, slots=True)
class ValueMatch:
    """One header match (``name`` lower case) or query parameter match: the request's value
    for ``name`` equals ``value``, or fully matches it as a regular expression."""

    name: str
    value: str
    type: ValueMatchType = "Exact"
    regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def matches(self, values: Mapping[str, str]) -> bool:
        got = values.get(self.name)
        if got is None:
            return False
        if self.regex is not None:
            return self.regex.fullmatch(got) is not None
        return got == self.value


#: The two uses of ``ValueMatch``, named as the spec names them.
HeaderMatch = ValueMatch
QueryMatch = ValueMatch


def _first_per_name(items: Sequence[ValueMatch], fold: bool) -> tuple[int, ...]:
    """Indices of the items to keep: the first of each name (case-folded for headers)."""
    seen: set[str] = set()
    keep = []
    for i, item in enumerate(items):
        key = item.name.lower() if fold else item.name
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return tuple(keep)


@dataclass(frozen=True, slots=True)
class RequestMatch:
    path: PathMatch = field(default_factory=PathMatch)
    method: str | None = None
    headers: tuple[HeaderMatch, ...] = ()
    query: tuple[QueryMatch, ...] = ()

    @classmethod
    def make(
        cls,
        path: PathMatch,
        *,
        method: str | None = None,
        headers: Sequence[HeaderMatch] = (),
        query: Sequence[QueryMatch] = (),
    ) -> RequestMatch:
        """A match, keeping only the first header (query) match of each name (the spec)."""
        kept_headers = tuple(headers[i] for i in _first_per_name(headers, True))
        kept_query = tuple(query[i] for i in _first_per_name(query, False))
        return cls(path, method, kept_headers, kept_query)

    @property
    def needs_headers(self) -> bool:
        return bool(self.headers)

    @property
    def needs_query(self) -> bool:
        return bool(self.query)

    def matches(self, request: RequestView) -> bool:
        if self.method is not None and request.method != self.method:
            return False
        if not self.path.matches(request.path):
            return False
        for header in self.headers:
            if not header.matches(request.headers):
                return False
        return all(q.matches(request.query) for q in self.query)

    def rank(self) -> tuple[int, int, int, int, int]:
        """Precedence rows 1-5 of the module table (lower sorts first)."""
        kind, length = self.path.rank()
        return (kind, length, 0 if self.method else 1, -len(self.headers), -len(self.query))
