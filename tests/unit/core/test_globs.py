"""Glob patterns over workspace paths: whole-path matches, `**`, and directories."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.core.globs import is_static, matches


@pytest.mark.parametrize(
    ("pattern", "path"),
    [
        ("src/*.py", "src/app.py"),
        ("*.py", "setup.py"),
        ("*", "README"),
        ("src/**", "src/app.py"),
        ("src/**", "src/pkg/deep/app.py"),
        ("**/*.py", "app.py"),
        ("**/*.py", "src/pkg/app.py"),
        ("**", "any/thing/at/all"),
        ("a/**/b", "a/b"),
        ("a/**/b", "a/x/y/b"),
        ("file?.txt", "file1.txt"),
        ("file[0-9].txt", "file7.txt"),
        ("file[abc].txt", "fileb.txt"),
        ("file[!abc].txt", "filed.txt"),
        ("./src/app.py", "src/app.py"),
        ("src/", "src/app.py"),
        ("  src/app.py  ", "src/app.py"),
    ],
)
def test_a_pattern_names_the_path(pattern: str, path: str) -> None:
    assert matches(pattern, path)


@pytest.mark.parametrize(
    ("pattern", "path"),
    [
        ("src/*.py", "src/pkg/app.py"),
        ("*.py", "src/app.py"),
        ("*.py", "app.pyc"),
        ("src/**", "lib/app.py"),
        ("src/**", "srcx/app.py"),
        ("file?.txt", "file.txt"),
        ("file?.txt", "file10.txt"),
        ("file?.txt", "file/.txt"),
        ("file[0-9].txt", "filex.txt"),
        ("file[!abc].txt", "filea.txt"),
        ("src/app.py", "src/app.pyc"),
        ("src/app.py", "lib/src/app.py"),
        ("a.b", "axb"),
        ("a+b", "aab"),
    ],
)
def test_a_pattern_does_not_name_the_path(pattern: str, path: str) -> None:
    assert not matches(pattern, path)


@pytest.mark.parametrize(
    ("pattern", "path"),
    [("src", "src/app.py"), ("src", "src/pkg/app.py"), ("src/*", "src/pkg/app.py")],
)
def test_a_pattern_naming_a_directory_names_everything_below_it(pattern: str, path: str) -> None:
    assert matches(pattern, path)


def test_a_directory_prefix_is_a_whole_path_segment() -> None:
    assert not matches("src", "srcs/app.py")
    assert not matches("src", "src.py")


def test_a_negated_character_class_does_not_cross_a_directory() -> None:
    assert matches("a[!b]c", "axc")
    assert not matches("a[!b]c", "a/c")


def test_a_closing_bracket_first_in_a_class_is_a_literal() -> None:
    # As in fnmatch and git: `[]]` is the class holding `]`, not an error.
    assert matches("[]]", "]")
    assert matches("x[]a]", "xa")
    assert not matches("[]]", "a")


def test_an_unclosed_bracket_is_a_literal() -> None:
    assert matches("a[b", "a[b")
    assert not matches("a[b", "ab")


@pytest.mark.parametrize(
    ("pattern", "static"),
    [("src/app.py", True), ("src/*.py", False), ("a?", False), ("a[bc]", False), ("**", False)],
)
def test_a_pattern_without_wildcards_is_static(pattern: str, static: bool) -> None:
    assert is_static(pattern) is static


_SEGMENT_CHARS = st.characters(
    codec="utf-8",
    exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp"),
    exclude_characters="/*?[",
)
_SEGMENT = st.text(_SEGMENT_CHARS, min_size=1, max_size=8).filter(lambda s: s not in (".", ".."))


@given(st.lists(_SEGMENT, min_size=1, max_size=5).map("/".join))
def test_a_literal_path_always_matches_itself(path: str) -> None:
    assert is_static(path)
    assert matches(path, path)
    assert matches(path, path + "/below")
    assert not matches(path, path + "x")
