"""The command line: bad flags and unusable files end with a clear message and exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from kexpose.proxy.cli import command

BAD_FLAGS = [
    (["--manifests", "/nonexistent/x.yaml"], "no such file or directory"),
    (["--default-tls-cert", "/nonexistent.pem"], "give both"),
    (["--default-tls-cert", "/nonexistent.pem", "--default-tls-key", "/x.key"], "cannot read"),
    (["--publish-service", "nonamespace"], "expected NAMESPACE/NAME"),
    (["--publish-service", "a/b", "--publish-address", "1.2.3.4"], "exclude each other"),
    (["--http-port", "70000"], "70000"),
    (["--workers", "0"], "0"),
    (["--log-format", "xml"], "xml"),
    (["--kubeconfig", "/nonexistent/config"], "no such file"),
    (["--no-such-flag"], "No such option"),
]


@pytest.mark.parametrize(("argv", "message"), BAD_FLAGS, ids=[" ".join(a) for a, _ in BAD_FLAGS])
def test_bad_flags_exit_2(argv: list[str], message: str) -> None:
    result = CliRunner().invoke(command, argv)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_unusable_files_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: [unclosed\n")
    result = CliRunner().invoke(command, ["--manifests", str(bad), "--log-format", "text"])
    assert result.exit_code == 2
    assert "not valid YAML" in result.output
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("not a certificate")
    key.write_text("not a key")
    result = CliRunner().invoke(
        command, ["--default-tls-cert", str(cert), "--default-tls-key", str(key)]
    )
    assert result.exit_code == 2
    assert "usable pair" in result.output
