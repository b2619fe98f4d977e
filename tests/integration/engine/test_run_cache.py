"""The content-addressed cache through the Run service: hits, misses, and why."""

from __future__ import annotations

import os
import shutil

import pytest

from conveyor.core import digest
from conveyor.engine.service import RunRequest
from conveyor.executors.base import ExecRequest
from conveyor.executors.fake import FakeExecutor, FakeOutcome

from .harness import Harness, jobs_of, statuses

pytestmark = pytest.mark.timeout(60)


def producing(request: ExecRequest, _attempt: int) -> FakeOutcome:
    """Writes $CONTENT (or 'same') to the path in $WRITES, when the job sets one."""
    target = request.env.get("WRITES")
    if target:
        path = request.cwd / target
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(request.env.get("CONTENT", "same"))
    return FakeOutcome(output=f"ran {request.job}\n".encode())


def executed(executor: FakeExecutor) -> set[str]:
    return set(executor.attempts)


def pipeline(*, content: str = "v1", flag: str = "a") -> str:
    return f"""\
    version: 1
    jobs:
      gen:
        run: gen
        inputs: []
        env: {{WRITES: out/gen.txt, CONTENT: {content}}}
        outputs: [out/gen.txt]
      fmt:
        run: fmt
        inputs: []
        env: {{WRITES: out/fmt.txt, FLAG: {flag}}}
        outputs: [out/fmt.txt]
      use_gen: {{run: use, needs: [gen], inputs: []}}
      use_fmt: {{run: use, needs: [fmt], inputs: []}}
      other: {{run: other, inputs: []}}
    """


ALL = {"gen", "fmt", "use_gen", "use_fmt", "other"}


def test_a_second_run_restores_every_job_without_executing_it(harness: Harness) -> None:
    first = harness.run(pipeline(), FakeExecutor(producing))
    assert first.run.status == "success"
    shutil.rmtree(harness.root / "out")
    executor = FakeExecutor(producing)
    second = harness.run(pipeline(), executor)
    assert executor.requests == []
    assert second.run.status == "success"
    assert statuses(second) == dict.fromkeys(ALL, "cached")
    assert all(job.cached for job in second.run.jobs)
    assert (harness.root / "out" / "gen.txt").read_text() == "v1"
    gen = jobs_of(second)["gen"]
    assert [(o.path, o.digest) for o in gen.outputs] == [("out/gen.txt", digest.of_text("v1"))]
    assert gen.outputs == jobs_of(first)["gen"].outputs
    log, _ = harness.history().job_log(second.run.id, "gen")
    assert log == "ran gen\n"


def test_changing_a_jobs_env_reruns_it_and_dependents_whose_upstream_changed(
    harness: Harness,
) -> None:
    harness.run(pipeline(), FakeExecutor(producing))
    executor = FakeExecutor(producing)
    result = harness.run(
        pipeline(content="v2", flag="b"), executor, RunRequest(max_parallel=4, explain=True)
    )
    assert executed(executor) == {"gen", "fmt", "use_gen"}
    assert statuses(result) == {
        "gen": "success",
        "fmt": "success",
        "use_gen": "success",
        "use_fmt": "cached",
        "other": "cached",
    }
    old, new = digest.short(digest.of_text("v1")), digest.short(digest.of_text("v2"))
    assert result.explanations == {
        "gen": ("environment variable CONTENT changed",),
        "fmt": ("environment variable FLAG changed",),
        "use_gen": (f"upstream 'gen' output out/gen.txt changed ({old} -> {new})",),
    }


def test_no_cache_runs_every_job_and_says_why(harness: Harness) -> None:
    harness.run(pipeline(), FakeExecutor(producing))
    executor = FakeExecutor(producing)
    result = harness.run(
        pipeline(), executor, RunRequest(max_parallel=4, use_cache=False, explain=True)
    )
    assert executed(executor) == ALL
    assert not any(job.cached for job in result.run.jobs)
    assert result.explanations["other"] == ("nothing changed; --no-cache forced it to run",)


def test_a_run_without_the_cache_still_fills_it(harness: Harness) -> None:
    harness.run(pipeline(), FakeExecutor(producing), RunRequest(use_cache=False))
    executor = FakeExecutor(producing)
    harness.run(pipeline(), executor)
    assert executor.requests == []


