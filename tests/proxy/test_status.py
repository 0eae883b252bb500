"""status.loadBalancer.ingress: the address we publish and which Ingresses need an update."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import pytest
from tests.proxy.objects import ingress, service, sport

from kexpose.proxy.routes import parse_addresses, service_addresses, status_updates

if TYPE_CHECKING:
    from kexpose.proxy.routes._kube import Service

SERVICES: list[tuple[str, dict[str, Any], list[dict[str, str]]]] = [
    ("ClusterIP", {"type_": "ClusterIP", "clusterIP": "10.96.0.10"}, [{"ip": "10.96.0.10"}]),
    ("headless ClusterIP", {"type_": "ClusterIP", "clusterIP": "None"}, []),
    (
        "NodePort without externalIPs",
        {"type_": "NodePort", "clusterIP": "10.96.0.10"},
        [{"ip": "10.96.0.10"}],
    ),
    (
        "NodePort with externalIPs",
        {
            "type_": "NodePort",
            "clusterIP": "10.96.0.10",
            "externalIPs": ["203.0.113.2", "203.0.113.1"],
        },
        [{"ip": "203.0.113.1"}, {"ip": "203.0.113.2"}],
    ),
    (
        "ExternalName",
        {"type_": "ExternalName", "externalName": "lb.example.com"},
        [{"hostname": "lb.example.com"}],
    ),
    ("LoadBalancer pending", {"type_": "LoadBalancer", "clusterIP": "10.96.0.10"}, []),
]


@pytest.mark.parametrize(("case", "spec", "expected"), SERVICES, ids=[s[0] for s in SERVICES])
def test_service_addresses(case: str, spec: dict[str, Any], expected: list[dict[str, str]]) -> None:
    svc = cast("Service", service("ctl", sport(80), **spec))
    assert list(service_addresses(svc)) == expected


def test_load_balancer_addresses_plus_external_ips() -> None:
    svc = service("ctl", sport(80), type_="LoadBalancer", externalIPs=["198.51.100.9", "1.2.3.4"])
    svc["status"] = {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}, {"hostname": "lb.example"}]}}
    assert list(service_addresses(cast("Service", svc))) == [
        {"ip": "1.2.3.4"},
        {"ip": "198.51.100.9"},
        {"hostname": "lb.example"},
    ]


def test_publish_address_flag() -> None:
    assert list(parse_addresses(" 203.0.113.7, lb.example.com ,,::1")) == [
        {"ip": "203.0.113.7"},
        {"ip": "::1"},
        {"hostname": "lb.example.com"},
    ]


def test_only_owned_ingresses_that_differ_are_updated() -> None:
    done = ingress("done")
    done["status"] = {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}}
    stale = ingress("stale")
    stale["status"] = {"loadBalancer": {"ingress": [{"ip": "10.9.9.9"}]}}
    fresh = ingress("fresh")
    theirs = ingress("theirs")
    objects = {("default", i["metadata"]["name"]): i for i in (done, stale, fresh, theirs)}
    owned = [("default", "done"), ("default", "stale"), ("default", "fresh"), ("default", "gone")]
    updates = status_updates(objects, owned, ({"ip": "10.0.0.1"},))  # type: ignore[arg-type]
    assert [k for k, _ in updates] == [("default", "stale"), ("default", "fresh")]
    assert updates[0][1] == [{"ip": "10.0.0.1"}]
    assert status_updates(objects, owned, ()) == []  # type: ignore[arg-type]
