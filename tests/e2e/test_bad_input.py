"""Bad input end to end: every class of mistake exits 2, points at the line, and runs nothing."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import jsonschema
import pytest
import yaml

from .conftest import POSTGRES
from .support import Workspace, WorkspaceFactory

# Each spec would leave $SIDE/ran behind if any of its jobs ran.
BAD_SPECS = {
    "yaml syntax": (
        """
        version: 1
        jobs:
          a:
            run: touch "$SIDE/ran"
           needs: [b]
        """,
        "conveyor.yaml:5:4:",
        ["invalid YAML"],
    ),
    "duplicate key": (
        """
        version: 1
        jobs:
          a:
            run: touch "$SIDE/ran"
          a:
            run: touch "$SIDE/ran"
        """,
        "conveyor.yaml:5:3:",
        ["duplicate key 'a'", "line 3"],
    ),
    "unknown key": (
        """
        version: 1
        jobs:
          a:
            run: touch "$SIDE/ran"
            neds: [b]
          b:
            run: touch "$SIDE/ran"
        """,
        "conveyor.yaml:5:5:",
        ["unknown key 'neds'", "did you mean 'needs'?"],
    ),
    "unknown need": (
        """
        version: 1
        jobs:
          build:
            run: touch "$SIDE/ran"
          test:
            run: touch "$SIDE/ran"
            needs: [biuld]
        """,
        "conveyor.yaml:7:13:",
        ["'biuld'", "did you mean 'build'?"],
    ),
    "cycle": (
        """
        version: 1
        jobs:
          a:
            run: touch "$SIDE/ran"
            needs: [b]
          b:
            run: touch "$SIDE/ran"
            needs: [a]
          c:
            run: touch "$SIDE/ran"
        """,
        "conveyor.yaml:3:3:",
        ["cycle", "a -> b -> a"],
    ),
    "bad duration": (
        """
        version: 1
        jobs:
          a:
            run: touch "$SIDE/ran"
            timeout: 5 parsecs
        """,
        "conveyor.yaml:5:14:",
        ["'5 parsecs' is not a duration", "10m"],
    ),
    "cel syntax": (
        """
        version: 1
        jobs:
          a:
            run: touch "$SIDE/ran"
            if: branch == 'main' &&
        """,
        "conveyor.yaml:5:",
        ["condition"],
    ),
    "cel unknown name": (
        """
        version: 1
        jobs:
          a:
            run: touch "$SIDE/ran"
            if: brnach == 'main'
        """,
        "conveyor.yaml:5:9:",
        ["'brnach'", "did you mean 'branch'?"],
    ),
    "wrong type": (
        """
        version: 1
        jobs:
          a:
            run: touch "$SIDE/ran"
            retry: {max: three}
        """,
        "conveyor.yaml:5:18:",
        ["retry.max", "'three'"],
    ),
    "matrix axis misspelled in a path": (
        """
        version: 1
        jobs:
          a:
            run: touch "$SIDE/ran"
            matrix: {os: [linux, darwin]}
            outputs: ["dist/app-${oss}"]
        """,
        "conveyor.yaml:6:25:",
        ["'${oss}' names no axis of the matrix of job 'a'", "did you mean '${os}'?"],
    ),
    "one file named as an output of two jobs": (
        """
        version: 1
        jobs:
          a: {run: touch "$SIDE/ran", outputs: [dist/app]}
          b: {run: touch "$SIDE/ran", outputs: [dist/app]}
        """,
        "conveyor.yaml:4:3:",
        ["jobs 'a' and 'b' both declare output dist/app", "add 'a' to the needs of 'b'"],
    ),
}


def _no_run_recorded(ws: Workspace) -> None:
    assert not ws.side_file("ran").exists(), "a job ran"
    if ws.db_path.exists():
        assert ws.query("SELECT count(*) FROM runs") == [(0,)]


@pytest.mark.parametrize(
    ("spec", "location", "fragments"), list(BAD_SPECS.values()), ids=list(BAD_SPECS)
)
def test_a_broken_pipeline_file_exits_2_naming_the_line_and_column_and_runs_nothing(
    workspace: WorkspaceFactory, spec: str, location: str, fragments: list[str]
) -> None:
    ws = workspace(spec)

    code, out, err = ws.cli("run")

    assert code == 2
    assert out == ""
    assert f"error: {location}" in err
    for fragment in fragments:
        assert fragment in err
    assert "1 error found" in err
    assert "Traceback" not in err
    _no_run_recorded(ws)


def test_a_pipeline_broken_after_a_good_run_adds_no_run_to_the_history(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(BAD_SPECS["cycle"][0].replace("needs: [b]", "needs: []"))
    assert ws.run().code == 0
    ws.side_file("ran").unlink()
    ws.spec(BAD_SPECS["cycle"][0])

    code, _, err = ws.cli("run")

    assert code == 2
    assert "a -> b -> a" in err
    assert not ws.side_file("ran").exists()
    assert len(ws.runs()) == 1


THREE_ERRORS = """
version: 1
jobs:
  a:
    run: touch "$SIDE/ran"
    neds: [b]
  b:
    run: touch "$SIDE/ran"
    timeout: soon
  c:
    run: touch "$SIDE/ran"
    needs: [zz]
