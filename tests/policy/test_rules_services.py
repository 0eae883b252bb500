"""Service rules, one case table each: violating and passing objects, environments, config."""

from __future__ import annotations

from typing import Any

import pytest

from .objects import check, fields, lb, service

SRC = "service.beta.kubernetes.io/load-balancer-source-ranges"


@pytest.mark.parametrize(
    ("obj", "env", "expected"),
    [
        (service(type="NodePort"), "prod", ["spec.type"]),
        (service(type="NodePort"), "staging", ["spec.type"]),
        (service(type="NodePort"), "dev", []),  # inactive in dev
        (service(), "prod", []),  # missing type is ClusterIP
        (service(type="ClusterIP"), "prod", []),
        (lb("ingress-nginx-controller", "ingress-nginx"), "prod", []),  # LB is not NodePort
    ],
    ids=["nodeport-prod", "nodeport-staging", "nodeport-dev", "no-type", "clusterip", "lb"],
)
def test_svc_no_nodeport(obj: dict[str, Any], env: Any, expected: list[str]) -> None:
    assert fields(check([obj], env, rule_id="svc-no-nodeport")) == expected


def test_svc_no_nodeport_enforcement_differs_by_environment() -> None:
    assert check([service(type="NodePort")], "prod", rule_id="svc-no-nodeport")[0].enforcement == (
        "mandatory"
    )
    staging = check([service(type="NodePort")], "staging", rule_id="svc-no-nodeport")
    assert staging[0].enforcement == "advisory"
    assert staging[0].severity == "high"


@pytest.mark.parametrize(
    ("obj", "env", "expected"),
    [
        (lb(), "prod", ["spec.allocateLoadBalancerNodePorts"]),  # default is true
        (lb(allocateLoadBalancerNodePorts=True), "prod", ["spec.allocateLoadBalancerNodePorts"]),
        (lb(allocateLoadBalancerNodePorts=False), "prod", []),
        (
            lb(
                allocateLoadBalancerNodePorts=False,
                ports=[{"port": 80, "nodePort": 30080}, {"port": 443}],
            ),
            "prod",
            ["spec.ports[0].nodePort"],
        ),
        (
            lb(ports=[{"port": 80, "nodePort": 30080}]),
            "prod",
            ["spec.allocateLoadBalancerNodePorts", "spec.ports[0].nodePort"],
        ),
        (  # healthCheckNodePort from externalTrafficPolicy: Local is tolerated
            lb(
                allocateLoadBalancerNodePorts=False,
                externalTrafficPolicy="Local",
                healthCheckNodePort=32000,
            ),
            "prod",
            [],
        ),
        (lb(), "staging", []),
        (lb(), "dev", []),
        (service(type="NodePort", ports=[{"port": 80, "nodePort": 30080}]), "prod", []),
    ],
    ids=[
        "default-alloc",
        "alloc-true",
        "alloc-false",
        "pinned",
        "both",
        "health-check",
        "staging",
        "dev",
        "not-lb",
    ],
)
def test_svc_lb_node_ports(obj: dict[str, Any], env: Any, expected: list[str]) -> None:
    found = check([obj], env, rule_id="svc-lb-node-ports")
    assert fields(found) == expected
    assert all(v.enforcement == "advisory" and v.severity == "medium" for v in found)


@pytest.mark.parametrize(
    ("obj", "overrides", "expected"),
    [
        (lb("web", "shop"), {}, ["spec.type"]),
        (lb("ingress-nginx-controller", "ingress-nginx"), {}, []),
        (lb("ingress-nginx-controller", "other"), {}, ["spec.type"]),  # namespace counts
        (lb("web", "shop", loadBalancerClass="internal"), {}, ["spec.type"]),  # class irrelevant
        (lb("web", "shop"), {"allowed_loadbalancers": ["shop/web"]}, []),
        (
            lb("ingress-nginx-controller", "ingress-nginx"),
            {"allowed_loadbalancers": []},
            ["spec.type"],
        ),
        (service(), {}, []),
    ],
    ids=[
        "not-listed",
        "listed",
        "wrong-ns",
        "lb-class",
        "config-allows",
        "config-empty",
        "clusterip",
    ],
)
def test_svc_no_loadbalancer(
    obj: dict[str, Any], overrides: dict[str, Any], expected: list[str]
) -> None:
    for env in ("dev", "staging", "prod"):
        assert fields(check([obj], env, rule_id="svc-no-loadbalancer", **overrides)) == expected


