"""The control plane against a scripted watch stream: list, events, 410 relist, backoff,
status, leader election."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from tests.proxy.fake_kube import HOLD, FakeKubeApi
from tests.proxy.objects import app, ingress, ingress_class, path, rule, service, sport

from kexpose.defaults import CONTROLLER_NAME
from kexpose.proxy.control.lease import LeaderElector
from kexpose.proxy.control.plane import ControlPlane, Publish
from kexpose.proxy.errors import KubeError, WatchGoneError
from kexpose.proxy.routes import Claim, RouteTable
from kexpose.proxy.settings import ControlSettings

pytestmark = pytest.mark.asyncio

CLAIM = Claim(CONTROLLER_NAME, ingress_class="kexpose")

WEB = ingress("web", rule("a.example.com", path("/", "web")))
API = ingress("api", rule("b.example.com", path("/", "api")))
WEB_SVC = app("web", "10.0.0.1")
API_SVC = app("api", "10.0.0.2")


def base_lists(**extra: list[Any]) -> dict[str, list[Any]]:
    lists: dict[str, list[Any]] = {
        "IngressClass": [([ingress_class()], "10")],
        "Ingress": [([WEB], "11")],
        "Service": [([WEB_SVC[0], API_SVC[0]], "12")],
        "EndpointSlice": [([WEB_SVC[1], API_SVC[1]], "13")],
        "Secret": [([], "14")],
    }
    lists.update(extra)
    return lists


class Recorder:
    def __init__(self) -> None:
        self.tables: list[RouteTable] = []
        self.sleeps: list[float] = []
        self.changed = asyncio.Event()

    def on_table(self, table: RouteTable) -> None:
        self.tables.append(table)
        self.changed.set()

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(0)

    async def next_table(self, predicate: Callable[[RouteTable], bool]) -> RouteTable:
        async with asyncio.timeout(5):
            while True:
                if self.tables and predicate(self.tables[-1]):
                    return self.tables[-1]
                self.changed.clear()
                await self.changed.wait()


async def start_plane(
    running: Callable[..., Any], api: FakeKubeApi, claim: Claim, *, wait: bool = True
) -> tuple[ControlPlane, Recorder]:
    """A control plane over ``api``, running, its tables recorded; returned once its first
    table is built unless not ``wait``."""
    rec = Recorder()
    plane = ControlPlane(api, claim=claim, on_table=rec.on_table, sleep=rec.sleep)
    running(plane)
    if wait:
        async with asyncio.timeout(5):
            await plane.ready.wait()
    return plane, rec


def hosts(t: RouteTable) -> set[str]:
    return set(t.hosts)


async def test_initial_list_becomes_the_first_table(running: Callable[..., Any]) -> None:
    api = FakeKubeApi(lists=base_lists())
    _, rec = await start_plane(running, api, CLAIM)
    assert hosts(rec.tables[-1]) == {"a.example.com"}
    # every kind was listed once, then watched from its list's resourceVersion
    watches = {c[1]: c[2] for c in api.calls if c[0] == "watch"}
    assert watches == {
        "IngressClass": "10",
        "Ingress": "11",
        "Service": "12",
        "EndpointSlice": "13",
        "Secret": "14",
    }


async def test_not_ready_until_every_kind_is_listed(running: Callable[..., Any]) -> None:
    lists = base_lists(Secret=[KubeError("forbidden", status=403), ([], "14")])
    api = FakeKubeApi(lists=lists)
    rec = Recorder()
    gate = asyncio.Event()

    async def slow_sleep(seconds: float) -> None:
        rec.sleeps.append(seconds)
        if seconds == ControlSettings().backoff_initial and len(rec.sleeps) < 3:
            await gate.wait()
        await asyncio.sleep(0)

    plane = ControlPlane(api, claim=CLAIM, on_table=rec.on_table, sleep=slow_sleep)
    running(plane)
    for _ in range(20):
        await asyncio.sleep(0)
    assert not plane.ready.is_set()
    assert rec.tables == []
    gate.set()
    async with asyncio.timeout(5):
        await plane.ready.wait()


async def test_watch_events_change_the_table(running: Callable[..., Any]) -> None:
    modified = ingress("web", rule("c.example.com", path("/", "web")))
    api = FakeKubeApi(
        lists=base_lists(),
        watches={"Ingress": [[("ADDED", API), ("MODIFIED", modified), ("DELETED", API), HOLD]]},
    )
    _, rec = await start_plane(running, api, CLAIM, wait=False)
    table = await rec.next_table(lambda t: hosts(t) == {"c.example.com"})
    assert table.route("c.example.com", "/") is not None


async def test_410_gone_lists_again(running: Callable[..., Any]) -> None:
    # The watch ends with 410; in the meantime "web" was deleted and "api" created. Only a
    # relist can tell (no DELETED event was seen).
    api = FakeKubeApi(
        lists=base_lists(Ingress=[([WEB], "11"), ([API], "20")]),
        watches={"Ingress": [[WatchGoneError("too old resource version: 11 (12)")], [HOLD]]},
    )
    plane, rec = await start_plane(running, api, CLAIM, wait=False)
    await rec.next_table(lambda t: hosts(t) == {"b.example.com"})
    ingress_calls = [c for c in api.calls if c[1] == "Ingress"]
    assert ingress_calls[:4] == [
        ("list", "Ingress", None),
        ("watch", "Ingress", "11"),
        ("list", "Ingress", None),
        ("watch", "Ingress", "20"),
    ]
    assert plane.relists == 1
    assert ControlSettings().backoff_initial not in rec.sleeps  # 410 relists at once


async def test_errors_back_off_exponentially_up_to_the_cap(running: Callable[..., Any]) -> None:
    settings = ControlSettings(backoff_initial=0.5, backoff_max=2.0)
    failures = [KubeError("connection refused")] * 5
    api = FakeKubeApi(lists=base_lists(Ingress=[*failures, ([WEB], "11")]))
    rec = Recorder()
    plane = ControlPlane(
        api, claim=CLAIM, on_table=rec.on_table, settings=settings, sleep=rec.sleep
    )
    running(plane)
    async with asyncio.timeout(5):
        await plane.ready.wait()
    backoffs = [s for s in rec.sleeps if s != settings.debounce]
    assert backoffs == [0.5, 1.0, 2.0, 2.0, 2.0]


async def test_watch_timeout_continues_from_the_last_version(running: Callable[..., Any]) -> None:
    bumped = {**WEB, "metadata": {**WEB["metadata"], "resourceVersion": "42"}}
    api = FakeKubeApi(lists=base_lists(), watches={"Ingress": [[("MODIFIED", bumped)], [HOLD]]})
    _plane, _rec = await start_plane(running, api, CLAIM, wait=False)
    async with asyncio.timeout(5):
        while ("watch", "Ingress", "42") not in api.calls:
            await asyncio.sleep(0)
    assert [c for c in api.calls if c[:2] == ("list", "Ingress")] == [("list", "Ingress", None)]


async def test_status_is_written_for_owned_ingresses(running: Callable[..., Any]) -> None:
    theirs = ingress("theirs", rule("x.example.com", path("/", "web")), cls="other")
    ctl = service(
        "kexpose-controller", sport(80), namespace="kexpose-system", clusterIP="10.96.0.50"
    )
    api = FakeKubeApi(lists=base_lists(Ingress=[([WEB, theirs], "11")]))
    api.services[("kexpose-system", "kexpose-controller")] = ctl  # type: ignore[assignment]
    rec = Recorder()
    plane = ControlPlane(
        api,
        claim=CLAIM,
        on_table=rec.on_table,
        sleep=rec.sleep,
        publish=Publish(service="kexpose-system/kexpose-controller"),
    )
    running(plane)
    async with asyncio.timeout(5):
        while not api.patched:
            await asyncio.sleep(0)
    assert api.patched == [("default", "web", [{"ip": "10.96.0.50"}])]


async def test_only_the_leader_writes_status(running: Callable[..., Any]) -> None:
    api = FakeKubeApi(lists=base_lists())
    settings = ControlSettings()
    # Someone else holds a fresh lease: we follow and write nothing.
    api.leases[("kexpose-system", "kexpose-proxy")] = {
        "metadata": {
            "name": "kexpose-proxy",
            "namespace": "kexpose-system",
            "resourceVersion": "1",
        },
        "spec": {
            "holderIdentity": "other",
            "leaseDurationSeconds": 15,
            "renewTime": "2024-01-01T00:00:00.000000Z",
        },
    }
    rec = Recorder()
    elector = LeaderElector(
        api,
        namespace="kexpose-system",
        name="kexpose-proxy",
        identity="me",
        settings=settings,
        sleep=rec.sleep,
    )
    plane = ControlPlane(
        api,
        claim=CLAIM,
        on_table=rec.on_table,
        sleep=rec.sleep,
        publish=Publish(address="203.0.113.9"),
        elector=elector,
    )
    running(plane)
    async with asyncio.timeout(5):
        await plane.ready.wait()
    for _ in range(50):
        await asyncio.sleep(0)
    assert not elector.is_leader
    assert api.patched == []
    assert await plane.write_status() == 1  # what a leader would write


# --- leader election --------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def elector(api: FakeKubeApi, identity: str, clock: Clock) -> LeaderElector:
    return LeaderElector(
        api, namespace="ns", name="lock", identity=identity, settings=ControlSettings(), clock=clock
    )


async def test_lease_takeover_waits_for_the_lease_duration() -> None:
    api = FakeKubeApi()
    clock_a, clock_b = Clock(), Clock()
    a, b = elector(api, "a", clock_a), elector(api, "b", clock_b)
    assert await a.step()  # creates the lease
    assert not await b.step()  # sees a fresh holder
    for _ in range(10):  # a renews every 2 s; b never sees the record stand still for 15 s
        clock_a.now += 2
        clock_b.now += 2
        assert await a.step()
        assert not await b.step()
    # a stops renewing (crashed): b takes over once it has seen the same record for 15 s
    clock_b.now += 14
    assert not await b.step()
    clock_b.now += 2
    assert await b.step()
    spec = api.leases[("ns", "lock")]["spec"]
    assert spec["holderIdentity"] == "b"
    assert spec["leaseTransitions"] == 1
    # a comes back and finds it lost the lease
    clock_a.now += 1
    assert not await a.step()


async def test_simultaneous_candidates_one_wins() -> None:
    api = FakeKubeApi()
    clock = Clock()
    a, b = elector(api, "a", clock), elector(api, "b", clock)
    results = await asyncio.gather(a.step(), b.step())
    assert sorted(results) == [False, True]


async def test_leader_steps_down_when_it_cannot_renew() -> None:
    api = FakeKubeApi()
    clock = Clock()
    a = elector(api, "a", clock)
    assert await a.step()

    async def broken(namespace: str, name: str) -> None:
        raise KubeError("connection refused")

    api.get_lease = broken  # type: ignore[method-assign]
    clock.now += 5
    assert await a.step()  # within the renew deadline (10 s) it still leads
    clock.now += 6
    assert not await a.step()


async def test_release_on_shutdown_hands_the_lease_over() -> None:
    api = FakeKubeApi()
    clock = Clock()
    a = elector(api, "a", clock)
    b = elector(api, "b", clock)
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        await asyncio.sleep(0)

    a._sleep = sleep
    task = asyncio.create_task(a.run())
    while not a.is_leader:
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert api.leases[("ns", "lock")]["spec"]["holderIdentity"] is None
    assert await b.step()  # no need to wait out the old lease