"""


def test_every_error_in_a_file_is_reported_at_once(workspace: WorkspaceFactory) -> None:
    ws = workspace(THREE_ERRORS)

    code, _, err = ws.cli("run")

    assert code == 2
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert [e.split(" ", 2)[1] for e in errors] == [
        "conveyor.yaml:5:5:",
        "conveyor.yaml:8:14:",
        "conveyor.yaml:11:13:",
    ]
    assert "3 errors found" in err
    _no_run_recorded(ws)


def test_validate_reports_the_same_errors_as_text_and_as_json(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(THREE_ERRORS)

    text = ws.cli("validate")
    as_json = ws.cli("validate", "--json")

    assert text.code == 2
    assert "3 errors found" in text.err
    assert as_json.code == 2
    doc = as_json.json()
    assert doc["valid"] is False
    assert [(e["file"], e["line"], e["column"]) for e in doc["errors"]] == [
        ("conveyor.yaml", 5, 5),
        ("conveyor.yaml", 8, 14),
        ("conveyor.yaml", 11, 13),
    ]
    assert doc["errors"][0]["hint"] == "did you mean 'needs'?"
    assert all(e["message"] for e in doc["errors"])
    _no_run_recorded(ws)


def test_validate_accepts_a_good_file(workspace: WorkspaceFactory) -> None:
    ws = workspace("version: 1\njobs:\n  a:\n    run: echo a\n  b:\n    run: echo b\n")

    text = ws.cli("validate")
    as_json = ws.cli("validate", "--json")

    assert text.code == 0, text.err
    assert "valid" in text.out
    assert as_json.code == 0
    assert as_json.json()["valid"] is True
    assert as_json.json()["jobs"] == ["a", "b"]
    assert as_json.json()["warnings"] == []


def test_validate_warns_of_an_output_file_two_jobs_name_and_run_refuses_them(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(
        "version: 1\njobs:\n  a: {run: touch a, outputs: [a]}\n"
        "  b: {run: touch a, outputs: [a]}\n  c: {if: \"branch == 'x'\", run: x, outputs: [a]}\n"
    )

    text = ws.cli("validate")
    as_json = ws.cli("validate", "--json")

    # Valid: a Run of one of them works. A Run of both is refused before anything runs.
    assert text.code == 0, text.err
    assert text.out == "conveyor.yaml: valid, 3 jobs (1 warning)\n"
    assert text.err == (
        "warning: conveyor.yaml:4:3: jobs 'a' and 'b' both declare output a, and neither needs "
        "the other: a file has one producer\n"
        "  hint: add 'a' to the needs of 'b', or have each write its own file\n"
    )
    assert as_json.code == 0
    assert [(w["line"], w["column"]) for w in as_json.json()["warnings"]] == [(4, 3)]
    assert ws.cli("run", "b").code == 0
    refused = ws.cli("run")
    assert refused.code == 2
    assert "jobs 'a' and 'b' both declare output a" in refused.err


def test_schema_prints_a_json_schema_that_editors_can_use(workspace: WorkspaceFactory) -> None:
    ws = workspace()

    code, out, err = ws.cli("schema")

    assert code == 0, err
    schema = json.loads(out)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    good = yaml.safe_load(
        textwrap.dedent(
            """
            version: 1
            env: {LANG: C}
            secrets: [TOKEN]
            jobs:
              test:
                run: pytest
                matrix: {python: ["3.11", "3.12"]}
                inputs: ["src/**"]
                outputs: [dist/app.whl]
                reports: {junit: reports/*.xml}
                timeout: 10m
                retry: {max: 2, backoff: 1s}
                allow_failure: true
                cache: false
                if: branch == 'main'
              deploy:
                needs: [test]
                run: ./deploy.sh
            """
        )
    )
    assert list(validator.iter_errors(good)) == []
    misspelled = {"version": 1, "jobs": {"a": {"run": "x", "neds": ["b"]}}}
    assert list(validator.iter_errors(misspelled)) != []


def test_a_missing_pipeline_file_exits_2_with_a_helpful_message(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(fresh=True)

    code, out, err = ws.cli("run")

    assert code == 2
    assert out == ""
    assert "no conveyor.yaml" in err
    assert "-f" in err or "--file" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "args",
    [
        ("run", "--jobs", "0"),
        ("run", "--jobs", "many"),
        ("run", "--jobs=0"),
        ("run", "-q", "--jobs"),
        ("run", "-f"),
        ("run", "-q", "-f", "nope.yaml"),
        ("run", "-q", "no-such-job"),
        ("run", "--no-such-option"),
        ("runs", "--limit", "0"),
        ("no-such-command",),
        ("show", "99999999999999999999999"),
        ("runs", "--before", "99999999999999999999999"),
        ("runs", "--status", "bogus"),
        ("artifacts", "get", "sha256:../../etc", "-o", "x"),
        ("artifacts", "get", "sha256:" + "a" * 64, "-o", "x"),
        ("cache", "prune", "--max-size", "1GB", "--keep-runs", "-1"),
    ],
    ids=[
        "jobs-0",
        "jobs-not-a-number",
        "jobs-0-joined",
        "jobs-without-a-value",
        "file-without-a-value",
        "missing-file",
        "unknown-job",
        "unknown-option",
        "limit-0",
        "unknown-command",
        "huge-run-id",
        "huge-before",
        "unknown-status",
        "malformed-digest",
        "unknown-digest",
        "negative-keep-runs",
    ],
)
def test_bad_command_line_arguments_exit_2(
    workspace: WorkspaceFactory, args: tuple[str, ...]
) -> None:
    ws = workspace('version: 1\njobs:\n  a:\n    run: touch "$SIDE/ran"\n')

    code, _, err = ws.cli(*args)

    assert code == 2
    assert "Traceback" not in err
    assert err.strip()
    _no_run_recorded(ws)


UNREACHABLE = "postgresql://nobody@127.0.0.1:1/conveyor"


@pytest.mark.parametrize("command", [("runs",), ("run",), ("show", "latest")])
def test_an_unreachable_database_is_an_infrastructure_fault_exit_3(
    workspace: WorkspaceFactory, command: tuple[str, ...]
) -> None:
    ws = workspace('version: 1\njobs:\n  a:\n    run: touch "$SIDE/ran"\n')

    code, _, err = ws.cli(*command, env={"CONVEYOR_DATABASE_URL": UNREACHABLE})

    assert code == 3
    assert "database" in err
    assert "Traceback" not in err
    assert not ws.side_file("ran").exists()


@pytest.mark.parametrize("command", [("db", "upgrade"), ("run",), ("runs",)])
def test_a_database_the_server_does_not_have_is_said_as_such_not_as_a_missing_schema(
    workspace: WorkspaceFactory, command: tuple[str, ...]
) -> None:
    # The server answers, but has no such database: PostgreSQL says it "does not exist",
    # as of a missing table; neither a schema to create nor a traceback.
    ws = workspace('version: 1\njobs:\n  a:\n    run: touch "$SIDE/ran"\n')
    url = POSTGRES.rsplit("/", 1)[0] + "/conveyor_no_such_database"

    code, _, err = ws.cli(*command, env={"CONVEYOR_DATABASE_URL": url})

    assert code == 3, err
    assert 'database "conveyor_no_such_database" does not exist' in err
    assert "db upgrade" not in err and "Traceback" not in err
    assert not ws.side_file("ran").exists()


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("garbage", "Could not parse SQLAlchemy URL"),
        ("postgresql://nobody:s3cret@127.0.0.1:notaport/db", "invalid literal for int()"),
    ],
)
def test_a_database_url_that_is_no_url_is_bad_input_with_the_forms_to_write(
    workspace: WorkspaceFactory, url: str, said: str
) -> None:
    ws = workspace('version: 1\njobs:\n  a:\n    run: touch "$SIDE/ran"\n')

    code, _, err = ws.cli("runs", env={"CONVEYOR_DATABASE_URL": url})

    assert code == 2, err
    assert said in err
    assert "write postgresql://USER@HOST:PORT/DATABASE, or sqlite:///PATH" in err
    assert "s3cret" not in err


def test_postgres_urls_are_taken_as_postgresql_ones(database_url: str) -> None:
    from conveyor.store.db import open_database

    assert database_url.startswith("postgresql://")
    db = open_database("postgres://" + database_url.removeprefix("postgresql://"))
    try:
        with db.read() as tx:
            assert tx.execute("SELECT 1") == [(1,)]
    finally:
        db.close()


def test_a_state_directory_that_cannot_be_made_is_said_with_where_it_comes_from(
    workspace: WorkspaceFactory, tmp_path: Path
) -> None:
    ws = workspace('version: 1\njobs:\n  a:\n    run: touch "$SIDE/ran"\n')
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")

    code, _, err = ws.cli("run", env={"CONVEYOR_HOME": str(blocker / "state")})

    assert code == 3, err
    assert err.startswith(f"error: cannot make the state directory {blocker / 'state'}: ")
    assert "(it is CONVEYOR_HOME when set" in err
    assert not ws.side_file("ran").exists()


def test_a_damaged_database_file_is_an_infrastructure_fault_exit_3(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace('version: 1\njobs:\n  a:\n    run: touch "$SIDE/ran"\n', fresh=True)
    ws.state.mkdir()
    ws.db_path.write_bytes(b"this is not a SQLite database, not at all" * 100)

    runs = ws.cli("runs")
    run = ws.cli("run")

    assert runs.code == 3
    assert run.code == 3
    assert "Traceback" not in runs.err + run.err
    assert "conveyor.db" in run.err
    assert not ws.side_file("ran").exists()


def test_a_run_read_without_typer_names_what_is_wrong_and_records_nothing(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace('version: 1\njobs:\n  build:\n    run: touch "$SIDE/ran"\n')

    missing = ws.cli("run", "-q", "-f", "nope.yaml")
    unknown = ws.cli("run", "-q", "biuld")
    no_value = ws.cli("run", "-q", "--jobs")

    assert missing.code == 2 and "nope.yaml" in missing.err
    assert unknown.code == 2 and "there is no job 'biuld'" in unknown.err
    assert "did you mean 'build'?" in unknown.err
    assert no_value.code == 2 and "'--jobs' requires an argument" in no_value.err
    _no_run_recorded(ws)


@pytest.mark.parametrize(
    "command",
    [
        ("schema",),
        ("policy", "schema"),
        ("artifacts", "get", "sha256:" + "0" * 64),
        ("evidence", "export", "shop", "latest"),
    ],
)
def test_an_output_file_that_cannot_be_written_is_bad_input_named_before_any_work(
    workspace: WorkspaceFactory, command: tuple[str, ...]
) -> None:
    ws = workspace("version: 1\njobs:\n  a: {run: 'true'}\n")

    into_a_directory = ws.cli(*command, "-o", str(ws.side))
    nowhere = ws.cli(*command, "-o", "missing/dir/out.json")

    assert into_a_directory.code == 2, into_a_directory.text
    assert f"--output {ws.side} is a directory; name the file" in into_a_directory.err
    if command[0] == "artifacts":  # makes the directories it writes in
        assert nowhere.code == 2 and "no artifact" in nowhere.err, nowhere.text
    else:
        assert nowhere.code == 2, nowhere.text
        assert "does not exist; create it first" in nowhere.err
    assert not (ws.root / "missing").exists()


def test_a_missing_pipeline_file_reads_the_same_to_run_and_to_validate(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace("version: 1\njobs:\n  a: {run: 'true'}\n")

    for command in (["run"], ["validate"], ["runs"], ["show", "latest"], ["artifacts", "ls", "1"]):
        missing = ws.cli(*command, "-f", "nope.yaml")
        assert missing.code == 2, (command, missing.err)
        assert "nope.yaml:1:1: 'nope.yaml' does not exist" in missing.err
        assert "pass -f with the path of yours" in missing.err
    assert ws.runs() == []
    # Nothing is made beside a mistyped path: no workspace, no store.
    elsewhere = ws.cli("runs", "-f", "typo/conveyor.yml")
    assert elsewhere.code == 2
    assert not (ws.root / "typo").exists()


def test_errors_in_jobs_and_in_delivery_are_reported_together(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(
        textwrap.dedent(
            """\
            version: 1
            jobs:
              build: {run: 'true', needs: [bulid]}
            delivery:
              service: shop
              artifacts: ["dist/*"]
              run: python -m http.server $PORT
              environments:
                - name: dev
                - name: prod
                  requires: {after: stagin}
                - name: dev
            """
        )
    )

    result = ws.cli("validate")

    assert result.code == 2
    assert "conveyor.yaml:3:32: job 'build' needs 'bulid'" in result.err
    assert "environment 'dev' is listed twice" in result.err
    assert "stagin" in result.err
    assert "3 errors found" in result.err


def test_with_json_an_error_is_also_one_json_object_on_stdout(workspace: WorkspaceFactory) -> None:
    ws = workspace(THREE_ERRORS)

    run = ws.cli("run", "--json")
    show = ws.cli("show", "999", "--json")

    assert run.code == 2
    doc = run.json()["error"]
    assert (doc["exit_code"], len(doc["errors"])) == (2, 3)
    assert doc["errors"][0] == {
        "file": "conveyor.yaml",
        "line": 5,
        "column": 5,
        "message": doc["errors"][0]["message"],
        "hint": doc["errors"][0]["hint"],
    }
    assert "3 errors found" in run.err  # and the text, for a person
    assert show.code == 2
    assert show.json() == {"error": {"message": "there is no run 999", "exit_code": 2}}
    assert "error: there is no run 999" in show.err


def test_an_existing_file_is_written_whatever_its_directory_allows(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace("version: 1\njobs:\n  a: {run: 'true'}\n")
    done = ws.cli("schema", "-o", "/dev/null")
    assert (done.code, done.err) == (0, ""), done.text


def test_outputs_in_a_conveyor_home_inside_the_workspace_are_bad_input_before_any_work(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(
        'version: 1\njobs:\n  named:\n    run: touch "$SIDE/ran"\n'
        "    outputs: [state/conveyor.db]\n  fine:\n    run: echo fine\n"
    )
    env = {"CONVEYOR_HOME": str(ws.root / "state")}

    for command in (["validate"], ["run"], ["run", "--dry-run"]):
        code, _, err = ws.cli(*command, env=env)
        assert code == 2, (command, err)
        assert err.startswith(
            "error: conveyor.yaml:3:3: job 'named': 'state/conveyor.db' names Conveyor's own "
            "state (state/, where CONVEYOR_HOME puts it)\n"
        ), err
    assert not ws.side_file("ran").exists()
    assert ws.cli("runs", "--json", env=env).json() == {"runs": []}
    assert ws.cli("run", "fine", env=env).code == 0  # a Run without that job is fine


@pytest.mark.parametrize(
    ("condition", "said"),
    [
        (
            "branch.matches('[')",
            "the condition `branch.matches('[')` cannot be evaluated: a regular expression "
            "does not compile (missing ]: [)",
        ),
        (
            "has(env.KEY) && env.KEY.user == 'ci'",
            "the condition `has(env.KEY) && env.KEY.user == 'ci'` cannot be evaluated: text "
            "has no fields",
        ),
    ],
    ids=["bad-regex", "field-of-text"],
)
def test_a_condition_that_can_never_work_is_found_by_validate_and_said_plainly(
    workspace: WorkspaceFactory, condition: str, said: str
) -> None:
    ws = workspace(f'version: 1\njobs:\n  a:\n    run: echo a\n    if: "{condition}"\n')

    for command in (["validate"], ["run"]):
        code, _, err = ws.cli(*command, env={"KEY": "x"})
        assert code == 2, (command, err)
        assert err.startswith("error: conveyor.yaml:5:") and said in err, err
        assert "absl" not in err and "re2.cc" not in err  # the regex library's own log


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("runs", "-n", "0", "--json"),
            "Invalid value for '--limit' / '-n': 0 is not in the range x>=1.",
        ),
        (("runs", "--bogus", "--json"), "No such option: --bogus"),
    ],
)
def test_a_usage_error_with_json_is_also_one_json_object_on_stdout(
    workspace: WorkspaceFactory, args: tuple[str, ...], message: str
) -> None:
    ws = workspace("version: 1\njobs:\n  a: {run: 'true'}\n")

    code, out, err = ws.cli(*args)

    assert code == 2, err
    assert json.loads(out) == {"error": {"message": message, "exit_code": 2}}
    assert "Usage:" in err and "Error" in err  # the text for a person stays
