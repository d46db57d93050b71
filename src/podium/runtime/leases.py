"""Who holds a run's lease, and when a holder is provably gone.

A holder is a runtime, known by a random id (`Runtime.owner`) that it keeps alive by renewing
its leases (the heartbeat): a lease that ran out is free for anyone. Before it runs out, a
lease is taken at once only from a holder that is provably gone. Its lease records where it
runs: host name and pid, and on Linux the boot id, the pid namespace and the start time of the
process. A holder is gone when it ran in this boot and this pid namespace (so its pid names
the same process here), as the same user (whose processes `/proc` always shows), and that pid
is no longer that process (no such pid, or one started at another time), or is a zombie
(killed, not yet reaped by its parent). Anything else waits
for the lease to run out: another machine, a container or a cloned VM with the same host name
but its own pid namespace or boot, a system without `/proc`.
"""

from __future__ import annotations

import os
import socket
from functools import cache
from pathlib import Path
from typing import Any

from podium.core.records import Lease


def this_holder() -> dict[str, Any]:
    """Where this process runs, recorded with every lease it takes."""
    return dict(_identity(os.getpid()))


@cache
def _identity(pid: int) -> tuple[tuple[str, Any], ...]:
    """Cached per pid: a forked child computes its own."""
    info: dict[str, Any] = {"host": socket.gethostname(), "pid": pid}
    boot, pidns, start = _boot_id(), _pid_namespace(), _start_time(pid)
    if boot and pidns and start is not None:
        info.update(boot=boot, pidns=pidns, start=start, uid=os.getuid())
    return tuple(info.items())


def holder_is_gone(holder: dict[str, Any]) -> bool:
    """True only if the holder provably no longer runs: see the module docstring."""
    here = this_holder()
    if "boot" not in here or "boot" not in holder:
        return False
    if any(holder.get(k) != here[k] for k in ("boot", "pidns", "uid")):
        return False
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        stat = _stat(pid)
    except (OSError, ValueError, IndexError):
        return False  # cannot tell
    if stat is None:
        return True  # no such process
    state, start = stat
    return start != holder.get("start") or state in ("Z", "X")


def describe_holder(lease: Lease | None) -> str:
    """The holder as a person reads it: `host pid 1234`."""
    if lease is None:
        return "another process"
    host, pid = lease.holder.get("host"), lease.holder.get("pid")
    if host is None:
        return f"holder {lease.owner}"
    return f"{host} pid {pid} (holder {lease.owner})"


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def _pid_namespace() -> str | None:
    try:
        st = os.stat("/proc/self/ns/pid")
    except OSError:
        return None
    return f"{st.st_dev}:{st.st_ino}"


def _start_time(pid: int) -> int | None:
    try:
        stat = _stat(pid)
    except (OSError, ValueError, IndexError):
        return None
    return None if stat is None else stat[1]


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks since boot) of a process, or None if there is no
    such process; raises if it cannot be told. The command name may hold spaces and
    parentheses: the fields follow the last `)`."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text.rpartition(")")[2].split()
    return fields[0], int(fields[19])
