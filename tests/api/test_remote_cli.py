"""The CLI's read commands against a real `conveyor server`: what they print on its workspace.

A run is made locally on a database; a server is started on that database;
then, from a directory with no workspace and CONVEYOR_SERVER and
CONVEYOR_TOKEN set, `runs`, `show`, `logs` and `artifacts` must print exactly
what they print on the workspace itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import free_port
from .test_server_process import SPEC, _env, cli, server

READS = [
    ("runs", "--json"),
    ("runs",),
    ("show", "latest", "--json"),
    ("show", "1"),
    ("logs", "1", "build"),
    ("artifacts", "ls", "latest", "--json"),
    ("artifacts", "ls", "1"),
]
HELLO = "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> dict[str, str]:
    """The environment that names the database: none (the workspace's SQLite) or PostgreSQL."""
    if request.param == "sqlite":
        return {}
    return {"CONVEYOR_DATABASE_URL": request.getfixturevalue("postgres_schema_url")}


def _workspace(root: Path, db: dict[str, str], spec: str = SPEC) -> Path:
    root.mkdir()
    (root / "conveyor.yaml").write_text(spec)
    upgraded = cli(root, "db", "upgrade", **db)
    assert upgraded.returncode == 0, upgraded.stderr
    return root


def _token(ws: Path, role: str, db: dict[str, str]) -> str:
    made = cli(ws, "token", "create", "--role", role, "--name", role, "--json", **db)
    assert made.returncode == 0, made.stderr
    token: str = json.loads(made.stdout)["token"]
    return token


def test_read_commands_against_a_server_print_what_they_print_on_its_workspace(
    tmp_path: Path, database: dict[str, str]
) -> None:
    ws = _workspace(tmp_path / "ws", database)
    ran = cli(ws, "run", **database)
    assert ran.returncode == 0, ran.stderr
    viewer = _token(ws, "viewer", database)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    local = {args: cli(ws, *args, **database) for args in READS}
    with server(ws, CONVEYOR_HOME=str(ws / ".conveyor"), **database) as (url, _):
        remote_env = {"CONVEYOR_SERVER": url, "CONVEYOR_TOKEN": viewer}
        remote = {args: cli(elsewhere, *args, **remote_env) for args in READS}
        got = cli(elsewhere, "artifacts", "get", HELLO, "-o", "copy/app.txt", **remote_env)
    for args in READS:
        assert local[args].returncode == 0, (args, local[args].stderr)
        assert remote[args].returncode == 0, (args, remote[args].stderr)
        assert remote[args].stdout == local[args].stdout, args
    assert json.loads(remote[("runs", "--json")].stdout)["runs"][0]["status"] == "success"
    assert remote[("logs", "1", "build")].stdout == "built\n"
    assert got.returncode == 0, got.stderr
    assert (elsewhere / "copy" / "app.txt").read_text() == "hello\n"
    assert not (elsewhere / ".conveyor").exists()


def test_bad_input_against_a_server_names_the_fix_and_writes_nothing(tmp_path: Path) -> None:
    ws = _workspace(tmp_path / "ws", {})
    assert cli(ws, "run").returncode == 0
    viewer = _token(ws, "viewer", {})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with server(ws, CONVEYOR_HOME=str(ws / ".conveyor")) as (url, _):
        as_viewer = {"CONVEYOR_SERVER": url, "CONVEYOR_TOKEN": viewer}
        refused = cli(elsewhere, "runs", CONVEYOR_SERVER=url, CONVEYOR_TOKEN="cvy_" + "x" * 43)
        missing_run = cli(elsewhere, "show", "99", **as_viewer)
        missing_job = cli(elsewhere, "logs", "1", "deploy", **as_viewer)
        no_digest = cli(elsewhere, "artifacts", "get", "sha256:zz", "-o", "a", **as_viewer)
        gone = cli(elsewhere, "artifacts", "get", "sha256:" + "0" * 64, "-o", "b", **as_viewer)
        explain = cli(elsewhere, "explain", "1", "build", **as_viewer)
    assert refused.returncode == 2
    assert f"the server at {url} refused CONVEYOR_TOKEN" in refused.stderr
    assert "x" * 43 not in refused.stderr
    assert missing_run.returncode == 2
    assert "no run 99" in missing_run.stderr
    assert missing_job.returncode == 2
    assert "deploy" in missing_job.stderr
    assert no_digest.returncode == 2
    assert "write sha256:<64 hex digits>" in no_digest.stderr
    assert gone.returncode == 2
    assert "no artifact" in gone.stderr
    assert explain.returncode == 2
    assert "`conveyor explain` is not available against a server yet" in explain.stderr
    assert list(elsewhere.iterdir()) == []


def test_a_server_that_is_down_is_exit_3_naming_its_url(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = cli(tmp_path, "runs", CONVEYOR_SERVER=url, CONVEYOR_TOKEN="cvy_secret_value")
    assert done.returncode == 3
    assert f"cannot reach the server at {url}" in done.stderr
    assert "cvy_secret_value" not in done.stderr


def test_a_server_without_a_token_is_exit_2_saying_to_set_conveyor_token(tmp_path: Path) -> None:
    done = cli(tmp_path, "show", "latest", CONVEYOR_SERVER="http://127.0.0.1:9")
    assert done.returncode == 2
    assert "CONVEYOR_TOKEN is not" in done.stderr
    assert "unset CONVEYOR_SERVER" in done.stderr


def test_a_server_that_is_no_url_is_exit_2(tmp_path: Path) -> None:
    done = cli(tmp_path, "runs", CONVEYOR_SERVER="conveyor.example:8080", CONVEYOR_TOKEN="t")
    assert done.returncode == 2
    assert "CONVEYOR_SERVER: 'conveyor.example:8080' is not a server URL" in done.stderr


SLOW = """\
version: 1
jobs:
  slow:
    run: echo first && sleep 2 && echo last
"""


def test_following_a_log_through_a_server_prints_it_whole_once_the_job_ends(
    tmp_path: Path,
) -> None:
    ws = _workspace(tmp_path / "ws", {}, SLOW)
    viewer = _token(ws, "viewer", {})
    with server(ws, CONVEYOR_HOME=str(ws / ".conveyor")) as (url, _):
        running = subprocess.Popen(
            [sys.executable, "-m", "conveyor", "run"],
            cwd=ws,
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            live = ws / ".conveyor" / "logs" / "run-1" / "0000.log"
            deadline = time.monotonic() + 20
            while not (live.exists() and "first" in live.read_text()):
                assert time.monotonic() < deadline, "the job did not start"
                time.sleep(0.05)
            followed = cli(
                tmp_path,
                "logs",
                "1",
                "slow",
                "--follow",
                CONVEYOR_SERVER=url,
                CONVEYOR_TOKEN=viewer,
            )
        finally:
            assert running.wait(timeout=30) == 0
    assert followed.returncode == 0, followed.stderr
    assert followed.stdout == "first\nlast\n"


def test_an_embedded_read_command_does_not_import_httpx(tmp_path: Path) -> None:
    ws = _workspace(tmp_path / "ws", {})
    code = (
        "import sys\n"
        "from conveyor.cli.main import main\n"
        "sys.argv = ['conveyor', 'runs', '--json']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as done:\n"
        "    sys.stderr.write(f'exit {done.code} httpx {\"httpx\" in sys.modules}')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ws,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stderr.endswith("exit 0 httpx False"), done.stderr
