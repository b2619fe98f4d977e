"""Who holds a Deployment's lease, and whether that holder is gone.

A controller's owner token names its host and process: `host:pid:nonce`.
Leases run out by themselves; a holder on this host whose process no longer
runs (killed, crashed) is known to be gone at once, so its work is taken
over without waiting for its lease to end. Process ids are reused: a reused
id only makes the taker wait for the lease, never takes work from a live
holder, since a holder that runs always has its own id.
"""

from __future__ import annotations

import os
import socket
import uuid

from conveyor.targets import procfs


def new_owner() -> str:
    """A token naming this process, unique among every controller there ever was."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def abandoned(owner: str) -> bool:
    """Whether `owner` ran on this host in a process that no longer runs."""
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return False
    host, pid = parts[0], int(parts[1])
    if host != socket.gethostname() or pid == os.getpid():
        return False
    return not procfs.is_running(pid)
