"""The official Gateway API conformance suite (v1.6.3, profile GATEWAY-HTTP) against
kexpose-proxy, for real: the suite binary from the toolchain, the CRDs of the same release, the
echo-basic stand-ins on the simulated pods' IPs, and kexpose-proxy with the Gateway API on
(``conformance.py``; ``scripts/conformance`` runs the same and commits the report).

Core must pass whole, nothing skipped; every Extended test of a feature the GatewayClass claims
must pass. The numbers are in ``conformance/report.yaml`` and the README. Once ``GRPCRoute`` is
claimed (it needs the HTTP/2 data plane), the GATEWAY-GRPC profile runs too, against the gRPC
echo stand-ins (``echo_grpc.py``), and must pass the same way.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kexpose.proxy.routes import SUPPORTED_FEATURES

from .cluster import LocalCluster
from .conformance import (
    GATEWAY_ADDRESSES,
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
from .echo_grpc import EchoGrpcPods
from .echo_pods import EchoBasicPods
from .proxy import ProxyProcess
from .toolchain import Toolchain

pytestmark = pytest.mark.e2e

#: The Core tests of GATEWAY-HTTP in v1.6.3 (gateway-api-notes: 36; GatewayInvalidParametersRef
#: moved under an infrastructure feature).
CORE_TESTS = 36
#: The Core tests of GATEWAY-GRPC in v1.6.3 (14: the five GRPCRoute tests and the Gateway ones).
CORE_TESTS_GRPC = 14
#: Whether the GatewayClass claims GRPCRoute, and so the gRPC profile runs.
GRPC = "GRPCRoute" in SUPPORTED_FEATURES


@pytest.fixture
def gateway_proxy(
    cluster: LocalCluster, toolchain: Toolchain, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyProcess]:
    """kexpose-proxy serving only the Gateway API: its own controller name (so it claims no
    Ingress of the journey's) and its own Lease (so it leads, and writes status)."""
    with cluster.client() as kube:
        install_crds(kube, toolchain)
        create_gateway_class(kube, name=GATEWAY_CLASS)
    proxy = ProxyProcess(
        cluster.kubeconfig,
        tmp_path_factory.mktemp("gateway-proxy"),
        extra_args=(
            "--controller-name=kexpose.dev/conformance-no-ingress",
            "--election-id=kexpose-conformance",
            f"--gateway-addresses={GATEWAY_ADDRESSES}",
        ),
    )
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


def test_gateway_http_conformance(
    cluster: LocalCluster,
    toolchain: Toolchain,
    gateway_proxy: ProxyProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    workdir = tmp_path_factory.mktemp("conformance")
    # The pods' logs (what the mirror tests read through pods/log) go beside the suite's log.
    echo = EchoGrpcPods if GRPC else EchoBasicPods
    with echo(cluster.kubeconfig, log_dir=workdir / "pod-logs").running():
        with cluster.client() as kube:
            features = wait_for_gateway_class(kube)
        assert features, f"GatewayClass not accepted:\n{gateway_proxy.tail()}"
        outcome = run_suite(
            toolchain,
            cluster.kubeconfig,
            SuiteOptions(
                report_output=workdir / "report.yaml",
                profiles=(PROFILE_HTTP, PROFILE_GRPC) if GRPC else (PROFILE_HTTP,),
            ),
            log=workdir / "suite.log",
        )
    assert outcome.report is not None, outcome.tail()
    assert outcome.report.profiles, outcome.tail()
    table = summary_table(outcome.report)
    expected = {PROFILE_HTTP: CORE_TESTS, **({PROFILE_GRPC: CORE_TESTS_GRPC} if GRPC else {})}
    for name, core_tests in expected.items():
        profile = outcome.report.profile(name)
        assert profile.core.failed_tests == (), f"{table}\n{outcome.tail()}"
        assert profile.core.skipped_tests == (), table
        assert profile.core.passed == core_tests, table
        assert profile.extended is not None
        assert profile.extended.failed_tests == (), f"{table}\n{outcome.tail()}"
    assert outcome.returncode == 0, outcome.tail()