def test_a_job_that_opts_out_of_the_cache_always_runs(harness: Harness) -> None:
    spec = """\
    version: 1
    jobs:
      deploy: {run: deploy, inputs: [], cache: false}
      after: {run: after, inputs: [], needs: [deploy]}
    """
    harness.run(spec)
    executor = FakeExecutor()
    result = harness.run(spec, executor, RunRequest(explain=True))
    assert executed(executor) == {"deploy"}
    assert statuses(result) == {"deploy": "success", "after": "cached"}
    assert result.explanations["deploy"] == ("the job opts out of the cache (cache: false)",)
    # Whatever changed, that is why it ran, as `--dry-run` says.
    changed = spec.replace("run: deploy,", "run: deploy --now,")
    again = harness.run(changed, FakeExecutor(), RunRequest(explain=True))
    assert again.explanations["deploy"] == ("the job opts out of the cache (cache: false)",)


def test_a_failed_job_is_not_cached(harness: Harness) -> None:
    spec = "version: 1\njobs:\n  a: {run: a, inputs: []}\n"
    harness.run(spec, FakeExecutor(lambda _r, _a: FakeOutcome(exit_code=1)))
    executor = FakeExecutor()
    result = harness.run(spec, executor, RunRequest(explain=True))
    assert executed(executor) == {"a"}
    assert result.explanations["a"] == ("no earlier cached execution of this job",)


def test_the_first_run_explains_there_was_no_earlier_execution(harness: Harness) -> None:
    result = harness.run(pipeline(), FakeExecutor(producing), RunRequest(explain=True))
    assert set(result.explanations) == ALL
    assert set(result.explanations.values()) == {("no earlier cached execution of this job",)}


def test_without_explain_no_explanations_are_made(harness: Harness) -> None:
    result = harness.run(pipeline(), FakeExecutor(producing))
    assert result.explanations == {}


def test_an_edited_added_or_removed_input_file_is_named(harness: Harness) -> None:
    spec = "version: 1\njobs:\n  test: {run: test, inputs: ['src/**']}\n"
    harness.write("src/app.py", "print(1)\n")
    harness.write("src/old.py", "old\n")
    harness.write("docs/index.md", "not an input\n")
    harness.run(spec)
    harness.write("src/app.py", "print(2)\n")
    harness.write("src/new.py", "new\n")
    (harness.root / "src" / "old.py").unlink()
    harness.write("docs/index.md", "still not an input\n")
    result = harness.run(spec, request=RunRequest(explain=True))
    assert result.explanations["test"] == (
        "file src/app.py changed",
        "file src/new.py was added",
        "file src/old.py was removed",
    )


def test_a_change_outside_the_declared_inputs_is_a_hit(harness: Harness) -> None:
    spec = "version: 1\njobs:\n  test: {run: test, inputs: ['src/**']}\n"
    harness.write("src/app.py", "print(1)\n")
    harness.run(spec)
    harness.write("README.md", "edited\n")
    executor = FakeExecutor()
    assert statuses(harness.run(spec, executor)) == {"test": "cached"}


def test_without_declared_inputs_every_workspace_file_counts(harness: Harness) -> None:
    spec = "version: 1\njobs:\n  test: {run: test}\n"
    harness.run(spec)
    harness.write("notes.txt", "a new file anywhere\n")
    executor = FakeExecutor()
    result = harness.run(spec, executor, RunRequest(explain=True))
    assert executed(executor) == {"test"}
    assert result.explanations["test"] == ("file notes.txt was added",)


def test_state_and_declared_outputs_are_not_inputs(harness: Harness) -> None:
    spec = """\
    version: 1
    jobs:
      gen: {run: gen, env: {WRITES: out/gen.txt}, outputs: [out/gen.txt]}
    """
    harness.run(spec, FakeExecutor(producing))
    harness.write("out/gen.txt", "tampered output\n")
    executor = FakeExecutor(producing)
    assert statuses(harness.run(spec, executor)) == {"gen": "cached"}
    assert (harness.root / "out" / "gen.txt").read_text() == "same"


def test_a_changed_secret_is_named_without_its_value(harness: Harness) -> None:
    spec = "version: 1\nsecrets: [TOKEN]\njobs:\n  push: {run: push, inputs: []}\n"
    harness.environ["TOKEN"] = "first-secret"
    harness.run(spec)
    harness.environ["TOKEN"] = "second-secret"
    result = harness.run(spec, request=RunRequest(explain=True))
    assert result.explanations["push"] == ("secret TOKEN changed",)
    fingerprint = jobs_of(result)["push"].fingerprint or {}
    assert "second-secret" not in repr(fingerprint)


