"""``kexpose-proxy``: flags in, a validated ``ProxyConfig`` out, then ``runner.run``.

The option names are an interface (the Pulumi component and deployment manifests use them);
keep them. Every option also reads ``KEXPOSE_PROXY_<NAME>`` from the environment. Bad flags or
unreadable files end with a message naming the flag and exit code 2, before anything listens.
"""

from __future__ import annotations

import ipaddress
import logging
import sys
from dataclasses import replace
from pathlib import Path

import click

from kexpose.certs import KeyPair, self_signed
from kexpose.defaults import (
    CONTROLLER_NAME,
    CONTROLLER_NAMESPACE,
    CONTROLLER_SERVICE,
    GATEWAY_CONTROLLER_NAME,
    INGRESS_CLASS,
)
from kexpose.proxy.errors import ProxyConfigError, ProxyError
from kexpose.proxy.filters import parse_networks
from kexpose.proxy.ops.logs import LogFormat, configure
from kexpose.proxy.settings import Balance, DataPlaneSettings, Timeouts

__all__ = ["command", "main"]

log = logging.getLogger("kexpose.proxy")

DEFAULT_PUBLISH_SERVICE = f"{CONTROLLER_NAMESPACE}/{CONTROLLER_SERVICE}"
_PORT = click.IntRange(0, 65535)


def _read(path: Path, flag: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"cannot read {path}: {exc}", param_hint=flag) from exc


def _default_certificate(cert: Path | None, key: Path | None) -> KeyPair:
    if (cert is None) != (key is None):
        raise click.UsageError("--default-tls-cert and --default-tls-key go together; give both")
    if cert is None or key is None:
        # ingress-nginx's "fake certificate": served when no Ingress certificate matches.
        return self_signed(
            ["kexpose-proxy.invalid"], common_name="kexpose-proxy default certificate"
        )
    pair = KeyPair(_read(cert, "--default-tls-cert"), _read(key, "--default-tls-key"))
    from kexpose.proxy.dataplane._tls import server_context

    try:
        server_context(pair.cert_pem, pair.key_pem)
    except ProxyConfigError as exc:
        raise click.BadParameter(
            str(exc), param_hint="--default-tls-cert/--default-tls-key"
        ) from exc
    return pair


