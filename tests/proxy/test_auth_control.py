"""The control plane watches kexpose's ``EdgeAuth`` with the Gateway API: an HTTPRoute filter
naming one authenticates its rule; an API server without the CRD (404) or without read access
(403) never holds readiness back, and the kind is listed again later."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from tests.proxy.auth_servers import bcrypt_line, secret
from tests.proxy.fake_kube import FakeKubeApi
from tests.proxy.test_control import start_plane
from tests.proxy.test_gateway_control import CLAIM, objects

from kexpose.proxy.errors import KubeError
from kexpose.proxy.filters import BasicAuth
from kexpose.proxy.routes import RouteTable

EDGE_AUTH = {
    "apiVersion": "kexpose.dev/v1alpha1",
    "kind": "EdgeAuth",
    "metadata": {"name": "staff", "namespace": "infra"},
    "spec": {"type": "basic", "secret": "users"},
}


def _rule_auth(table: RouteTable) -> Any:
    for port in table.gateway_ports.values():
        for listener in port.listeners:
            for host in listener.hosts.values():
                for rule in host.rules:
                    return rule.auth
    return None


@pytest.mark.asyncio
@pytest.mark.parametrize("status", [404, 403])
async def test_edge_auth_is_watched_and_optional(running: Callable[..., Any], status: int) -> None:
    lists = objects()
    route = lists["HTTPRoute"][0][0][0]
    route["spec"]["rules"][0]["filters"] = [
        {
            "type": "ExtensionRef",
            "extensionRef": {"group": "kexpose.dev", "kind": "EdgeAuth", "name": "staff"},
        }
    ]
    users = secret("users", {"auth": bcrypt_line("alice", "pw")})
    users["metadata"]["namespace"] = "infra"
    lists["Secret"] = [([users], "14")]
    lists["EdgeAuth"] = [KubeError("not found", status=status), ([EDGE_AUTH], "30")]
    api = FakeKubeApi(lists=lists)
    _, rec = await start_plane(running, api, CLAIM)
    # Listed again after the longest backoff; then the rule is authenticated.
    table = await rec.next_table(lambda t: _rule_auth(t) is not None)
    auth = _rule_auth(table)
    assert isinstance(auth.mechanism, BasicAuth)
    assert auth.problem == ""
    assert max(rec.sleeps) == 30.0
    assert ("watch", "EdgeAuth", "30") in api.calls


def test_a_kind_the_api_server_does_not_serve_is_a_404() -> None:
    """The API server answers an unknown group with a plain-text 404 that lightkube cannot read
    as a Status; the status code must still reach the control plane (found in a real cluster)."""
    import httpx2

    from kexpose.proxy.control.kubeapi import _wrap

    url = "https://127.0.0.1:6443/apis/kexpose.dev/v1alpha1/edgeauths"
    error = httpx2.HTTPStatusError(
        "Client error '404 Not Found'",
        request=httpx2.Request("GET", url),
        response=httpx2.Response(404, text="404 page not found"),
    )
    wrapped = _wrap(error, "list EdgeAuth")
    assert wrapped.status == 404
    assert "list EdgeAuth" in str(wrapped)
    assert _wrap(RuntimeError("boom"), "list EdgeAuth").status is None


@pytest.mark.asyncio
async def test_an_api_server_without_the_listenerset_crd_does_not_hold_readiness(
    running: Callable[..., Any],
) -> None:
    """ListenerSet joined the standard channel in v1.6: a cluster on older, platform-owned
    Gateway API CRDs answers 404 for it, and the Gateways and routes are served all the same."""
    lists = objects()
    lists["ListenerSet"] = [KubeError("not found", status=404)]  # never served
    api = FakeKubeApi(lists=lists)
    _, rec = await start_plane(running, api, CLAIM)
    table = await rec.next_table(lambda t: bool(t.gateway_ports))
    assert table.gateway_ports
    assert ("list", "ListenerSet", None) in api.calls
