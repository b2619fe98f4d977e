"""Which jobs a Run covers, and which a condition skips."""

from __future__ import annotations

import textwrap

import pytest

from conveyor.core.errors import SpecError, UsageError
from conveyor.core.records import OutputRecord
from conveyor.engine.plan import make_plan, select, upstream_outputs
from conveyor.spec.conditions import ConditionFacts, evaluate_condition
from conveyor.spec.loader import parse_pipeline
from conveyor.spec.pipeline import Job

PIPELINE = parse_pipeline(
    textwrap.dedent(
        """\
        version: 1
        jobs:
          lint: {run: lint}
          build: {run: build}
          test:
            needs: [build]
            run: test
            matrix: {py: ["3.11", "3.12"]}
          package: {needs: [test], run: package}
          docs: {run: docs}
        """
    )
)


def names(jobs: tuple[Job, ...]) -> list[str]:
    return [job.name for job in jobs]


def test_without_targets_every_job_is_selected() -> None:
    assert select(PIPELINE, ()) == PIPELINE.jobs


def test_a_target_brings_its_needs_in_pipeline_order() -> None:
    assert names(select(PIPELINE, ("package",))) == [
        "build",
        "test (py=3.11)",
        "test (py=3.12)",
        "package",
    ]


def test_a_matrix_job_is_selected_by_its_base_name_or_one_expansion() -> None:
    assert names(select(PIPELINE, ("test",))) == ["build", "test (py=3.11)", "test (py=3.12)"]
    assert names(select(PIPELINE, ("test (py=3.12)",))) == ["build", "test (py=3.12)"]


def test_an_unknown_target_is_a_usage_error_with_a_suggestion() -> None:
    with pytest.raises(UsageError) as caught:
        select(PIPELINE, ("pakage",))
    message = str(caught.value)
    assert "there is no job 'pakage' in conveyor.yaml" in message
    assert "did you mean 'package'?" in message
    assert "jobs: build, docs, lint, package, test" in message


def test_an_unknown_target_far_from_every_name_has_no_suggestion() -> None:
    with pytest.raises(UsageError) as caught:
        select(PIPELINE, ("zzzzzz",))
    assert "did you mean" not in str(caught.value)


def test_the_plan_records_condition_skips_and_dependents() -> None:
    plan = make_plan(PIPELINE, (), lambda job: "off" if job.name == "docs" else None)
    assert plan.skipped == {"docs": "off"}
    assert plan.names == PIPELINE.names
    assert plan.dependents["build"] == ("test (py=3.11)", "test (py=3.12)")
    assert plan.dependents["test (py=3.11)"] == ("package",)
    assert plan.dependents["package"] == ()


def test_conditions_are_checked_only_for_selected_jobs() -> None:
    checked: list[str] = []

    def condition(job: Job) -> None:
        checked.append(job.name)

    make_plan(PIPELINE, ("lint",), condition)
    assert checked == ["lint"]


PRODUCING = parse_pipeline(
    textwrap.dedent(
        """\
        version: 1
        jobs:
          gen: {run: gen, outputs: [gen/*]}
          lint: {run: lint}
          compile: {needs: [gen, lint], run: compile}
          bundle: {needs: [compile], run: bundle, outputs: [dist/*]}
          ship: {needs: [bundle], run: ship}
        """
    )
)


def test_each_job_knows_the_jobs_above_it_that_declare_outputs() -> None:
    plan = make_plan(PRODUCING, (), lambda job: None)

    assert plan.producers == {
        "gen": (),
        "lint": (),
        "compile": ("gen",),
        "bundle": ("gen",),
        "ship": ("gen", "bundle"),  # gen through two jobs that produce nothing of it
    }


def test_a_graph_where_nothing_declares_outputs_has_no_producers() -> None:
    plan = make_plan(PIPELINE, (), lambda job: None)

    assert set(plan.producers.values()) == {()}


def test_a_job_sees_its_needs_and_every_producer_above_it() -> None:
    plan = make_plan(PRODUCING, (), lambda job: None)
    made = {
        "gen": (OutputRecord("gen/a.py", "sha256:" + "1" * 64, 3),),
        "bundle": (OutputRecord("dist/app.whl", "sha256:" + "2" * 64, 9),),
    }
    ship = next(job for job in plan.jobs if job.name == "ship")

    seen = upstream_outputs(plan, ship, lambda name: made.get(name, ()))

    assert seen == {"bundle": made["bundle"], "gen": made["gen"]}
    compile_job = next(job for job in plan.jobs if job.name == "compile")
    assert upstream_outputs(plan, compile_job, lambda name: made.get(name, ())) == {
        "gen": made["gen"],
        "lint": (),  # a direct need is always named, with what it produced
    }


