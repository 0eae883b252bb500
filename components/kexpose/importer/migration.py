"""The migration report: what each Ingress and annotation became, and the policy verdicts of the
imported stack for its environment.

The verdicts are those ``kexpose preview`` would give the stack: the policy engine over every
object the stack plans (``kexpose.plan``), with placeholder TLS material where the stack holds
PEM only at deployment. Rules about certificate *material* (expiry, SANs) are left out, as in
the components' early validation, since that material is not known here. So is
``svc-selector-matches-workload``: an imported app selects a workload that exists in the cluster
and, by design, not in the stack.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Final

from kexpose.environment import Environment
from kexpose.importer.conversion import Conversion
from kexpose.importer.findings import Item
from kexpose.manifests import Manifest, TlsMaterial
from kexpose.model import AppSpec
from kexpose.plan import plan_stack
from kexpose.policy.config import PolicyConfig
from kexpose.policy.engine import Violation, evaluate
from kexpose.policy.rules import RULES
from kexpose.validation import policy_config_for

__all__ = ["MATERIAL_RULES", "SKIPPED_RULES", "MigrationReport", "assess", "planned_manifests"]

#: Rules about certificate material, unknown before deployment (see the module docstring).
MATERIAL_RULES: Final = frozenset({"tls-cert-not-expiring", "tls-cert-covers-hosts"})
#: Rules left out of the verdicts: material rules, and the workload the stack does not hold.
SKIPPED_RULES: Final = MATERIAL_RULES | {"svc-selector-matches-workload"}
_PLACEHOLDER: Final = TlsMaterial("<provided at deployment>", "<provided at deployment>")


@dataclass(frozen=True, slots=True)
class MigrationReport:
    environment: Environment
    items: tuple[Item, ...]
    violations: tuple[Violation, ...]
    ingresses: int
    apps: int

    @property
    def counts(self) -> dict[str, int]:
        found = Counter(i.verdict for i in self.items)
        return {
            v: found.get(v, 0)
            for v in ("converted", "approximated", "not-convertible", "refused", "skipped")
        }

    @property
    def failed(self) -> bool:
        """Whether the stack breaks a rule that is mandatory in its environment."""
        return any(v.enforcement == "mandatory" for v in self.violations)

    def as_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "ingresses": self.ingresses,
            "apps": self.apps,
            "counts": self.counts,
            "items": [i.as_dict() for i in self.items],
            "violations": [v.as_dict() for v in self.violations],
        }


def _material(app: AppSpec) -> TlsMaterial | None:
    return _PLACEHOLDER if app.tls.mode in ("self-signed", "secret") else None


def planned_manifests(conversion: Conversion) -> list[Manifest]:
    """Every object the imported stack would create (TLS material as placeholders)."""
    return [p.manifest for p in plan_stack(conversion.spec, tls=_material)]


def assess(conversion: Conversion, *, config: PolicyConfig | None = None) -> MigrationReport:
    """The report of ``conversion`` with the policy verdicts of its stack."""
    spec = conversion.spec
    rules = [
        r.id for r in RULES.values() if r.is_active(spec.environment) and r.id not in SKIPPED_RULES
    ]
    violations = evaluate(
        planned_manifests(conversion),
        environment=spec.environment,
        config=config or policy_config_for(spec),
        rules=rules,
    )
    subjects = {i.subject for i in conversion.items if i.subject.startswith("Ingress/")}
    return MigrationReport(
        environment=spec.environment,
        items=conversion.items,
        violations=tuple(violations),
        ingresses=len(subjects),
        apps=len(conversion.apps),
    )
