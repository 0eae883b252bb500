"""Malformed objects (issue 14, defect 3): each is rejected alone, named with its field, and
every other object still routes; the table builder never sees one."""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.proxy import process
from tests.proxy.backends import Client
from tests.proxy.conftest import backend_objects
from tests.proxy.objects import (
    app,
    ingress,
    ingress_class,
    path,
    rule,
    service,
    tls,
    tls_secret,
)

from kexpose.certs import self_signed
from kexpose.defaults import CONTROLLER_NAME
from kexpose.proxy.control import static as static_module
from kexpose.proxy.control.static import StaticSource
from kexpose.proxy.routes import Claim, ObjectSet, RouteTable, build_table, object_problems

CLAIM = Claim(CONTROLLER_NAME, ingress_class="kexpose")

GOOD = [
    ingress_class(),
    ingress("good", rule("good.example.com", path("/", "good"))),
    *app("good", "10.0.0.1"),
]


def _set(obj: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``obj`` with the field at ``dotted`` (``a.b.0.c``) set to ``value``."""
    out = copy.deepcopy(obj)
    target: Any = out
    parts = dotted.split(".")
    for part in parts[:-1]:
        target = target[int(part)] if isinstance(target, list) else target[part]
    last = parts[-1]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return out


BAD_INGRESS = ingress("bad", rule("bad.example.com", path("/", "good")), tls=[tls("s", "x.com")])
BAD_SERVICE, BAD_SLICE = app("bad-svc", "10.0.0.9")
BAD_SECRET = tls_secret("s", self_signed(["x.com"]))

#: (what, the malformed object, the field path the warning must name)
MALFORMED: list[tuple[str, dict[str, Any], str]] = [
    ("host: 123", _set(BAD_INGRESS, "spec.rules.0.host", 123), "spec.rules[0].host"),
    ('spec: "x"', _set(BAD_INGRESS, "spec", "x"), "spec"),
    ('rules: ["x"]', _set(BAD_INGRESS, "spec.rules", ["x"]), "spec.rules[0]"),
    ('paths: ["x"]', _set(BAD_INGRESS, "spec.rules.0.http.paths", ["x"]), "paths[0]"),
    (
        'port: "80"',
        _set(BAD_INGRESS, "spec.rules.0.http.paths.0.backend.service.port", "80"),
        "backend.service.port",
    ),
    (
        "port number true",
        _set(BAD_INGRESS, "spec.rules.0.http.paths.0.backend.service.port.number", True),
        "port.number",
    ),
    (
        "port number out of range",
        _set(BAD_INGRESS, "spec.rules.0.http.paths.0.backend.service.port.number", 10**30),
        "port.number",
    ),
    ('tls: "x"', _set(BAD_INGRESS, "spec.tls", "x"), "spec.tls"),
    ("tls hosts: [1]", _set(BAD_INGRESS, "spec.tls.0.hosts", [1]), "spec.tls[0].hosts[0]"),
    ("annotations as a list", _set(BAD_INGRESS, "metadata.annotations", ["a"]), "annotations"),
    (
        "annotation value not a string",
        _set(BAD_INGRESS, "metadata.annotations", {"kexpose.dev/ssl-redirect": False}),
        "annotations",
    ),
    ("non-string key", _set(BAD_INGRESS, "metadata.annotations", {1: "x"}), "annotations"),
    ("metadata a list", _set(BAD_INGRESS, "metadata", ["x"]), "metadata"),
    ("name an int", _set(BAD_INGRESS, "metadata.name", 7), "metadata.name"),
    ("huge name", _set(BAD_INGRESS, "metadata.name", "n" * 100_000), "metadata.name"),
    ("defaultBackend null", _set(BAD_INGRESS, "spec.defaultBackend", ["x"]), "defaultBackend"),
    ("class name a map", _set(BAD_INGRESS, "spec.ingressClassName", {"a": 1}), "ingressClassName"),
    (
        "status ingress entries",
        _set(BAD_INGRESS, "status", {"loadBalancer": {"ingress": ["x"]}}),
        "status.loadBalancer.ingress[0]",
    ),
    ("service ports a map", _set(BAD_SERVICE, "spec.ports", {"a": 1}), "spec.ports"),
    ("service port a string", _set(BAD_SERVICE, "spec.ports.0.port", "80"), "spec.ports[0].port"),
    ("externalIPs: [1]", _set(BAD_SERVICE, "spec.externalIPs", [1]), "spec.externalIPs[0]"),
    ('endpoints: "x"', _set(BAD_SLICE, "endpoints", "x"), "endpoints"),
    ("ports: [80]", _set(BAD_SLICE, "ports", [80]), "ports[0]"),
    ("addresses: [1]", _set(BAD_SLICE, "endpoints.0.addresses", [1]), "endpoints[0].addresses[0]"),
    ("labels a list", _set(BAD_SLICE, "metadata.labels", ["x"]), "metadata.labels"),
    ('data: "x"', _set(BAD_SECRET, "data", "x"), "data"),
    ("data value an int", _set(BAD_SECRET, "data", {"tls.crt": 1}), "data"),
]

#: Found by the fault-injection test: the watch path knows the kind, the object says another.
WRONG_KIND: list[tuple[str, dict[str, Any], str]] = [
    ("kind a list", _set(BAD_INGRESS, "kind", []), "kind"),
    ("kind another", _set(BAD_INGRESS, "kind", "Service"), "kind"),
]


def _build(docs: list[dict[str, Any]]) -> tuple[RouteTable, tuple[str, ...]]:
    objects, problems = ObjectSet.from_documents(docs)
    return build_table(objects, claim=CLAIM), problems


@pytest.mark.parametrize(("what", "bad", "field"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_a_malformed_object_is_rejected_alone(what: str, bad: dict[str, Any], field: str) -> None:
    table, problems = _build([*GOOD, bad])
    assert table.route("good.example.com", "/") is not None
    assert table.route("good.example.com", "/").backend.endpoints == (  # type: ignore[union-attr]
        ("10.0.0.1", 8080),
    )
    assert any(field in p for p in problems), problems
    assert all(len(p) < 1000 for p in problems)


@pytest.mark.parametrize(
    ("what", "bad", "field"), MALFORMED + WRONG_KIND, ids=[m[0] for m in MALFORMED + WRONG_KIND]
)
def test_object_problems_names_the_field(what: str, bad: dict[str, Any], field: str) -> None:
    found = object_problems(bad, "Ingress" if bad in (m[1] for m in WRONG_KIND) else bad["kind"])
    assert found
    assert any(field in p for p in found), found


def test_well_formed_objects_have_no_problems() -> None:
    pair = self_signed(["x.com"])
    for obj in [*GOOD, BAD_INGRESS, BAD_SERVICE, BAD_SLICE, tls_secret("s", pair)]:
        assert object_problems(obj, obj["kind"]) == ()


def test_null_fields_read_as_unset() -> None:
    """The API treats ``null`` as an unset optional field; so does a YAML ``key:``."""
    nulls = ingress("nulls", rule("n.example.com", path("/", "good")))
    nulls["spec"]["defaultBackend"] = None
    nulls["spec"]["tls"] = None
    nulls["metadata"]["annotations"] = None
    slice_ = _set(GOOD[3], "endpoints.0.conditions", {"ready": None})
    table, problems = _build([*GOOD[:3], slice_, nulls])
    assert problems == ()
    assert table.route("n.example.com", "/") is not None


def test_a_malformed_update_keeps_the_previous_version() -> None:
    first, _ = ObjectSet.from_documents(GOOD)
    broken = _set(GOOD[1], "spec.rules", "x")
    objects, problems = ObjectSet.from_documents([GOOD[0], broken, *GOOD[2:]], previous=first)
    assert objects.ingresses[("default", "good")] == GOOD[1]
    assert "previous version" in problems[0]
    table = build_table(objects, claim=CLAIM)
    assert table.route("good.example.com", "/") is not None


# --- static mode ------------------------------------------------------------------------------


def _write(folder: Path, name: str, docs: list[Any]) -> Path:
    folder.mkdir(exist_ok=True)
    file = folder / name
    file.write_text(yaml.safe_dump_all(docs))
    return file


def test_static_reload_logs_the_file_object_and_field(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "m"
    _write(folder, "a-good.yaml", GOOD)
    _write(folder, "b-bad.yaml", [_set(BAD_INGRESS, "spec.rules.0.host", 123)])
    tables: list[RouteTable] = []
    source = StaticSource(folder, claim=CLAIM, on_table=tables.append)
    with caplog.at_level(logging.WARNING, logger="kexpose.proxy.control.static"):
        assert source.reload()
    assert tables[-1].route("good.example.com", "/") is not None
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    text = "\n".join(r.getMessage() for r in warned)
    assert "b-bad.yaml" in text
    assert "Ingress default/bad" in text
    assert "spec.rules[0].host" in text
    assert "123" in text
    assert "expected a string" in text


def test_unquoted_timestamps_stay_strings(tmp_path: Path) -> None:
    """kubectl's YAML reading keeps ``2024-01-01T00:00:00Z`` a string; so does static mode."""
    folder = tmp_path / "m"
    (folder).mkdir()
    text = yaml.safe_dump_all(GOOD).replace("'2024-01-01T00:00:00Z'", "2024-01-01T00:00:00Z")
    assert "creationTimestamp: 2024-01-01T00:00:00Z" in text
    (folder / "a.yaml").write_text(text)
    tables: list[RouteTable] = []
    assert StaticSource(folder, claim=CLAIM, on_table=tables.append).reload()
    assert tables[-1].route("good.example.com", "/") is not None


def test_a_failing_build_keeps_the_last_good_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "m"
    _write(folder, "a.yaml", GOOD)
    tables: list[RouteTable] = []
    source = StaticSource(folder, claim=CLAIM, on_table=tables.append)
    assert source.reload()

    def broken(*args: Any, **kwargs: Any) -> RouteTable:
        raise KeyError("a bug in the builder")

    monkeypatch.setattr(static_module, "build_table", broken)
    with caplog.at_level(logging.ERROR, logger="kexpose.proxy.control.static"):
        assert not source.reload()
    assert len(tables) == 1
    assert "keeping the current routes" in caplog.text


# --- the real process -------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.slow
async def test_the_process_survives_a_malformed_manifest(
    tmp_path: Path, echo: Callable[..., Any]
) -> None:
    web = await echo("web")
    folder = tmp_path / "manifests"
    good = [
        ingress_class(),
        ingress("web", rule("web.example.com", path("/", "web"))),
        *backend_objects("web", [web]),
    ]
    _write(folder, "app.yaml", good)
    proxy = process.start(
        ["kexpose-proxy", "--manifests", str(folder), "--no-access-log", "--log-format", "text"],
        tmp_path,
    )
    try:
        await proxy.wait_ready()
        bad = [
            _set(m[1], "metadata.name", f"bad-{i}")
            for i, m in enumerate(MALFORMED)
            if isinstance(m[1].get("metadata"), dict)
        ]
        second = ingress("web2", rule("web2.example.com", path("/", "web")))
        _write(folder, "app.yaml", [*good, second, *bad, service("lonely")])
        async with asyncio.timeout(10):
            while True:
                assert proxy.process.poll() is None, proxy.logs()
                c = await Client.connect(("127.0.0.1", proxy.http))
                r = await c.request("GET", "/", host="web2.example.com")
                await c.close()
                if r.status == 200:
                    break
                await asyncio.sleep(0.1)
        c = await Client.connect(("127.0.0.1", proxy.http))
        assert (await c.request("GET", "/", host="web.example.com")).status == 200
        await c.close()
        assert proxy.process.poll() is None
        assert "spec.rules[0].host" in proxy.logs()
        proxy.terminate()
        assert await proxy.wait_exit() == 0
    finally:
        proxy.kill()
