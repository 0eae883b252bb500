"""The conformance harness's pure parts: reading a ConformanceReport (conformance/apis/v1 of
gateway-api v1.6.3) and building the suite binary's command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.e2e.conformance import (
    Implementation,
    LevelSummary,
    ReportError,
    SuiteOptions,
    parse_report,
    suite_arguments,
    summary_table,
)

# Written by hand in the schema of conformance/apis/v1 (ConformanceReport, ProfileReport,
# ExtendedStatus, Status, Statistics: the statistics keys are Go field names, as sigs.k8s.io/yaml
# writes a struct without json tags).
SAMPLE = """\
apiVersion: gateway.networking.k8s.io/v1
date: "2026-12-06T04:30:00Z"
gatewayAPIChannel: standard
gatewayAPIVersion: v1.6.3
implementation:
  contact:
  - kexpose developers
  organization: kexpose
  project: kexpose-proxy
  url: https://kexpose.dev
  version: v0.1.0
kind: ConformanceReport
mode: default
profiles:
- core:
    failedTests:
    - HTTPRouteHostnameIntersection
    result: failure
    statistics:
      Failed: 1
      Passed: 34
      Skipped: 1
    skippedTests:
    - HTTPRouteInvalidCrossNamespaceParentRef
  extended:
    result: partial
    statistics:
      Failed: 0
      Passed: 20
      Skipped: 2
    skippedTests:
    - HTTPRouteRequestMirror
    - HTTPRouteRequestMultipleMirrors
    supportedFeatures:
    - HTTPRouteQueryParamMatching
    - HTTPRouteRequestMirror
    unsupportedFeatures:
    - HTTPRouteBackendProtocolH2C
  name: GATEWAY-HTTP
  summary: Core tests failed with 1 test failures. Extended tests partially succeeded with 2 test
    skips.
- core:
    result: success
    statistics:
      Failed: 0
      Passed: 12
      Skipped: 0
  name: GATEWAY-GRPC
  summary: Core tests succeeded.
