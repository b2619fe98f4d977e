"""YAML text to plain values, with the file position of every key and value.

PyYAML's constructor forgets where things were and silently keeps the last
of two equal keys, so this module builds the plain values itself from the
composed node tree: it records positions by path, reports duplicate keys,
and leaves type checking to `conveyor.spec.model`.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import yaml

from conveyor.core.errors import Location, SpecError, SpecIssue
from conveyor.core.values import field, frozen

PathPart = str | int
NodePath = tuple[PathPart, ...]

_MERGE_TAG = "tag:yaml.org,2002:merge"
_COLLECTION_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")
# Aliases can expand a small file into a huge tree (the "billion laughs");
# no honest pipeline file comes near this many nodes.
_NODE_BUDGET = 200_000
_SHAPE = "a mapping with 'version: 1' and 'jobs:'"


@frozen
class Span:
    """Where a key or value starts; `shift` maps offsets inside a one-line scalar, and
    `indent` those inside a literal block (`|`) whose lines start below it."""

    line: int
    column: int
    shift: int | None = None
    indent: int | None = None


class SourceMap:
    """Positions of the keys and values of one file, addressed by their path."""

    def __init__(self, file: str) -> None:
        self.file = file
        self._keys: dict[NodePath, Span] = {}
        self._values: dict[NodePath, Span] = {}
        self._texts: dict[NodePath, str] = {}

    def key(self, path: NodePath) -> Location:
        """Position of the key naming `path` (a list item's start), or of its nearest parent."""
        for depth in range(len(path), -1, -1):
            prefix = path[:depth]
            span = self._keys.get(prefix) or self._values.get(prefix)
            if span is not None:
                return self._at(span)
        return Location(self.file, 1, 1)

    def value(self, path: NodePath) -> Location:
        """Position of the value at `path`, or of the nearest parent's (`2` for `retry.max`)."""
        for depth in range(len(path), -1, -1):
            span = self._values.get(path[:depth])
            if span is not None:
                return self._at(span)
        return Location(self.file, 1, 1)

    def inside(self, path: NodePath, offset: int) -> Location:
        """Position of character `offset` of the text value at `path`, when it maps directly."""
        span = self._values.get(path)
        text = self._texts.get(path)
        if span is not None and span.indent is not None and text is not None:
            before = text[:offset]
            line = before.count("\n")
            column = len(before) - (before.rfind("\n") + 1)
            return Location(self.file, span.line + 1 + line, span.indent + column + 1)
        if span is None or span.shift is None:
            return self.value(path)
        return Location(self.file, span.line, span.column + span.shift + offset)

    def text(self, path: NodePath) -> str | None:
        """The scalar at `path` as written in the file (`3.10` stays `3.10`)."""
        return self._texts.get(path)

    def record_key(self, path: NodePath, node: yaml.Node) -> None:
        """Remember where the key naming `path` starts."""
        self._keys[path] = _span(node.start_mark)

    def record_value(
        self, path: NodePath, node: yaml.Node, shift: int | None = None, indent: int | None = None
    ) -> None:
        """Remember where the value at `path` starts, and its text when it is a scalar."""
        mark = node.start_mark
        self._values[path] = Span(mark.line + 1, mark.column + 1, shift, indent)
        if isinstance(node, yaml.ScalarNode):
            self._texts[path] = str(node.value)

    def _at(self, span: Span) -> Location:
        return Location(self.file, span.line, span.column)


@frozen
class Document:
    """A file read as plain values, with positions and the issues found while reading."""

    data: dict[str, object]
    positions: SourceMap
    issues: list[SpecIssue] = field(default_factory=list)


MAX_DEPTH = 64


def read_yaml(data: bytes, file: str, *, shape: str = _SHAPE) -> Document:
    """Parse `data`; SpecError when it is not a YAML mapping at all (`shape` says what is)."""
    text = _decode(data, file)
    try:
        root = _compose(text)
    except RecursionError:
        message = f"values are nested deeper than {MAX_DEPTH} levels can be read"
        raise SpecError([SpecIssue(Location(file, 1, 1), message)]) from None
    except yaml.MarkedYAMLError as exc:
        raise SpecError([_syntax_issue(exc, file)]) from None
    except yaml.reader.ReaderError as exc:
        raise SpecError([_reader_issue(exc, text, file)]) from None
    if root is None:
        issue = SpecIssue(Location(file, 1, 1), f"the file is empty; expected {shape}")
        raise SpecError([issue])
    positions = SourceMap(file)
    builder = _Builder(text, positions)
    value = builder.build(root, (), frozenset())
    if not isinstance(value, dict):
        where = positions.value(())
        found = describe(value)
        raise SpecError([SpecIssue(where, f"the top level must be {shape}, found {found}")])
    return Document(value, positions, _unique(builder.issues))


def _compose(text: str) -> yaml.Node | None:
    """The node tree of `text`, through libyaml when it is there (several times faster)."""
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None:
        try:
            return yaml.compose(text, Loader=fast)
        except yaml.YAMLError:
            pass  # the pure-Python loader words the error better; let it report
    return yaml.compose(text, Loader=yaml.SafeLoader)


def describe(value: object) -> str:
    """What a plain value is, in the words of a message: `a list`, `the number 3`."""
    if isinstance(value, str):
        return f"the text '{_clip(value)}'" if value.strip() else "empty text"
    if isinstance(value, bool):
        return f"'{str(value).lower()}'"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, datetime.date):
        return f"a date ({value.isoformat()})"
    kinds = {type(None): "an empty value", dict: "a mapping", list: "a list"}
    return kinds.get(type(value), f"a {type(value).__name__} value")


