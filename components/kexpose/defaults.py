"""Names the project's own stacks, controller and policy defaults agree on.

Kept in one place because the components, the policy checker's defaults and the proxy's command
line must all say the same thing.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "CONTROLLER_NAME",
    "CONTROLLER_NAMESPACE",
    "CONTROLLER_SERVICE",
    "GATEWAY_CONTROLLER_NAME",
    "INGRESS_CLASS",
    "SECRET_PLACEHOLDER",
    "TRAEFIK_CONTROLLER_NAME",
    "TRAEFIK_GATEWAY_CONTROLLER_NAME",
]

#: IngressClass ``spec.controller`` claimed by kexpose-proxy (a domain-prefixed path, as the
#: IngressClass API asks: https://kubernetes.io/docs/concepts/services-networking/ingress/#ingress-class).
CONTROLLER_NAME: Final = "kexpose.dev/ingress-controller"
#: What offline runs (preview, render) see for a secret config value they cannot decrypt.
SECRET_PLACEHOLDER: Final = "<secret from stack config>"  # noqa: S105 - a marker, not a secret
#: GatewayClass ``spec.controllerName`` claimed by kexpose-proxy (Gateway API).
GATEWAY_CONTROLLER_NAME: Final = "kexpose.dev/gateway-controller"
#: Traefik's own controller string for its Kubernetes Ingress provider.
TRAEFIK_CONTROLLER_NAME: Final = "traefik.io/ingress-controller"
#: Traefik's GatewayClass ``spec.controllerName`` for its Kubernetes Gateway provider.
TRAEFIK_GATEWAY_CONTROLLER_NAME: Final = "traefik.io/gateway-controller"
#: The IngressClass the shipped stacks create and route through.
INGRESS_CLASS: Final = "kexpose"
#: Where the shipped stacks run the controller, and the name of its Service.
CONTROLLER_NAMESPACE: Final = "kexpose-system"
CONTROLLER_SERVICE: Final = "kexpose-controller"
