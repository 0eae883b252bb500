"""``kexpose preview`` and ``kexpose render``: a stack's plan, offline.

Exit codes: 0 the plan is valid and passes every mandatory policy rule; 1 a mandatory policy
rule fails; 2 the stack config or the files are unusable (the message says where and why); 3
writing the output failed (``kexpose.cli._output``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NoReturn, cast

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from kexpose.cli._output import (
    EXIT_CODES_HELP,
    EXIT_OK,
    EXIT_VIOLATION,
    MACHINE_FORMATS,
    emit,
    exit_code_for,
    tool_version,
    where,
)
from kexpose.environment import ENVIRONMENTS, Environment
from kexpose.errors import (
    ConfigError,
    InputError,
    KexposeError,
    OutputError,
    PolicyViolationError,
)

if TYPE_CHECKING:
    # The engine pulls in the Pulumi SDK and pulumi-kubernetes (seconds of imports), and the
    # model pydantic's schema building; the commands import them when they run, so that
    # ``kexpose check`` and ``--help`` do not pay for them.
    from kexpose.manifests import Manifest
    from kexpose.policy.engine import Violation
    from kexpose.preview import PreviewResult, Recorded
    from kexpose.report import Report

__all__ = ["commands", "order_key", "redact"]

# Apply order, as kubectl and Helm use it: what others depend on first.
_KIND_ORDER: Final = [
    # Definitions before the objects of their kinds, so that `kubectl apply -f out/` works.
    "CustomResourceDefinition",
    "Namespace",
    "ServiceAccount",
    "Secret",
    "ConfigMap",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "Service",
    "Deployment",
    "PodDisruptionBudget",
    "IngressClass",
    "Certificate",
    "Ingress",
    "GatewayClass",
    "Gateway",
    "HTTPRoute",
    "ReferenceGrant",
]
REDACTED: Final = "<redacted: use --show-secrets to see it>"

err = Console(stderr=True)


def order_key(manifest: Manifest) -> tuple[int, str, str]:
    kind = manifest.get("kind", "")
    rank = _KIND_ORDER.index(kind) if kind in _KIND_ORDER else len(_KIND_ORDER)
    meta = manifest.get("metadata") or {}
    return rank, meta.get("namespace") or "", meta.get("name") or ""


#: Keys of a ``kubernetes.io/tls`` Secret that hold certificates, which are public: they stay
#: readable so that ``kexpose check`` can judge a rendered stack's certificates (expiry, SANs).
_PUBLIC_TLS_KEYS: Final = frozenset({"tls.crt", "ca.crt"})


def redact(record: Recorded, manifest: Manifest) -> Manifest:
    """The manifest with Secret data and every secret input replaced by a marker.

    Everything in a Secret is redacted except the certificates of a TLS Secret; the private
    key never appears.
    """
    out: Manifest = json.loads(json.dumps(manifest))
    paths = set(record.secret_paths)
    public: frozenset[str] = frozenset()
    if out.get("kind") == "Secret":
        paths |= {"data", "stringData"}
        if out.get("type") == "kubernetes.io/tls":
            public = _PUBLIC_TLS_KEYS
    for path in paths:
        head, _, key = path.rpartition(".")
        parent: Any = out
        for part in head.split(".") if head else []:
            parent = parent.get(part) if isinstance(parent, dict) else None
        if isinstance(parent, dict) and key in parent:
            value = parent[key]
            parent[key] = (
                {k: v if k in public else REDACTED for k, v in value.items()}
                if isinstance(value, dict)
                else REDACTED
            )
    return out


@contextmanager
def _progress(stack: str, quiet: bool) -> Iterator[Any]:
    if quiet or not err.is_terminal:
        yield lambda _r: None
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        TextColumn("{task.completed} resources"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task(f"running stack {stack}", total=None)
        yield lambda _r: progress.advance(task)


def _run(
    stack: str, project_dir: Path | None, quiet: bool = False, *, placeholders: bool = False
) -> PreviewResult:
    from kexpose.preview import find_project, run_preview

    project = project_dir or find_project(Path.cwd())
    with _progress(stack, quiet) as tick:
        return run_preview(stack, project=project, on_resource=tick, placeholders=placeholders)


def _fail(exc: KexposeError) -> NoReturn:
    click.echo(str(exc), err=True)
    sys.exit(exit_code_for(exc))


def _violations(result: PreviewResult, manifests: list[Manifest]) -> list[Violation]:
    from kexpose.policy.engine import evaluate
    from kexpose.validation import parse_stack, policy_config_for

    spec = parse_stack(
        {
            k.removeprefix("kexpose:"): v
            for k, v in result.stack_config.items()
            if k.startswith("kexpose:")
        },
        stack_file=str(result.stack_file),
    )
    config = policy_config_for(spec, stack_file=str(result.stack_file))
    return evaluate(manifests, environment=spec.environment, config=config)


def _row(m: Manifest, secrets: set[str]) -> dict[str, Any]:
    kind, spec = m.get("kind", ""), m.get("spec") or {}
    meta = m.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    typ = hosts = tls = controller = ""
    if kind == "Service":
        typ = spec.get("type", "ClusterIP")
        ports = [
            f"{p.get('port')}" + (f"/{p['nodePort']}" if p.get("nodePort") else "")
            for p in spec.get("ports", [])
        ]
        typ += f" ({', '.join(ports)})"
    elif kind == "Deployment":
        typ = f"{spec.get('replicas', 1)} replicas"
        images = [c.get("image", "") for c in spec["template"]["spec"]["containers"]]
        controller = (
            ", ".join(images)
            if meta.get("labels", {}).get("app.kubernetes.io/component") == "ingress-controller"
            else ""
        )
    elif kind == "Secret":
        typ = m.get("type", "Opaque")
    elif kind == "Ingress":
        hosts = ", ".join(r.get("host", "*") for r in spec.get("rules", []))
        controller = spec.get("ingressClassName", "")
        entries = spec.get("tls") or []
        issuer = annotations.get("cert-manager.io/cluster-issuer") or annotations.get(
            "cert-manager.io/issuer"
        )
        if entries:
            names = ", ".join(e.get("secretName", "?") for e in entries)
            tls = (
                f"cert-manager {issuer} -> {names}"
                if issuer
                else (
                    names
                    if any(e.get("secretName") in secrets for e in entries)
                    else f"{names} (not in stack)"
                )
            )
        else:
            tls = "none"
    elif kind == "IngressClass":
        controller = spec.get("controller", "")
        if annotations.get("ingressclass.kubernetes.io/is-default-class") == "true":
            typ = "default"
    elif kind == "Certificate":
        tls = f"{spec.get('issuerRef', {}).get('name')} -> {spec.get('secretName')}"
        hosts = ", ".join(spec.get("dnsNames", []))
    elif kind in _GATEWAY_API_KINDS and str(m.get("apiVersion", "")).startswith(_GATEWAY_API):
        typ, hosts, tls, controller = _gateway_api_row(m, secrets)
    ns = meta.get("namespace")
    return {
        "kind": kind,
        "name": f"{ns}/{meta.get('name')}" if ns else str(meta.get("name")),
        "type": typ,
        "hosts": hosts,
        "tls": tls,
        "controller": controller,
    }


_GATEWAY_API: Final = "gateway.networking.k8s.io/"
_GATEWAY_API_KINDS: Final = frozenset({"GatewayClass", "Gateway", "HTTPRoute", "ReferenceGrant"})


def _gateway_api_row(m: Manifest, secrets: set[str]) -> tuple[str, str, str, str]:
    """(type, hosts, TLS, controller) of a Gateway API object, as the table shows Ingresses."""
    kind, spec = m.get("kind", ""), m.get("spec") or {}
    meta = m.get("metadata") or {}
    if kind == "GatewayClass":
        return "", "", "", str(spec.get("controllerName", ""))
    if kind == "Gateway":
        listeners = list(spec.get("listeners") or [])
        annotations = meta.get("annotations") or {}
        issuer = annotations.get("cert-manager.io/cluster-issuer") or annotations.get(
            "cert-manager.io/issuer"
        )
        refs = [r for x in listeners for r in (x.get("tls") or {}).get("certificateRefs") or []]
        tls = ", ".join(
            f"{r.get('namespace') or meta.get('namespace')}/{r.get('name')}"
            + ("" if issuer or r.get("name") in secrets else " (not in stack)")
            for r in refs
        )
        if issuer and refs:
            tls = f"cert-manager {issuer} -> {tls}"
        ports = ", ".join(f"{x.get('protocol')}:{x.get('port')}" for x in listeners)
        hosts = ", ".join(sorted({str(x["hostname"]) for x in listeners if x.get("hostname")}))
        return (
            f"{len(listeners)} listeners ({ports})",
            hosts,
            tls or "none",
            str(spec.get("gatewayClassName", "")),
        )
    if kind == "HTTPRoute":
        parents = ", ".join(
            f"{p.get('namespace') or meta.get('namespace')}/{p.get('name')}"
            + (f"#{p['sectionName']}" if p.get("sectionName") else "")
            for p in spec.get("parentRefs") or []
        )
        rules = len(spec.get("rules") or [])
        return f"{rules} rules", ", ".join(spec.get("hostnames") or ["*"]), "", parents
    grants = spec.get("from") or []
    to = ", ".join(f"{t.get('kind')} {t.get('name', '*')}" for t in spec.get("to") or [])
    sources = ", ".join(f"{f.get('kind')} in {f.get('namespace')}" for f in grants)
    return f"{sources} -> {to}", "", "", ""


def _summary(result: PreviewResult, manifests: list[Manifest], violations: list[Violation]) -> str:
    kinds = Counter(m["kind"] for m in manifests)
    svc = Counter(
        (m.get("spec") or {}).get("type", "ClusterIP") for m in manifests if m["kind"] == "Service"
    )
    mandatory = sum(v.enforcement == "mandatory" for v in violations)
    parts = [
        f"{len(manifests)} Kubernetes objects in {len(result.components)} components",
        "Services: " + ", ".join(f"{n} {t}" for t, n in sorted(svc.items())),
        f"Ingresses: {kinds.get('Ingress', 0)}",
        *([f"HTTPRoutes: {kinds['HTTPRoute']}"] if kinds.get("HTTPRoute") else []),
        f"policy: {mandatory} mandatory, {len(violations) - mandatory} advisory violation(s)",
    ]
    return f"{result.stack}: " + "; ".join(parts)


@click.command("preview", epilog=EXIT_CODES_HELP)
@click.option("--stack", "-s", required=True, help="Stack name: dev, staging or prod.")
@click.option(
    "--project-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory holding Pulumi.yaml (default: the nearest one above the current directory).",
)
@click.option(
    "--output",
    "-o",
    type=click.Choice(["table", *MACHINE_FORMATS]),
    default="table",
    show_default=True,
    help=(
        "table for people; json (resources, and violations with the stack file and line); "
        "sarif (SARIF 2.1.0); junit (a testcase per object and rule); github (workflow-command "
        "annotations). In the machine formats errors are structured output too."
    ),
)
def preview(stack: str, project_dir: Path | None, output: str) -> None:
    """Show what a stack would provision, with policy verdicts, without a cluster or Pulumi CLI."""
    machine = output in MACHINE_FORMATS
    try:
        result = _run(stack, project_dir, quiet=machine)
        pairs = sorted(result.manifests(), key=lambda p: order_key(p[1]))
        manifests = [m for _, m in pairs]
        violations = _violations(result, manifests)
    except KexposeError as exc:
        if machine:
            emit(_error_report(stack, project_dir, exc), output)
        _fail(exc)
    by_resource: dict[str, list[Violation]] = {}
    for v in violations:
        by_resource.setdefault(v.resource, []).append(v)
    secrets = {
        (m.get("metadata") or {}).get("name", "") for m in manifests if m["kind"] == "Secret"
    }
    rows = []
    for m in manifests:
        row = _row(m, secrets)
        meta = m.get("metadata") or {}
        ref = f"{m['kind']}/{meta.get('namespace') or 'default'}/{meta.get('name')}"
        row["policy"] = [f"{v.enforcement}:{v.rule}" for v in by_resource.get(ref, [])]
        rows.append(row)
    code = EXIT_VIOLATION if any(v.enforcement == "mandatory" for v in violations) else EXIT_OK
    if machine:
        emit(_report(result, pairs, rows, violations, code), output)
    _print_table(stack, rows, violations, _summary(result, manifests, violations))
    sys.exit(code)


def _environment(config: Mapping[str, Any]) -> Environment | None:
    env = config.get("kexpose:environment")
    return cast("Environment", env) if env in ENVIRONMENTS else None


def _report(
    result: PreviewResult,
    pairs: list[tuple[Recorded, Manifest]],
    rows: list[dict[str, Any]],
    violations: list[Violation],
    code: int,
) -> Report:
    from kexpose.policy.engine import identify
    from kexpose.preview import config_path_of, line_of, stack_lines
    from kexpose.report import Finding, Report, Subject

    lines = stack_lines(result.stack_file)
    file = str(result.stack_file)
    at: dict[str, int | None] = {}
    subjects = []
    for (record, _), obj in zip(pairs, identify([m for _, m in pairs]), strict=True):
        line = line_of(lines, config_path_of(result, record))
        at.setdefault(obj.ref, line)
        subjects.append(Subject(obj.ref, obj.kind, file, line))
    return Report(
        tool="kexpose preview",
        environment=_environment(result.stack_config),
        findings=[Finding(v, file, at.get(v.resource)) for v in violations],
        subjects=subjects,
        exit_code=code,
        version=tool_version(),
        extra={"stack": result.stack, "resources": rows},
    )


def _error_report(stack: str, project_dir: Path | None, exc: KexposeError) -> Report:
    """The report of a run that stopped: the error, and each mandatory violation it names."""
    from kexpose.policy.engine import Violation
    from kexpose.preview import find_project, line_of, stack_lines, stack_path
    from kexpose.report import Finding, Problem, Report

    try:
        path: Path | None = stack_path(project_dir or find_project(Path.cwd()), stack)
    except KexposeError:
        path = None
    lines = stack_lines(path) if path is not None else {}
    file = str(path) if path is not None and path.is_file() else None
    findings = []
    if isinstance(exc, PolicyViolationError):
        for violation, field in exc.violations:
            if isinstance(violation, Violation):
                findings.append(Finding(violation, file, line_of(lines, field)))
    problem_file, problem_line = where(exc)
    if isinstance(exc, ConfigError) and file is not None:
        problem_file, problem_line = file, line_of(lines, exc.field)
    return Report(
        tool="kexpose preview",
        environment=None,
        findings=findings,
        problems=[Problem(str(exc), file=problem_file or file, line=problem_line)],
        exit_code=exit_code_for(exc),
        version=tool_version(),
        extra={"stack": stack, "resources": []},
    )


def _print_table(
    stack: str, rows: list[dict[str, Any]], violations: list[Violation], summary: str
) -> None:
    out = Console() if Console().is_terminal else Console(width=180)
    table = Table(title=f"kexpose plan for stack {stack!r}", title_justify="left")
    for col in ("Kind", "Namespace/Name", "Type", "Hosts", "TLS", "Controller", "Policy"):
        table.add_column(col, overflow="fold")
    for r in rows:
        marks = [
            f"[red]✗ {p.split(':', 1)[1]}[/]"
            if p.startswith("mandatory")
            else f"[yellow]! {p.split(':', 1)[1]}[/]"
            for p in r["policy"]
        ]
        table.add_row(
            r["kind"],
            r["name"],
            r["type"],
            r["hosts"],
            r["tls"],
            r["controller"],
            "\n".join(marks) or "[green]✓[/]",
        )
    out.print(table)
    for v in violations:
        colour = "red" if v.enforcement == "mandatory" else "yellow"
        out.print(
            f"[{colour}]{v.enforcement} {v.rule}[/] {v.message}\n  fix: {v.fix}", highlight=False
        )
    out.print(f"[bold]{summary}[/]", highlight=False)


@click.command("render", epilog=EXIT_CODES_HELP)
@click.option("--stack", "-s", required=True, help="Stack name: dev, staging or prod.")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to write one YAML file per object into.",
)
@click.option("--project-dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--show-secrets",
    is_flag=True,
    help=(
        "Write Secret data in plain text, with freshly generated self-signed keys. Without it "
        "Secret data is redacted and self-signed certificates are deterministic placeholders, "
        "so that two renders of the same stack are the same."
    ),
)
def render(stack: str, out_dir: Path, project_dir: Path | None, show_secrets: bool) -> None:
    """Write a stack's Kubernetes manifests as YAML, one file per object."""
    try:
        result = _run(stack, project_dir, placeholders=not show_secrets)
        pairs = sorted(result.manifests(), key=lambda p: order_key(p[1]))
        written = write_manifests(pairs, out_dir, show_secrets=show_secrets)
    except KexposeError as exc:
        _fail(exc)
        return
    err.print(f"{stack}: wrote {written} manifests to {out_dir}", highlight=False)
    if show_secrets:
        warning = secrets_warning(out_dir)
        if warning:
            err.print(f"[yellow]warning:[/] {warning}", highlight=False)


