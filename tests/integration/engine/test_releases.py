"""The Release service on a real store and content store: what it records, refuses and assumes."""

from __future__ import annotations

import subprocess
from dataclasses import replace

import pytest

from conveyor.core.clock import FrozenClock
from conveyor.core.errors import Conflict, NotFound, UsageError
from conveyor.engine.history import History
from conveyor.engine.maintenance import prune_cache
from conveyor.engine.releases import ReleaseService
from conveyor.executors.base import ExecRequest
from conveyor.executors.fake import FakeExecutor, FakeOutcome
from conveyor.spec.pipeline import Pipeline
from conveyor.store import events as event_log

from .harness import Harness, parse

pytestmark = pytest.mark.timeout(60)

SPEC = """\
version: 1
jobs:
  build:
    run: build
    inputs: []
    env: {{WRITES: dist/app.whl, CONTENT: {content}}}
    outputs: ["dist/*.whl"]
  docs:
    run: docs
    inputs: []
    env: {{WRITES: site/index.html, CONTENT: docs}}
    outputs: ["site/*.html"]
delivery:
  service: payments-api
  artifacts: ["{pattern}"]
  run: python -m app --port $PORT
  environments: [{{name: dev}}]
"""


def producing(request: ExecRequest, _attempt: int) -> FakeOutcome:
    """Writes $CONTENT to the path in $WRITES; a job whose $CONTENT is `fail` fails."""
    if request.env.get("CONTENT") == "fail":
        return FakeOutcome(exit_code=1)
    path = request.cwd / request.env["WRITES"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(request.env["CONTENT"])
    return FakeOutcome()


def spec(content: str = "v1", pattern: str = "dist/*.whl") -> Pipeline:
    return parse(SPEC.format(content=content, pattern=pattern))


def releases(harness: Harness) -> ReleaseService:
    runs = harness.service()
    history = History(harness.workspace, db=runs.db, cas=runs.cas, executor=runs.executor)
    return ReleaseService(
        harness.workspace,
        db=runs.db,
        cas=runs.cas,
        history=history,
        clock=FrozenClock(),
        environ=harness.environ,
    )


def run(harness: Harness, pipeline: Pipeline) -> str:
    return str(harness.run(pipeline, FakeExecutor(producing)).run.id)


def test_a_release_holds_the_matching_outputs_and_a_digest_of_the_delivery_config(
    harness: Harness,
) -> None:
    pipeline = spec()
    outcome = releases(harness).create(pipeline, run(harness, pipeline))

    release = outcome.release
    assert outcome.created
    assert [a.path for a in release.artifacts] == ["dist/app.whl"]
    assert release.service == "payments-api"
    assert release.config_digest.startswith("sha256:")
    assert '"service":"payments-api"' in release.config
    assert "location" not in release.config
    assert release.created_by == "tester"
    events = [(e.kind, e.subject) for e in event_log.iter_all(releases(harness).db)]
    assert events[-1] == ("release.created", "release/payments-api/0.1.0")


def test_outside_git_the_first_version_and_the_next_are_assumed_and_said_so(
    harness: Harness,
) -> None:
    service = releases(harness)
    first = service.create(spec("v1"), run(harness, spec("v1")))
    second = service.create(spec("v2"), run(harness, spec("v2")))

    assert first.release.version == "0.1.0"
    assert first.reasons == (
        "run 1 was not made from a git commit; assumed 0.1.0 for the first release",
    )
    assert second.release.version == "0.1.1"
    assert second.reasons == (
        "run 2 was not made from a git commit; assumed a patch release after 0.1.0",
    )


def test_the_same_content_again_returns_the_recorded_release(harness: Harness) -> None:
    service = releases(harness)
    first = service.create(spec(), run(harness, spec()))

    again = service.create(spec(), run(harness, spec()))
    named = service.create(spec(), "1", version="v0.1.0")

    assert (again.created, named.created) == (False, False)
    assert again.release == first.release == named.release
    assert again.reasons == ("run 2's content is released as 0.1.0",)


def test_a_version_taken_by_other_content_is_a_conflict_naming_what_differs(
    harness: Harness,
) -> None:
    service = releases(harness)
    service.create(spec("v1"), run(harness, spec("v1")), version="1.0.0")

    with pytest.raises(Conflict) as caught:
        service.create(spec("v2"), run(harness, spec("v2")), version="1.0.0")

    message = str(caught.value)
    assert "payments-api 1.0.0 is already released with other content (from run 1)" in message
    assert "artifact dist/app.whl is sha256:" in message
    assert len(service.list_releases()) == 1


def test_a_version_that_differs_only_in_build_metadata_is_a_conflict(harness: Harness) -> None:
    service = releases(harness)
    service.create(spec("v1"), run(harness, spec("v1")), version="1.0.0+build.1")

    with pytest.raises(Conflict, match="only in build metadata"):
        service.create(spec("v2"), run(harness, spec("v2")), version="1.0.0+build.2")


def test_an_explicit_version_follows_the_highest_lower_release(harness: Harness) -> None:
    service = releases(harness)
    for n, version in enumerate(["1.0.0", "2.0.0", "1.1.0"]):
        service.create(spec(f"v{n}"), run(harness, spec(f"v{n}")), version=version)

    listed = service.list_releases()

    assert [r.version for r in listed] == ["2.0.0", "1.1.0", "1.0.0"]
    assert [r.previous_version for r in listed] == ["1.0.0", "1.0.0", None]
    assert service.get_release("latest").version == "2.0.0"


@pytest.mark.parametrize("version", ["1.0", "one", "1.0.0.0", "01.0.0"])
def test_a_version_that_is_not_semver_is_bad_input(harness: Harness, version: str) -> None:
    with pytest.raises(UsageError, match="not a semantic version"):
        releases(harness).create(spec(), run(harness, spec()), version=version)


def test_a_failed_run_is_refused_as_bad_input(harness: Harness) -> None:
    failing = spec("fail")

    with pytest.raises(UsageError, match="run 1 failed: only a successful run can be released"):
        releases(harness).create(failing, run(harness, failing))


def test_a_run_with_no_output_matching_the_artifacts_globs_is_refused(harness: Harness) -> None:
    pipeline = spec(pattern="dist/*.tar.gz")

    with pytest.raises(UsageError) as caught:
        releases(harness).create(pipeline, run(harness, pipeline))

    assert "no output of run 1 matches delivery.artifacts (dist/*.tar.gz)" in str(caught.value)
    assert "dist/app.whl, site/index.html" in str(caught.value)


def test_a_pipeline_without_a_delivery_section_is_refused(harness: Harness) -> None:
    pipeline = replace(spec(), delivery=None)

    with pytest.raises(UsageError, match="no `delivery:` section"):
        releases(harness).create(pipeline, run(harness, pipeline))


def test_a_run_of_another_version_of_the_pipeline_file_is_refused(harness: Harness) -> None:
    ref = run(harness, spec("v1"))

    with pytest.raises(UsageError, match="changed since run 1"):
        releases(harness).create(spec("v2"), ref)


def test_an_unknown_run_is_not_found(harness: Harness) -> None:
    with pytest.raises(NotFound, match="there is no run 42"):
        releases(harness).create(spec(), "42")


def test_a_run_whose_artifacts_were_pruned_is_refused(harness: Harness) -> None:
    pipeline = spec()
    ref = run(harness, pipeline)
    service = releases(harness)
    for job in service.history.get_run(ref).jobs:
        for output in job.outputs:
            service.cas.delete(output.digest)

    with pytest.raises(UsageError, match="were pruned"):
        service.create(pipeline, ref)


def test_pruning_the_cache_keeps_every_released_artifact(harness: Harness) -> None:
    service = releases(harness)
    released = service.create(spec("v1"), run(harness, spec("v1"))).release
    run(harness, spec("v2"))
    others = [
        o.digest
        for j in service.history.get_run("2").jobs
        for o in j.outputs
        if o.path == "dist/app.whl"
    ]

    prune_cache(harness.workspace, max_bytes=0, keep_runs=0)

    assert all(service.cas.has(a.digest) for a in released.artifacts)
    assert not any(service.cas.has(digest) for digest in others)


def test_the_previous_release_made_outside_git_means_the_commits_cannot_be_read(
    harness: Harness,
) -> None:
    service = releases(harness)
    service.create(spec("v1"), run(harness, spec("v1")))
    git = ("git", "-c", "user.email=a@b", "-c", "user.name=A", "-c", "commit.gpgsign=false")
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=harness.root, check=True)
    subprocess.run(
        [*git, "commit", "-q", "--allow-empty", "-m", "feat: x"], cwd=harness.root, check=True
    )

    outcome = service.create(spec("v2"), run(harness, spec("v2")))

    assert outcome.release.version == "0.1.1"
    assert outcome.reasons == (
        "0.1.0 was not made from a git commit; assumed a patch release after 0.1.0",
    )


def test_notes_of_an_unknown_version_are_not_found(harness: Harness) -> None:
    service = releases(harness)
    service.create(spec(), run(harness, spec()))

    with pytest.raises(NotFound, match=r"payments-api has no release 9\.0\.0"):
        service.notes("v9.0.0")
