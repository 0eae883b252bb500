"""Static mode: the same objects read from YAML files instead of the API, reloaded on change.

For local use, demos and tests. ``--manifests`` names a file or a directory (``*.yaml``,
``*.yml`` and ``*.json`` in it and below, in name order). The files are polled: a change of
any file's size, modification time or inode, or a file appearing or going, triggers a reload.
Polling needs no inotify (absent on some container filesystems) and is cheap at this scale.
A reload that fails (bad YAML) keeps the current table and logs why.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

import yaml

from kexpose.proxy.errors import ProxyConfigError
from kexpose.proxy.routes import Claim, ObjectSet, RouteTable, build_table

__all__ = ["POLL_INTERVAL", "StaticSource"]

log = logging.getLogger(__name__)

POLL_INTERVAL: Final = 1.0
"""Seconds between checks of the manifest files: a human editing a file sees the change
within a second, and a stat() per file per second costs nothing."""

_SUFFIXES: Final = (".yaml", ".yml", ".json")

Signature = tuple[tuple[str, int, int, int], ...]


class StaticSource:
    def __init__(
        self,
        path: Path,
        *,
        claim: Claim,
        on_table: Callable[[RouteTable], None],
        interval: float = POLL_INTERVAL,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.path = path
        self._claim = claim
        self._on_table = on_table
        self._interval = interval
        self._sleep = sleep
        self._signature: Signature = ()
        self.ready = asyncio.Event()
        self.reloads = 0

    def files(self) -> list[Path]:
        if self.path.is_dir():
            return sorted(p for p in self.path.rglob("*") if p.suffix in _SUFFIXES and p.is_file())
        return [self.path]

    def signature(self) -> Signature:
        found = []
        for file in self.files():
            try:
                st = file.stat()
            except OSError:
                continue
            found.append((str(file), st.st_size, st.st_mtime_ns, st.st_ino))
        return tuple(found)

    def load(self) -> RouteTable:
        """Read every file and build the table; ProxyConfigError when a file is unusable."""
        if not self.path.exists():
            raise ProxyConfigError(f"--manifests {self.path}: no such file or directory")
        signature = self.signature()
        documents: list[dict[str, Any]] = []
        for file in self.files():
            try:
                text = file.read_text(encoding="utf-8")
                docs = [d for d in yaml.safe_load_all(text) if d is not None]
            except (OSError, UnicodeDecodeError) as exc:
                raise ProxyConfigError(f"--manifests {file}: cannot read it: {exc}") from exc
            except yaml.YAMLError as exc:
                raise ProxyConfigError(f"--manifests {file}: not valid YAML: {exc}") from exc
            for doc in docs:
                if not isinstance(doc, dict):
                    raise ProxyConfigError(
                        f"--manifests {file}: every document must be a mapping (a Kubernetes "
                        f"object), got {type(doc).__name__}"
                    )
                documents.append(doc)
        objects, problems = ObjectSet.from_documents(documents)
        for problem in problems:
            log.warning("manifests: %s", problem)
        table = build_table(objects, claim=self._claim)
        for problem in table.problems:
            log.info("route table: %s", problem)
        self._signature = signature
        return table

    def reload(self) -> bool:
        """Load and publish; on failure keep serving the current table. Returns success."""
        try:
            table = self.load()
        except ProxyConfigError as exc:
            log.error("%s; keeping the current routes", exc)
            return False
        self._on_table(table)
        self.reloads += 1
        self.ready.set()
        return True

    async def run(self) -> None:
        """Publish the first table, then poll for changes until cancelled."""
        if not self.ready.is_set():
            self.reload()
        while True:
            await self._sleep(self._interval)
            if self.signature() != self._signature:
                log.info("manifests changed; reloading")
                self.reload()


def describe(path: Path) -> str:
    """For the startup log line."""
    return f"{path} ({'directory' if path.is_dir() else 'file'}, pid {os.getpid()})"
