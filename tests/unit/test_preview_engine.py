"""The offline engine's shortcuts (kexpose.mock_runtime) record exactly what the SDK's mock path
records: every resource, parent, input and secret path of the shipped stacks and of a generated
many-app stack, compared record by record with ``shortcuts=False``."""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import json
import threading
import weakref
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest
from google.protobuf import struct_pb2
from pulumi.runtime import rpc

from kexpose.certs import self_signed
from kexpose.mock_runtime import (
    InlineExecutor,
    decode_properties,
    drop_aliases,
    encode_plain,
    paused_gc,
    release_frozen,
    sdk_fast_paths,
)
from kexpose.preview import (
    PreviewResult,
    Recorded,
    config_path_of,
    load_stack_config,
    run_preview,
    run_program,
    stack_lines,
)
from kexpose.program import main

ROOT = Path(__file__).resolve().parents[2]

_PAIR = self_signed(["given.example.com"])
#: One app per variant, cycled: self-signed TLS, given TLS (secret config), none, a
#: LoadBalancer Service, an app without ingress, two hosts and paths.
_VARIANTS = ("self-signed", "secret", "plain", "lb", "internal", "multi")


def _app(i: int) -> dict[str, Any]:
    variant = _VARIANTS[i % len(_VARIANTS)]
    name = f"app-{i:03d}"
    host = f"{name}.dev.example.com"
    app: dict[str, Any] = {
        "name": name,
        "namespace": f"team-{i % 4}",
        "labels": {"app.kubernetes.io/part-of": f"team-{i % 4}"},
        "workload": {
            "image": "registry.k8s.io/e2e-test-images/agnhost:2.52",
            "args": ["netexec", "--http-port=8080"],
            "replicas": 1 + i % 3,
            "ports": [{"name": "http", "containerPort": 8080}],
            "readiness": {"port": "http", "path": "/healthz"},
        },
        "service": {"ports": [{"name": "http", "port": 80}]},
    }
    rules = [{"host": host, "paths": [{"path": "/", "port": "http"}]}]
    if variant == "multi":
        rules = [
            {
                "host": host,
                "paths": [{"path": "/", "port": "http"}, {"path": "/v2", "port": "http"}],
            },
            {"host": f"api.{host}", "paths": [{"path": "/", "port": "http"}]},
        ]
    if variant != "internal":
        app["ingress"] = {"rules": rules}
    if variant in ("self-signed", "multi", "lb"):
        app["tls"] = {"mode": "self-signed", "validityDays": 30 + i}
    elif variant == "secret":
        app["ingress"]["rules"][0]["host"] = "given.example.com"
        app["tls"] = {"mode": "secret", "certificateConfig": "cert", "privateKeyConfig": "key"}
    elif variant == "plain":
        app["tls"] = {"mode": "none"}
    if variant == "lb":
        app["service"] = {**app["service"], "type": "LoadBalancer"}
    return app


def _generated_config(n: int) -> dict[str, Any]:
    apps = [_app(i) for i in range(n)]
    # One given certificate covers one host only: a single app uses it.
    seen_secret = False
    for app in apps:
        if app.get("tls", {}).get("mode") == "secret":
            if seen_secret:
                app["tls"] = {"mode": "self-signed"}
                app["ingress"]["rules"][0]["host"] = f"{app['name']}.dev.example.com"
            seen_secret = True
    balancers = ["kexpose-system/kexpose-controller"] + [
        f"{a['namespace']}/{a['name']}" for a in apps if a["service"].get("type") == "LoadBalancer"
    ]
    return {
        "environment": "dev",
        "controller": {"kind": "kexpose", "replicas": 2},
        "apps": apps,
        "policy": {"allowed_loadbalancers": balancers, "public_loadbalancers": balancers},
        "cert": _PAIR.cert_pem,
        "key": _PAIR.key_pem,
    }


def _comparable(records: list[Recorded]) -> list[tuple[Any, ...]]:
    """Records by URN. Cluster IPs are handed out in registration order, which the SDK's
    threaded path does not fix, so outputs are compared without them."""

    def outputs(r: Recorded) -> dict[str, Any]:
        out = dict(r.outputs)
        if isinstance(out.get("spec"), dict):
            out["spec"] = {k: v for k, v in out["spec"].items() if k != "clusterIP"}
        return out

    return sorted(
        (r.urn, r.type, r.name, r.parent, r.custom, r.inputs, r.secret_paths, outputs(r))
        for r in records
    )


def _rendered(manifests: list[tuple[Recorded, dict[str, Any]]]) -> list[str]:
    return sorted(json.dumps(m, sort_keys=True) for _, m in manifests)


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_shortcuts_record_the_shipped_stacks_as_the_sdk_path_does(stack: str) -> None:
    fast = run_preview(stack, project=ROOT, placeholders=True)
    plain = run_preview(stack, project=ROOT, placeholders=True, shortcuts=False)
    assert len(fast.resources) == len(plain.resources) > 10
    assert _comparable(list(fast.resources)) == _comparable(list(plain.resources))
    assert _rendered(fast.manifests()) == _rendered(plain.manifests())


