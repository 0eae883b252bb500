"""Edge auth through the real ``kexpose-proxy`` process in static mode: ``--trusted-proxies``,
a Secret file changed under load with no request let through unauthenticated, and logs that
name the problem but never a credential."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.proxy import process
from tests.proxy.auth_servers import AUTH, Keys, basic, bcrypt_line, jwks, secret
from tests.proxy.backends import Client, EchoBackend
from tests.proxy.conftest import backend_objects
from tests.proxy.objects import ingress, ingress_class, path, rule

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]


def _write(tmp: Path, backend: EchoBackend, password: str | None) -> Path:
    notes = {
        f"{AUTH}auth-type": "basic",
        f"{AUTH}auth-secret": "users",
        f"{AUTH}allow-source-ranges": "10.0.0.0/8",
    }
    docs = [
        ingress_class(),
        ingress("web", rule(None, path("/", "web")), annotations=notes),
        *backend_objects("web", [backend]),
    ]
    if password is not None:
        docs.append(secret("users", {"auth": bcrypt_line("alice", password)}))
    folder = tmp / "manifests"
    folder.mkdir(exist_ok=True)
    (folder / "app.yaml").write_text(yaml.safe_dump_all(docs))
    return folder


async def test_static_mode_trusted_proxies_and_a_secret_changed_under_load(
    tmp_path: Path, echo: Callable[..., Any]
) -> None:
    web = await echo("web")
    folder = _write(tmp_path, web, "first-pass")
    proxy = process.start(
        [
            "kexpose-proxy",
            "--manifests",
            str(folder),
            "--no-access-log",
            "--trusted-proxies",
            "127.0.0.0/8",
        ],
        tmp_path,
    )
    statuses: dict[str, dict[int, int]] = {}
    try:
        await proxy.wait_ready()
        c = await Client.connect(("127.0.0.1", proxy.http))
        creds = {"Authorization": basic("alice", "first-pass")}
        # The peer (127.0.0.1) is trusted: the client is the X-Forwarded-For hop, 10.1.2.3.
        r = await c.request("GET", "/", headers={**creds, "X-Forwarded-For": "10.1.2.3"})
        assert r.status == 200
        r = await c.request("GET", "/", headers={**creds, "X-Forwarded-For": "192.0.2.1"})
        assert r.status == 403
        r = await c.request("GET", "/", headers=creds)  # 127.0.0.1 itself: outside the list
        assert r.status == 403
        await c.close()
        stop = asyncio.Event()

        async def load(password: str | None) -> None:
            client = await Client.connect(("127.0.0.1", proxy.http))
            headers = {"X-Forwarded-For": "10.9.9.9", "X-Forwarded-User": "root"}
            if password is not None:
                headers["Authorization"] = basic("alice", password)
            seen = statuses.setdefault(str(password), {})
            while not stop.is_set():
                r = await client.request("GET", "/", headers=headers)
                seen[r.status] = seen.get(r.status, 0) + 1
                if r.status == 200:
                    users = [v for k, v in r.json()["headers"] if k == "x-forwarded-user"]
                    assert users == ["alice"]
            await client.close()

        tasks = [asyncio.create_task(load(p)) for p in ("first-pass", "second-pass", None)]
        await asyncio.sleep(0.3)
        _write(tmp_path, web, "second-pass")
        async with asyncio.timeout(15):
            while statuses.get("second-pass", {}).get(200, 0) < 20:
                await asyncio.sleep(0.05)
        _write(tmp_path, web, None)  # the Secret is gone: 503, never open
        async with asyncio.timeout(15):
            while statuses.get("second-pass", {}).get(503, 0) < 20:
                await asyncio.sleep(0.05)
        stop.set()
        await asyncio.gather(*tasks)
        proxy.terminate()
        assert await proxy.wait_exit() == 0
    finally:
        proxy.kill()
    assert set(statuses["None"]) <= {401, 503}  # never a 200 without credentials
    assert statuses["first-pass"].get(200, 0) > 0
    assert statuses["first-pass"].get(401, 0) > 0  # refused once the Secret changed
    logs = proxy.logs()
    assert logs.count("Secret default/users not found") == 1  # once per change
    assert "first-pass" not in logs
    assert "second-pass" not in logs
    assert "$2" not in logs


async def test_workers_enforce_jwt_from_a_secret(tmp_path: Path, echo: Callable[..., Any]) -> None:
    """With ``--workers`` the table is pickled to each worker: its key set must arrive usable."""
    web = await echo("web")
    keys = Keys.make()
    notes = {f"{AUTH}auth-type": "jwt", f"{AUTH}auth-jwks-secret": "keys"}
    docs = [
        ingress_class(),
        ingress("web", rule(None, path("/", "web")), annotations=notes),
        *backend_objects("web", [web]),
        secret("keys", {"jwks.json": jwks(keys.jwk("rsa", "k1"))}),
    ]
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "app.yaml").write_text(yaml.safe_dump_all(docs))
    proxy = process.start(
        ["kexpose-proxy", "--manifests", str(folder), "--no-access-log", "--workers", "2"],
        tmp_path,
    )
    try:
        await proxy.wait_ready()
        good = keys.token("rsa", {"exp": int(time.time()) + 60}, alg="RS256")
        bad = keys.token("rsa", {"exp": int(time.time()) - 600}, alg="RS256")
        for _ in range(6):  # new connections, so that both workers take some
            c = await Client.connect(("127.0.0.1", proxy.http))
            assert (
                await c.request("GET", "/", headers={"Authorization": f"Bearer {good}"})
            ).status == 200
            assert (
                await c.request("GET", "/", headers={"Authorization": f"Bearer {bad}"})
            ).status == 401
            await c.close()
        proxy.terminate()
        assert await proxy.wait_exit() == 0
    finally:
        proxy.kill()
    assert web.requests == 6
