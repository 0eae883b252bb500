"""Policy findings as CI systems read them: JSON, SARIF 2.1.0, JUnit XML, GitHub annotations.

Pure: findings and problems in, text out; the CLI prints it. Every finding carries the file and
line of the object it is about, so that code-scanning UIs and annotations point at it.

- SARIF: OASIS SARIF 2.1.0 (``sarif-v2.1.0``), the subset GitHub code scanning reads: one run,
  the rule table in ``tool.driver.rules`` (id, descriptions, help, default level), one result
  per finding with a ``physicalLocation`` (repository-relative ``uri``, ``region.startLine``)
  and the object as a ``logicalLocation``. Errors that stopped the run are
  ``invocations[0].toolExecutionNotifications`` with ``executionSuccessful: false`` (§3.20).
- JUnit: one ``testsuite`` per file, one ``testcase`` per object and applicable rule (classname
  the object, name the rule id: each per-object rule that reads the object's kind, and each
  stack rule that reported on it); a mandatory violation is a ``failure``, an advisory one is
  reported in ``system-out`` (it does not fail the build), an error is an ``error`` testcase.
- GitHub: workflow commands (docs.github.com, "Workflow commands for GitHub Actions":
  ``::error file=F,line=L,title=T::message``), with the documented escaping of ``%``, CR, LF,
  and in properties ``:`` and ``,``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from xml.etree import ElementTree as ET

from kexpose.environment import Environment
from kexpose.policy.engine import Violation
from kexpose.policy.rules import RULES, Rule

__all__ = [
    "FORMATS",
    "Finding",
    "Problem",
    "Report",
    "github",
    "junit",
    "render",
    "sarif",
    "to_json",
]

FORMATS: Final = ("json", "sarif", "junit", "github")
SARIF_SCHEMA: Final = "https://json.schemastore.org/sarif-2.1.0.json"
RULES_DOC: Final = "policies/README.md"
_LEVEL: Final = {"mandatory": "error", "advisory": "warning"}
#: GitHub's security-severity (a CVSS-like score) per rule severity, for code scanning's filter.
_SECURITY_SEVERITY: Final = {"critical": "9.0", "high": "7.0", "medium": "5.0", "low": "3.0"}


@dataclass(frozen=True, slots=True)
class Finding:
    """A violation and where its object is written: a file and 1-based line, when known."""

    violation: Violation
    file: str | None = None
    line: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {**self.violation.as_dict(), "file": self.file, "line": self.line}


@dataclass(frozen=True, slots=True)
class Problem:
    """An error or a note about the input (a file skipped, invalid YAML), with its place."""

    message: str
    level: str = "error"
    """``error`` (the run could not judge the input) or ``note``."""
    file: str | None = None
    line: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"level": self.level, "message": self.message, "file": self.file, "line": self.line}


@dataclass(frozen=True, slots=True)
class Subject:
    """An object that was judged, for JUnit's one-testcase-per-object-and-rule."""

    ref: str
    kind: str
    file: str | None = None
    line: int | None = None


@dataclass(frozen=True, slots=True)
class Report:
    """Everything one run has to say."""

    tool: str
    """``kexpose check`` or ``kexpose preview``: the command, for the reports' names."""
    environment: Environment | None
    findings: Sequence[Finding] = ()
    problems: Sequence[Problem] = ()
    subjects: Sequence[Subject] = ()
    exit_code: int = 0
    version: str = "0"
    extra: Mapping[str, Any] = field(default_factory=dict)
    """More top-level JSON keys (preview's resources)."""


