"""JUnit XML test reports, as pytest, JUnit (Surefire, Gradle), Jest and Go tools write them.

Counts come from the `<testcase>` elements, never from the `tests`,
`failures` or `skipped` attributes of a suite, which each tool fills in its
own way. A testcase with a `<failure>` or `<error>` child failed, one with a
`<skipped>` child was skipped, any other passed. Suites may nest to any
depth. Surefire's `<flakyFailure>` and `<flakyError>` mark a test that passed
when rerun, so they do not make it fail.

Documents are read with defusedxml, which refuses entity declarations and
external references, and are streamed, so captured output in a large report
is never held in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import ClassVar
from xml.parsers import expat

from defusedxml import DefusedXmlException, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import DefusedXMLParser, ParseError

from conveyor.core.errors import ConveyorError, Location
from conveyor.core.values import field, frozen, mutable

EXPECTED = "a JUnit XML report with <testsuites> or <testsuite> at the root"
MESSAGE_LIMIT = 200

_ROOTS = frozenset({"testsuites", "testsuite"})
_PROBLEMS = frozenset({"failure", "error"})
_CHUNK = 1 << 16
# Enough text to find the first meaningful line of a stack trace or test log.
_TEXT_LIMIT = 8192
# Go tools write `message="Failed"` and put the reason in the element's text,
# after framing lines that repeat the test's name.
_PLACEHOLDERS = frozenset({"", "failed", "failure", "error", "errored"})
_FRAMING = ("=== RUN", "=== PAUSE", "=== CONT", "=== NAME", "--- FAIL", "--- PASS", "--- SKIP")


class ReportError(ConveyorError):
    """A test report cannot be read as JUnit XML."""

    def __init__(self, message: str, *, file: str, location: Location | None = None) -> None:
        self.file = file
        self.location = location
        super().__init__(message)


@frozen
class TestCaseFailure:
    """One failed testcase: who, the first line of why, and the report it came from."""

    # Not a test class, whatever its name says.
    __test__: ClassVar[bool] = False

    name: str
    classname: str
    message: str
    file: str


@frozen
class TestSummary:
    """Testcase counts of one or more reports, and every failure in report order."""

    __test__: ClassVar[bool] = False

    passed: int
    failed: int
    skipped: int
    failures: tuple[TestCaseFailure, ...] = ()

    @classmethod
    def empty(cls) -> TestSummary:
        return cls(passed=0, failed=0, skipped=0)

    @classmethod
    def sum(cls, summaries: Iterable[TestSummary]) -> TestSummary:
        """All of `summaries` merged, in order; empty when there are none."""
        total = cls.empty()
        for summary in summaries:
            total = total.merge(summary)
        return total

    def merge(self, other: TestSummary) -> TestSummary:
        """Both summaries' counts added, this one's failures first."""
        return TestSummary(
            passed=self.passed + other.passed,
            failed=self.failed + other.failed,
            skipped=self.skipped + other.skipped,
            failures=self.failures + other.failures,
        )

    __add__ = merge

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.skipped

    @property
    def ok(self) -> bool:
        """Whether no testcase failed."""
        return self.failed == 0


def parse_junit_files(paths: Sequence[Path]) -> TestSummary:
    """The merged summary of every report in `paths`, in the order given."""
    return TestSummary.sum(parse_junit(path) for path in paths)


def parse_junit(path: Path) -> TestSummary:
    """The summary of one JUnit XML report; ReportError when it is not one."""
    file = str(path)

    def here() -> Location:
        return Location(
            file, parser.parser.CurrentLineNumber, parser.parser.CurrentColumnNumber + 1
        )

    collector = _Collector(file, here)
    parser = DefusedXMLParser(target=collector)

    try:
        with open(path, "rb") as stream:
            while chunk := stream.read(_CHUNK):
                parser.feed(chunk)
        parser.close()
    except OSError as exc:
        raise ReportError(
            f"{file}: the report cannot be read ({exc.strerror or exc})", file=file
        ) from exc
    except ParseError as exc:
        line, column = exc.position
        reason = expat.ErrorString(exc.code)
        raise _malformed(
            f"not well-formed XML ({reason})", Location(file, line, column + 1)
        ) from exc
    except _UnexpectedRootError as exc:
        raise _malformed(f"the root element is <{exc.tag}>", exc.location) from exc
    except DefusedXmlException as exc:
        raise _malformed(f"refused: {_refusal(exc)}", here()) from exc
    return collector.summary()


def _malformed(problem: str, location: Location) -> ReportError:
    return ReportError(
        f"{location}: {problem}; expected {EXPECTED}", file=location.file, location=location
    )


def _refusal(exc: DefusedXmlException) -> str:
    if isinstance(exc, EntitiesForbidden):
        return f"the document declares the entity '{exc.name}', and entities are not allowed"
    if isinstance(exc, ExternalReferenceForbidden):
        return f"the document refers to '{exc.sysid}', and external references are not allowed"
    return f"the document uses a construct that is not allowed ({exc})"


class _UnexpectedRootError(Exception):
    """The document's root element is not a JUnit one (raised inside the parser)."""

    def __init__(self, tag: str, location: Location) -> None:
        self.tag = tag
        self.location = location
        super().__init__(tag)