def test_shortcuts_record_a_generated_stack_as_the_sdk_path_does() -> None:
    config = _generated_config(36)
    fast = run_program(main, stack="dev", config=config, placeholders=True)
    plain = run_program(main, stack="dev", config=config, placeholders=True, shortcuts=False)
    kinds = {r.type for r in fast}
    assert {
        "kubernetes:core/v1:Secret",
        "kubernetes:networking.k8s.io/v1:Ingress",
        "pulumi-python:dynamic:Resource",
    } <= kinds
    assert len(fast) == len(plain) > 36 * 4
    assert _comparable(fast) == _comparable(plain)
    # The secrets are where the SDK path puts them: given and generated TLS material alike.
    secrets = {r.name: r.secret_paths for r in fast if r.type == "kubernetes:core/v1:Secret"}
    assert secrets
    assert all(secrets.values())
    # The same cluster IPs are handed out, whatever the order.
    ips = sorted(
        r.outputs["spec"]["clusterIP"] for r in plain if r.type == "kubernetes:core/v1:Service"
    )
    assert ips == sorted(
        r.outputs["spec"]["clusterIP"] for r in fast if r.type == "kubernetes:core/v1:Service"
    )


def test_shortcuts_register_in_program_order() -> None:
    """Inline monitor calls leave nothing to thread scheduling: two runs hand out the same
    cluster IP to the same Service."""
    config = _generated_config(12)

    def ips() -> dict[str, Any]:
        records = run_program(main, stack="dev", config=config, placeholders=True)
        return {r.urn: r.outputs.get("spec") for r in records if r.type.endswith(":Service")}

    assert ips() == ips()