def test_svc_no_loadbalancer_message_names_resource_field_and_allow_list() -> None:
    (v,) = check([lb("web", "shop")], "dev", rule_id="svc-no-loadbalancer")
    assert v.resource == "Service/shop/web"
    assert v.message.startswith("Service/shop/web spec.type: ")
    assert "ingress-nginx/ingress-nginx-controller" in v.message
    assert v.enforcement == "mandatory"


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (lb(), ["spec.loadBalancerSourceRanges"]),
        (lb(loadBalancerSourceRanges=["10.0.0.0/8"]), []),
        (
            lb(loadBalancerSourceRanges=["10.0.0.0/8", "0.0.0.0/0"]),
            ["spec.loadBalancerSourceRanges[1]"],
        ),
        (lb(loadBalancerSourceRanges=["::/0"]), ["spec.loadBalancerSourceRanges[0]"]),
        (lb(loadBalancerSourceRanges=["10.1.2.3/0"]), ["spec.loadBalancerSourceRanges[0]"]),
        (lb(loadBalancerSourceRanges=["2001:db8::/32"]), []),
        (lb(loadBalancerSourceRanges=["not-a-cidr"]), ["spec.loadBalancerSourceRanges[0]"]),
        (lb(annotations={SRC: "10.0.0.0/8, 192.168.0.0/16"}), []),
        (lb(annotations={SRC: "10.0.0.0/8,0.0.0.0/0"}), [f'metadata.annotations["{SRC}"]']),
        (lb(annotations={SRC: ""}), ["spec.loadBalancerSourceRanges"]),
        # The field wins over the annotation when both are set.
        (lb(loadBalancerSourceRanges=["10.0.0.0/8"], annotations={SRC: "0.0.0.0/0"}), []),
        (
            lb(loadBalancerSourceRanges=[], annotations={SRC: "0.0.0.0/0"}),
            [f'metadata.annotations["{SRC}"]'],
        ),
        (lb(annotations={"service.beta.kubernetes.io/aws-load-balancer-scheme": "internal"}), []),
        (lb(annotations={"service.beta.kubernetes.io/aws-load-balancer-internal": "true"}), []),
        (lb(annotations={"service.beta.kubernetes.io/azure-load-balancer-internal": "true"}), []),
        (lb(annotations={"networking.gke.io/load-balancer-type": "Internal"}), []),
        (lb(annotations={"cloud.google.com/load-balancer-type": "Internal"}), []),
        (
            lb(
                annotations={
                    "service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing"
                }
            ),
            ["spec.loadBalancerSourceRanges"],
        ),
        (
            lb(annotations={"service.beta.kubernetes.io/azure-load-balancer-internal": "false"}),
            ["spec.loadBalancerSourceRanges"],
        ),
        (lb("ingress-nginx-controller", "ingress-nginx"), []),  # public by config
        (service(), []),
    ],
    ids=[
        "none",
        "ranges",
        "world-v4",
        "world-v6",
        "prefix-0-any-address",
        "v6-range",
        "invalid",
        "annotation",
        "annotation-world",
        "annotation-empty",
        "field-wins",
        "empty-field-annotation",
        "aws-scheme",
        "aws-internal",
        "azure",
        "gke",
        "gce",
        "aws-public",
        "azure-false",
        "public-listed",
        "clusterip",
    ],
)
def test_svc_lb_source_ranges(obj: dict[str, Any], expected: list[str]) -> None:
    assert fields(check([obj], "prod", rule_id="svc-lb-source-ranges")) == expected
    assert check([obj], "staging", rule_id="svc-lb-source-ranges") == []


def test_svc_lb_source_ranges_public_list_is_configurable() -> None:
    obj = lb("web", "shop")
    assert check([obj], rule_id="svc-lb-source-ranges", public_loadbalancers=["shop/web"]) == []
    assert check(
        [lb("ingress-nginx-controller", "ingress-nginx")],
        rule_id="svc-lb-source-ranges",
        public_loadbalancers=[],
    )


@pytest.mark.parametrize(
    ("ips", "allowed", "expected"),
    [
        (["203.0.113.10"], [], ["spec.externalIPs[0]"]),
        ([], [], []),  # an empty list passes (unlike Kyverno's CEL form)
        (None, [], []),
        (["203.0.113.10"], ["203.0.113.10"], []),
        (["203.0.113.10", "203.0.113.11"], ["203.0.113.10"], ["spec.externalIPs[1]"]),
        (["2001:db8::1"], ["2001:0db8:0000::1"], []),  # same address, other spelling
    ],
    ids=["forbidden", "empty", "absent", "allowed", "one-of-two", "ipv6-normalised"],
)
def test_svc_no_external_ips(
    ips: list[str] | None, allowed: list[str], expected: list[str]
) -> None:
    obj = service() if ips is None else service(externalIPs=ips)
    for env in ("dev", "staging", "prod"):
        found = check([obj], env, rule_id="svc-no-external-ips", allowed_external_ips=allowed)
        assert fields(found) == expected


@pytest.mark.parametrize(
    ("target", "bad"),
    [
        ("localhost", True),
        ("LOCALHOST.", True),
        ("foo.localhost", True),
        ("Foo.LocalHost.", True),
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("127.1", True),  # inet_aton short form
        ("2130706433", True),  # 127.0.0.1 as one number
        ("0x7f.0.0.1", True),
        ("localhost.example.com", False),
        ("notlocalhost", False),
        ("db.example.com", False),
        ("10.0.0.1", False),
        ("1.2.3.4.5", False),
    ],
)
def test_svc_externalname_no_loopback(target: str, bad: bool) -> None:
    obj = service(type="ExternalName", externalName=target, ports=[])
    for env in ("dev", "staging", "prod"):
        found = check([obj], env, rule_id="svc-externalname-no-loopback")
        assert fields(found) == (["spec.externalName"] if bad else [])
