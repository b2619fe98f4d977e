"""Reports that cannot be read: what the error says and where it points."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.core.errors import ConveyorError, Location
from conveyor.reports.junit import EXPECTED, ReportError, parse_junit

FIXTURES = Path(__file__).parent / "fixtures"


def test_malformed_xml_is_reported_with_the_parser_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text(
        '<?xml version="1.0"?>\n'
        "<testsuites>\n"
        '  <testsuite name="a">\n'
        '    <testcase name="x"></testsuite>\n'
        "</testsuites>\n"
    )

    with pytest.raises(ReportError) as caught:
        parse_junit(path)

    assert caught.value.location == Location(str(path), 4, 26)
    assert str(caught.value) == (
        f"{path}:4:26: not well-formed XML (mismatched tag); expected {EXPECTED}"
    )


def test_a_report_error_is_a_conveyor_error(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text("<testsuites>")

    with pytest.raises(ConveyorError):
        parse_junit(path)


def test_a_document_with_another_root_element_names_the_root_it_found(tmp_path: Path) -> None:
    path = tmp_path / "index.xml"
    path.write_text('<?xml version="1.0"?>\n<!-- coverage -->\n  <coverage line-rate="0.9"/>\n')

    with pytest.raises(ReportError) as caught:
        parse_junit(path)

    assert str(caught.value) == f"{path}:3:3: the root element is <coverage>; expected {EXPECTED}"


def test_a_lone_testcase_is_not_a_report(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text('<testcase name="t"/>')

    with pytest.raises(ReportError, match="the root element is <testcase>"):
        parse_junit(path)


def test_an_empty_file_is_malformed_at_its_first_line(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_bytes(b"")

    with pytest.raises(ReportError) as caught:
        parse_junit(path)

    assert caught.value.location == Location(str(path), 1, 1)
    assert "no element found" in str(caught.value)
    assert EXPECTED in str(caught.value)


def test_a_billion_laughs_document_is_refused_at_its_first_entity() -> None:
    path = FIXTURES / "billion-laughs.xml"

    with pytest.raises(ReportError) as caught:
        parse_junit(path)

    message = str(caught.value)
    assert message.startswith(f"{path}:3:")
    assert "refused: the document declares the entity 'lol'" in message
    assert EXPECTED in message


def test_a_document_with_an_external_entity_is_refused() -> None:
    with pytest.raises(ReportError, match="refused: the document declares the entity 'secret'"):
        parse_junit(FIXTURES / "external-entity.xml")


def test_a_missing_report_says_it_cannot_be_read(tmp_path: Path) -> None:
    path = tmp_path / "absent.xml"

    with pytest.raises(ReportError) as caught:
        parse_junit(path)

    assert str(caught.value).startswith(f"{path}: the report cannot be read")
    assert caught.value.file == str(path)
    assert caught.value.location is None
