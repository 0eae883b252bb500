"""Evaluating the rule table over a set of Kubernetes objects, for one environment.

``evaluate`` is what ``kexpose check``, ``kexpose preview`` and the CrossGuard pack call; the
components' early validation calls ``early_violations`` (the mandatory per-object rules, which
forbid a choice outright and need no sibling objects).

Speed matters (``kexpose check`` runs on every CI build over whole rendered stacks): identity is
read once per object, per-object rules are dispatched by kind, and the stack indexes are built
once and only when a stack rule is active.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kexpose.environment import Environment
from kexpose.policy.config import PolicyConfig
from kexpose.policy.rules import RULES, Enforcement, ResourceCheck, Rule, Severity, StackCheck
from kexpose.policy.rules._kube import Context, Finding, Obj, as_map, as_str
from kexpose.policy.rules._stack import Stack

__all__ = ["Violation", "early_violations", "evaluate", "identify"]


@dataclass(frozen=True, slots=True)
class Violation:
    """One rule broken by one object, as every front end reports it."""

    rule: str
    severity: Severity
    enforcement: Enforcement
    resource: str
    """``Kind/namespace/name``."""
    field: str
    """Field path in the object, e.g. ``spec.rules[0].host``."""
    message: str
    """A sentence naming the resource and the field."""
    fix: str

    def as_dict(self) -> dict[str, str]:
        """The JSON form (``kexpose check --output json``)."""
        return {
            "rule": self.rule,
            "severity": self.severity,
            "enforcement": self.enforcement,
            "resource": self.resource,
            "field": self.field,
            "message": self.message,
            "fix": self.fix,
        }


def identify(objects: Iterable[Mapping[str, Any]]) -> list[Obj]:
    """Read each object's kind, apiVersion, namespace and name once.

    A namespaced object without ``metadata.namespace`` lands in ``default``, as kubectl and the
    Pulumi provider (without a provider namespace) put it.
    """
    found: list[Obj] = []
    for index, raw in enumerate(objects):
        meta = as_map(raw.get("metadata"))
        found.append(
            Obj(
                index,
                as_str(raw.get("kind")) or "",
                as_str(raw.get("apiVersion")) or "",
                as_str(meta.get("namespace")) or "default",
                as_str(meta.get("name")) or "",
                raw,
            )
        )
    return found


def _violation(rule: Rule, level: Enforcement, finding: Finding) -> Violation:
    resource = finding.obj.ref
    return Violation(
        rule=rule.id,
        severity=rule.severity,
        enforcement=level,
        resource=resource,
        field=finding.field,
        message=f"{resource} {finding.field}: {finding.message}",
        fix=finding.fix,
    )


def _context(environment: Environment, config: PolicyConfig) -> Context:
    return Context(environment, config, config.now or dt.datetime.now(dt.UTC))


def evaluate(
    objects: Sequence[Mapping[str, Any]],
    *,
    environment: Environment,
    config: PolicyConfig,
    rules: Collection[str] | None = None,
) -> list[Violation]:
    """Every violation of the active rules (or of ``rules``, a subset of ids) over ``objects``.

    Violations come in object order, then rule-table order, then the order the rule found them.
    """
    selected = [
        r for r in RULES.values() if r.is_active(environment) and (rules is None or r.id in rules)
    ]
    if rules is not None:
        unknown = set(rules) - RULES.keys()
        if unknown:
            raise ValueError(f"unknown rule ids: {', '.join(sorted(unknown))}")
    ctx = _context(environment, config)
    objs = identify(objects)
    by_kind: dict[str, list[tuple[Rule, ResourceCheck]]] = defaultdict(list)
    stack_rules: list[tuple[Rule, StackCheck]] = []
    for rule in selected:
        if rule.check_resource is not None:
            for kind in rule.kinds:
                by_kind[kind].append((rule, rule.check_resource))
        elif rule.check_stack is not None:
            stack_rules.append((rule, rule.check_stack))
    order = {rule.id: n for n, rule in enumerate(RULES.values())}
    found: list[tuple[int, int, int, Violation]] = []
    for obj in objs:
        for rule, check in by_kind.get(obj.kind, ()):
            level = rule.enforcement[environment]
            for finding in check(obj, ctx):
                found.append(
                    (obj.index, order[rule.id], len(found), _violation(rule, level, finding))
                )
    if stack_rules:
        stack = Stack(objs)
        for rule, stack_check in stack_rules:
            level = rule.enforcement[environment]
            for finding in stack_check(stack, ctx):
                found.append(
                    (
                        finding.obj.index,
                        order[rule.id],
                        len(found),
                        _violation(rule, level, finding),
                    )
                )
    found.sort(key=lambda item: item[:3])
    return [item[3] for item in found]


def early_violations(
    objects: Sequence[Mapping[str, Any]], *, environment: Environment, config: PolicyConfig
) -> list[Violation]:
    """The mandatory per-object violations: choices the environment forbids outright.

    For the components' validation before anything is registered (e.g. a NodePort Service in
    prod). Stack rules are left out: a component's own objects are not the whole stack.
    """
    ids = [
        r.id
        for r in RULES.values()
        if r.scope == "R" and r.enforcement.get(environment) == "mandatory"
    ]
    return evaluate(objects, environment=environment, config=config, rules=ids)