def _clip(text: str, limit: int = 40) -> str:
    whole = text.strip()
    first = whole.splitlines()[0]
    return whole if whole == first and len(whole) <= limit else first[:limit] + "..."


class _Builder:
    """Turns composed nodes into plain values, recording positions and issues."""

    def __init__(self, text: str, positions: SourceMap) -> None:
        self.text = text
        self._lines: list[str] | None = None  # the text's lines, split once when first needed
        self.positions = positions
        self.issues: list[SpecIssue] = []
        self.budget = _NODE_BUDGET
        self.constructor = yaml.constructor.SafeConstructor()

    def build(self, node: yaml.Node, path: NodePath, active: frozenset[int]) -> object:
        """The plain value of `node`; `active` holds the nodes being built, to stop alias loops."""
        self.budget -= 1
        if self.budget < 0:
            where = Location(self.positions.file, 1, 1)
            issue = SpecIssue(where, "the file expands to too many values through aliases")
            raise SpecError([issue])
        if id(node) in active:
            self._issue(node, "this alias refers to a value that contains it")
            return None
        if len(path) > MAX_DEPTH:
            where = (
                self.positions.key(path[:MAX_DEPTH])
                if path
                else Location(self.positions.file, 1, 1)
            )
            message = f"values are nested more than {MAX_DEPTH} levels deep"
            raise SpecError([SpecIssue(where, message, "a pipeline file is never this deep")])
        inner = active | {id(node)}
        if node.tag not in _COLLECTION_TAGS and not isinstance(node, yaml.ScalarNode):
            self._issue(node, f"unsupported YAML tag '{node.tag}'", "remove the tag")
        if isinstance(node, yaml.MappingNode):
            mapping = self._mapping(node, path, inner)
            # Recorded after the entries: a merged anchor records its own start here.
            self.positions.record_value(path, node)
            return mapping
        if isinstance(node, yaml.SequenceNode):
            self.positions.record_value(path, node)
            return [self.build(child, (*path, i), inner) for i, child in enumerate(node.value)]
        return self._scalar(node, path)

    def _mapping(self, node: yaml.MappingNode, path: NodePath, active: frozenset[int]) -> object:
        result: dict[str, object] = {}
        # Merged entries first, so the positions of explicit keys overwrite theirs.
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                for merged_key, value in self._merged(value_node, path, active):
                    result.setdefault(merged_key, value)
        seen: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self._key(key_node)
            if key is None:
                continue
            if key in seen:
                self._duplicate(key, seen[key], key_node)
                continue
            seen[key] = key_node
            self.positions.record_key((*path, key), key_node)
            result[key] = self.build(value_node, (*path, key), active)
        return result

    def _merged(
        self, node: yaml.Node, path: NodePath, active: frozenset[int]
    ) -> Iterator[tuple[str, object]]:
        """Entries that `<<: *anchor` brings in; explicit keys win over them."""
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                self._issue(source, "'<<' can only merge mappings (like '<<: *defaults')")
                continue
            merged = self.build(source, path, active)
            if isinstance(merged, dict):
                yield from merged.items()

    def _key(self, node: yaml.Node) -> str | None:
        # Every key in this format is a name, so the text as written is the
        # key: `1:` names the job "1" and `on:` stays "on", not True.
        if isinstance(node, yaml.ScalarNode):
            return str(node.value)
        kind = "a mapping" if isinstance(node, yaml.MappingNode) else "a list"
        self._issue(node, f"a key must be a name, found {kind}")
        return None

    def _duplicate(self, key: str, first: yaml.Node, again: yaml.Node) -> None:
        line, column = first.start_mark.line + 1, first.start_mark.column + 1
        self._issue(
            again,
            f"duplicate key '{key}'; it is already defined on line {line}, column {column}",
            "remove one of them: YAML would silently keep only the last",
        )

    def _scalar(self, node: yaml.Node, path: NodePath) -> object:
        self.positions.record_value(path, node, self._shift(node), self._indent(node))
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError:
            self._issue(node, f"unsupported YAML tag '{node.tag}'", "remove the tag")
            return str(node.value)

    def _shift(self, node: yaml.Node) -> int | None:
        """How far a one-line scalar's content is from its start, when it is copied verbatim."""
        start, end = node.start_mark, node.end_mark
        if start.line != end.line:
            return None
        raw = self.text[start.index : end.index]
        # libyaml marks a plain scalar with "", PyYAML with None.
        style = getattr(node, "style", None) or None
        if style is None and raw == node.value:
            return 0
        if style in ("'", '"') and raw == f"{style}{node.value}{style}":
            return 1
        return None

    def _indent(self, node: yaml.Node) -> int | None:
        """The indentation of a literal block's lines (`if: |`), when each line below its
        indicator is that many spaces and the value's line, verbatim; else None."""
        if getattr(node, "style", None) != "|" or not isinstance(node.value, str):
            return None
        if self._lines is None:  # every `run: |` asks: not a split of the file each time
            self._lines = self.text.splitlines()
        lines = self._lines
        first = node.start_mark.line + 1  # the block's text starts below its indicator
        written = node.value.split("\n")
        if first >= len(lines) or not written or not written[0]:
            return None
        indent = len(lines[first]) - len(lines[first].lstrip(" "))
        for index, line in enumerate(written):
            source = lines[first + index] if first + index < len(lines) else ""
            if line and source != " " * indent + line:
                return None
        return indent

    def _issue(self, node: yaml.Node, message: str, hint: str | None = None) -> None:
        mark = node.start_mark
        where = Location(self.positions.file, mark.line + 1, mark.column + 1)
        self.issues.append(SpecIssue(where, message, hint))