def secrets_warning(out_dir: Path) -> str | None:
    """A warning when private keys were written where git would offer to commit them.

    Asks ``git check-ignore`` (which knows every .gitignore, .git/info/exclude and the global
    excludes file); nothing to say outside a git work tree or without git.
    """
    probe = out_dir / "secret.yaml"
    try:
        done = subprocess.run(
            ["git", "check-ignore", "-q", "--no-index", str(probe)],
            cwd=out_dir,
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode == 1:  # in a work tree and not ignored (128: not a repository)
        return (
            f"{out_dir} holds private keys in plain text and is not ignored by git; add it to "
            ".gitignore (or render into out/, which is) so that they are never committed"
        )
    return None


def write_manifests(
    pairs: list[tuple[Recorded, Manifest]], out_dir: Path, *, show_secrets: bool
) -> int:
    """Write each object to ``out_dir`` as one YAML document, replacing an earlier render.

    Raises InputError for a directory kexpose did not write (a usage problem) and OutputError
    when writing fails (permissions, a full disk).
    """
    from kexpose.yamlio import dump_document

    marker = out_dir / ".kexpose-render"
    try:
        if out_dir.exists() and any(out_dir.iterdir()) and not marker.exists():
            raise InputError(
                f"{out_dir} is not empty and was not written by kexpose render; choose another "
                "--out"
            )
        out_dir.mkdir(parents=True, exist_ok=True)
        for old in out_dir.glob("*.yaml"):
            old.unlink()
        marker.write_text("written by kexpose render; files here are replaced on every render\n")
        for n, (record, manifest) in enumerate(pairs):
            body = manifest if show_secrets else redact(record, manifest)
            meta: Mapping[str, Any] = manifest.get("metadata") or {}
            parts = [f"{n:03d}", manifest["kind"].lower(), meta.get("namespace"), meta.get("name")]
            name = "-".join(str(p) for p in parts if p) + ".yaml"
            (out_dir / name).write_text(dump_document(body))
    except OSError as exc:
        where = exc.filename or out_dir
        raise OutputError(
            f"cannot write to {where}: {exc.strerror or exc}; choose a writable --out"
        ) from None
    return len(pairs)


commands = [preview, render]
