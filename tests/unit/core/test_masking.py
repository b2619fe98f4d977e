"""Secret values become `***` wherever text leaves a job."""

from __future__ import annotations

import random

import pytest

from conveyor.core.masking import MASK, Masker


def test_every_occurrence_of_a_secret_is_masked() -> None:
    masker = Masker(["hunter2"])
    assert masker.mask("pw=hunter2 again hunter2.") == "pw=*** again ***."


def test_text_without_secrets_is_unchanged() -> None:
    assert Masker(["hunter2"]).mask("nothing to see") == "nothing to see"


def test_a_masker_without_secrets_changes_nothing_and_is_falsy() -> None:
    masker = Masker()
    assert not masker
    assert masker.mask("hunter2") == "hunter2"
    assert Masker(["x"])


def test_a_secret_containing_another_is_masked_whole() -> None:
    masker = Masker(["abc", "abcdef"])
    assert masker.mask("abcdef") == MASK
    assert masker.mask("abc-abcdef") == "***-***"


def test_overlapping_secrets_leave_no_fragment_of_the_longer_one() -> None:
    masker = Masker(["token-123", "123-suffix"])
    assert masker.mask("x token-123 y") == "x *** y"
    assert masker.mask("x 123-suffix y") == "x *** y"


def test_a_multi_line_secret_is_masked_whole_and_line_by_line() -> None:
    key = "-----BEGIN KEY-----\nMIIEvQIBADANBg\nkqhkiG9w0BAQEF\n-----END KEY-----"
    masker = Masker([key])
    assert masker.mask(f"key: {key}") == f"key: {MASK}"
    # Logs are processed one line at a time.
    assert masker.mask("line MIIEvQIBADANBg here") == "line *** here"
    assert masker.mask("kqhkiG9w0BAQEF") == MASK


def test_a_multi_line_secret_with_crlf_endings_is_masked_line_by_line() -> None:
    masker = Masker(["first-line\r\nsecond-line"])
    assert masker.mask("a first-line b") == "a *** b"
    assert masker.mask("second-line") == MASK


@pytest.mark.parametrize("blank", ["", " ", "\t\n", "\n\n"])
def test_empty_and_whitespace_secrets_are_ignored(blank: str) -> None:
    masker = Masker([blank])
    assert not masker
    assert masker.mask("a b\tc\n") == "a b\tc\n"


def test_blank_lines_of_a_multi_line_secret_are_not_masked() -> None:
    masker = Masker(["alpha\n\n  \nomega"])
    assert masker.mask("a  b\n\nc") == "a  b\n\nc"
    assert masker.mask("alpha") == MASK


@pytest.mark.parametrize(
    "secret", ["a.b*c", "(x|y)", "[abc]", "^$", "p+q?", "back\\slash", "{1,2}"]
)
def test_regex_metacharacters_in_a_secret_are_literal(secret: str) -> None:
    masker = Masker([secret])
    assert masker.mask(f"<{secret}>") == f"<{MASK}>"
    assert masker.mask("axbbbc x y abc") == "axbbbc x y abc"


def test_text_where_two_secrets_overlap_is_masked_all_through() -> None:
    # One secret's end is the other's start: a single pass would leave the rest.
    masker = Masker(["abcXYZ", "XYZdefghi"])
    assert masker.mask("combo: abcXYZdefghi!") == "combo: ***!"
    assert masker.mask("XYZdefghi abcXYZ") == "*** ***"
    assert masker.mask("abcXYZdef") == "***def"  # only what a secret covers


def test_a_secret_padded_with_white_space_is_masked_trimmed_too() -> None:
    # Word splitting (`echo $PAD`) and many tools trim what they print.
    masker = Masker(["  padSecret99  ", "key:\n    indented-line\n"])
    assert masker.mask("unquoted padSecret99 end") == "unquoted *** end"
    assert masker.mask("  padSecret99  ") == MASK
    assert masker.mask("x indented-line y") == "x *** y"


def test_a_secret_that_is_not_utf8_is_masked_as_a_log_decodes_it() -> None:
    # The environment holds it with surrogate escapes; a log decodes the bytes with U+FFFD.
    secret = b"caf\xe9Secret123".decode("utf-8", "surrogateescape")
    masker = Masker([secret])
    assert masker.mask(b"[caf\xe9Secret123]".decode("utf-8", "replace")) == f"[{MASK}]"
    assert masker.mask(f"<{secret}>") == f"<{MASK}>"
    assert masker.mask(repr(secret)) == f"'{MASK}'"


@pytest.mark.parametrize(
    ("secrets", "text"),
    [
        (["abab"], "ababab"),  # a secret overlapping itself
        (["hunter2", "2-topsecret-hunter2"], "pw=hunter2-topsecret-hunter2"),  # one in another
    ],
)
def test_occurrences_that_share_characters_are_masked_all_through(
    secrets: list[str], text: str
) -> None:
    masked = Masker(secrets).mask(text)
    assert masked in (MASK, f"pw={MASK}")


def test_masking_leaves_nothing_of_any_secret_in_random_text() -> None:
    # Every character any occurrence of a secret covers is masked (a fuzz over small alphabets).
    rng = random.Random(7)
    for _ in range(3000):
        secrets = ["".join(rng.choice("ab2-") for _ in range(rng.randint(2, 6))) for _ in range(3)]
        text = "".join(rng.choice("ab2- ") for _ in range(rng.randint(0, 30)))
        covered = [False] * len(text)
        for secret in secrets:
            at = text.find(secret)
            while at >= 0:
                covered[at : at + len(secret)] = [True] * len(secret)
                at = text.find(secret, at + 1)
        masked = Masker(secrets).mask(text)
        # What is left once the masks are taken out is exactly the text no secret covers.
        left = "".join(char for hit, char in zip(covered, text, strict=True) if not hit)
        assert masked.replace(MASK, "") == left, (secrets, text, masked)
        assert (MASK in masked) == any(covered)
