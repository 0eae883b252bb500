"""kexpose-proxy: an Ingress controller in Python.

``routes`` is the pure core (objects -> route table); ``server`` is the data plane (asyncio
Protocols on uvloop with httptools); ``control`` is the Kubernetes control plane (list, watch,
status, leader election); ``static`` reads the same objects from YAML files; ``cli`` is the
``kexpose-proxy`` command.
"""

from __future__ import annotations

from kexpose.proxy.errors import ProxyError

__all__ = ["ProxyError"]
