"""The lines of the migration report, and the recorder the converter writes them with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from kexpose.importer.catalogue import Entry, Verdict
from kexpose.importer.source import Origin, SourceIngress, SourceService

__all__ = ["Findings", "Item", "ItemVerdict"]

#: A catalogue verdict, or ``skipped`` for what is not ours to import (another class,
#: kubectl's bookkeeping).
ItemVerdict = Verdict | Literal["skipped"]


@dataclass(frozen=True, slots=True)
class Item:
    """One line of the migration report."""

    subject: str
    """``Ingress/ns/name`` or ``Service/ns/name``."""
    topic: str
    """The annotation key or field it is about."""
    verdict: ItemVerdict
    detail: str
    todo: str = ""
    doc: str = ""
    origin: Origin | None = None

    def as_dict(self) -> dict[str, str | int | None]:
        return {
            "subject": self.subject,
            "topic": self.topic,
            "verdict": self.verdict,
            "detail": self.detail,
            "todo": self.todo,
            "doc": self.doc,
            "file": self.origin.file if self.origin else None,
            "line": self.origin.line if self.origin else None,
        }


@dataclass(slots=True)
class Findings:
    """Report lines in the order they were found."""

    items: list[Item] = field(default_factory=list)

    def add(
        self,
        obj: SourceIngress | SourceService,
        topic: str,
        verdict: ItemVerdict,
        detail: str,
        *,
        todo: str = "",
        doc: str = "",
    ) -> None:
        self.items.append(Item(obj.ref, topic, verdict, detail, todo, doc, obj.origin))

    def entry(self, ing: SourceIngress, key: str, entry: Entry, *, more: str = "") -> None:
        """A catalogue row as a report line; NEEDS_MODEL rows say which feature is missing."""
        detail = entry.note + more
        if entry.feature is not None:
            detail = f"not convertible in this version: {detail}; needs {entry.feature}"
        self.add(ing, key, entry.verdict, detail, todo=entry.todo, doc=entry.doc)