def test_a_cleared_cache_entry_is_explained(harness: Harness) -> None:
    spec = "version: 1\njobs:\n  a: {run: a, inputs: []}\n"
    harness.run(spec)
    harness.service().cache.clear()
    result = harness.run(spec, request=RunRequest(explain=True))
    assert result.explanations["a"] == (
        "nothing changed, but the cache entry is gone (pruned or corrupt)",
    )


def test_a_corrupt_cached_output_is_a_miss_that_is_reported(harness: Harness) -> None:
    spec = """\
    version: 1
    jobs:
      gen: {run: gen, inputs: [], env: {WRITES: out/gen.txt}, outputs: [out/gen.txt]}
    """
    harness.run(spec, FakeExecutor(producing))
    hexpart = digest.of_text("same").removeprefix(digest.PREFIX)
    (blob,) = (p for p in harness.workspace.cas_dir.rglob("*") if p.name == hexpart[2:])
    os.chmod(blob, 0o644)
    blob.write_text("damaged")
    executor = FakeExecutor(producing)
    result = harness.run(spec, executor)
    assert executed(executor) == {"gen"}
    assert statuses(result) == {"gen": "success"}
    assert any("gen" in w and "corrupt" in w for w in harness.reporter.warnings)
    assert (harness.root / "out" / "gen.txt").read_text() == "same"
    assert statuses(harness.run(spec, FakeExecutor(producing))) == {"gen": "cached"}


def test_a_damaged_log_of_a_cache_entry_is_a_miss_that_is_reported(harness: Harness) -> None:
    # A cached job's log is stored by reference, never copied: it is checked whole.
    spec = "version: 1\njobs:\n  talk: {run: talk, inputs: []}\n"
    loud = FakeExecutor(lambda _request, _n: FakeOutcome(0, output=b"line\n" * 50))
    first = harness.run(spec, loud)
    (talk,) = first.run.jobs
    assert talk.log_digest is not None
    hexpart = talk.log_digest.removeprefix(digest.PREFIX)
    (blob,) = (p for p in harness.workspace.cas_dir.rglob("*") if p.name == hexpart[2:])
    data = bytearray(blob.read_bytes())
    data[-5] ^= 0xFF  # the same size, another content
    os.chmod(blob, 0o644)
    blob.write_bytes(bytes(data))

    again = harness.run(spec, loud)

    assert statuses(again) == {"talk": "success"}
    assert any("talk" in w and "corrupt" in w for w in harness.reporter.warnings)
    log, _ = harness.history().job_log(again.run.id, "talk")
    assert log == "line\n" * 50
    assert statuses(harness.run(spec, loud)) == {"talk": "cached"}


def test_the_log_of_a_cached_job_is_the_log_of_its_execution(harness: Harness) -> None:
    spec = "version: 1\njobs:\n  a: {run: a, inputs: []}\n"
    first = harness.run(spec, FakeExecutor(producing))
    second = harness.run(spec, FakeExecutor(producing))
    assert jobs_of(second)["a"].log_digest == jobs_of(first)["a"].log_digest
    assert harness.history().job_log(second.run.id, "a") == ("ran a\n", False)


def test_declared_inputs_are_relative_to_the_workdir(harness: Harness) -> None:
    spec = "version: 1\njobs:\n  api: {run: test, workdir: svc, inputs: ['src/**']}\n"
    harness.write("svc/src/app.py", "one\n")
    harness.write("src/app.py", "outside the workdir\n")
    harness.run(spec)
    harness.write("src/app.py", "edited, but not an input\n")
    assert statuses(harness.run(spec)) == {"api": "cached"}
    harness.write("svc/src/app.py", "two\n")
    result = harness.run(spec, request=RunRequest(explain=True))
    assert result.explanations["api"] == ("file svc/src/app.py changed",)


def test_a_job_whose_outputs_take_another_jobs_file_fails_naming_both(harness: Harness) -> None:
    # a's glob takes b's file: each would keep its copy, and a hit of a would undo b's.
    spec = """\
    version: 1
    jobs:
      b: {run: b, inputs: [], env: {WRITES: out/b.txt, CONTENT: fresh}, outputs: [out/b.txt]}
      a: {run: a, needs: [c], inputs: [], outputs: ["out/*.txt"]}
      c: {run: c, needs: [b], inputs: [], env: {WRITES: out/c.txt}, outputs: [out/c.txt]}
    """
    result = harness.run(spec, FakeExecutor(producing), RunRequest(max_parallel=1, keep_going=True))

    jobs = jobs_of(result)
    assert jobs["b"].status == "success"
    assert jobs["c"].status == "success"  # c needs b: no conflict along needs
    assert jobs["a"].status == "success"  # a needs c (and so b): it may take both files


