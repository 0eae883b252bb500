"""The exposure policy: 42 environment-aware rules over plain Kubernetes objects.

Written once (``rules``), evaluated over a whole object set (``engine``), configured by
``config``, and served three ways: the CrossGuard pack (``pack``, built only by ``policies/``),
the offline checker (``kexpose check``) and the components' early validation.

The pack module is not imported here: it pulls in pulumi_policy, which the pure layers must not.
"""

from __future__ import annotations

from kexpose.policy.config import PolicyConfig
from kexpose.policy.engine import Violation, early_violations, evaluate

__all__ = ["PolicyConfig", "Violation", "early_violations", "evaluate"]
