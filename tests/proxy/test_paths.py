"""Path matching case tables, from the Ingress concept page's examples and the rules around them."""

from __future__ import annotations

import pytest

from kexpose.proxy.routes import PathMatcher, PathType, normalize_path

# (paths in the Ingress, request path, expected winner or None). The first block is the table
# in https://kubernetes.io/docs/concepts/services-networking/ingress/#examples, row by row.
SPEC_EXAMPLES: list[tuple[list[tuple[PathType, str]], str, str | None]] = [
    ([("Prefix", "/")], "/anything/at/all", "Prefix /"),
    ([("Exact", "/foo")], "/foo", "Exact /foo"),
    ([("Exact", "/foo")], "/bar", None),
    ([("Exact", "/foo")], "/foo/", None),
    ([("Exact", "/foo/")], "/foo", None),
    ([("Prefix", "/foo")], "/foo", "Prefix /foo"),
    ([("Prefix", "/foo")], "/foo/", "Prefix /foo"),
    ([("Prefix", "/foo/")], "/foo", "Prefix /foo/"),
    ([("Prefix", "/foo/")], "/foo/", "Prefix /foo/"),
    ([("Prefix", "/aaa/bb")], "/aaa/bbb", None),
    ([("Prefix", "/aaa/bbb")], "/aaa/bbb", "Prefix /aaa/bbb"),
    ([("Prefix", "/aaa/bbb/")], "/aaa/bbb", "Prefix /aaa/bbb/"),
    ([("Prefix", "/aaa/bbb")], "/aaa/bbb/", "Prefix /aaa/bbb"),
    ([("Prefix", "/aaa/bbb")], "/aaa/bbb/ccc", "Prefix /aaa/bbb"),
    ([("Prefix", "/aaa/bbb")], "/aaa/bbbxyz", None),
    ([("Prefix", "/"), ("Prefix", "/aaa")], "/aaa/ccc", "Prefix /aaa"),
    ([("Prefix", "/"), ("Prefix", "/aaa"), ("Prefix", "/aaa/bbb")], "/aaa/bbb", "Prefix /aaa/bbb"),
    ([("Prefix", "/"), ("Prefix", "/aaa"), ("Prefix", "/aaa/bbb")], "/ccc", "Prefix /"),
    ([("Prefix", "/aaa")], "/ccc", None),
    ([("Prefix", "/foo"), ("Exact", "/foo")], "/foo", "Exact /foo"),
]

# Precedence and trailing-slash rules that the examples imply but do not list.
PRECEDENCE: list[tuple[list[tuple[PathType, str]], str, str | None]] = [
    # rule 1 of the semantics notes: segment matches only, longest segment match wins
    ([("Prefix", "/"), ("Prefix", "/aaa"), ("Prefix", "/aaa/bbb")], "/aaa/bbbxyz", "Prefix /aaa"),
    ([("Prefix", "/aaa/bbb/")], "/aaa/bbbccc", None),
    # Exact /foo + Prefix /foo: /foo -> Exact, /foo/ -> Prefix
    ([("Prefix", "/foo"), ("Exact", "/foo")], "/foo/", "Prefix /foo"),
    # the trailing-slash tie: Exact wins (ingress-nginx's "location =")
    ([("Exact", "/foo"), ("Prefix", "/foo/")], "/foo", "Exact /foo"),
    ([("Exact", "/foo"), ("Prefix", "/foo/")], "/foo/", "Prefix /foo/"),
    ([("Exact", "/foo/"), ("Prefix", "/foo")], "/foo/", "Exact /foo/"),
    # matching is case-sensitive
    ([("Prefix", "/Foo")], "/foo", None),
    ([("Exact", "/foo")], "/FOO", None),
    # ImplementationSpecific = nginx character prefix
    ([("ImplementationSpecific", "/icons")], "/iconsets", "ImplementationSpecific /icons"),
    ([("ImplementationSpecific", "")], "/x", "ImplementationSpecific /"),
    # ... which beats a Prefix only when longer than the Prefix's "/p/" location
    (
        [("Prefix", "/aaa"), ("ImplementationSpecific", "/aaa")],
        "/aaa/x",
        "Prefix /aaa",
    ),
    (
        [("Prefix", "/aaa"), ("ImplementationSpecific", "/aaa/b")],
        "/aaa/bcd",
        "ImplementationSpecific /aaa/b",
    ),
    ([("Prefix", "/"), ("ImplementationSpecific", "/a")], "/abc", "ImplementationSpecific /a"),
    ([("Exact", "/aaa"), ("ImplementationSpecific", "/aaa")], "/aaa", "Exact /aaa"),
    # several Prefixes: the longest segment match wins whatever the insertion order
    ([("Prefix", "/a/b/c"), ("Prefix", "/a"), ("Prefix", "/a/b")], "/a/b/x", "Prefix /a/b"),
]


def _matcher(paths: list[tuple[PathType, str]]) -> PathMatcher[str]:
    m: PathMatcher[str] = PathMatcher()
    for path_type, p in paths:
        assert m.add(p, path_type, f"{path_type} {p or '/'}")
    return m


@pytest.mark.parametrize(
    ("paths", "request_path", "expected"),
    SPEC_EXAMPLES + PRECEDENCE,
    ids=[f"{r}<-{p}" for p, r, _ in SPEC_EXAMPLES + PRECEDENCE],
)
def test_match(paths: list[tuple[PathType, str]], request_path: str, expected: str | None) -> None:
    assert _matcher(paths).match(request_path) == expected


def test_duplicate_path_keeps_the_first_and_reports_the_second() -> None:
    m: PathMatcher[str] = PathMatcher()
    assert m.add("/a", "Prefix", "old")
    assert not m.add("/a/", "Prefix", "new")  # the same element-wise path
    assert m.add("/a", "Exact", "exact")  # another type is another path
    assert not m.add("/a", "Exact", "again")
    assert m.add("/a", "ImplementationSpecific", "is")
    assert not m.add("/a", "ImplementationSpecific", "is2")
    assert m.match("/a/x") == "old"


NORMALIZE: list[tuple[str, str | None]] = [
    ("/", "/"),
    ("/a/b", "/a/b"),
    ("/a//b", "/a/b"),
    ("/a/./b", "/a/b"),
    ("/a/b/../c", "/a/c"),
    ("/a/b/..", "/a/"),
    ("/a/b/.", "/a/b/"),
    ("/a/%62", "/a/b"),
    ("/a%2Fb", "/a/b"),  # nginx decodes %2F before matching
    ("/caf%C3%A9", "/café"),
    ("/%zz", None),
    ("/%4", None),
    ("/a%00b", None),
    ("/..", None),
    ("/a/../..", None),
    ("a/b", None),
    ("*", None),
    ("/a/b/", "/a/b/"),
]


@pytest.mark.parametrize(("raw", "expected"), NORMALIZE, ids=[r for r, _ in NORMALIZE])
def test_normalize_path(raw: str, expected: str | None) -> None:
    assert normalize_path(raw) == expected


def test_clean_paths_are_not_copied() -> None:
    raw = "/api/v1/things"
    assert normalize_path(raw) is raw
