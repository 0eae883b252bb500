"""Static mode: the same objects read from YAML files instead of the API, reloaded on change.

For local use, demos and tests. ``--manifests`` names a file or a directory (``*.yaml``,
``*.yml`` and ``*.json`` in it and below, in name order). The files are polled: a change of
any file's size, modification time or inode, or a file appearing or going, triggers a reload.
Polling needs no inotify (absent on some container filesystems) and is cheap at this scale.
A reload that fails (bad YAML, a file that cannot be read) keeps the current table and logs
why; a malformed object is rejected alone (``routes._shape``) and logged at WARNING with its
file, object and field. Running out of file descriptors (EMFILE, issue 14) fails a poll, never
the process.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Final

import yaml

from kexpose.proxy.errors import ProxyConfigError
from kexpose.proxy.routes import Claim, ObjectSet, RouteTable, build_table, shown

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
        self._objects: ObjectSet | None = None
        self._table: RouteTable | None = None
        self._failure = ""

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
        """Read every file and build the table; ProxyConfigError when a file is unusable.

        A file that cannot be read or parsed fails the whole load (its objects are unknown, so
        the current table stays). A document that is not a usable object is rejected alone
        and logged at WARNING with its file; every other object still routes.
        """
        if not self.path.exists():
            raise ProxyConfigError(f"--manifests {self.path}: no such file or directory")
        try:
            signature = self.signature()
            files = self.files()
        except OSError as exc:  # EMFILE, EACCES on a subdirectory: try again at the next poll
            raise ProxyConfigError(f"--manifests {self.path}: cannot list it: {exc}") from exc
        sets: list[ObjectSet] = []
        problems: list[str] = []
        for file in files:
            try:
                text = file.read_text(encoding="utf-8")
                # _Loader is a SafeLoader (no arbitrary objects), minus timestamps.
                docs = [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]
            except (OSError, UnicodeDecodeError) as exc:
                raise ProxyConfigError(f"--manifests {file}: cannot read it: {exc}") from exc
            except yaml.YAMLError as exc:
                raise ProxyConfigError(f"--manifests {file}: not valid YAML: {exc}") from exc
            if not docs:
                problems.append(f"{file} holds no objects; the routes it held (if any) are gone")
            mappings: list[Mapping[str, object]] = []
            for index, doc in enumerate(docs):
                if isinstance(doc, dict):
                    mappings.append(doc)
                else:
                    problems.append(
                        f"{file} document {index + 1}: is {shown(doc)}, expected a mapping "
                        "(a Kubernetes object); left out"
                    )
            objects, found = ObjectSet.from_documents(
                mappings, origin=str(file), previous=self._objects
            )
            sets.append(objects)
            problems.extend(found)
        objects = ObjectSet.merged(sets)
        for problem in problems:
            log.warning("manifests: %s", problem)
        table = build_table(objects, claim=self._claim)
        _log_new_problems(table, self._table)
        if not table.owned:
            log.warning(
                "manifests: %s: no Ingress of ours in it; every request is answered 404",
                self.path,
            )
        self._signature = signature
        self._objects = objects
        self._table = table
        return table

    def reload(self) -> bool:
        """Load and publish; on failure keep serving the current table. Returns success."""
        try:
            table = self.load()
        except ProxyConfigError as exc:
            # The same failure every second (EMFILE until connections close) is told once.
            level = logging.DEBUG if str(exc) == self._failure else logging.ERROR
            self._failure = str(exc)
            log.log(level, "%s; keeping the current routes", exc)
            return False
        except Exception:  # a bug in building must not take the serving table down with it
            log.exception("manifests: building the route table failed; keeping the current routes")
            return False
        self._failure = ""
        self._on_table(table)
        self.reloads += 1
        self.ready.set()
        return True

    async def run(self) -> None:
        """Publish the first table, then poll for changes until cancelled. Never raises."""
        if not self.ready.is_set():
            self.reload()
        while True:
            await self._sleep(self._interval)
            try:
                changed = self.signature() != self._signature
            except OSError as exc:  # EMFILE while listing: the next poll tries again
                if str(exc) != self._failure:
                    log.warning("manifests: cannot check %s for changes: %s", self.path, exc)
                self._failure = str(exc)
                continue
            if changed:
                log.info("manifests changed; reloading")
                self.reload()


def _log_new_problems(table: RouteTable, previous: RouteTable | None) -> None:
    """Table problems at WARNING when they first appear; repeats at DEBUG (every reload would
    otherwise repeat every one)."""
    old = set(previous.problems) if previous is not None else set()
    for problem in table.problems:
        log.log(logging.DEBUG if problem in old else logging.WARNING, "route table: %s", problem)


class _Loader(yaml.SafeLoader):
    """SafeLoader without the timestamp type: ``creationTimestamp: 2024-01-01T00:00:00Z``
    stays a string, as kubectl reads it (JSON has no timestamp type)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def describe(path: Path) -> str:
    """For the startup log line."""
    return f"{path} ({'directory' if path.is_dir() else 'file'}, pid {os.getpid()})"
