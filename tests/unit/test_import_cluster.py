"""``kexpose import --kubeconfig``: a live cluster read through lightkube, read-only.

The API server is the proxy tests' loopback fake; the CLI runs as a real process so that the
fake keeps serving on this test's event loop meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.proxy.fake_apiserver import FakeApiServer

pytestmark = [pytest.mark.slow]

KEXPOSE = str(Path(sys.executable).with_name("kexpose"))

INGRESS = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "Ingress",
    "metadata": {
        "name": "web",
        "namespace": "shop",
        "uid": "1",
        "resourceVersion": "7",
        "annotations": {"nginx.ingress.kubernetes.io/ssl-redirect": "false"},
    },
    "spec": {
        "ingressClassName": "nginx",
        "tls": [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}],
        "rules": [
            {
                "host": "shop.example.com",
                "http": {
                    "paths": [
                        {
                            "path": "/",
                            "pathType": "Prefix",
                            "backend": {"service": {"name": "web", "port": {"number": 80}}},
                        }
                    ]
                },
            }
        ],
    },
}
SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}]},
}


async def run(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        KEXPOSE, "import", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.asyncio
async def test_a_cluster_is_listed_read_only_without_secrets(tmp_path: Path) -> None:
    api = await FakeApiServer(objects={"Ingress": [INGRESS], "Service": [SERVICE]}).start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(api.kubeconfig()))
    try:
        code, out, err = await run(
            "--kubeconfig",
            str(kubeconfig),
            "-e",
            "dev",
            "-o",
            "json",
            "--stack-file",
            str(tmp_path / "stack.yaml"),
        )
    finally:
        await api.stop()
    assert code == 0, err
    report: dict[str, Any] = json.loads(out)["report"]
    assert report["ingresses"] == 1
    stack = yaml.safe_load((tmp_path / "stack.yaml").read_text())
    (app,) = stack["config"]["kexpose:apps"]
    assert app["selector"] == {"app": "web"}
    assert app["ingress"]["annotations"] == {"kexpose.dev/ssl-redirect": "false"}
    assert {m for m, _ in api.requests} == {"GET"}
    assert not [t for _, t in api.requests if "secrets" in t]


@pytest.mark.asyncio
async def test_an_unreachable_cluster_is_exit_3(tmp_path: Path) -> None:
    api = await FakeApiServer().start()
    config = api.kubeconfig()
    await api.stop()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    code, _, err = await run("--kubeconfig", str(kubeconfig), "-e", "dev")
    assert code == 3
    assert "cannot reach the API server" in err


@pytest.mark.asyncio
async def test_sources_and_a_cluster_are_exclusive(tmp_path: Path) -> None:
    code, _, err = await run("x.yaml", "--kubeconfig", str(tmp_path / "k"), "-e", "dev")
    assert code == 2
    assert "either SOURCE" in err