def _uri(path: str) -> str:
    """A repository-relative URI where possible (what code scanning matches files by)."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        rel = path
    if rel.startswith(".."):
        rel = os.path.abspath(path)
    return rel.replace(os.sep, "/")


def to_json(report: Report) -> str:
    return json.dumps(
        {
            **report.extra,
            "environment": report.environment,
            "exit_code": report.exit_code,
            "violations": [f.as_dict() for f in report.findings],
            "problems": [p.as_dict() for p in report.problems],
        },
        indent=2,
    )


def _rule_meta(rule: Rule) -> dict[str, Any]:
    active = ", ".join(f"{env}: {level}" for env, level in rule.enforcement.items())
    help_text = (
        f"{rule.description}\n\nSeverity {rule.severity}; enforcement {active}. "
        f"See {RULES_DOC} for the rule table and its config keys."
    )
    return {
        "id": rule.id,
        "name": rule.id,
        "shortDescription": {"text": rule.description.split(". ")[0].rstrip(".")},
        "fullDescription": {"text": rule.description},
        "help": {"text": help_text, "markdown": help_text},
        "defaultConfiguration": {"level": "error" if "mandatory" in active else "warning"},
        "properties": {
            "tags": ["kubernetes", "exposure", "security"],
            "precision": "high",
            "security-severity": _SECURITY_SEVERITY[rule.severity],
        },
    }


def _location(file: str | None, line: int | None, ref: str | None = None) -> dict[str, Any]:
    loc: dict[str, Any] = {}
    if file is not None and not file.startswith("<"):
        region = {"startLine": max(line or 1, 1)}
        loc["physicalLocation"] = {"artifactLocation": {"uri": _uri(file)}, "region": region}
    if ref is not None:
        loc["logicalLocations"] = [{"fullyQualifiedName": ref, "kind": "resource"}]
    return loc


def sarif(report: Report) -> str:
    rules = list(RULES.values())
    index = {r.id: n for n, r in enumerate(rules)}
    results = []
    for f in report.findings:
        v = f.violation
        results.append(
            {
                "ruleId": v.rule,
                "ruleIndex": index.get(v.rule, -1),
                "level": _LEVEL[v.enforcement],
                "message": {"text": f"{v.message} Fix: {v.fix}"},
                "locations": [_location(f.file, f.line, v.resource)],
                # Stable across reorderings of the file, so code scanning tracks one alert.
                "partialFingerprints": {"kexposeFinding/v1": f"{v.rule}:{v.resource}:{v.field}"},
                "properties": {"field": v.field, "severity": v.severity},
            }
        )
    notifications = [
        {
            "level": p.level,
            "message": {"text": p.message},
            "locations": [_location(p.file, p.line)] if p.file else [],
        }
        for p in report.problems
    ]
    errors = any(p.level == "error" for p in report.problems)
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "kexpose",
                "version": report.version,
                "informationUri": "https://github.com/kexpose/kexpose",
                "rules": [_rule_meta(r) for r in rules],
            }
        },
        "results": results,
        "invocations": [
            {
                "executionSuccessful": not errors,
                "exitCode": report.exit_code,
                "toolExecutionNotifications": notifications,
            }
        ],
        "properties": {"environment": report.environment, "command": report.tool},
    }
    return json.dumps({"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}, indent=2)


def _applicable(subject: Subject, environment: Environment | None) -> Iterable[Rule]:
    for rule in RULES.values():
        if environment is not None and not rule.is_active(environment):
            continue
        if rule.scope == "R" and subject.kind in rule.kinds:
            yield rule


def junit(report: Report) -> str:
    by_case: dict[tuple[str, str], list[Finding]] = {}
    for f in report.findings:
        by_case.setdefault((f.violation.resource, f.violation.rule), []).append(f)
    suites: dict[str, ET.Element] = {}
    root = ET.Element("testsuites", name=f"{report.tool} ({report.environment})")

    def suite(file: str | None) -> ET.Element:
        name = _uri(file) if file else report.tool
        if name not in suites:
            suites[name] = ET.SubElement(root, "testsuite", name=name)
        return suites[name]

    subjects = list(report.subjects)
    known = {s.ref for s in subjects}
    # Objects only the findings name (preview's mandatory violations): a testcase each too.
    for f in report.findings:
        if f.violation.resource not in known:
            known.add(f.violation.resource)
            kind = f.violation.resource.split("/")[0]
            subjects.append(Subject(f.violation.resource, kind, f.file, f.line))
    for subject in subjects:
        parent = suite(subject.file)
        rules = {r.id for r in _applicable(subject, report.environment)}
        rules |= {rule for ref, rule in by_case if ref == subject.ref}
        for rule_id in sorted(rules):
            case = ET.SubElement(parent, "testcase", classname=subject.ref, name=rule_id)
            if subject.file:
                case.set("file", _uri(subject.file))
                if subject.line:
                    case.set("line", str(subject.line))
            found = by_case.get((subject.ref, rule_id), [])
            mandatory = [f for f in found if f.violation.enforcement == "mandatory"]
            for f in mandatory:
                failure = ET.SubElement(
                    case, "failure", message=f.violation.message, type=f.violation.severity
                )
                failure.text = f"{f.violation.field}: {f.violation.message}\nfix: {f.violation.fix}"
            advisory = [f for f in found if f.violation.enforcement == "advisory"]
            if advisory:
                out = ET.SubElement(case, "system-out")
                out.text = "\n".join(
                    f"advisory: {f.violation.message} fix: {f.violation.fix}" for f in advisory
                )
    for n, p in enumerate(report.problems):
        parent = suite(p.file)
        case = ET.SubElement(parent, "testcase", classname="input", name=f"{p.level}-{n}")
        if p.level == "error":
            ET.SubElement(case, "error", message=p.message).text = p.message
        else:
            ET.SubElement(case, "system-out").text = p.message
    total = {"tests": 0, "failures": 0, "errors": 0}
    for element in suites.values():
        cases = element.findall("testcase")
        counts = {
            "tests": len(cases),
            "failures": sum(1 for c in cases if c.find("failure") is not None),
            "errors": sum(1 for c in cases if c.find("error") is not None),
        }
        for key, value in counts.items():
            element.set(key, str(value))
            total[key] += value
    for key, value in total.items():
        root.set(key, str(value))
    ET.indent(root)
    body: str = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def _command(level: str, message: str, file: str | None, line: int | None, title: str) -> str:
    props = []
    if file is not None and not file.startswith("<"):
        props.append(f"file={_prop(_uri(file))}")
        if line is not None:
            props.append(f"line={line}")
    props.append(f"title={_prop(title)}")
    return f"::{level} {','.join(props)}::{_data(message)}"


def github(report: Report) -> str:
    lines = []
    for f in report.findings:
        v = f.violation
        level = _LEVEL[v.enforcement]
        title = f"{v.enforcement} {v.rule} ({v.severity})"
        lines.append(_command(level, f"{v.message}\nfix: {v.fix}", f.file, f.line, title))
    for p in report.problems:
        level = "error" if p.level == "error" else "notice"
        lines.append(_command(level, p.message, p.file, p.line, f"{report.tool}: {p.level}"))
    mandatory = sum(f.violation.enforcement == "mandatory" for f in report.findings)
    lines.append(
        f"{report.tool} ({report.environment}): {mandatory} mandatory, "
        f"{len(report.findings) - mandatory} advisory violation(s), "
        f"{sum(p.level == 'error' for p in report.problems)} error(s); exit {report.exit_code}"
    )
    return "\n".join(lines)


def render(report: Report, output: str) -> str:
    """``report`` in one of :data:`FORMATS`."""
    if output == "sarif":
        return sarif(report)
    if output == "junit":
        return junit(report)
    if output == "github":
        return github(report)
    return to_json(report)
