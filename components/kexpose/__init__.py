"""kexpose: typed, policy-checked exposure of Kubernetes apps, provisioned with Pulumi.

The public surface is re-exported here; modules behind it are free to move.
"""

from __future__ import annotations

from kexpose.errors import ConfigError, InputError, KexposeError, PolicyViolationError

__all__ = ["ConfigError", "InputError", "KexposeError", "PolicyViolationError"]
__version__ = "0.1.0"
