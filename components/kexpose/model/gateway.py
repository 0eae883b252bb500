"""Which API a stack exposes HTTP through, and the Gateway the controller side provisions.

``kexpose:controller.api`` chooses: ``ingress`` (an IngressClass and one Ingress per app) or
``gateway`` (a GatewayClass, one Gateway per stack and HTTPRoutes; Gateway API standard channel
v1.6.3, https://gateway-api.sigs.k8s.io/reference/spec/).
"""

from __future__ import annotations

from typing import Final, Literal

from kexpose.model.base import DNSLabel, Frozen
from kexpose.model.service import Cidr

__all__ = ["GATEWAY_NAME", "ApiKind", "GatewaySettings"]

ApiKind = Literal["ingress", "gateway"]

#: The Gateway the shipped stacks make, in the controller's namespace.
GATEWAY_NAME: Final = "kexpose"


class GatewaySettings(Frozen):
    """The stack's Gateway (with ``api: gateway``).

    - ``name``: the Gateway, in the controller's namespace; its GatewayClass is the controller's
      ``className``.
    - ``installCrds``: install the Gateway API CRDs (standard channel v1.6.3) with the
      controller; turn it off where the platform owns them.
    - ``addresses`` (kexpose-proxy only): the range the proxy binds Gateways on
      (``--gateway-addresses``). The default ``0.0.0.0/32`` binds the Gateway's listeners on every
      address of the pod, reached through the controller's Service; give a range routed to the
      nodes when the proxy runs with ``hostNetwork``.
    """

    name: DNSLabel = GATEWAY_NAME
    install_crds: bool = True
    addresses: Cidr = "0.0.0.0/32"
