"""Secrets end to end: masked in every output and never written anywhere in the state."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

from .support import Workspace, WorkspaceFactory, jobs_by_name

SECRET = "s3cr3t-value"
SECRETS = """
version: 1
secrets: [MY_TOKEN]
jobs:
  uses_token:
    inputs: []
    run: |
      echo "token is $MY_TOKEN"
      echo "on stderr: $MY_TOKEN" >&2
      printf 'split across writes %s' "${MY_TOKEN:0:4}"
      sleep 0.2
      printf '%s\\n' "${MY_TOKEN:4}"
      printf 'last line without a newline %s' "$MY_TOKEN"
  fails_with_token:
    inputs: []
    allow_failure: true
    run: |
      echo "failing with $MY_TOKEN"
      exit 4
"""


def _plain_contents(path: Path) -> bytes:
    """A file's bytes, decompressed when it is gzip (logs in the content store are)."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            return data
    return data


def _files_holding(ws: Workspace, needle: bytes) -> list[str]:
    return [
        str(path.relative_to(ws.root))
        for path in sorted(ws.state.rglob("*"))
        if path.is_file() and needle in _plain_contents(path)
    ]


def test_a_secret_is_masked_in_output_logs_and_events_and_stored_nowhere(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(SECRETS)
    env = {"MY_TOKEN": SECRET}

    text = ws.cli("run", env=env)
    as_json = ws.cli("run", "--json", "--no-cache", env=env)

    assert text.code == 0, text.err
    assert SECRET not in text.text
    assert "[uses_token] token is ***" in text.out.splitlines()
    assert "[uses_token] on stderr: ***" in text.out.splitlines()
    assert "[uses_token] split across writes ***" in text.out.splitlines()
    assert "[uses_token] last line without a newline ***" in text.out.splitlines()
    assert as_json.code == 0, as_json.err
    assert SECRET not in as_json.text
    for run_id in ("1", "2"):
        log = ws.cli("logs", run_id, "uses_token")
        assert log.code == 0, log.err
        assert SECRET not in log.out
        assert "token is ***" in log.out
        failing = ws.cli("logs", run_id, "fails_with_token")
        assert SECRET not in failing.out
        assert "failing with ***" in failing.out
    for command in (("show", "latest", "--json"), ("runs", "--json"), ("show", "1")):
        assert SECRET not in ws.cli(*command).text
    for event in ws.events():
        assert SECRET not in event["data"]
    db_files = [p for p in ws.state.iterdir() if p.name.startswith("conveyor.db")]
    assert db_files
    for path in db_files:
        assert SECRET.encode() not in path.read_bytes(), path.name
    assert _files_holding(ws, SECRET.encode()) == []


def test_a_changed_secret_value_reruns_the_job_without_revealing_either_value(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(SECRETS)
    ws.cli("run", env={"MY_TOKEN": SECRET})

    same = ws.run(env={"MY_TOKEN": SECRET})
    changed = ws.run("--explain", env={"MY_TOKEN": "other-s3cr3t"})

    assert jobs_by_name(same.json())["uses_token"]["status"] == "cached"
    job = jobs_by_name(changed.json())["uses_token"]
    assert job["status"] == "success"
    assert job["explain"] == ["secret MY_TOKEN changed"]
    explained = ws.cli("explain", "latest", "uses_token")
    assert "MY_TOKEN" in explained.out
    for secret in (SECRET, "other-s3cr3t"):
        assert secret not in changed.text
        assert secret not in explained.text
        assert _files_holding(ws, secret.encode()) == []


def test_an_unset_secret_is_warned_about(workspace: WorkspaceFactory) -> None:
    ws = workspace(SECRETS)

    result = ws.cli("run")

    assert result.code == 0, result.err
    assert "MY_TOKEN" in result.out
    assert "not set" in result.out


SECRET_IN_TEST_NAMES = """
version: 1
secrets: [MY_TOKEN]
jobs:
  test:
    inputs: []
    reports: {junit: report.xml}
    run: |
      cat > report.xml <<XML
      <testsuite name="auth" tests="2" failures="1">
        <testcase classname="auth" name="test_login[$MY_TOKEN]">
          <failure message="rejected $MY_TOKEN">token $MY_TOKEN was rejected</failure>
        </testcase>
        <testcase classname="auth" name="test_logout[$MY_TOKEN]"/>
      </testsuite>
      XML
"""


def test_a_secret_in_a_failed_test_name_is_masked_in_the_summary_and_never_stored(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(SECRET_IN_TEST_NAMES)

    text = ws.cli("run", env={"MY_TOKEN": SECRET})
    shown = ws.cli("show", "latest", "--json")

    assert text.code == 1
    assert SECRET not in text.text
    assert "auth::test_login[***]" in text.out
    assert jobs_by_name(shown.json())["test"]["tests"]["failures"] == ["auth::test_login[***]"]
    assert _files_holding(ws, SECRET.encode()) == []


def test_a_secret_that_is_not_utf8_runs_masked_and_is_stored_nowhere(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(
        'version: 1\nsecrets: [LAT]\njobs:\n  a:\n    inputs: []\n    run: echo "[$LAT]"\n'
    )
    value = b"caf\xe9Secret123".decode("utf-8", "surrogateescape")  # as the environment holds it

    result = ws.cli("run", env={"LAT": value})

    assert result.code == 0, result.text
    assert "[a] [***]" in result.out.splitlines()
    for command in (("show", "latest", "--json"), ("logs", "latest", "a")):
        assert "Secret123" not in ws.cli(*command).text
    for event in ws.events():
        assert "Secret123" not in event["data"]
    assert _files_holding(ws, b"Secret123") == []


def test_a_file_whose_name_holds_a_secret_is_masked_in_every_explanation(
    workspace: WorkspaceFactory,
) -> None:
    # A tool may name a file after a token; a job without `inputs` depends on every file.
    ws = workspace("version: 1\nsecrets: [TOK]\njobs:\n  reader: {run: ls tmpdir || true}\n")
    env = {"TOK": "SeCrEtZ42"}
    assert ws.cli("run", env=env).code == 0
    ws.write("tmpdir/SeCrEtZ42.cred", "x\n")

    dry = ws.cli("run", "--dry-run", env=env)
    explained = ws.cli("run", "--explain", "--json", env=env)
    later = ws.cli("explain", "latest", "reader", env=env)

    for result in (dry, explained, later):
        assert result.code == 0, result.text
        assert "SeCrEtZ42" not in result.text
    assert "file tmpdir/***.cred was added" in later.out
    assert "file tmpdir/***.cred was added" in dry.out


def test_a_condition_that_cannot_be_evaluated_never_shows_a_secrets_value(
    workspace: WorkspaceFactory,
) -> None:
    # DEPLOY_KEY is no secret itself, but holds one; its value is what the error would show.
    ws = workspace(
        "version: 1\nsecrets: [MY_TOKEN]\njobs:\n  b:\n    run: echo b\n"
        "    if: has(env.DEPLOY_KEY) && env.DEPLOY_KEY.user == 'ci'\n"
    )
    env = {"MY_TOKEN": SECRET, "DEPLOY_KEY": f"key-{SECRET}"}

    for args in (["run"], ["run", "--json"], ["run", "--dry-run"]):
        result = ws.cli(*args, env=env)
        assert result.code == 2, result.err
        assert SECRET not in result.out + result.err, args
    said = ws.cli("run", env=env).err
    assert said.startswith(
        "error: conveyor.yaml:6:9: the condition `has(env.DEPLOY_KEY) && env.DEPLOY_KEY.user == "
        "'ci'` cannot be evaluated: text has no fields\n"
    )
    assert "celtypes" not in said and "StringType" not in said


def test_a_condition_error_masks_a_secret_written_in_the_condition(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(
        "version: 1\nsecrets: [MY_TOKEN]\njobs:\n  b:\n    run: echo b\n"
        f"    if: int(env.N) > 0 && branch != '{SECRET}'\n"
    )

    result = ws.cli("run", env={"MY_TOKEN": SECRET, "N": "many"})

    assert result.code == 2, result.err
    assert SECRET not in result.err
    assert "the condition `int(env.N) > 0 && branch != '***'` cannot be evaluated" in result.err


def test_a_condition_that_reads_a_secret_is_told_so_not_that_it_is_unset(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(
        "version: 1\nsecrets: [MY_TOKEN]\njobs:\n  b:\n    run: echo b\n"
        "    if: env.MY_TOKEN == 'x'\n"
    )

    result = ws.cli("run", env={"MY_TOKEN": SECRET})

    assert result.code == 2, result.err
    assert result.err.startswith(
        "error: conveyor.yaml:6:9: the condition `env.MY_TOKEN == 'x'` reads env.MY_TOKEN, a "
        "secret: conditions cannot read secrets\n"
    )
