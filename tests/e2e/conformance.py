"""Run the official Gateway API conformance suite against the e2e cluster, and read its report.

The suite (conformance@v1.6.3, built by scripts/toolchain.sh step `gwapi` as
`gateway-conformance.test`) is a Go test binary that talks to the API server named by KUBECONFIG
and sends its requests with plain net/http to the first typed address in each Gateway's
`status.addresses`. It runs as a child of pytest, so inside the session's private network
namespace (netns.py), where the Gateways' addresses and the pod IPs are all on `lo`.

What it needs first, and where it comes from here:
- the standard-channel CRDs of the same release (`install_crds`: the files the toolchain copied
  to `Toolchain.gateway_api_crds`; the suite refuses CRDs of another bundle version or channel);
- a GatewayClass whose controller accepts it within 180 s (`create_gateway_class`; kexpose-proxy
  answers for `kexpose.dev/gateway-controller`);
- something answering on every echo-basic pod IP (echo_pods.py), as kwok runs no containers.
The suite applies its base manifests itself and waits (300 s) for every Pod Ready and every
Gateway in its namespaces Accepted and Programmed.

`suite_arguments` builds the command line (pure, unit-tested); `run_suite` runs it and parses the
`-report-output` file into a `ConformanceSummary` (`parse_report`, the `apis/v1`
ConformanceReport schema: profiles, each with core and extended result, statistics, skipped and
failed tests, supported and unsupported features).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, cast

import yaml
from lightkube import Client
from lightkube.generic_resource import create_global_resource
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition

from .cluster import wait_until
from .toolchain import Toolchain

__all__ = [
    "CONTROLLER_NAME",
    "GATEWAY_ADDRESSES",
    "GATEWAY_ADDRESSES_ENV",
    "GATEWAY_CLASS",
    "PROFILE_GRPC",
    "PROFILE_HTTP",
    "SUITE_NAMESPACES",
    "ConformanceSummary",
    "Implementation",
    "LevelSummary",
    "ProfileSummary",
    "ReportError",
    "SuiteOptions",
    "SuiteOutcome",
    "accepted_features",
    "create_gateway_class",
    "install_crds",
    "parse_report",
    "run_suite",
    "suite_arguments",
    "suite_base_manifests",
    "summary_table",
    "wait_for_gateway_class",
]

#: The suite's default GatewayClass name (`conformance/utils/flags`), created by the harness.
GATEWAY_CLASS = "gateway-conformance"
#: kexpose-proxy's Gateway API controller name (its `--gateway-controller-name` default).
CONTROLLER_NAME = "kexpose.dev/gateway-controller"
PROFILE_HTTP = "GATEWAY-HTTP"
#: Its gRPC tests call echo-basic in gRPC mode: echo_grpc.py stands in for it.
PROFILE_GRPC = "GATEWAY-GRPC"
#: The range kexpose-proxy takes Gateway addresses from (`--gateway-addresses`). Several of the
#: suite's Gateways listen on port 80 (and 443), so each needs its own address. All of
#: 127.0.0.0/8 is local on `lo`, also in the private network namespace, so any of these binds
#: without adding an address; the Gateway CRD accepts loopback addresses in status (only
#: EndpointSlices refuse them). Away from 127.0.0.1, where the control plane listens.
GATEWAY_ADDRESSES = "127.0.10.0/24"
#: How kexpose-proxy's CLI takes `--gateway-addresses` from the environment (click's
#: auto_envvar_prefix KEXPOSE_PROXY); proxy.py passes the environment on to the process.
GATEWAY_ADDRESSES_ENV = "KEXPOSE_PROXY_GATEWAY_ADDRESSES"
#: For GatewayStaticAddresses: the last address of the pool (hashed slots rarely land there, and
#: an address a Gateway asks for is served before hashed ones), and a TEST-NET-1 address no
#: pool of ours holds (RFC 5737).
USABLE_ADDRESS = "127.0.10.254"
UNUSABLE_ADDRESS = "192.0.2.1"
#: The namespaces of the suite's base manifests; tests may create more.
SUITE_NAMESPACES = (
    "gateway-conformance-infra",
    "gateway-conformance-app-backend",
    "gateway-conformance-web-backend",
)
#: The suite's own limit (go test stops at 10 minutes by default); the cold-CI budget is 60.
SUITE_TIMEOUT = "60m"
# The process gets a little longer than its own -test.timeout, so a hung suite reports its own
# panic (with goroutine dump) before we kill it.
SUITE_PROCESS_TIMEOUT_S = 65 * 60.0
# kexpose-proxy is ready before the suite starts, so its controller accepts the GatewayClass in a
# status write or two; the suite itself would wait 180 s, but reads supportedFeatures at once.
GATEWAY_CLASS_ACCEPTED_TIMEOUT_S = 60.0
# Establishing a CRD is one controller pass of the apiserver; generous for a loaded CI machine.
CRD_ESTABLISH_TIMEOUT_S = 60.0
#: The annotations every CRD of a Gateway API release carries; the suite checks both.
BUNDLE_VERSION = "gateway.networking.k8s.io/bundle-version"
CHANNEL = "gateway.networking.k8s.io/channel"

GatewayClass = create_global_resource(
    "gateway.networking.k8s.io", "v1", "GatewayClass", "gatewayclasses"
)


class ReportError(ValueError):
    """A conformance report that does not follow the ConformanceReport schema."""


@dataclass(frozen=True, slots=True)
class Implementation:
    """The report's `implementation` block; every field is required by the suite."""

    organization: str = "kexpose"
    project: str = "kexpose-proxy"
    # The project has no public repository address yet; its domain is the one in the
    # controller name.
    url: str = "https://kexpose.dev"
    version: str = "v0.1.0"
    contact: tuple[str, ...] = ("kexpose developers",)


