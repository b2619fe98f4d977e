"""`if:` conditions and `--dry-run` end to end, in real git repositories."""

from __future__ import annotations

from .support import WorkspaceFactory, jobs_by_name

BRANCHES = """
version: 1
jobs:
  build:
    run: echo build
  deploy:
    needs: [build]
    if: branch == 'main'
    run: touch "$SIDE/deploy.ran"
  notify:
    needs: [deploy]
    run: touch "$SIDE/notify.ran"
"""


def test_a_job_whose_condition_is_false_is_skipped_with_the_reason(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(BRANCHES)
    ws.init_git()
    ws.git("checkout", "-q", "-b", "feature/login")

    result = ws.run()

    assert result.code == 0, result.err
    run = result.json()
    assert run["status"] == "success"
    assert run["branch"] == "feature/login"
    assert run["commit"] == ws.git("rev-parse", "HEAD").strip()
    jobs = jobs_by_name(run)
    assert jobs["build"]["status"] == "success"
    assert jobs["deploy"]["status"] == "skipped"
    assert "branch == 'main'" in jobs["deploy"]["reason"]
    assert jobs["notify"]["status"] == "skipped"
    assert "deploy" in jobs["notify"]["reason"]
    assert not ws.side_file("deploy.ran").exists()


def test_a_job_whose_condition_is_true_runs(workspace: WorkspaceFactory) -> None:
    ws = workspace(BRANCHES)
    ws.init_git()

    result = ws.run()

    assert result.code == 0, result.err
    jobs = jobs_by_name(result.json())
    assert jobs["deploy"]["status"] == "success"
    assert jobs["notify"]["status"] == "success"
    assert ws.side_file("deploy.ran").exists()


CHANGED = """
version: 1
jobs:
  backend:
    if: changed('src/**')
    run: date +%s.%N >> "$SIDE/backend.runs"
  docs:
    if: changed('docs/**')
    run: date +%s.%N >> "$SIDE/docs.runs"
"""


def test_changed_runs_a_job_only_when_files_under_its_glob_changed(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(CHANGED, files={"src/app.py": "print(1)\n", "docs/index.md": "# Docs\n"})
    ws.init_git()
    ws.write("docs/index.md", "# Docs, edited\n")
    ws.commit("docs only")

    docs_commit = jobs_by_name(ws.run().json())
    ws.write("src/app.py", "print(2)\n")  # not committed yet
    src_edit = jobs_by_name(ws.run().json())

    assert docs_commit["docs"]["status"] == "success"
    assert docs_commit["backend"]["status"] == "skipped"
    assert "changed('src/**')" in docs_commit["backend"]["reason"]
    assert src_edit["backend"]["status"] == "success"
    assert len(ws.side_floats("backend.runs")) == 1


def test_on_a_feature_branch_changed_compares_with_where_it_left_the_default_branch(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(CHANGED, files={"src/app.py": "print(1)\n", "docs/index.md": "# Docs\n"})
    ws.init_git()
    ws.git("checkout", "-q", "-b", "feature/api")
    ws.write("src/app.py", "print(2)\n")
    ws.commit("change the app")
    ws.write("README.md", "readme\n")
    ws.commit("an unrelated commit on top")

    jobs = jobs_by_name(ws.run().json())

    # HEAD~1 alone would miss src/app.py; the merge-base with main does not.
    assert jobs["backend"]["status"] == "success"
    assert jobs["docs"]["status"] == "skipped"


DRY = """
version: 1
jobs:
  compile:
    inputs: ["src/**"]
    run: |
      touch "$SIDE/compile.ran"
      cp src/main.c main.o
    outputs: [main.o]
  docs:
    inputs: ["docs/**"]
    run: touch "$SIDE/docs.ran"
  release:
    needs: [compile]
    if: branch == 'release'
    run: touch "$SIDE/release.ran"
"""


def test_dry_run_lists_what_would_run_be_cached_or_be_skipped_and_runs_nothing(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(DRY, files={"src/main.c": "int main;\n", "docs/a.md": "a\n"})
    ws.init_git()
    ws.run()
    for name in ("compile", "docs"):
        ws.side_file(f"{name}.ran").unlink()
    ws.write("src/main.c", "int main(void);\n")

    as_json = ws.cli("run", "--dry-run", "--json")
    text = ws.cli("run", "--dry-run")

    assert as_json.code == 0, as_json.err
    planned = {job["name"]: job for job in as_json.json()["jobs"]}
    assert planned["compile"]["action"] == "run"
    assert any("src/main.c" in reason for reason in planned["compile"]["reasons"])
    assert planned["docs"]["action"] == "cached"
    assert planned["release"]["action"] == "skipped"
    assert any("branch == 'release'" in reason for reason in planned["release"]["reasons"])
    assert text.code == 0, text.err
    assert "compile: would run" in text.out
    assert "docs: would be restored from the cache" in text.out
    assert "release: would be skipped" in text.out
    assert "1 would run, 1 cached, 1 skipped" in text.out
    ascii_only = ws.cli("run", "--dry-run", env={"PYTHONIOENCODING": "ascii"})
    assert ascii_only.code == 0, ascii_only.err
    assert "? compile: would run" in ascii_only.out  # a symbol stdout cannot show becomes ?
    assert not ws.side_file("compile.ran").exists()
    assert not ws.side_file("docs.ran").exists()
    assert ws.read("main.o") == "int main;\n"
    assert len(ws.runs()) == 1


EVENTS = """
version: 1
jobs:
  publish:
    if: event == 'push' && has(env.PUBLISH) && env.PUBLISH == 'yes'
    inputs: []
    cache: false
    run: echo publishing
"""


def test_conditions_see_the_event_and_the_environment(workspace: WorkspaceFactory) -> None:
    ws = workspace(EVENTS)

    local = ws.run(env={"PUBLISH": "yes"}).json()["jobs"][0]
    push_without = ws.run("--event", "push").json()["jobs"][0]
    push_with = ws.run("--event", "push", env={"PUBLISH": "yes"}).json()["jobs"][0]

    assert local["status"] == "skipped"
    assert push_without["status"] == "skipped"
    assert push_with["status"] == "success"


def test_a_condition_reading_an_unset_variable_unguarded_is_bad_input_before_anything_runs(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(EVENTS.replace("has(env.PUBLISH) && ", ""))

    code, _, err = ws.cli("run", "--event", "push")

    assert code == 2
    assert "conveyor.yaml:4:9:" in err
    assert "PUBLISH" in err
    assert "has(env.PUBLISH)" in err
    assert ws.runs() == []


def test_a_detached_checkout_takes_its_branch_from_the_ci_system(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace("version: 1\njobs:\n  deploy:\n    run: 'true'\n    if: branch == 'main'\n")
    ws.init_git()
    ws.git("checkout", "-q", "--detach")

    skipped = jobs_by_name(ws.run().json())["deploy"]
    from_ci = ws.run(env={"GITHUB_REF_NAME": "main"}).json()
    given = ws.run("--branch", "main").json()

    assert skipped["status"] == "skipped"
    assert jobs_by_name(from_ci)["deploy"]["status"] == "success"
    assert from_ci["branch"] == "main"
    assert jobs_by_name(given)["deploy"]["status"] in ("success", "cached")
