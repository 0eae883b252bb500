"""Kubernetes label selectors (``metav1.LabelSelector``) against a namespace's labels.

Used wherever the Gateway API picks namespaces by label: a listener's
``allowedRoutes.namespaces.selector`` and a Gateway's ``allowedListeners.namespaces.selector``.
An unknown operator matches nothing (the API server validates operators; static mode does not).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kexpose.proxy.routes._raw import entries, mapping

__all__ = ["selector_matches"]


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A ``metav1.LabelSelector`` (matchLabels and matchExpressions) against ``labels``."""
    for key, value in mapping(selector.get("matchLabels")).items():
        if labels.get(key) != value:
            return False
    for expr in entries(selector.get("matchExpressions")):
        op = expr.get("operator")
        name = str(expr.get("key") or "")
        raw = expr.get("values")
        values = raw if isinstance(raw, list) else []
        present = name in labels
        if op == "In" and not (present and labels[name] in values):
            return False
        if op == "NotIn" and present and labels[name] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
    return True
