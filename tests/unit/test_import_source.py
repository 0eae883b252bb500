"""Reading Ingresses of every version and their Services (``kexpose.importer.source``)."""

from __future__ import annotations

from typing import Any

import pytest

from kexpose.errors import InputError
from kexpose.importer import Origin, read_objects
from kexpose.importer.source import SourceIngress

AT = Origin("in.yaml", 3)


def _ingress(api: str, spec: dict[str, Any], **annotations: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "web", "namespace": "shop"}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": api, "kind": "Ingress", "metadata": meta, "spec": spec}


def _read(obj: dict[str, Any]) -> SourceIngress:
    (ing,) = read_objects([(obj, AT)]).ingresses
    return ing


V1BETA1_RULE = {
    "host": "a.example.com",
    "http": {"paths": [{"path": "/x", "backend": {"serviceName": "web", "servicePort": "http"}}]},
}
V1_RULE = {
    "host": "a.example.com",
    "http": {
        "paths": [
            {
                "path": "/x",
                "pathType": "Prefix",
                "backend": {"service": {"name": "web", "port": {"number": 80}}},
            }
        ]
    },
}


@pytest.mark.parametrize(
    ("api", "rule", "path_type", "port"),
    [
        ("extensions/v1beta1", V1BETA1_RULE, "ImplementationSpecific", "http"),
        ("networking.k8s.io/v1beta1", V1BETA1_RULE, "ImplementationSpecific", "http"),
        ("networking.k8s.io/v1", V1_RULE, "Prefix", 80),
    ],
)
def test_every_version_reads_to_one_shape(
    api: str, rule: dict[str, Any], path_type: str, port: int | str
) -> None:
    ing = _read(_ingress(api, {"rules": [rule]}))
    (path,) = ing.rules[0].paths
    assert (ing.api_version, path.path_type, path.path) == (api, path_type, "/x")
    assert path.backend is not None
    assert (path.backend.service, path.backend.port) == ("web", port)


def test_v1beta1_default_backend_and_numeric_string_port() -> None:
    ing = _read(
        _ingress(
            "networking.k8s.io/v1beta1", {"backend": {"serviceName": "d", "servicePort": "8080"}}
        )
    )
    assert ing.default_backend is not None
    assert (ing.default_backend.service, ing.default_backend.port) == ("d", 8080)
    assert ing.default_backend.field == "spec.backend"


def test_class_field_wins_then_legacy_annotation() -> None:
    legacy = _read(
        _ingress(
            "networking.k8s.io/v1", {"rules": [V1_RULE]}, **{"kubernetes.io/ingress.class": "nginx"}
        )
    )
    field = _read(_ingress("networking.k8s.io/v1", {"ingressClassName": "x", "rules": [V1_RULE]}))
    assert (legacy.class_name, field.class_name) == ("nginx", "x")


def test_a_missing_path_is_every_path() -> None:
    rule = {"http": {"paths": [{"backend": {"serviceName": "t", "servicePort": 80}}]}}
    ing = _read(_ingress("extensions/v1beta1", {"rules": [rule]}))
    assert ing.rules[0].host is None
    assert ing.rules[0].paths[0].path == "/"


@pytest.mark.parametrize(
    ("api", "spec", "field", "shown"),
    [
        ("networking.k8s.io/v2", {"rules": [V1_RULE]}, "apiVersion", "'networking.k8s.io/v2'"),
        (
            "networking.k8s.io/v1",
            {
                "rules": [
                    {
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "backend": {"service": {"name": "w", "port": {"number": 80}}},
                                }
                            ]
                        }
                    }
                ]
            },
            "spec.rules[0].http.paths[0].pathType",
            "None",
        ),
        (
            "networking.k8s.io/v1beta1",
            {"rules": [{"http": {"paths": [{"path": "/", "backend": {"serviceName": "w"}}]}}]},
            "spec.rules[0].http.paths[0].backend.servicePort",
            "None",
        ),
        (
            "networking.k8s.io/v1",
            {
                "rules": [
                    {
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {
                                        "service": {
                                            "name": "w",
                                            "port": {"number": 80, "name": "http"},
                                        }
                                    },
                                }
                            ]
                        }
                    }
                ]
            },
            "spec.rules[0].http.paths[0].backend.service.port",
            "{'number': 80, 'name': 'http'}",
        ),
        (
            "networking.k8s.io/v1",
            {"rules": [{"host": "Bad_Host", "http": {"paths": []}}]},
            "spec.rules[0].host",
            "'Bad_Host'",
        ),
        (
            "networking.k8s.io/v1beta1",
            {
                "rules": [
                    {
                        "http": {
                            "paths": [
                                {"path": "x", "backend": {"serviceName": "w", "servicePort": 80}}
                            ]
                        }
                    }
                ]
            },
            "spec.rules[0].http.paths[0].path",
            "'x'",
        ),
        ("networking.k8s.io/v1", {}, "spec", "{}"),
        (
            "networking.k8s.io/v1",
            {
                "rules": [
                    {
                        "http": {
                            "paths": [
                                {
                                    "path": "/a//b",
                                    "pathType": "Prefix",
                                    "backend": {"service": {"name": "w", "port": {"number": 80}}},
                                }
                            ]
                        }
                    }
                ]
            },
            "spec.rules[0].http.paths[0].path",
            "'/a//b'",
        ),
        (
            "networking.k8s.io/v1",
            {"tls": [{"hosts": ["ok.example.com", "No_Good"]}], "rules": [V1_RULE]},
            "spec.tls[0].hosts[1]",
            "'No_Good'",
        ),
    ],
    ids=[
        "version",
        "v1-no-pathtype",
        "no-port",
        "port-both",
        "host",
        "relative-path",
        "empty",
        "double-slash",
        "tls-host",
    ],
)
def test_bad_ingress_names_file_object_field_and_value(
    api: str, spec: dict[str, Any], field: str, shown: str
) -> None:
    with pytest.raises(InputError) as caught:
        _read(_ingress(api, spec))
    message = str(caught.value)
    assert message.startswith("in.yaml:3: Ingress/shop/web ")
    assert f" {field}: {shown} " in message
    assert (caught.value.file, caught.value.line) == ("in.yaml", 3)


def test_an_ingress_given_twice_is_refused() -> None:
    obj = _ingress("networking.k8s.io/v1", {"rules": [V1_RULE]})
    with pytest.raises(InputError, match="given twice"):
        read_objects([(obj, AT), (obj, Origin("other.yaml", 1))])


def test_services_are_read_and_other_kinds_counted_secret_data_untouched() -> None:
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "8080"}]},
    }
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "data": {"tls.key": object()},
    }
    source = read_objects([(svc, AT), (secret, AT)])
    read = source.services["shop", "web"]
    assert read.selector == {"app": "web"}
    assert (read.ports[0].port, read.ports[0].target_port, read.ports[0].name) == (80, 8080, None)
    assert source.ignored == 1
