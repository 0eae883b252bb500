"""The stack program: ``kexpose:*`` stack config in, one Exposure out.

Run by ``pulumi up`` through ``stacks/__main__.py``, and in-process by ``kexpose preview``.
"""

from __future__ import annotations

from typing import Any

import pulumi

from kexpose.errors import KexposeError
from kexpose.resources import Exposure
from kexpose.validation import stack_file_for

__all__ = ["main", "read_config"]


def read_config() -> dict[str, Any]:
    """The exposure part of the stack config, as the model reads it."""
    cfg = pulumi.Config("kexpose")
    raw: dict[str, Any] = {"environment": cfg.get("environment") or pulumi.get_stack()}
    for key in ("controller", "apps", "policy"):
        value = cfg.get_object(key)
        if value is not None:
            raw[key] = value
    return raw


def main() -> Exposure:
    stack = pulumi.get_stack()
    try:
        exposure = Exposure("kexpose", read_config(), stack_file=stack_file_for(stack))
    except KexposeError as exc:
        # RunError prints the message alone, without a Python traceback: the message is the
        # whole story (file, app, field, value, what is allowed). The cause stays attached
        # for in-process callers (kexpose preview).
        raise pulumi.RunError(str(exc)) from exc
    pulumi.export("environment", pulumi.Config("kexpose").get("environment") or stack)
    pulumi.export("urls", exposure.urls)
    pulumi.export("ingressClass", exposure.ingress_class)
    pulumi.export("controllerAddress", exposure.controller_address)
    return exposure
