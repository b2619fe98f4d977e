"""Did-you-mean suggestions."""

from __future__ import annotations

from conveyor.spec.suggest import KEY_SYNONYMS, closest, did_you_mean, one_of

JOB_KEYS = ["run", "needs", "env", "workdir", "inputs", "outputs", "timeout", "if"]


def test_a_typo_finds_the_closest_choice() -> None:
    assert closest("neds", JOB_KEYS) == "needs"
    assert closest("timout", JOB_KEYS) == "timeout"


def test_case_differences_are_forgiven() -> None:
    assert closest("Needs", JOB_KEYS) == "needs"


def test_words_from_other_ci_systems_map_to_ours() -> None:
    assert closest("environment", JOB_KEYS, KEY_SYNONYMS) == "env"
    assert closest("depends_on", JOB_KEYS, KEY_SYNONYMS) == "needs"
    assert closest("script", JOB_KEYS, KEY_SYNONYMS) == "run"
    assert closest("when", JOB_KEYS, KEY_SYNONYMS) == "if"


def test_a_synonym_is_only_suggested_when_it_is_a_choice() -> None:
    assert closest("environment", ["jobs", "version"], KEY_SYNONYMS) is None


def test_nothing_close_gives_no_suggestion() -> None:
    assert did_you_mean("zzzz", JOB_KEYS) is None
    assert did_you_mean("anything", []) is None


def test_the_hint_reads_as_a_question() -> None:
    assert did_you_mean("lnt", ["lint", "test"]) == "did you mean 'lint'?"


def test_choices_are_listed_in_words() -> None:
    assert one_of(["a"]) == "'a'"
    assert one_of(["a", "b", "c"]) == "'a', 'b' or 'c'"
    assert one_of([str(n) for n in range(20)], limit=2) == "'0', '1' and 18 more"