def _struct(value: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(value)
    return struct


def _secret(value: Any) -> dict[str, Any]:
    return {rpc._special_sig_key: rpc._special_secret_sig, "value": value}


@pytest.mark.parametrize(
    "value",
    [
        {"a": "x", "n": 3.0, "b": True, "l": ["x", 1.0, None], "m": {"k": {"j": []}}},
        {"dropped": None, "m": {"dropped": None, "kept": ""}},
        {"s": _secret("pem")},
        {"data": {"tls.crt": "c", "tls.key": _secret("k")}},
        {"list": ["a", _secret("b")], "deep": {"x": {"y": _secret({"z": 1.0})}}},
        {"unknown": rpc.UNKNOWN, "m": {"u": rpc.UNKNOWN}},
        {"asset": {rpc._special_sig_key: rpc._special_asset_sig, "text": "hi"}},
        {"__provider": "serialized", "hosts": ["a.example.com"]},
    ],
    ids=["plain", "nulls", "secret", "secret-in-map", "secret-in-list", "unknown", "asset", "dyn"],
)
def test_the_wire_decoder_gives_what_the_sdk_decoder_gives(value: dict[str, Any]) -> None:
    struct = _struct(value)
    assert _plain(decode_properties(struct)) == _plain(rpc.deserialize_properties(struct))


def _plain(value: Any) -> Any:
    """Assets compare by identity; compare them by what they hold."""
    if isinstance(value, pulumi.StringAsset):
        return ("StringAsset", value.text)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def test_paused_gc_resumes_only_what_was_on() -> None:
    assert gc.isenabled()
    seen: list[bool] = []

    def fail_inside() -> None:
        with paused_gc():
            seen.append(gc.isenabled())
            raise RuntimeError

    with pytest.raises(RuntimeError):
        fail_inside()
    assert seen == [False]
    assert gc.isenabled()
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_inline_executor_runs_on_the_calling_thread() -> None:
    executor = InlineExecutor()
    done = executor.submit(threading.get_ident)
    assert done.result() == threading.get_ident()

    def fail() -> None:
        raise ValueError("from the call")

    failed = executor.submit(fail)
    with pytest.raises(ValueError, match="from the call"):
        failed.result()
    assert isinstance(failed, concurrent.futures.Future)


def test_drop_aliases_keeps_everything_else() -> None:
    parent = pulumi.Resource.__new__(pulumi.Resource)
    opts = pulumi.ResourceOptions(
        parent=parent,
        aliases=[pulumi.Alias(type_="kubernetes:apps/v1beta1:Deployment")],
        additional_secret_outputs=["data"],
    )
    args = pulumi.ResourceTransformationArgs(
        resource=parent, type_="kubernetes:apps/v1:Deployment", name="d", props={"x": 1}, opts=opts
    )
    result = drop_aliases(args)
    assert result is not None
    assert result.opts.aliases is None
    assert result.opts.parent is parent
    assert result.opts.additional_secret_outputs == ["data"]
    assert result.props == {"x": 1}
    assert opts.aliases  # the resource's own options are not changed
    no_alias = pulumi.ResourceTransformationArgs(
        resource=parent, type_="t", name="n", props={}, opts=pulumi.ResourceOptions()
    )
    assert drop_aliases(no_alias) is None


def _config_path_by_scanning(result: PreviewResult, record: Recorded) -> str | None:
    """The straightforward reading of config_path_of's contract: walk up the parents, and
    take the first app whose ``-namespace-name`` ends the ExposedApp's name."""
    by_urn = {r.urn: r for r in result.resources}
    apps = result.stack_config["kexpose:apps"]
    parent = by_urn.get(record.parent or "")
    while parent is not None:
        if parent.type == "kexpose:index:IngressController":
            return "kexpose:controller"
        if parent.type == "kexpose:index:ExposedApp":
            for i, app in enumerate(apps):
                if parent.name.endswith(f"-{app['namespace']}-{app['name']}"):
                    return f"kexpose:apps[{i}]"
        parent = by_urn.get(parent.parent or "")
    return None


def test_config_paths_of_every_object() -> None:
    config = _generated_config(14)
    # Names with dashes: the component "kexpose-a-b-c" ends with both "-a-b-c" and "-b-c".
    for namespace in ("a-b", "b"):
        config["apps"].append({**_app(4), "name": "c", "namespace": namespace})
    records = run_program(main, stack="dev", config=config, placeholders=True)
    result = PreviewResult(
        stack="dev",
        stack_file=ROOT / "stacks" / "Pulumi.dev.yaml",
        resources=tuple(records),
        stack_config={f"kexpose:{k}": v for k, v in config.items()},
    )
    paths = {r.urn: config_path_of(result, r) for r in records}
    assert paths == {r.urn: _config_path_by_scanning(result, r) for r in records}
    assert {"kexpose:controller", "kexpose:apps[0]", "kexpose:apps[14]", "kexpose:apps[15]"} <= set(
        paths.values()
    )
    assert None in paths.values()  # the namespaces


def test_sdk_fast_paths_give_what_the_sdk_gives_and_are_restored() -> None:
    from pulumi import _types
    from pulumi.runtime import resource as sdk_resource

    original_urn, original_types = sdk_resource.create_urn, _types.resource_types
    parent = "urn:pulumi:dev::kexpose::kexpose:index:Exposure$kexpose:index:ExposedApp::web"

    async def urns() -> list[str | None]:
        made = [
            sdk_resource.create_urn("web-service", "kubernetes:core/v1:Service", parent),
            sdk_resource.create_urn("kexpose", "kexpose:index:Exposure", None, "kexpose", "dev"),
        ]
        return [await urn.future() for urn in made]

    loop = asyncio.new_event_loop()
    try:
        expected = loop.run_until_complete(urns())
        with sdk_fast_paths():
            assert sdk_resource.create_urn is not original_urn
            assert loop.run_until_complete(urns()) == expected
            types = _types.resource_types(k8s.core.v1.Service)
            assert types == original_types(k8s.core.v1.Service)
            types.clear()  # a caller's copy: the next caller still gets every type
            assert _types.resource_types(k8s.core.v1.Service)
    finally:
        loop.close()
    assert expected[0] == (
        "urn:pulumi:dev::kexpose::kexpose:index:Exposure$kexpose:index:ExposedApp"
        "$kubernetes:core/v1:Service::web-service"
    )
    assert (sdk_resource.create_urn, _types.resource_types) == (original_urn, original_types)


def test_a_changed_stack_file_is_read_again(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: kexpose\nruntime: python\n")
    stack_file = tmp_path / "Pulumi.s.yaml"
    stack_file.write_text("config:\n  kexpose:environment: dev\n")
    assert load_stack_config(tmp_path, "s")[1] == {"kexpose:environment": "dev"}
    assert stack_lines(stack_file) == {"": 2, "kexpose:environment": 2}
    stack_file.write_text("# moved\nconfig:\n  kexpose:environment: staging\n")
    assert load_stack_config(tmp_path, "s")[1] == {"kexpose:environment": "staging"}
    assert stack_lines(stack_file) == {"": 3, "kexpose:environment": 3}


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_what_a_paused_block_leaves_is_set_aside_until_released() -> None:
    release_frozen()
    with paused_gc():
        survivor = _Cycle()
    assert gc.get_freeze_count() > 0
    ref = weakref.ref(survivor)
    del survivor
    gc.collect()
    assert ref() is not None  # frozen: a collection does not see it
    release_frozen()
    assert gc.get_freeze_count() == 0
    assert ref() is None  # handed back and collected


def test_answers_are_encoded_as_the_sdk_encodes_them() -> None:
    state = {
        "metadata": {"name": "web", "labels": {"a": "b"}, "gone": None},
        "spec": {"clusterIP": "10.96.0.10", "ports": [{"port": 80.0}]},
        "key_pem": _secret("k"),
        "validity_days": 30,
        "absent": None,
    }
    loop = asyncio.new_event_loop()
    try:
        expected = loop.run_until_complete(rpc.serialize_properties(state, {}))
    finally:
        loop.close()
    assert encode_plain(state) == expected

    with pytest.raises(TypeError, match="plain data"):
        encode_plain({"pending": _Pending()})


class _Pending:
    """An awaitable that is not ready at its first step."""

    def __await__(self) -> Generator[None, None, str]:
        yield
        return "x"
