"""The three shipped stacks, run offline as ``kexpose preview``/``render`` run them.

Every rendered manifest must validate against the OpenAPI schema of a current Kubernetes
release, and each environment's promises must hold in what is rendered.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner
from tests.unit.gateway_schema import gateway_errors, is_gateway_object

from kexpose.cli import cli
from kexpose.hosts import covers
from kexpose.manifests.auth import edge_auth_crd
from kexpose.preview import PreviewResult, run_preview

ROOT = Path(__file__).resolve().parents[2]
STACKS = ("dev", "staging", "prod")
#: The Kubernetes release whose OpenAPI schema the manifests are validated against.
K8S_VERSION = kubernetes_validate.latest_version()


@pytest.fixture(scope="module", params=STACKS)
def stack(request: pytest.FixtureRequest) -> PreviewResult:
    result: PreviewResult = run_preview(request.param, project=ROOT)
    return result


def manifests(result: PreviewResult) -> list[dict[str, Any]]:
    return [dict(m) for _, m in result.manifests()]


def test_every_manifest_is_schema_valid(stack: PreviewResult) -> None:
    objs = manifests(stack)
    assert len(objs) >= 15
    for m in objs:
        if is_gateway_object(m):
            # Gateway API kinds: the schemas of the CRDs kexpose installs (v1.6.3).
            assert gateway_errors(m) == [], f"{m['kind']} {m['metadata']['name']}"
            continue
        if m["apiVersion"] == "cert-manager.io/v1":
            continue  # cert-manager's CRDs are not part of any Kubernetes release's schema
        if m["kind"] == "EdgeAuth":
            # kexpose's own CRD (manifests.auth): every setting is a string it names.
            fields = edge_auth_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
            known = fields["properties"]["spec"]["properties"]
            assert all(k in known and isinstance(v, str) for k, v in m["spec"].items()), m
            continue
        # strict: unknown fields are errors too, as the API server's strict field validation
        kubernetes_validate.validate(m, K8S_VERSION, strict=True)


@pytest.mark.parametrize(
    ("name", "api"), [("dev", "ingress"), ("staging", "gateway"), ("prod", "gateway")]
)
def test_each_stack_exposes_through_its_api(name: str, api: str) -> None:
    kinds = {m["kind"] for m in manifests(run_preview(name, project=ROOT))}
    gateway_kinds = {
        "GatewayClass",
        "Gateway",
        "HTTPRoute",
        "ReferenceGrant",
        "CustomResourceDefinition",
    }
    if api == "ingress":
        assert "Ingress" in kinds
        assert not kinds & gateway_kinds
    else:
        assert "Ingress" not in kinds
        # prod's certificates are the Gateway's (cert-manager): no grant needed there
        assert gateway_kinds - {"ReferenceGrant"} <= kinds


def test_staging_shows_a_canary_by_weight_and_by_header() -> None:
    objs = manifests(run_preview("staging", project=ROOT))
    route = next(
        m for m in objs if m["kind"] == "HTTPRoute" and m["metadata"]["name"] == "shop-web"
    )
    by_weight, by_header, _api = route["spec"]["rules"]
    assert [(b["name"], b["weight"]) for b in by_weight["backendRefs"]] == [
        ("shop-web", 90),
        ("shop-web-canary", 10),
    ]
    assert by_header["matches"][0]["headers"] == [
        {"type": "Exact", "name": "X-Canary", "value": "always"}
    ]
    assert [b["name"] for b in by_header["backendRefs"]] == ["shop-web-canary"]


def test_every_object_is_parented_to_a_kexpose_component(stack: PreviewResult) -> None:
    urns = {r.urn: r for r in stack.resources}
    for r in stack.resources:
        if r.type == "kexpose:index:Exposure":
            assert r.parent is not None
            assert "pulumi:pulumi:Stack" in r.parent
            continue
        assert r.parent in urns, f"{r.type} {r.name}"
        assert urns[r.parent].type.startswith("kexpose:index:")


def test_prod_has_no_nodeport_and_one_loadbalancer_with_ranges() -> None:
    result = run_preview("prod", project=ROOT)
    services = [m for m in manifests(result) if m["kind"] == "Service"]
    assert not [s for s in services if s["spec"]["type"] == "NodePort"]
    lbs = [s for s in services if s["spec"]["type"] == "LoadBalancer"]
    assert [s["metadata"]["name"] for s in lbs] == ["kexpose-controller"]
    assert lbs[0]["spec"]["loadBalancerSourceRanges"]
    assert lbs[0]["spec"]["allocateLoadBalancerNodePorts"] is False


@pytest.mark.parametrize("name", ["staging", "prod"])
def test_every_route_host_is_served_over_tls_only(name: str) -> None:
    objs = manifests(run_preview(name, project=ROOT))
    (gateway,) = [m for m in objs if m["kind"] == "Gateway"]
    listeners = {entry["name"]: entry for entry in gateway["spec"]["listeners"]}
    certificates = {
        (
            m["metadata"]["namespace"],
            m["spec"]["secretName"] if m["kind"] == "Certificate" else m["metadata"]["name"],
        ): (m["spec"]["dnsNames"] if m["kind"] == "Certificate" else None)
        for m in objs
        if m["kind"] == "Certificate"
        or (m["kind"] == "Secret" and m.get("type") == "kubernetes.io/tls")
    }
    routes = [m for m in objs if m["kind"] == "HTTPRoute" and m["metadata"]["namespace"] == "shop"]
    assert routes
    for route in routes:
        for parent in route["spec"]["parentRefs"]:
            listener = listeners[parent["sectionName"]]
            assert listener["protocol"] == "HTTPS"
            for host in route["spec"]["hostnames"]:
                assert covers(listener["hostname"], host)
            for ref in listener["tls"]["certificateRefs"]:
                key = (ref.get("namespace", gateway["metadata"]["namespace"]), ref["name"])
                if key[0] == gateway["metadata"]["namespace"]:
                    # cert-manager issues it for the Gateway's listeners (its gateway-shim)
                    assert gateway["metadata"]["annotations"]["cert-manager.io/cluster-issuer"]
                    continue
                assert key in certificates
                names = certificates[key]
                assert names is None or listener["hostname"] in names
    # Plain HTTP carries only the redirect, from the Gateway's own namespace.
    assert listeners["http"]["allowedRoutes"] == {"namespaces": {"from": "Same"}}


def test_prod_replicas_and_disruption_budgets() -> None:
    result = run_preview("prod", project=ROOT)
    objs = manifests(result)
    deployments = [m for m in objs if m["kind"] == "Deployment"]
    pdbs = {
        (m["metadata"]["namespace"], m["metadata"]["name"])
        for m in objs
        if m["kind"] == "PodDisruptionBudget"
    }
    for d in deployments:
        assert d["spec"]["replicas"] >= 2
        assert (d["metadata"]["namespace"], d["metadata"]["name"]) in pdbs


def test_dev_has_its_nodeport_debug_service() -> None:
    result = run_preview("dev", project=ROOT)
    debug = [
        m for m in manifests(result) if m["kind"] == "Service" and m["metadata"]["name"] == "debug"
    ]
    assert debug[0]["spec"]["type"] == "NodePort"
    assert debug[0]["spec"]["ports"][0]["nodePort"] == 30090


# --- the CLI: preview and render --------------------------------------------------------------


@pytest.mark.parametrize("name", STACKS)
def test_preview_cli_passes_the_shipped_stacks(name: str) -> None:
    result = CliRunner().invoke(
        cli, ["preview", "--stack", name, "--project-dir", str(ROOT), "-o", "json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    kinds = {r["kind"] for r in doc["resources"]}
    door = {"Ingress"} if name == "dev" else {"Gateway", "HTTPRoute"}
    assert {*door, "Service", "Deployment", "IngressClass"} <= kinds
    assert not [v for v in doc["violations"] if v["enforcement"] == "mandatory"]


def test_preview_table_has_summary() -> None:
    result = CliRunner().invoke(cli, ["preview", "-s", "dev", "--project-dir", str(ROOT)])
    assert result.exit_code == 0, result.output
    assert "dev: 21 Kubernetes objects" in result.stdout
    assert "2 NodePort" in result.stdout


def test_render_writes_one_file_per_object_and_redacts_secrets(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli, ["render", "-s", "staging", "--out", str(out), "--project-dir", str(ROOT)]
    )
    assert result.exit_code == 0, result.output
    files = sorted(out.glob("*.yaml"))
    docs = [yaml.safe_load(f.read_text()) for f in files]
    assert len(docs) == len(manifests(run_preview("staging", project=ROOT)))
    text = "\n".join(f.read_text() for f in files)
    assert "PRIVATE KEY" not in text
    secret = next(
        d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"].endswith("-tls")
    )
    assert secret["stringData"]["tls.key"].startswith("<redacted")
    # the certificate is public and stays, so that the rendered stack can be checked
    assert secret["stringData"]["tls.crt"].startswith("-----BEGIN CERTIFICATE-----")
    check = CliRunner().invoke(cli, ["check", str(out), "--environment", "staging"])
    assert check.exit_code == 0, check.output
    # a second render replaces the first; --show-secrets shows the key
    result = CliRunner().invoke(
        cli,
        [
            "render",
            "-s",
            "staging",
            "--out",
            str(out),
            "--project-dir",
            str(ROOT),
            "--show-secrets",
        ],
    )
    assert result.exit_code == 0
    assert len(list(out.glob("*.yaml"))) == len(files)
    assert "PRIVATE KEY" in "\n".join(f.read_text() for f in out.glob("*secret*.yaml"))


def test_render_refuses_a_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    result = CliRunner().invoke(
        cli, ["render", "-s", "dev", "--out", str(tmp_path), "--project-dir", str(ROOT)]
    )
    assert result.exit_code != 0
    assert (tmp_path / "keep.txt").read_text() == "mine"


def _variant(tmp_path: Path, name: str, edit: Any) -> Path:
    project = tmp_path / "project"
    (project / "stacks").mkdir(parents=True)
    shutil.copy(ROOT / "Pulumi.yaml", project)
    doc = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{name}.yaml").read_text())
    edit(doc["config"])
    (project / "stacks" / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump(doc))
    return project


def test_bad_prod_fails_with_rule_ids_and_config_paths(tmp_path: Path) -> None:
    def edit(config: dict[str, Any]) -> None:
        apps = config["kexpose:apps"]
        apps[2]["service"]["type"] = "NodePort"  # inventory
        apps[0]["tls"] = {"mode": "none"}  # shop-web: no TLS
        config["kexpose:controller"]["api"] = "ingress"  # the Ingress rules' own variant
        for rule in apps[0]["ingress"]["rules"]:  # a path's own auth needs the Gateway API
            for path in rule["paths"]:
                path.pop("auth", None)

    project = _variant(tmp_path, "prod", edit)
    result = CliRunner().invoke(cli, ["preview", "-s", "prod", "--project-dir", str(project)])
    assert result.exit_code == 1, result.output
    err = result.stderr
    assert "stacks/Pulumi.prod.yaml" in err
    assert "kexpose:apps[2].service.type: [svc-no-nodeport]" in err
    assert "kexpose:apps[0].tls: [ing-require-tls]" in err
    assert "ing-tls-covers-hosts" in err


def test_a_gateway_host_without_tls_fails_as_a_config_error(tmp_path: Path) -> None:
    def edit(config: dict[str, Any]) -> None:
        config["kexpose:apps"][0]["tls"] = {"mode": "none"}

    project = _variant(tmp_path, "prod", edit)
    result = CliRunner().invoke(cli, ["preview", "-s", "prod", "--project-dir", str(project)])
    assert result.exit_code == 2, result.output
    assert "kexpose:apps[0].tls.mode:" in result.stderr
    assert "only as a redirect to HTTPS" in result.stderr


def test_dangling_backend_fails_as_a_config_error(tmp_path: Path) -> None:
    def edit(config: dict[str, Any]) -> None:
        config["kexpose:apps"][0]["ingress"]["rules"][0]["paths"][1]["service"] = "checkout"

    project = _variant(tmp_path, "prod", edit)
    result = CliRunner().invoke(cli, ["preview", "-s", "prod", "--project-dir", str(project)])
    assert result.exit_code == 2
    assert "kexpose:apps[0].ingress.rules[0].paths[1].service" in result.stderr
    assert "'checkout'" in result.stderr


def test_unknown_stack_and_missing_project(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["preview", "-s", "qa", "--project-dir", str(ROOT)])
    assert result.exit_code == 2
    assert "stacks here: dev, prod, staging" in result.stderr
    result = CliRunner().invoke(cli, ["preview", "-s", "dev", "--project-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "Pulumi.yaml" in result.stderr


def test_the_program_directory_finds_the_project_virtualenv() -> None:
    # Python dynamic providers (staging's self-signed certificate) are started by the CLI in the
    # program directory (`main: stacks/`) and resolve runtime.options.virtualenv from there,
    # while the language host resolves it from the project root (pulumi/pulumi#7061). The
    # stacks/.venv link makes both name the same virtualenv.
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    venv = project["runtime"]["options"]["virtualenv"]
    program = ROOT / project["main"]
    link = program / venv
    assert link.is_symlink()
    assert (program / link.readlink()).resolve() == (ROOT / venv).resolve()


def test_preview_shows_gateway_api_objects_like_any_other() -> None:
    result = CliRunner().invoke(
        cli, ["preview", "--stack", "prod", "--project-dir", str(ROOT), "-o", "json"]
    )
    assert result.exit_code == 0, result.output
    rows = {(r["kind"], r["name"]): r for r in json.loads(result.stdout)["resources"]}
    gateway = rows["Gateway", "kexpose-system/kexpose"]
    assert gateway["type"] == "3 listeners (HTTP:80, HTTPS:443, HTTPS:443)"
    assert gateway["hosts"] == "rpc.shop.example.com, shop.example.com"
    assert gateway["tls"] == (
        "cert-manager letsencrypt-prod -> kexpose-system/shop-shop-rpc-tls, "
        "kexpose-system/shop-shop-web-tls"
    )
    assert gateway["controller"] == "kexpose"
    route = rows["HTTPRoute", "shop/shop-web"]
    assert route["hosts"] == "shop.example.com"
    assert route["controller"] == "kexpose-system/kexpose#https-shop.example.com"
    assert rows["GatewayClass", "kexpose"]["controller"] == "kexpose.dev/gateway-controller"
    grpc = rows["GRPCRoute", "shop/shop-rpc"]
    assert grpc["type"] == "1 rules"
    assert grpc["hosts"] == "rpc.shop.example.com"
    assert grpc["controller"] == "kexpose-system/kexpose#https-rpc.shop.example.com"


def test_render_puts_the_crds_before_the_objects_of_their_kinds(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli, ["render", "-s", "prod", "--out", str(out), "--project-dir", str(ROOT)]
    )
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    crds = [i for i, n in enumerate(names) if "customresourcedefinition" in n]
    gateway_objects = [
        i
        for i, n in enumerate(names)
        if n.split("-")[1] in ("gateway", "httproute", "grpcroute", "gatewayclass")
    ]
    assert crds
    assert gateway_objects
    assert max(crds) < min(gateway_objects)