@mutable(slots=True)
class _OpenCase:
    """The testcase being read: its attributes and what its children said."""

    name: str
    classname: str
    depth: int
    skipped: bool = False
    problem: str | None = None
    message: str = ""
    text: list[str] = field(default_factory=list)
    text_size: int = 0
    reading: bool = False


class _Collector:
    """Parser target: classifies each testcase when its end tag arrives."""

    def __init__(self, file: str, here: Callable[[], Location]) -> None:
        self._file = file
        self._here = here
        self._depth = 0
        self._case: _OpenCase | None = None
        self._passed = 0
        self._failed = 0
        self._skipped = 0
        self._failures: list[TestCaseFailure] = []

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        name = _local(tag)
        if self._depth == 0 and name not in _ROOTS:
            raise _UnexpectedRootError(name, self._here())
        self._depth += 1
        case = self._case
        if name == "testcase" and case is None:
            self._case = _OpenCase(
                name=attrib.get("name", ""),
                classname=attrib.get("classname", ""),
                depth=self._depth,
            )
        elif case is not None and self._depth == case.depth + 1:
            if name in _PROBLEMS and case.problem is None:
                case.problem = name
                case.message = attrib.get("message", "")
                case.reading = True
            elif name == "skipped":
                case.skipped = True

    def data(self, text: str) -> None:
        case = self._case
        if case is not None and case.reading and case.text_size < _TEXT_LIMIT:
            case.text.append(text)
            case.text_size += len(text)

    def end(self, tag: str) -> None:
        case = self._case
        if case is not None and self._depth == case.depth + 1:
            case.reading = False
        elif case is not None and self._depth == case.depth:
            self._close_case(case)
            self._case = None
        self._depth -= 1

    def close(self) -> None:
        """Nothing to finish: `summary()` reads the counts."""

    def summary(self) -> TestSummary:
        return TestSummary(
            passed=self._passed,
            failed=self._failed,
            skipped=self._skipped,
            failures=tuple(self._failures),
        )

    def _close_case(self, case: _OpenCase) -> None:
        if case.problem is not None:
            self._failed += 1
            text = "".join(case.text)
            self._failures.append(
                TestCaseFailure(
                    name=case.name,
                    classname=case.classname,
                    message=_summary_line(case.message, text, case.problem),
                    file=self._file,
                )
            )
        elif case.skipped:
            self._skipped += 1
        else:
            self._passed += 1


def _local(tag: str) -> str:
    """The tag without a `{namespace}` prefix."""
    return tag.rpartition("}")[2]


def _summary_line(message: str, text: str, kind: str) -> str:
    """The first informative line of a failure's message, else of its text."""
    for candidate in (message, text):
        line = _first_line(candidate)
        if line.casefold() not in _PLACEHOLDERS:
            return _trim(line)
    return _trim(_first_line(message) or kind)


def _first_line(text: str) -> str:
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith(_FRAMING):
            return line
    return ""


def _trim(line: str) -> str:
    if len(line) <= MESSAGE_LIMIT:
        return line
    return line[: MESSAGE_LIMIT - 1].rstrip() + "…"
