"""`--dry-run`: which jobs would run, which are cached, which are skipped, and why."""

from __future__ import annotations

import pytest

from conveyor.engine.preview import PlannedJob
from conveyor.engine.service import RunRequest, dry_run
from conveyor.executors.base import ExecRequest
from conveyor.executors.fake import FakeExecutor, FakeOutcome
from conveyor.store import runs as run_store

from .harness import Harness, parse

pytestmark = pytest.mark.timeout(60)


def producing(request: ExecRequest, _attempt: int) -> FakeOutcome:
    target = request.env.get("WRITES")
    if target:
        path = request.cwd / target
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(request.env.get("CONTENT", "same"))
    return FakeOutcome()


def spec(content: str = "v1") -> str:
    return f"""\
    version: 1
    jobs:
      gen:
        run: gen
        inputs: []
        env: {{WRITES: out/gen.txt, CONTENT: {content}}}
        outputs: [out/gen.txt]
      use_gen: {{run: use, needs: [gen], inputs: []}}
      lint: {{run: lint, inputs: []}}
      lint_report: {{run: report, needs: [lint], inputs: []}}
      deploy: {{run: deploy, inputs: [], if: "event == 'push'"}}
      notify: {{run: notify, needs: [deploy], inputs: []}}
      always: {{run: always, inputs: [], cache: false}}
    """


def plan(harness: Harness, text: str, request: RunRequest | None = None) -> dict[str, PlannedJob]:
    executor = FakeExecutor()
    service = harness.service(executor)
    planned = dry_run(service, parse(text), request or RunRequest())
    assert executor.requests == []
    return {job.name: job for job in planned}


def test_a_fresh_workspace_would_run_everything_its_conditions_allow(harness: Harness) -> None:
    planned = plan(harness, spec())
    assert {name: job.action for name, job in planned.items()} == {
        "gen": "run",
        "use_gen": "run",
        "lint": "run",
        "lint_report": "run",
        "deploy": "skipped",
        "notify": "skipped",
        "always": "run",
    }
    assert planned["gen"].reasons == ("no earlier cached execution of this job",)
    assert planned["use_gen"].reasons == (
        "need 'gen' will run first; may be cached if its outputs match",
    )
    assert planned["deploy"].reasons == ("condition `event == 'push'` is false",)
    assert planned["notify"].reasons == ("need 'deploy' would be skipped",)
    assert planned["always"].reasons == ("the job opts out of the cache (cache: false)",)


def test_after_a_run_changed_jobs_run_and_the_rest_is_cached(harness: Harness) -> None:
    harness.run(spec(), FakeExecutor(producing))
    planned = plan(harness, spec(content="v2"))
    assert {name: job.action for name, job in planned.items()} == {
        "gen": "run",
        "use_gen": "run",
        "lint": "cached",
        "lint_report": "cached",
        "deploy": "skipped",
        "notify": "skipped",
        "always": "run",
    }
    assert planned["gen"].reasons == ("environment variable CONTENT changed",)
    assert planned["lint"].reasons == ("nothing it depends on changed",)
    assert planned["lint_report"].reasons == ("nothing it depends on changed",)


def test_nothing_changed_predicts_every_cacheable_job_cached(harness: Harness) -> None:
    harness.run(spec(), FakeExecutor(producing))
    planned = plan(harness, spec())
    assert planned["gen"].action == "cached"
    assert planned["use_gen"].action == "cached"


def test_the_event_decides_a_conditions_prediction(harness: Harness) -> None:
    planned = plan(harness, spec(), RunRequest(event="push"))
    assert planned["deploy"].action == "run"
    assert planned["notify"].action == "run"


def test_no_cache_predicts_every_job_runs(harness: Harness) -> None:
    harness.run(spec(), FakeExecutor(producing))
    planned = plan(harness, spec(), RunRequest(use_cache=False))
    assert planned["lint"] == PlannedJob("lint", "run", ("--no-cache",))


def test_targets_limit_the_prediction(harness: Harness) -> None:
    planned = plan(harness, spec(), RunRequest(targets=("use_gen",)))
    assert list(planned) == ["gen", "use_gen"]


def test_a_dry_run_records_nothing_and_writes_no_outputs(harness: Harness) -> None:
    harness.run(spec(), FakeExecutor(producing))
    service = harness.service()
    before = run_store.list_runs(service.db)
    (harness.root / "out" / "gen.txt").unlink()
    plan(harness, spec())
    assert run_store.list_runs(service.db) == before
    assert not (harness.root / "out" / "gen.txt").exists()
