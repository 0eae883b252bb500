"""Reading and writing YAML the way Kubernetes tools do: strictly, with positions kept.

Reading (stack files and manifests alike):

- a key given twice in one mapping is refused with the file and both lines, as the API
  server's strict field validation does (sigs.k8s.io/yaml, ``yaml.UnmarshalStrict``: "key
  already set in map"), instead of silently keeping the last one;
- alias expansion is bounded: a document whose aliases expand to far more nodes than it holds
  (the "billion laughs" attack) is refused before anything walks it. go-yaml v3, which
  kubectl uses, refuses "excessive aliasing" by the same kind of ratio (decode.go,
  ``allowedAliasRatio``);
- every document keeps the line its top node starts on, and every mapping the line it starts
  on, so that a finding about an object can name the file and line it came from;
- bytes that are not UTF-8 text, and parser errors, become :class:`InputError` naming the file.

Writing: each object is a YAML document that starts with ``---``, with ``apiVersion`` and
``kind`` first (as ``kubectl get -o yaml`` prints them), and multi-line strings (PEM blocks)
as literal block scalars (YAML 1.2 §8.1.2) so that certificates read as they are.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from kexpose.errors import InputError

__all__ = [
    "ALIAS_RATIO",
    "ALIAS_SLACK",
    "Document",
    "dump_document",
    "load_documents",
    "load_one",
]

#: A document may expand (through aliases) to at most this many times the nodes it holds...
ALIAS_RATIO: Final = 10
#: ...plus this many: small documents that reuse anchors freely stay well inside.
ALIAS_SLACK: Final = 100_000

# libyaml's parser when PyYAML was built with it (an order of magnitude faster on large
# stacks); construction, where the checks below live, is Python in both.
_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class Document:
    """One YAML document: its data, the 1-based line it starts on, and where each mapping
    starts (``lines[id(mapping)]``, valid while ``data`` is alive)."""

    data: Any
    line: int
    lines: Mapping[int, int]
    key_lines: Mapping[int, Mapping[Any, int]] = field(default_factory=dict)
    """``key_lines[id(mapping)][key]``: the line each key of a mapping is written on."""


class _AliasBombError(Exception):
    def __init__(self, expanded: int, distinct: int, line: int) -> None:
        super().__init__(expanded, distinct, line)
        self.expanded, self.distinct, self.line = expanded, distinct, line


def _check_expansion(root: Node) -> None:
    """Refuse a node graph whose expansion is far larger than the graph (aliases share nodes).

    Each distinct node is sized once (memoized by identity), so this costs one pass over the
    document as parsed, never over its expansion.
    """
    sizes: dict[int, int] = {}
    distinct = 0
    limit: int | None = None
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if key in sizes and not done:
            continue
        if isinstance(node, ScalarNode):
            sizes[key] = 1
            distinct += 1
            continue
        children: list[Node]
        if isinstance(node, SequenceNode):
            children = list(node.value)
        elif isinstance(node, MappingNode):
            children = [part for pair in node.value for part in pair]
        else:  # pragma: no cover - the composer makes only these three
            children = []
        if not done:
            sizes[key] = 0  # in progress; a recursive alias counts as one node here
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in sizes)
            continue
        distinct += 1
        sizes[key] = 1 + sum(sizes.get(id(c), 1) for c in children)
        limit = ALIAS_RATIO * distinct + ALIAS_SLACK
        if sizes[key] > limit:
            raise _AliasBombError(sizes[key], distinct, node.start_mark.line + 1)


class _Loader(_Base):  # type: ignore[misc]
    """SafeLoader that refuses duplicate keys and alias bombs and records mapping lines."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.mapping_lines: dict[int, int] = {}
        self.key_lines: dict[int, dict[Any, int]] = {}
        self._keys: dict[Any, int] = {}

    def construct_document(self, node: Node) -> Any:
        _check_expansion(node)
        return super().construct_document(node)

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # '<<' merges may be overridden by the mapping's own keys (YAML merge)
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:
                continue  # an unhashable key: the base class reports it
            line = key_node.start_mark.line + 1
            if first is not None:
                raise ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first given on line {first}); a key may appear "
                    "once in a mapping",
                    key_node.start_mark,
                )
            seen[key] = line
        self._keys = seen
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping

    def construct_yaml_map(self, node: MappingNode) -> Iterator[dict[Any, Any]]:
        # SafeConstructor's own, plus the line: the dict yielded here is the one the document
        # holds (construct_mapping's result is copied into it).
        data: dict[Any, Any] = {}
        self.mapping_lines[id(data)] = node.start_mark.line + 1
        yield data
        data.update(self.construct_mapping(node))
        self.key_lines[id(data)] = self._keys


