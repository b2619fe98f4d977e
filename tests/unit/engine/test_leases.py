"""Lease holders: a token naming the process, and knowing when that process is gone."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from conveyor.engine.leases import abandoned, new_owner


def test_an_owner_token_names_this_host_and_process_and_is_unique() -> None:
    first, second = new_owner(), new_owner()

    assert first.startswith(f"{socket.gethostname()}:{os.getpid()}:")
    assert first != second


def test_a_holder_on_this_host_whose_process_exited_is_abandoned() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    pid = int(done.stdout)

    assert abandoned(f"{socket.gethostname()}:{pid}:cafe") is True


def test_a_holder_whose_process_runs_is_not_abandoned() -> None:
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as child:
        try:
            assert abandoned(f"{socket.gethostname()}:{child.pid}:cafe") is False
        finally:
            child.kill()


def test_this_process_and_holders_elsewhere_or_unreadable_are_never_abandoned() -> None:
    assert abandoned(new_owner()) is False
    assert abandoned("another-host:1:cafe") is False
    assert abandoned("not a token") is False
    assert abandoned(f"{socket.gethostname()}:pid:cafe") is False
