"""``kexpose import`` as users run it: sources, outputs, exit codes (click's runner)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from kexpose.cli import cli

MIXED = Path(__file__).resolve().parents[1] / "fixtures" / "import" / "mixed"
EXPLAINER = """\
apiVersion: networking.k8s.io/v1beta1
kind: Ingress
metadata:
  name: test-ingress
  annotations:
    nginx.ingress.kubernetes.io/rewrite-target: /
spec:
  rules:
  - http:
      paths:
      - path: /testpath
        backend:
          serviceName: test
          servicePort: 80
"""


def invoke(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["import", *args], input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_the_mixed_folder_imports_for_dev(tmp_path: Path) -> None:
    out = tmp_path / "Pulumi.imported.yaml"
    code, stdout, _ = invoke(
        str(MIXED), "-e", "dev", "--ingress-class", "nginx", "--stack-file", str(out), "-o", "json"
    )
    report = json.loads(stdout)["report"]
    # Rewrites and canaries need api gateway, and with it shop/admin's basic auth becomes an
    # EdgeAuth object, which auth-secret-provisioned reads as it reads the Ingress annotations
    # (policies/README.md): its users Secret lives in the cluster, not in the stack, so this is
    # the one mandatory verdict, as with --to ingress.
    assert code == 1
    assert [(v["rule"], v["resource"], v["field"]) for v in report["violations"]] == [
        ("auth-secret-provisioned", "EdgeAuth/shop/admin", "spec.secret")
    ]
    assert "className: kexpose\n    api: gateway\n" in out.read_text()
    assert report["ingresses"] == 24
    assert report["counts"]["refused"] == 1
    assert report["counts"]["converted"] > 0
    assert report["counts"]["not-convertible"] > 0
    assert out.read_text().startswith("# Written by `kexpose import`")


def test_prod_breaks_mandatory_rules_exit_1() -> None:
    code, stdout, _ = invoke(str(MIXED), "-e", "prod", "--stack-file", "/dev/null", "-o", "json")
    assert code == 1
    rules = {v["rule"] for v in json.loads(stdout)["report"]["violations"]}
    assert {"ing-require-tls", "ing-no-default-backend"} <= rules


def test_stdin_and_stack_to_stdout_puts_the_report_on_stderr() -> None:
    code, stdout, stderr = invoke("-", "-e", "dev", stdin=EXPLAINER)
    assert code == 0
    assert "kexpose:apps:" in stdout
    assert "rewrite-target" in stderr
    assert "Migration to kexpose" in stderr


def test_to_ingress_pipes_into_check(tmp_path: Path) -> None:
    code, stdout, _ = invoke("-", "-e", "dev", "--to", "ingress", stdin=EXPLAINER)
    assert code == 0
    (tmp_path / "out.yaml").write_text(stdout)
    result = CliRunner().invoke(cli, ["check", str(tmp_path / "out.yaml"), "-e", "dev"])
    assert result.exit_code == 0, result.output


def test_to_gateway_renders_httproutes_and_edge_auth(
    tmp_path: Path,
) -> None:
    out = tmp_path / "gateway.yaml"
    code, stdout, _ = invoke(
        str(MIXED), "-e", "dev", "--ingress-class", "nginx", "--to", "gateway", "--out", str(out),
        "-o", "json",
    )  # fmt: skip
    report = json.loads(stdout)["report"]
    # 1: shop/admin's EdgeAuth names a users Secret that is in the cluster, not in the output
    # (auth-secret-provisioned), as --to ingress says of its annotation.
    assert code == 1
    assert {v["rule"] for v in report["violations"] if v["enforcement"] == "mandatory"} == {
        "auth-secret-provisioned"
    }
    kinds = {o["kind"] for o in yaml.safe_load_all(out.read_text())}
    assert {"GatewayClass", "Gateway", "HTTPRoute"} <= kinds
    assert "Ingress" not in kinds
    assert "EdgeAuth" in kinds
    withheld = {
        i["subject"]
        for i in report["items"]
        if i["topic"] == "Ingress" and i["detail"].startswith("withheld whole")
    }
    # Only the gRPC backend: the protected Ingresses (shop/admin, payments/console) convert.
    assert withheld == {"Ingress/payments/ledger"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            EXPLAINER.replace("servicePort: 80", "servicePort: 0"),
            "<stdin>:1: Ingress/default/test-ingress "
            "spec.rules[0].http.paths[0].backend.servicePort: 0 is not usable; a port number "
            "is 1-65535",
        ),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", "no Ingress in -"),
        ("a: [", "<stdin>"),
    ],
    ids=["bad-port", "no-ingress", "yaml"],
)
def test_bad_input_exit_2_names_file_object_field_value(text: str, expected: str) -> None:
    code, _, stderr = invoke("-", "-e", "dev", stdin=text)
    assert code == 2
    assert expected in stderr


def test_an_unwritable_stack_file_exit_3(tmp_path: Path) -> None:
    code, _, stderr = invoke(
        "-", "-e", "dev", "--stack-file", str(tmp_path / "no" / "x.yaml"), stdin=EXPLAINER
    )
    assert code == 3
    assert "cannot write" in stderr