@click.command(
    context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "KEXPOSE_PROXY"}
)
@click.option(
    "--controller-name",
    default=CONTROLLER_NAME,
    show_default=True,
    help="IngressClass spec.controller value this proxy claims.",
)
@click.option(
    "--ingress-class",
    default=INGRESS_CLASS,
    show_default=True,
    help="Value of the legacy kubernetes.io/ingress.class annotation served when no "
    "IngressClass of that name exists.",
)
@click.option(
    "--watch-ingress-without-class",
    is_flag=True,
    help="Also serve Ingresses that name no class at all.",
)
@click.option(
    "--gateway-controller-name",
    default=GATEWAY_CONTROLLER_NAME,
    show_default=True,
    help="GatewayClass spec.controllerName value this proxy claims.",
)
@click.option(
    "--gateway-addresses",
    default=None,
    metavar="CIDR",
    help="Serve the Gateway API: each Gateway of ours listens on its own address from this "
    "range (addresses the proxy can bind).  [default: Gateway API off]",
)
@click.option(
    "--manifests",
    type=click.Path(path_type=Path),
    help="Static mode: read Ingress, IngressClass, Service, EndpointSlice and Secret "
    "objects (and Gateway API ones) from this YAML file or directory (reloaded on change).",
)
@click.option(
    "--kubeconfig",
    type=click.Path(path_type=Path),
    help="Kubeconfig file. Default: in-cluster service account, then $KUBECONFIG or "
    "~/.kube/config.",
)
@click.option("--namespace", default=None, help="Watch one namespace only.  [default: all]")
@click.option("--bind", default="0.0.0.0", show_default=True, help="Address to listen on.")  # noqa: S104
@click.option("--http-port", type=_PORT, default=8080, show_default=True)
@click.option("--https-port", type=_PORT, default=8443, show_default=True)
@click.option(
    "--health-port",
    type=_PORT,
    default=10254,
    show_default=True,
    help="Serves /healthz, /readyz and /metrics.",
)
@click.option(
    "--default-tls-cert",
    type=click.Path(path_type=Path),
    help="PEM certificate for TLS names no Ingress covers.  [default: self-signed]",
)
@click.option(
    "--default-tls-key",
    type=click.Path(path_type=Path),
    help="PEM private key of --default-tls-cert.",
)
@click.option(
    "--publish-service",
    default=DEFAULT_PUBLISH_SERVICE,
    show_default=True,
    metavar="NS/NAME",
    help="Service whose address goes into Ingress status.",
)
@click.option(
    "--publish-address",
    default=None,
    metavar="ADDR",
    help="Comma-separated IPs or host names for Ingress status (instead of --publish-service).",
)
@click.option(
    "--election-id",
    default="kexpose-proxy-leader",
    show_default=True,
    help="Name of the Lease replicas elect the status writer with.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    default=1,
    show_default=True,
    help="Processes serving traffic (SO_REUSEPORT).",
)
@click.option(
    "--log-format", type=click.Choice(["json", "text"]), default="json", show_default=True
)
@click.option(
    "--access-log/--no-access-log",
    default=True,
    show_default=True,
    help="One line per request on stdout.",
)
@click.option(
    "--balance",
    type=click.Choice(["round_robin", "least_request"]),
    default="round_robin",
    show_default=True,
)
@click.option(
    "--ssl-redirect/--no-ssl-redirect",
    default=True,
    show_default=True,
    help="308 from HTTP to HTTPS for hosts with TLS.",
)
@click.option(
    "--https-redirect-port",
    type=_PORT,
    default=443,
    show_default=True,
    help="Port HTTPS redirects point to (the public one, not --https-port).",
)
@click.option(
    "--shutdown-delay",
    type=click.FloatRange(0),
    default=0.0,
    show_default=True,
    help="Seconds to keep accepting after SIGTERM (instead of a preStop sleep).",
)
@click.option(
    "--drain-timeout",
    type=click.FloatRange(0),
    default=Timeouts().drain,
    show_default=True,
    help="Seconds in-flight requests get after SIGTERM.",
)
@click.option(
    "--trusted-proxies",
    default="",
    help="Comma-separated CIDRs of proxies in front of this one whose X-Forwarded-For is "
    "believed for kexpose.dev/allow-source-ranges.  [default: none]",
)
@click.pass_context
def command(
    ctx: click.Context,
    /,
    *,
    controller_name: str,
    ingress_class: str,
    watch_ingress_without_class: bool,
    gateway_controller_name: str,
    gateway_addresses: str | None,
    manifests: Path | None,
    kubeconfig: Path | None,
    namespace: str | None,
    bind: str,
    http_port: int,
    https_port: int,
    health_port: int,
    default_tls_cert: Path | None,
    default_tls_key: Path | None,
    publish_service: str,
    publish_address: str | None,
    election_id: str,
    workers: int,
    log_format: LogFormat,
    access_log: bool,
    balance: Balance,
    ssl_redirect: bool,
    https_redirect_port: int,
    shutdown_delay: float,
    drain_timeout: float,
    trusted_proxies: str,
) -> None:
    """An Ingress and Gateway API controller: serves Kubernetes Ingresses and, with
    --gateway-addresses, Gateways and HTTPRoutes, over HTTP and HTTPS."""
    from kexpose.proxy.runner import ProxyConfig, run

    pool = None
    if gateway_addresses is not None:
        try:
            pool = ipaddress.ip_network(gateway_addresses)
        except ValueError as exc:
            raise click.BadParameter(
                f"{gateway_addresses!r} is not a CIDR range such as 10.250.0.0/24 ({exc})",
                param_hint="--gateway-addresses",
            ) from None

    if manifests is not None and not manifests.exists():
        raise click.BadParameter(
            f"{manifests}: no such file or directory", param_hint="--manifests"
        )
    if manifests is not None and kubeconfig is not None:
        raise click.UsageError("--manifests (static mode) and --kubeconfig exclude each other")
    if kubeconfig is not None and not kubeconfig.is_file():
        raise click.BadParameter(f"{kubeconfig}: no such file", param_hint="--kubeconfig")
    explicit = ctx.get_parameter_source("publish_service") not in (
        click.core.ParameterSource.DEFAULT,
        None,
    )
    if publish_address and explicit:
        raise click.UsageError("--publish-service and --publish-address exclude each other")
    namespace_part, _, name_part = publish_service.partition("/")
    if not publish_address and (not (namespace_part and name_part) or "/" in name_part):
        raise click.BadParameter(
            f"expected NAMESPACE/NAME, got {publish_service!r}", param_hint="--publish-service"
        )
    trusted, bad = parse_networks(trusted_proxies)
    if bad:
        raise click.BadParameter(
            f"{', '.join(bad)} is not a CIDR range such as 10.0.0.0/8",
            param_hint="--trusted-proxies",
        )
    defaults = DataPlaneSettings()
    data = replace(
        defaults,
        balance=balance,
        ssl_redirect=ssl_redirect,
        https_redirect_port=https_redirect_port,
        access_log=access_log,
        trusted_proxies=trusted,
        timeouts=replace(defaults.timeouts, shutdown_delay=shutdown_delay, drain=drain_timeout),
    )
    config = ProxyConfig(
        default_certificate=_default_certificate(default_tls_cert, default_tls_key),
        controller_name=controller_name,
        ingress_class=ingress_class,
        watch_without_class=watch_ingress_without_class,
        gateway_controller_name=gateway_controller_name,
        gateway_addresses=pool,
        manifests=manifests,
        kubeconfig=kubeconfig,
        namespace=namespace,
        bind=bind,
        http_port=http_port,
        https_port=https_port,
        health_port=health_port,
        publish_service=None if publish_address else publish_service,
        publish_address=publish_address,
        election_id=election_id,
        workers=workers,
        log_format=log_format,
        data=data,
    )
    configure(config.log_format)
    try:
        run(config)
    except ProxyConfigError as exc:
        click.echo(f"kexpose-proxy: {exc}", err=True)
        ctx.exit(2)
    except ProxyError as exc:
        log.error("%s", exc)
        ctx.exit(1)
    except OSError as exc:  # a port in use, an address we cannot bind
        click.echo(f"kexpose-proxy: {exc}", err=True)
        ctx.exit(1)


def main() -> None:
    command(prog_name="kexpose-proxy")
    sys.exit(0)
