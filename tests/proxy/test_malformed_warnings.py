"""What operators must see (issue 14, risk): an emptied manifest, a missing Service and a broken
certificate are logged at WARNING, naming the file or object; once, not at every reload."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.proxy.fake_kube import FakeKubeApi
from tests.proxy.objects import app, ingress, ingress_class, path, rule, tls

from kexpose.defaults import CONTROLLER_NAME
from kexpose.proxy.control.plane import ControlPlane
from kexpose.proxy.control.static import StaticSource
from kexpose.proxy.routes import Claim, RouteTable

CLAIM = Claim(CONTROLLER_NAME, ingress_class="kexpose")

BROKEN_SECRET = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"name": "broken", "namespace": "default"},
    "data": {"tls.crt": "bm90IGEgY2VydA==", "tls.key": "eA=="},
}

DOCS: list[dict[str, Any]] = [
    ingress_class(),
    ingress("web", rule("a.example.com", path("/", "web"))),
    ingress("lost", rule("b.example.com", path("/", "ghost"))),
    ingress(
        "secure", rule("c.example.com", path("/", "web")), tls=[tls("broken", "c.example.com")]
    ),
    *app("web", "10.0.0.1"),
    BROKEN_SECRET,
]


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_static_mode_warns_of_a_missing_service_and_a_broken_certificate_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    file = tmp_path / "app.yaml"
    file.write_text(yaml.safe_dump_all(DOCS))
    tables: list[RouteTable] = []
    source = StaticSource(file, claim=CLAIM, on_table=tables.append)
    with caplog.at_level(logging.DEBUG, logger="kexpose.proxy.control.static"):
        assert source.reload()
    told = warnings(caplog)
    assert any("Ingress default/lost" in w and "Service default/ghost not found" in w for w in told)
    assert any("Ingress default/secure" in w and "Secret default/broken" in w for w in told)
    caplog.clear()
    file.write_text(yaml.safe_dump_all([*DOCS, *app("other", "10.0.0.2")]))
    with caplog.at_level(logging.DEBUG, logger="kexpose.proxy.control.static"):
        assert source.reload()
    assert warnings(caplog) == []  # the same problems again: told at DEBUG only
    assert any("Service default/ghost not found" in r.getMessage() for r in caplog.records)


def test_an_emptied_manifest_file_is_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "app.yaml").write_text(yaml.safe_dump_all(DOCS))
    tables: list[RouteTable] = []
    source = StaticSource(folder, claim=CLAIM, on_table=tables.append)
    assert source.reload()
    assert tables[-1].hosts
    (folder / "app.yaml").write_text("")
    with caplog.at_level(logging.WARNING, logger="kexpose.proxy.control.static"):
        assert source.reload()
    assert tables[-1].hosts == {}
    told = "\n".join(warnings(caplog))
    assert f"{folder / 'app.yaml'} holds no objects" in told
    assert "every request is answered 404" in told


@pytest.mark.asyncio
async def test_the_control_plane_warns_of_a_missing_service_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    lists = {
        "IngressClass": [([ingress_class()], "1")],
        "Ingress": [([DOCS[1], DOCS[2]], "2")],
        "Service": [([DOCS[4]], "3")],
        "EndpointSlice": [([DOCS[5]], "4")],
    }
    plane = ControlPlane(FakeKubeApi(lists=lists), claim=CLAIM, on_table=lambda t: None)
    for kind in ("IngressClass", "Ingress", "Service", "EndpointSlice", "Secret"):
        task = asyncio.create_task(plane.list_and_watch(kind))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    with caplog.at_level(logging.DEBUG, logger="kexpose.proxy.control.plane"):
        plane.rebuild()
        told = warnings(caplog)
        assert any("Ingress default/lost" in w and "Service default/ghost" in w for w in told)
        caplog.clear()
        plane.rebuild()
        assert warnings(caplog) == []