@dataclass(frozen=True, slots=True)
class SuiteOptions:
    """One run of the suite.

    The suite infers the supported features from the GatewayClass `status.supportedFeatures`
    only when none of `supported_features`, `exempt_features` and `run_test` is given
    (`shouldInferSupportedFeatures`); with `exempt_features` alone it tests Core only. To leave
    a feature out of an inferred run, leave it out of the status, or skip its tests.
    """

    report_output: Path
    gateway_class: str = GATEWAY_CLASS
    profiles: tuple[str, ...] = (PROFILE_HTTP,)
    implementation: Implementation = field(default_factory=Implementation)
    supported_features: tuple[str, ...] = ()
    exempt_features: tuple[str, ...] = ()
    skip_tests: tuple[str, ...] = ()
    run_test: str = ""
    cleanup_base_resources: bool = True
    timeout: str = SUITE_TIMEOUT
    debug: bool = False
    usable_address: str = USABLE_ADDRESS
    """GatewayStaticAddresses: an address kexpose-proxy can give a Gateway (in the pool)."""
    unusable_address: str = UNUSABLE_ADDRESS
    """... and one it cannot (outside the pool)."""


def suite_arguments(options: SuiteOptions) -> list[str]:
    """The suite binary's command line (after the binary), `-name=value` throughout.

    Go's flag package only takes a boolean as `-name=false`; the suite applies only the flags
    given (`flags.ApplyAll` visits set flags), so unset options keep the suite's defaults.
    """
    impl = options.implementation
    args = [
        f"-gateway-class={options.gateway_class}",
        f"-conformance-profiles={','.join(options.profiles)}",
        f"-report-output={options.report_output}",
        f"-organization={impl.organization}",
        f"-project={impl.project}",
        f"-url={impl.url}",
        f"-version={impl.version}",
        f"-contact={','.join(impl.contact)}",
        f"-cleanup-base-resources={str(options.cleanup_base_resources).lower()}",
        f"-usable-address={options.usable_address}",
        f"-unusable-address={options.unusable_address}",
    ]
    if options.supported_features:
        args.append(f"-supported-features={','.join(options.supported_features)}")
    if options.exempt_features:
        args.append(f"-exempt-features={','.join(options.exempt_features)}")
    if options.skip_tests:
        args.append(f"-skip-tests={','.join(options.skip_tests)}")
    if options.run_test:
        args.append(f"-run-test={options.run_test}")
    if options.debug:
        args.append("-debug=true")
    args += [f"-test.timeout={options.timeout}", "-test.v"]
    return args


# ---- the report ---------------------------------------------------------------------------------

Result = Literal["success", "partial", "failure"]


@dataclass(frozen=True, slots=True)
class LevelSummary:
    """Core or Extended of one profile."""

    result: Result
    passed: int
    failed: int
    skipped: int
    failed_tests: tuple[str, ...] = ()
    skipped_tests: tuple[str, ...] = ()
    supported_features: tuple[str, ...] = ()
    unsupported_features: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ProfileSummary:
    name: str
    summary: str
    core: LevelSummary
    extended: LevelSummary | None


@dataclass(frozen=True, slots=True)
class ConformanceSummary:
    gateway_api_version: str
    channel: str
    mode: str
    date: str
    implementation: Implementation
    profiles: tuple[ProfileSummary, ...]

    def profile(self, name: str) -> ProfileSummary:
        for profile in self.profiles:
            if profile.name == name:
                return profile
        raise KeyError(
            f"the report has no profile {name!r}; it has {[p.name for p in self.profiles]}"
        )


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ReportError(f"{where}: expected a mapping, got {type(value).__name__}")
    return cast(Mapping[str, Any], value)