def test_every_condition_a_run_cannot_evaluate_is_said_at_once() -> None:
    pipeline = parse_pipeline(
        "version: 1\njobs:\n"
        "  a: {run: x, if: \"env.ONE == 'x'\"}\n"
        "  b: {run: x, if: \"env.TWO == 'x'\"}\n"
        "  c: {run: x, matrix: {n: ['1', '2']}, if: \"env.THREE == 'x'\"}\n"
    )

    def check(job: Job) -> str | None:
        facts = ConditionFacts("main", "abc", "push", {})
        assert job.condition is not None
        evaluate_condition(job.condition, facts, lambda _glob: False)
        return None

    with pytest.raises(SpecError) as caught:
        make_plan(pipeline, (), check)
    messages = [issue.message for issue in caught.value.issues]
    assert [m.split(" reads ")[1] for m in messages] == [
        "env.ONE, which is not set",
        "env.TWO, which is not set",
        "env.THREE, which is not set",
    ]


SHARED = textwrap.dedent(
    """\
    version: 1
    jobs:
      a: {run: a, outputs: [out/f]}
      b: {run: b, workdir: sub, outputs: [../out/f]}
      c: {run: c, needs: [a], outputs: [out/f]}
      d: {run: d, outputs: ["out/*"]}
      e: {run: e, if: "branch == 'x'", outputs: [out/f]}
      f: {run: f, needs: [e], outputs: [out/f]}
    """
)


def _issues(
    spec: str, targets: tuple[str, ...] = (), skip: frozenset[str] = frozenset()
) -> list[str]:
    pipeline = parse_pipeline(spec)
    try:
        make_plan(pipeline, targets, lambda job: "skipped" if job.name in skip else None)
    except SpecError as exc:
        return [issue.render() for issue in exc.issues]
    return []


def test_two_jobs_naming_one_output_neither_needing_the_other_are_refused_before_running() -> None:
    assert _issues(SHARED, skip=frozenset({"e"})) == [
        "conveyor.yaml:4:3: jobs 'a' and 'b' both declare output out/f, and neither needs "
        "the other: a file has one producer\n"
        "  hint: add 'a' to the needs of 'b', or have each write its own file",
        # c may rewrite a's file (it needs a), not b's.
        "conveyor.yaml:5:3: jobs 'b' and 'c' both declare output out/f, and neither needs "
        "the other: a file has one producer\n"
        "  hint: add 'b' to the needs of 'c', or have each write its own file",
    ]


def test_jobs_that_will_not_run_or_are_not_selected_do_not_clash() -> None:
    # e is skipped by its condition, and f with it; d's glob is left to the Run.
    assert _issues(SHARED, ("a", "c", "d", "f"), skip=frozenset({"e"})) == []
    assert len(_issues(SHARED, ("a", "e"))) == 1  # once e's condition holds, it clashes with a


def test_expansions_of_a_matrix_job_naming_one_output_are_refused_once_per_file() -> None:
    # Told apart by a condition, they are checked as the Run plans (without one, as the file
    # is read: tests/unit/spec/test_matrix_paths.py).
    spec = textwrap.dedent(
        """\
        version: 1
        jobs:
          build:
            matrix: {os: [linux, darwin], arch: [x64, arm]}
            if: env.arch != 'x64' || env.os == 'linux'
            run: make
            outputs: ["dist/app-${os}", "dist/${os}-${arch}.whl"]
        """
    )
    assert _issues(spec, skip=frozenset({"build (os=darwin, arch=x64)"})) == [
        "conveyor.yaml:3:3: expansions 'build (os=linux, arch=x64)' and "
        "'build (os=linux, arch=arm)' of matrix job 'build' both declare output dist/app-linux: "
        "a file has one producer\n  hint: name the matrix's values in the path, like ${arch}",
    ]


def test_a_clash_with_a_matrix_job_is_said_once_with_the_needs_to_write() -> None:
    spec = textwrap.dedent(
        """\
        version: 1
        jobs:
          z: {run: z, outputs: [f]}
          m:
            matrix: {os: [x, y, w]}
            if: env.os == 'x'
            run: m
            outputs: [f]
        """
    )
    assert _issues(spec) == [
        "conveyor.yaml:4:3: jobs 'z' and 'm (os=x)' both declare output f, and neither needs "
        "the other: a file has one producer\n"
        "  hint: add 'z' to the needs of 'm', or have each write its own file",
    ]