"""


def test_a_report_reads_as_per_profile_core_and_extended_counts() -> None:
    report = parse_report(SAMPLE)
    assert (report.gateway_api_version, report.channel, report.mode) == (
        "v1.6.3",
        "standard",
        "default",
    )
    assert report.implementation == Implementation()
    http = report.profile("GATEWAY-HTTP")
    assert http.core == LevelSummary(
        result="failure",
        passed=34,
        failed=1,
        skipped=1,
        failed_tests=("HTTPRouteHostnameIntersection",),
        skipped_tests=("HTTPRouteInvalidCrossNamespaceParentRef",),
    )
    assert http.extended is not None
    assert (http.extended.result, http.extended.passed, http.extended.skipped) == ("partial", 20, 2)
    assert http.extended.supported_features == (
        "HTTPRouteQueryParamMatching",
        "HTTPRouteRequestMirror",
    )
    assert http.extended.unsupported_features == ("HTTPRouteBackendProtocolH2C",)
    assert http.summary.startswith("Core tests failed with 1 test failures.")
    grpc = report.profile("GATEWAY-GRPC")
    assert grpc.extended is None
    assert (grpc.core.result, grpc.core.passed) == ("success", 12)
    with pytest.raises(KeyError, match="GATEWAY-TLS"):
        report.profile("GATEWAY-TLS")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("kind: ConformanceReport", "kind: Gateway"), "report.kind"),
        (("result: failure", "result: failed"), r"profiles\[0\].core.result"),
        (("Passed: 34", "Passed: many"), r"profiles\[0\].core.statistics.Passed"),
        (("Passed: 12", "Passed: -1"), r"profiles\[1\].core.statistics.Passed"),
        (("  - kexpose developers", "    x: 1"), "implementation.contact"),
        (
            ("    - HTTPRouteRequestMirror\n    - HTTPRouteRequestMultipleMirrors", "      a: b"),
            r"extended.skippedTests",
        ),
    ],
)
def test_a_report_off_the_schema_is_refused_naming_the_field(
    change: tuple[str, str], message: str
) -> None:
    old, new = change
    assert old in SAMPLE
    with pytest.raises(ReportError, match=message):
        parse_report(SAMPLE.replace(old, new, 1))


def test_a_setup_failure_report_has_no_profiles() -> None:
    # What the suite writes when its setup fails (e.g. the GatewayClass never Accepted).
    head = SAMPLE.split("profiles:")[0]
    assert parse_report(head + "profiles: null\n").profiles == ()


def test_what_is_not_yaml_is_a_report_error() -> None:
    with pytest.raises(ReportError, match="not YAML"):
        parse_report("profiles: [\n")
    with pytest.raises(ReportError, match="expected a mapping"):
        parse_report("- a list\n")


def test_the_default_command_line_runs_gateway_http_with_a_report_and_features_from_status() -> (
    None
):
    args = suite_arguments(SuiteOptions(report_output=Path("/r/report.yaml")))
    assert args == [
        "-gateway-class=gateway-conformance",
        "-conformance-profiles=GATEWAY-HTTP",
        "-report-output=/r/report.yaml",
        "-organization=kexpose",
        "-project=kexpose-proxy",
        "-url=https://kexpose.dev",
        "-version=v0.1.0",
        "-contact=kexpose developers",
        "-cleanup-base-resources=true",
        "-usable-address=127.0.10.254",
        "-unusable-address=192.0.2.1",
        "-test.timeout=60m",
        "-test.v",
    ]
    # No feature flag: the suite then reads the GatewayClass status.supportedFeatures.
    assert not [a for a in args if "features" in a]


def test_every_option_reaches_its_flag() -> None:
    args = suite_arguments(
        SuiteOptions(
            report_output=Path("out.yaml"),
            gateway_class="kexpose",
            profiles=("GATEWAY-HTTP", "GATEWAY-GRPC"),
            implementation=Implementation(version="v9", contact=("@a", "@b")),
            supported_features=("Gateway", "HTTPRoute", "HTTPRouteQueryParamMatching"),
            exempt_features=("HTTPRouteRequestMirror",),
            skip_tests=("HTTPRouteRequestMirror", "HTTPRouteRequestMultipleMirrors"),
            run_test="HTTPRouteSimpleSameNamespace",
            cleanup_base_resources=False,
            timeout="5m",
            debug=True,
        )
    )
    assert "-gateway-class=kexpose" in args
    assert "-conformance-profiles=GATEWAY-HTTP,GATEWAY-GRPC" in args
    assert "-version=v9" in args
    assert "-contact=@a,@b" in args
    assert "-supported-features=Gateway,HTTPRoute,HTTPRouteQueryParamMatching" in args
    assert "-exempt-features=HTTPRouteRequestMirror" in args
    assert "-skip-tests=HTTPRouteRequestMirror,HTTPRouteRequestMultipleMirrors" in args
    assert "-run-test=HTTPRouteSimpleSameNamespace" in args
    # A Go boolean flag only takes its value after `=`.
    assert "-cleanup-base-resources=false" in args
    assert "-debug=true" in args
    assert args[-2:] == ["-test.timeout=5m", "-test.v"]
    assert all(a.startswith("-") for a in args)


def test_the_summary_shows_each_level_with_its_failed_and_skipped_tests() -> None:
    table = summary_table(parse_report(SAMPLE)).splitlines()
    assert table[1].split() == ["GATEWAY-HTTP", "core", "failure", "34", "1", "1"]
    assert table[2:4] == [
        "    failed:  HTTPRouteHostnameIntersection",
        "    skipped: HTTPRouteInvalidCrossNamespaceParentRef",
    ]
    assert table[4].split() == ["GATEWAY-HTTP", "extended", "partial", "20", "0", "2"]
    assert table[-1].split() == ["GATEWAY-GRPC", "core", "success", "12", "0", "0"]