_Loader.add_constructor("tag:yaml.org,2002:map", _Loader.construct_yaml_map)


def _problem(exc: yaml.YAMLError) -> tuple[int | None, str]:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if isinstance(exc, yaml.reader.ReaderError):
        char = exc.character if isinstance(exc.character, int) else ord(exc.character)
        return None, (
            f"not YAML text (a binary file?): character {char:#04x} at offset {exc.position} "
            "is not allowed in YAML"
        )
    return (mark.line + 1 if mark is not None else None), str(problem or exc)


def load_documents(text: str | bytes, *, source: str) -> Iterator[Document]:
    """The documents of ``text`` in order (empty documents included, as ``data`` None).

    Raises :class:`InputError` naming ``source``, the document's 0-based index and the line.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{source}: not UTF-8 text (a binary file?): byte {text[exc.start]:#04x} at "
                f"offset {exc.start}",
                file=source,
            ) from None
    loader = _Loader(text)
    index = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            try:
                data = loader.construct_document(node)
            except _AliasBombError as bomb:
                raise InputError(
                    f"{source}: document index {index}, line {bomb.line}: refused: its aliases "
                    f"expand to at least {bomb.expanded:,} nodes from {bomb.distinct:,} "
                    f"written (limit {ALIAS_RATIO}x + {ALIAS_SLACK:,}); is it a YAML alias "
                    "bomb? Write the values out instead of nesting anchors",
                    file=source,
                    line=bomb.line,
                ) from None
            line = node.start_mark.line + 1 if node is not None else 1
            yield Document(data, line, dict(loader.mapping_lines), dict(loader.key_lines))
            loader.mapping_lines.clear()
            loader.key_lines.clear()
            index += 1
    except yaml.YAMLError as exc:
        line, problem = _problem(exc)
        at = f", line {line}" if line is not None else ""
        raise InputError(
            f"{source}: document index {index}{at}: invalid YAML: {problem}", file=source, line=line
        ) from None
    except RecursionError:
        raise InputError(f"{source}: document index {index}: nested too deeply to read") from None
    finally:
        loader.dispose()


def load_one(text: str | bytes, *, source: str) -> Document | None:
    """The single document of a file (a stack file), or None when the file holds none."""
    docs = list(load_documents(text, source=source))
    if len(docs) > 1:
        raise InputError(
            f"{source}: holds {len(docs)} YAML documents (line {docs[1].line} starts the "
            "second); a stack file is one document"
        )
    return docs[0] if docs and docs[0].data is not None else None


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # Literal style for multi-line text (PEM); the emitter falls back to quoting by itself when
    # the text cannot be a block scalar (e.g. trailing spaces on a line).
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)

_FIRST: Final = ("apiVersion", "kind", "metadata")


def dump_document(obj: Mapping[str, Any]) -> str:
    """One object as a YAML document: ``---`` first, then apiVersion, kind, metadata, the rest
    in the order the object has them."""
    ordered = {k: obj[k] for k in _FIRST if k in obj}
    ordered.update((k, v) for k, v in obj.items() if k not in ordered)
    return yaml.dump(
        ordered,
        Dumper=_Dumper,
        sort_keys=False,
        explicit_start=True,
        allow_unicode=True,
        width=100,
    )
