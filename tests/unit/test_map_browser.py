"""The map in a real headless browser (Debian's chromium), driven over the DevTools protocol.

Chromium is started with ``--remote-debugging-pipe``: DevTools messages are NUL-terminated JSON
on file descriptors 3 (to the browser) and 4 (from it), so no websocket client is needed. Every
request the page makes is seen as a ``Network.requestWillBeSent`` event; the test asserts the
only one is the file itself. ``--host-resolver-rules="MAP * ~NOTFOUND"`` makes sure that even a
request that slipped through would not reach a network. A control page with an external image
shows the detector does see a fetch.

Skipped, with the reason, only where chromium is not installed; CI installs it (``.ci/run``).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.unit.test_map_render import HOSTILE, HOSTILE_IMG, hostile, many

from kexpose.cli.map import graph_of
from kexpose.exposure import render_html
from kexpose.preview import run_preview

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TIMEOUT = 60.0

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed (apt-get install -y chromium; CI installs it in .ci/run)",
)


class Browser:
    """A headless chromium and one page, over the DevTools pipe."""

    def __init__(self, profile: Path) -> None:
        assert CHROMIUM is not None
        to_r, self._to_w = os.pipe()
        self._from_r, from_w = os.pipe()
        # Copies above 4, so that putting them at 3 and 4 in the child cannot clobber either.
        high_r, high_w = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_r, from_w))

        def fds() -> None:  # runs in the child: the pipe ends become fds 3 and 4
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        self.proc = subprocess.Popen(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",  # root in CI containers; the page is our own file
                "--disable-gpu",
                "--remote-debugging-pipe",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--window-size=1600,900",
                "about:blank",
            ],
            pass_fds=(3, 4),  # kept open after preexec_fn has put the pipe ends there
            preexec_fn=fds,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for fd in (to_r, from_w, high_r, high_w):
            os.close(fd)
        self._buf = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []
        targets = self.call("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self.session = self.call(
            "Target.attachToTarget", {"targetId": page["targetId"], "flatten": True}
        )["sessionId"]
        for domain in ("Page", "Network", "Runtime", "Log"):
            self.call(f"{domain}.enable", session=True)

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._from_r], [], [], max(0.0, left))
            if not ready:
                raise TimeoutError("no answer from chromium")
            chunk = os.read(self._from_r, 1 << 16)
            if not chunk:
                raise ConnectionError("chromium closed the DevTools pipe")
            self._buf += chunk
        raw, _, self._buf = self._buf.partition(b"\0")
        msg: dict[str, Any] = json.loads(raw)
        return msg

    def call(
        self, method: str, params: dict[str, Any] | None = None, *, session: bool = False
    ) -> dict[str, Any]:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = self.session
        os.write(self._to_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT
        while True:
            answer = self._read(deadline)
            if answer.get("id") == self._id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                result: dict[str, Any] = answer.get("result", {})
                return result
            if "method" in answer:
                self.events.append(answer)

    def wait_for(self, method: str) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT
        for event in self.events:
            if event["method"] == method:
                return event
        while True:
            event = self._read(deadline)
            if "method" in event:
                self.events.append(event)
                if event["method"] == method:
                    return event

    def open(self, path: Path) -> None:
        self.events.clear()
        self.call("Page.navigate", {"url": path.as_uri()}, session=True)
        self.wait_for("Page.loadEventFired")
        self.js("new Promise(r => setTimeout(r, 100))")  # let late requests show up

    def js(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session=True,
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def requests(self) -> list[str]:
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e["method"] == "Network.requestWillBeSent"
        ]

    def problems(self) -> list[str]:
        """Exceptions and console/log errors (a CSP refusal is logged as an error)."""
        return [
            json.dumps(e["params"])
            for e in self.events
            if e["method"] == "Runtime.exceptionThrown"
            or (e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
        ]

    def close(self) -> None:
        with contextlib.suppress(ConnectionError, TimeoutError, RuntimeError):
            self.call("Browser.close")
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_w)
        os.close(self._from_r)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    b = Browser(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield b
    finally:
        b.close()


def test_the_prod_map_in_a_browser(browser: Browser, tmp_path: Path) -> None:
    graph = graph_of(run_preview("prod", project=ROOT))
    page = tmp_path / "prod.html"
    page.write_text(render_html(graph))
    browser.open(page)

    assert browser.requests() == [page.as_uri()]  # nothing fetched but the file itself
    assert browser.problems() == []
    drawn = browser.js(
        "Array.from(document.querySelectorAll('svg g.node'))"
        ".map(n => [n.dataset.kind, n.dataset.title])"
    )
    assert sorted(map(tuple, drawn)) == sorted((n.kind, n.title) for n in graph.nodes)
    edges = browser.js(
        "Array.from(document.querySelectorAll('svg path.edge')).map(e => "
        "[document.getElementById(e.dataset.from).dataset.title,"
        " document.getElementById(e.dataset.to).dataset.title])"
    )
    titles = {n.id: n.title for n in graph.nodes}
    assert sorted(map(tuple, edges)) == sorted(
        (titles[e.source], titles[e.target]) for e in graph.edges
    )
    assert ["shop.example.com", "/api"] in edges
    # Laid out for real: every node has a box of its computed size on screen.
    sizes = browser.js(
        "Array.from(document.querySelectorAll('svg g.node')).map(n => n.getBBox().width)"
    )
    assert min(sizes) > 150

    # Search: matches lit, their way in and on kept, everything else dimmed.
    state = browser.js(
        """(() => {
          const q = document.getElementById('q');
          q.value = 'shop-api'; q.dispatchEvent(new Event('input'));
          const cls = k => Array.from(document.querySelectorAll('svg g.node.' + k))
              .map(n => n.dataset.title).sort();
          return {count: document.getElementById('count').textContent,
                  hit: cls('hit'), related: cls('related'),
                  searching: document.querySelector('svg').classList.contains('searching')};
        })()"""
    )
    assert state["searching"] is True
    # the paths (/admin, behind JWT, goes to shop-api too), the Service, the workload
    assert state["hit"] == ["/admin", "/api", "shop-api", "shop-api"]
    assert state["count"] == "4 matches"
    assert set(state["related"]) >= {"Internet", "LoadBalancer", "kexpose", "shop.example.com"}
    assert "inventory" not in state["related"]

    shot = browser.call("Page.captureScreenshot", {"format": "png"}, session=True)
    png = base64.b64decode(shot["data"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 10_000
    (tmp_path / "prod.png").write_bytes(png)


def test_hostile_names_do_not_run(browser: Browser, tmp_path: Path) -> None:
    page = tmp_path / "hostile.html"
    page.write_text(render_html(hostile()))
    browser.open(page)
    assert browser.js("typeof window.__pwned") == "undefined"
    assert browser.js("document.scripts.length") == 1
    assert browser.js("document.querySelectorAll('img').length") == 0
    titles = browser.js(
        "Array.from(document.querySelectorAll('svg g.node')).map(n => n.dataset.title)"
    )
    assert HOSTILE in titles
    assert HOSTILE_IMG in titles
    assert browser.requests() == [page.as_uri()]
    assert browser.problems() == []


def test_a_fetch_would_be_seen(browser: Browser, tmp_path: Path) -> None:
    """The control: a page that does fetch, without the map's CSP, is caught."""
    page = tmp_path / "leaky.html"
    page.write_text('<!DOCTYPE html><img src="http://fonts.example.invalid/a.png">')
    browser.open(page)
    assert "http://fonts.example.invalid/a.png" in browser.requests()


def test_a_100_app_map_stays_usable(browser: Browser, tmp_path: Path) -> None:
    graph = many(100, namespaces=10)
    page = tmp_path / "100.html"
    page.write_text(render_html(graph))
    browser.open(page)
    assert browser.js("document.querySelectorAll('svg g.node').length") == len(graph.nodes)
    assert browser.js("document.querySelectorAll('svg g.band').length") == 11
    count = browser.js(
        """(() => { const q = document.getElementById('q');
          q.value = 'app42.example.com'; q.dispatchEvent(new Event('input'));
          return document.getElementById('count').textContent; })()"""
    )
    assert count == "1 match"
    assert browser.requests() == [page.as_uri()]