def test_two_jobs_that_do_not_need_each_other_may_not_share_an_output(harness: Harness) -> None:
    spec = """\
    version: 1
    jobs:
      b: {run: b, inputs: [], env: {WRITES: out/b.txt, CONTENT: fresh}, outputs: [out/b.txt]}
      a: {run: a, needs: [b], inputs: [], outputs: ["out/*.txt"]}
      x: {run: x, inputs: [], env: {WRITES: out/b.txt, CONTENT: other}, outputs: ["out/b*"]}
    """
    result = harness.run(spec, FakeExecutor(producing), RunRequest(max_parallel=1, keep_going=True))

    jobs = jobs_of(result)
    assert (jobs["b"].status, jobs["a"].status) == ("success", "success")
    assert jobs["x"].status == "failed"
    assert jobs["x"].reason == (
        "output out/b.txt is also an output of job 'b', which it does not need: "
        "a file has one producer (narrow a glob, or add a need)"
    )
    # A failed job has no artifacts: the file is b's, not x's.
    assert jobs["x"].outputs == ()
    assert [o.path for o in jobs["b"].outputs] == ["out/b.txt"]
    # Not cached: the next run tries again rather than replaying the clash.
    again = harness.run(spec, FakeExecutor(producing), RunRequest(max_parallel=1, keep_going=True))
    assert jobs_of(again)["x"].status == "failed"


def test_expansions_of_a_matrix_job_may_not_take_each_others_files(harness: Harness) -> None:
    spec = """\
    version: 1
    jobs:
      build:
        run: build
        inputs: []
        matrix: {os: [linux, darwin]}
        env: {WRITES: dist/app}
        outputs: ["dist/*"]
    """
    result = harness.run(spec, FakeExecutor(producing), RunRequest(max_parallel=1, keep_going=True))

    statuses_ = sorted(job.status for job in result.run.jobs)
    assert statuses_ == ["failed", "success"]


def test_a_hit_is_refused_before_it_puts_back_a_file_another_job_made(harness: Harness) -> None:
    spec = """\
    version: 1
    jobs:
      b: {run: b, inputs: [], env: {WRITES: out/f, CONTENT: B}, outputs: [out/f]}
      a:
        run: a
        inputs: []
        allow_failure: true
        env: {WRITES: out/f, CONTENT: A}
        outputs: ["out/f*"]
      c: {run: c, inputs: [], env: {WRITES: out/g, CONTENT: C}, outputs: [out/g]}
      d: {run: d, needs: [b, c], inputs: [], env: {WRITES: out/h}, outputs: [out/h]}
    """
    harness.run(spec, FakeExecutor(producing), RunRequest(targets=("a",), max_parallel=1))

    result = harness.run(spec, FakeExecutor(producing), RunRequest(max_parallel=1))

    jobs = jobs_of(result)
    assert (jobs["b"].status, jobs["a"].status) == ("success", "failed")
    assert "output out/f is also an output of job 'b'" in (jobs["a"].reason or "")
    assert (harness.root / "out" / "f").read_text() == "B"  # a's copy was never put back


def test_siblings_that_both_rewrite_their_needs_file_clash(harness: Harness) -> None:
    spec = """\
    version: 1
    jobs:
      a: {run: a, inputs: [], env: {WRITES: out/f, CONTENT: A}, outputs: [out/f]}
      b: {run: b, needs: [a], inputs: [], env: {WRITES: out/f, CONTENT: B}, outputs: [out/f]}
      c: {run: c, needs: [a], inputs: [], env: {WRITES: out/f, CONTENT: C}, outputs: ["o*/f"]}
    """
    result = harness.run(spec, FakeExecutor(producing), RunRequest(max_parallel=1, keep_going=True))

    jobs = jobs_of(result)
    assert [jobs[n].status for n in ("a", "b", "c")] == ["success", "success", "failed"]
    assert "is also an output of job 'b', which it does not need" in (jobs["c"].reason or "")
