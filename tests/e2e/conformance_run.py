"""`scripts/conformance`: run the Gateway API conformance suite against kexpose-proxy and write
its report into conformance/.

It builds the same environment as the e2e fixtures (conftest.py), outside pytest: the private
network namespace, the local cluster, the suite's CRDs and GatewayClass, the echo-basic stand-ins
on the pod IPs (echo_pods.py; echo_grpc.py too when `--profiles` names GATEWAY-GRPC) and
kexpose-proxy out of cluster (proxy.py); then runs the suite binary (conformance.py) with its
output on stdout. Whatever the suite reports is written to
`conformance/report.yaml` and summarised; the exit status is the suite's, so a failing test fails
the command. When the suite reports no profile (it gave up before its tests, e.g. because nothing
accepted the GatewayClass, and wrote a report with `profiles: null` or none at all), the
committed report is left alone and the command fails.

Needs root (the network namespace) and the built toolchain, like the e2e tests.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .cluster import ClusterStartError, LocalCluster
from .conformance import (
    GATEWAY_ADDRESSES,
    GATEWAY_ADDRESSES_ENV,
    GATEWAY_CLASS,
    PROFILE_GRPC,
    PROFILE_HTTP,
    SuiteOptions,
    create_gateway_class,
    install_crds,
    run_suite,
    summary_table,
    wait_for_gateway_class,
)
from .conftest import NODE_NAMES, POD_CIDRS
from .echo_grpc import EchoGrpcPods
from .echo_pods import EchoBasicPods
from .netns import NetnsError, PrivateNetwork
from .proxy import ProxyProcess
from .toolchain import REPO_ROOT, ToolchainMissingError, find_toolchain

__all__ = ["main"]

#: Where the committed report lives.
REPORT = REPO_ROOT / "conformance" / "report.yaml"


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/conformance", description=__doc__)
    parser.add_argument("--run-test", default="", help="run this one test instead of the suite")
    parser.add_argument(
        "--profiles",
        default=f"{PROFILE_HTTP},{PROFILE_GRPC}",
        help=f"comma-separated conformance profiles (default {PROFILE_HTTP},{PROFILE_GRPC}; "
        f"{PROFILE_GRPC} also serves the gRPC echo stand-ins)",
    )
    parser.add_argument("--skip-tests", default="", help="comma-separated test names to skip")
    parser.add_argument(
        "--supported-features",
        default="",
        help="comma-separated features (default: the GatewayClass status.supportedFeatures)",
    )
    parser.add_argument("--exempt-features", default="", help="comma-separated features")
    parser.add_argument("--debug", action="store_true", help="the suite's request/response dumps")
    parser.add_argument(
        "--output", type=Path, default=REPORT, help=f"where to write the report ({REPORT})"
    )
    parser.add_argument("--workdir", type=Path, help="keep logs here (default: a temp dir)")
    return parser.parse_args(argv)


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="kexpose-conformance-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"conformance: logs in {workdir}", file=sys.stderr)
    try:
        toolchain = find_toolchain()
    except ToolchainMissingError as exc:
        print(f"conformance: {exc}", file=sys.stderr)
        return 2
    profiles = _names(args.profiles)
    options = SuiteOptions(
        report_output=workdir / "report.yaml",
        profiles=profiles,
        supported_features=_names(args.supported_features),
        exempt_features=_names(args.exempt_features),
        skip_tests=_names(args.skip_tests),
        run_test=args.run_test,
        debug=args.debug,
    )
    network = PrivateNetwork(POD_CIDRS)
    try:
        network.enter()
    except NetnsError as exc:
        print(f"conformance: private network namespace: {exc}", file=sys.stderr)
        return 2
    cluster = LocalCluster(toolchain, workdir / "cluster", node_names=NODE_NAMES)
    proxy = ProxyProcess(cluster.kubeconfig, workdir / "proxy")
    try:
        cluster.start()
        with cluster.client() as kube:
            install_crds(kube, toolchain)
            create_gateway_class(kube, name=GATEWAY_CLASS)
        # With the gRPC profile, the same Pod watch also serves echo-basic's gRPC mode.
        echo = EchoGrpcPods if PROFILE_GRPC in profiles else EchoBasicPods
        with echo(cluster.kubeconfig, log_dir=workdir / "pod-logs").running():
            # Turns kexpose-proxy's Gateway API on (ProxyProcess passes the environment on).
            os.environ.setdefault(GATEWAY_ADDRESSES_ENV, GATEWAY_ADDRESSES)
            proxy.start()
            with cluster.client() as kube:
                features = wait_for_gateway_class(kube)
            if features is None:
                print(
                    f"conformance: GatewayClass {GATEWAY_CLASS} was not Accepted with "
                    "status.supportedFeatures in time (does kexpose-proxy run its Gateway API "
                    "controller?); running the suite anyway for its own diagnosis",
                    file=sys.stderr,
                )
            else:
                print(f"conformance: supported features: {', '.join(features)}", file=sys.stderr)
            outcome = run_suite(
                toolchain, cluster.kubeconfig, options, log=workdir / "suite.log", echo_output=True
            )
    except ClusterStartError as exc:
        print(f"conformance: the local cluster did not start: {exc}", file=sys.stderr)
        return 2
    finally:
        proxy.stop()
        cluster.stop()
        network.leave()
    if outcome.report is None or not outcome.report.profiles:
        # The suite writes a report with no profiles when its setup fails (e.g. the GatewayClass
        # never Accepted): that is no result, and must not replace one.
        print(
            f"conformance: the suite exited with {outcome.returncode} and reported no profile; "
            f"{args.output} is unchanged. Its output: {outcome.log}; kexpose-proxy's log: "
            f"{proxy.log_path}",
            file=sys.stderr,
        )
        return outcome.returncode or 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(options.report_output, args.output)
    print(summary_table(outcome.report), file=sys.stderr)
    print(f"conformance: report written to {args.output}", file=sys.stderr)
    return outcome.returncode


if __name__ == "__main__":
    sys.exit(main())