def _strings(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ReportError(f"{where}: expected a list of strings, got {value!r}")
    return tuple(value)


def _count(stats: Mapping[str, Any], key: str, where: str) -> int:
    # Statistics has no json tags in apis/v1, so its keys are the Go field names.
    value = stats.get(key, 0)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ReportError(f"{where}.statistics.{key}: expected a count, got {value!r}")
    return value


def _level(raw: object, where: str) -> LevelSummary:
    level = _mapping(raw, where)
    result = level.get("result")
    if result not in ("success", "partial", "failure"):
        raise ReportError(f"{where}.result: expected success, partial or failure, got {result!r}")
    stats = _mapping(level.get("statistics", {}), f"{where}.statistics")
    return LevelSummary(
        result=cast(Result, result),
        passed=_count(stats, "Passed", where),
        failed=_count(stats, "Failed", where),
        skipped=_count(stats, "Skipped", where),
        failed_tests=_strings(level.get("failedTests"), f"{where}.failedTests"),
        skipped_tests=_strings(level.get("skippedTests"), f"{where}.skippedTests"),
        supported_features=_strings(level.get("supportedFeatures"), f"{where}.supportedFeatures"),
        unsupported_features=_strings(
            level.get("unsupportedFeatures"), f"{where}.unsupportedFeatures"
        ),
    )


def parse_report(text: str) -> ConformanceSummary:
    """A ConformanceReport (YAML, `gateway.networking.k8s.io/v1`) as a typed summary."""
    try:
        doc = _mapping(yaml.safe_load(text), "report")
    except yaml.YAMLError as exc:
        raise ReportError(f"report: not YAML: {exc}") from exc
    if doc.get("kind") != "ConformanceReport":
        raise ReportError(f"report.kind: expected ConformanceReport, got {doc.get('kind')!r}")
    impl = _mapping(doc.get("implementation"), "report.implementation")
    profiles = []
    for index, raw in enumerate(doc.get("profiles") or []):
        where = f"report.profiles[{index}]"
        profile = _mapping(raw, where)
        extended = profile.get("extended")
        profiles.append(
            ProfileSummary(
                name=str(profile.get("name", "")),
                summary=str(profile.get("summary", "")),
                core=_level(profile.get("core"), f"{where}.core"),
                extended=None if extended is None else _level(extended, f"{where}.extended"),
            )
        )
    return ConformanceSummary(
        gateway_api_version=str(doc.get("gatewayAPIVersion", "")),
        channel=str(doc.get("gatewayAPIChannel", "")),
        mode=str(doc.get("mode", "")),
        date=str(doc.get("date", "")),
        implementation=Implementation(
            organization=str(impl.get("organization", "")),
            project=str(impl.get("project", "")),
            url=str(impl.get("url", "")),
            version=str(impl.get("version", "")),
            contact=_strings(impl.get("contact"), "report.implementation.contact"),
        ),
        profiles=tuple(profiles),
    )


def summary_table(report: ConformanceSummary) -> str:
    """One line per profile and level: result, passed, failed, skipped."""
    rows = [f"{'profile':<14} {'level':<9} {'result':<8} passed failed skipped"]
    for profile in report.profiles:
        levels = [("core", profile.core)]
        if profile.extended is not None:
            levels.append(("extended", profile.extended))
        for level_name, level in levels:
            rows.append(
                f"{profile.name:<14} {level_name:<9} {level.result:<8} "
                f"{level.passed:>6} {level.failed:>6} {level.skipped:>7}"
            )
            rows += [f"    failed:  {name}" for name in level.failed_tests]
            rows += [f"    skipped: {name}" for name in level.skipped_tests]
    return "\n".join(rows)


# ---- the cluster side ---------------------------------------------------------------------------


def crd_documents(toolchain: Toolchain) -> list[dict[str, Any]]:
    """The CustomResourceDefinitions the toolchain shipped with the suite."""
    docs: list[dict[str, Any]] = []
    for path in sorted(toolchain.gateway_api_crds.glob("*.yaml")):
        docs += [
            d
            for d in yaml.safe_load_all(path.read_text())
            if d and d.get("kind") == "CustomResourceDefinition"
        ]
    if not docs:
        raise FileNotFoundError(f"no CRDs under {toolchain.gateway_api_crds}")
    return docs


def suite_base_manifests(toolchain: Toolchain) -> Path:
    """The suite's `base/manifests.yaml`, from the Go module cache the toolchain built it from.

    The binary embeds them (and applies them itself); the e2e tests of the environment apply the
    same file without the suite. scripts/toolchain.sh keeps its module cache in
    `${KEXPOSE_GO_CACHE:-~/.cache/kexpose/go}/mod`.
    """
    cache = Path(os.environ.get("KEXPOSE_GO_CACHE") or Path.home() / ".cache" / "kexpose" / "go")
    version = toolchain.versions["gateway_api"]
    path = cache / "mod" / "sigs.k8s.io" / "gateway-api" / f"conformance@{version}" / "base"
    path = path / "manifests.yaml"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: the Go module cache of scripts/toolchain.sh holds the suite's "
            "sources (set KEXPOSE_GO_CACHE if the toolchain was built with another cache)"
        )
    return path