def _span(mark: yaml.Mark, shift: int | None = None) -> Span:
    return Span(mark.line + 1, mark.column + 1, shift)


def _unique(issues: list[SpecIssue]) -> list[SpecIssue]:
    # An anchor used twice is built twice; report its problems once.
    return list(dict.fromkeys(issues))


def _decode(data: bytes, file: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        where = Location(file, line, column)
        issue = SpecIssue(where, "the file is not UTF-8 text", "save the file as UTF-8")
        raise SpecError([issue]) from None


def _syntax_issue(exc: yaml.MarkedYAMLError, file: str) -> SpecIssue:
    mark = exc.problem_mark or exc.context_mark
    where = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file, 1, 1)
    problem = exc.problem or "invalid YAML"
    if "'\\t'" in problem:
        return SpecIssue(
            where, "found a tab; YAML indents with spaces only", "replace the tab with spaces"
        )
    if "mapping values are not allowed" in problem:
        return SpecIssue(
            where,
            "invalid YAML: found ':' where a plain value continues",
            "if the value contains ': ', put the whole value in quotes",
        )
    if "expected a single document" in (exc.context or ""):
        return SpecIssue(where, "the file holds more than one YAML document; expected one")
    message = f"invalid YAML: {problem}"
    if exc.context and exc.context_mark:
        line, column = exc.context_mark.line + 1, exc.context_mark.column + 1
        message += f" ({exc.context} at line {line}, column {column})"
    return SpecIssue(where, message)


def _reader_issue(exc: yaml.reader.ReaderError, text: str, file: str) -> SpecIssue:
    position = exc.position
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    code = f"#x{exc.character:02x}" if isinstance(exc.character, int) else repr(exc.character)
    message = f"the file contains a control character ({code}) that YAML does not allow"
    return SpecIssue(Location(file, line, column), message, "remove the character")
