"""The command line: where it listens, and how it stops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from apiclient import Client
from payments import __version__
from payments.app import main

SRC = Path(__file__).resolve().parent.parent / "src"


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM is a POSIX signal")
def test_the_service_listens_on_the_port_from_the_environment_and_stops_on_sigterm() -> None:
    env = {**os.environ, "PORT": "0", "PYTHONPATH": str(SRC), "PYTHONDONTWRITEBYTECODE": "1"}
    with subprocess.Popen(
        [sys.executable, "-m", "payments.app"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            banner = process.stdout.readline().strip()
            prefix = f"payments-api {__version__} listening on "
            assert banner.startswith(prefix + "http://127.0.0.1:")

            health = Client(banner.removeprefix(prefix)).get("/healthz")
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=10)
        finally:
            if process.poll() is None:
                process.kill()

    assert health.body["status"] == "ok"
    assert process.returncode == 0, stderr
    assert "received SIGTERM, shutting down" in stderr


def test_a_port_that_is_not_a_number_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--port", "http"])

    assert exited.value.code == 2
    assert "'http' is not a port number (0 to 65535)" in capsys.readouterr().err


def test_a_port_out_of_range_in_the_environment_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PORT", "70000")

    with pytest.raises(SystemExit) as exited:
        main([])

    assert exited.value.code == 2
    assert "'70000' is not a port number" in capsys.readouterr().err