def install_crds(kube: Client, toolchain: Toolchain) -> list[str]:
    """Apply the suite's CRDs (server-side) and wait until each is Established; their names."""
    names = []
    for doc in crd_documents(toolchain):
        crd = cast(CustomResourceDefinition, CustomResourceDefinition.from_dict(doc))
        kube.apply(crd, field_manager="kexpose-e2e", force=True)
        names.append(str(doc["metadata"]["name"]))
    for name in names:

        def established(crd_name: str = name) -> bool | None:
            crd = kube.get(CustomResourceDefinition, crd_name)
            conditions = (crd.status.conditions if crd.status else None) or []
            ok = any(c.type == "Established" and c.status == "True" for c in conditions)
            return True if ok else None

        wait_until(established, timeout=CRD_ESTABLISH_TIMEOUT_S, what=f"CRD {name} Established")
    return names


def create_gateway_class(
    kube: Client, *, name: str = GATEWAY_CLASS, controller: str = CONTROLLER_NAME
) -> None:
    """Apply the GatewayClass the suite runs against (its controller must accept it)."""
    kube.apply(
        GatewayClass.from_dict(
            {
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "GatewayClass",
                "metadata": {"name": name},
                "spec": {"controllerName": controller},
            }
        ),
        field_manager="kexpose-e2e",
        force=True,
    )


def accepted_features(kube: Client, name: str = GATEWAY_CLASS) -> tuple[str, ...] | None:
    """The GatewayClass's `status.supportedFeatures` once it is Accepted for its current
    generation with at least one feature; None before (what the suite needs at its start)."""
    gateway_class = kube.get(GatewayClass, name)
    generation = gateway_class.metadata.generation if gateway_class.metadata else None
    status = gateway_class.get("status") or {}
    accepted = any(
        c.get("type") == "Accepted"
        and c.get("status") == "True"
        and c.get("observedGeneration") == generation
        for c in status.get("conditions") or []
    )
    features = tuple(f["name"] for f in status.get("supportedFeatures") or [])
    return features if accepted and features else None


def wait_for_gateway_class(kube: Client, name: str = GATEWAY_CLASS) -> tuple[str, ...] | None:
    """`accepted_features`, waited for (GATEWAY_CLASS_ACCEPTED_TIMEOUT_S); None on timeout.

    Without this the suite races the controller: it reads the supported features from the
    GatewayClass status as it starts and fails when the list is still empty.
    """
    try:
        return wait_until(
            lambda: accepted_features(kube, name),
            timeout=GATEWAY_CLASS_ACCEPTED_TIMEOUT_S,
            what=f"GatewayClass {name} Accepted with status.supportedFeatures",
        )
    except AssertionError:
        return None


@dataclass(frozen=True, slots=True)
class SuiteOutcome:
    returncode: int
    log: Path
    """The suite's whole output (`go test -v`)."""
    report: ConformanceSummary | None
    """None when the suite wrote no report (it failed before its tests ran)."""

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def run_suite(
    toolchain: Toolchain,
    kubeconfig: Path,
    options: SuiteOptions,
    *,
    log: Path,
    extra_env: Mapping[str, str] | None = None,
    echo_output: bool = False,
) -> SuiteOutcome:
    """Run the suite binary with `options`; its output goes to `log` (and stdout if asked)."""
    suite = toolchain.tool("gateway-conformance.test")
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), **(extra_env or {})}
    options.report_output.unlink(missing_ok=True)
    argv = [str(suite), *suite_arguments(options)]
    with log.open("wb") as out:
        out.write(("$ " + " ".join(argv) + "\n").encode())
        out.flush()
        done = _run(argv, env=env, out=out, cwd=log.parent, echo_output=echo_output)
    report = None
    if options.report_output.is_file():
        report = parse_report(options.report_output.read_text())
    return SuiteOutcome(done, log, report)


def _run(
    argv: Sequence[str], *, env: Mapping[str, str], out: IO[bytes], cwd: Path, echo_output: bool
) -> int:
    with subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=dict(env),
        cwd=cwd,
    ) as process:
        assert process.stdout is not None
        # The bound covers a suite that hangs while still holding its output open.
        watchdog = threading.Timer(SUITE_PROCESS_TIMEOUT_S, process.kill)
        watchdog.start()
        try:
            for line in process.stdout:
                out.write(line)
                if echo_output:
                    sys.stdout.buffer.write(line)
                    sys.stdout.flush()
            return process.wait()
        except BaseException:
            process.kill()
            raise
        finally:
            watchdog.cancel()
