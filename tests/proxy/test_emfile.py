"""Running out of file descriptors (issue 14, defect 5): the proxy degrades, never exits.

The real process, started with a low ``RLIMIT_NOFILE``, is flooded with more idle connections
than it may have descriptors; meanwhile its manifest changes, so the poll runs out of
descriptors too. Once the flood goes, it serves again, with the new manifest.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import resource
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.proxy import process
from tests.proxy.backends import Client
from tests.proxy.conftest import backend_objects
from tests.proxy.objects import app, ingress, ingress_class, path, rule

from kexpose.defaults import CONTROLLER_NAME
from kexpose.proxy.control.static import StaticSource
from kexpose.proxy.routes import Claim, RouteTable

pytestmark = pytest.mark.asyncio

#: The proxy's descriptor limit, and how many idle connections go over it.
LIMIT = 128
FLOOD = 200


def _start_limited(argv: list[str], tmp: Path, limit: int) -> process.ProxyProcess:
    http, https, health = process.free_port(), process.free_port(), process.free_port()
    env = {
        **os.environ,
        "KEXPOSE_PROXY_BIND": "127.0.0.1",
        "KEXPOSE_PROXY_HTTP_PORT": str(http),
        "KEXPOSE_PROXY_HTTPS_PORT": str(https),
        "KEXPOSE_PROXY_HEALTH_PORT": str(health),
        "PYTHONDONTWRITEBYTECODE": "1",
    }

    def lower_the_limit() -> None:  # runs in the child, before exec
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    stdout, stderr = tmp / "proxy.stdout", tmp / "proxy.stderr"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        child = subprocess.Popen(
            [process.ENTRYPOINT, *argv],
            env=env,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            preexec_fn=lower_the_limit,
        )
    return process.ProxyProcess(child, http, https, health, stderr, stdout)


def _manifests(folder: Path, backend: Any, *hosts: str) -> None:
    docs = [
        ingress_class(),
        *(ingress(h.split(".")[0], rule(h, path("/", "web"))) for h in hosts),
        *backend_objects("web", [backend]),
    ]
    folder.mkdir(exist_ok=True)
    (folder / "app.yaml").write_text(yaml.safe_dump_all(docs))


async def _status(port: int, host: str) -> int:
    try:
        c = await Client.connect(("127.0.0.1", port))
    except OSError:
        return 0
    try:
        return (await c.request("GET", "/", host=host)).status
    except (OSError, TimeoutError):
        return 0
    finally:
        await c.close()


@pytest.mark.slow
async def test_descriptor_exhaustion_degrades_and_recovers(
    tmp_path: Path, echo: Callable[..., Any]
) -> None:
    web = await echo("web")
    folder = tmp_path / "manifests"
    _manifests(folder, web, "old.example.com")
    proxy = _start_limited(
        ["--manifests", str(folder), "--no-access-log", "--log-format", "text"], tmp_path, LIMIT
    )
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        await proxy.wait_ready()
        assert await _status(proxy.http, "old.example.com") == 200
        # More idle connections than the proxy has descriptors: the kernel completes every
        # handshake (the backlog is 4096), then the proxy accepts what it can.
        for _ in range(FLOOD):
            idle.append(await asyncio.open_connection("127.0.0.1", proxy.http))
        await asyncio.sleep(0.5)
        # The manifest changes during the flood; the poll needs descriptors to see it.
        _manifests(folder, web, "old.example.com", "new.example.com")
        assert await proxy.get_health("/healthz") == 200
        # A connection accepted before the flood filled up is still served, new routes and all
        # (its request needs one more descriptor, to the backend).
        reader, writer = idle[0]
        async with asyncio.timeout(10):
            while True:
                assert proxy.process.poll() is None, f"the proxy exited:\n{proxy.logs()}"
                writer.write(b"GET / HTTP/1.1\r\nHost: new.example.com\r\n\r\n")
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                if head.startswith(b"HTTP/1.1 200"):
                    break
                await asyncio.sleep(0.2)
        refused = sum(1 for r, _ in idle if r.at_eof() or r.exception() is not None)
        assert FLOOD - refused <= LIMIT // 2, (FLOOD, refused)  # the cap: (128 - 64) / 2 = 32
        assert refused > 0
        for _, w in idle:
            w.close()
        idle.clear()
        async with asyncio.timeout(15):
            while await _status(proxy.http, "new.example.com") != 200:
                assert proxy.process.poll() is None, f"the proxy exited:\n{proxy.logs()}"
                await asyncio.sleep(0.2)
        assert await _status(proxy.http, "old.example.com") == 200
        assert await proxy.get_health("/readyz") == 200
        proxy.terminate()
        assert await proxy.wait_exit() == 0
    finally:
        for _, w in idle:
            with contextlib.suppress(Exception):
                w.close()
        proxy.kill()
    assert "refused" in proxy.logs()


# --- the manifest poll, without a process -----------------------------------------------------


async def test_the_poll_survives_emfile_and_catches_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Listing the folder and reading a file both fail with EMFILE for a while: the poll
    goes on, says so once, and loads the change when descriptors are back."""
    folder = tmp_path / "m"
    folder.mkdir()

    def write(*hosts: str) -> None:
        docs = [
            ingress_class(),
            *(ingress(h.split(".")[0], rule(h, path("/", "web"))) for h in hosts),
            *app("web", "10.0.0.1"),
        ]
        with open(folder / "app.yaml", "w") as file:  # not Path.open, which fails below
            file.write(yaml.safe_dump_all(docs))

    write("old.example.com")
    tables: list[RouteTable] = []
    polls = 0
    listing_fails = reading_fails = True
    emfile = OSError(errno.EMFILE, os.strerror(errno.EMFILE))
    real_scandir, real_open = os.scandir, Path.open

    def scandir(*args: Any) -> Any:
        if listing_fails:
            raise emfile
        return real_scandir(*args)

    def open_(self: Path, *args: Any, **kwargs: Any) -> Any:
        if reading_fails:
            raise emfile
        return real_open(self, *args, **kwargs)

    async def sleep(seconds: float) -> None:
        nonlocal polls, listing_fails, reading_fails
        polls += 1
        if polls == 2:
            write("old.example.com", "new.example.com")
        if polls == 5:
            listing_fails = False  # the change is seen, but the file cannot be opened yet
        if polls == 8:
            reading_fails = False
        if polls == 10:
            raise asyncio.CancelledError
        await asyncio.sleep(0)

    source = StaticSource(
        folder,
        claim=Claim(CONTROLLER_NAME, ingress_class="kexpose"),
        on_table=tables.append,
        sleep=sleep,
    )
    assert source.reload()
    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(Path, "open", open_)
    with (
        caplog.at_level(logging.WARNING, logger="kexpose.proxy.control.static"),
        pytest.raises(asyncio.CancelledError),
    ):
        await source.run()
    assert tables[-1].route("new.example.com", "/") is not None
    told = [r.getMessage() for r in caplog.records if "Too many open files" in r.getMessage()]
    assert len(told) == 2, told  # once for listing, once for reading; not once per poll
    assert "cannot check" in told[0]
    assert "cannot read" in told[1]
    assert "keeping the current routes" in told[1]
