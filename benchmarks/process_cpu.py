"""CPU seconds of this process's children, by what they run (Linux /proc): where a
benchmark's CPU went, to tell the design's cost from the stand-ins' on a shared machine."""

from __future__ import annotations

import itertools
import os
from collections import defaultdict
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def _children() -> set[int]:
    pids: set[int] = set()
    for task in Path("/proc/self/task").iterdir():
        try:
            pids |= {int(p) for p in (task / "children").read_text().split()}
        except OSError:  # a thread that ended meanwhile
            continue
    return pids


def _cpu(pid: int) -> float:
    # utime and stime are fields 14 and 15; the command (2) may hold spaces, so after ")".
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def cpu_by_child(names: dict[int, str]) -> dict[str, float]:
    """CPU seconds so far: each child under its name in `names`, else "moto" when it runs
    moto's server, else "other"; this process as "driver"."""
    seconds: defaultdict[str, float] = defaultdict(float)
    for pid in _children():
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            seconds[names.get(pid) or ("moto" if "moto" in command else "other")] += _cpu(pid)
        except OSError:  # gone
            continue
    times = os.times()
    seconds["driver"] += times.user + times.system
    return dict(seconds)


def children_by_port(names: dict[int, str]) -> dict[int, str]:
    """The children serving on these ports ("-p PORT" in their command), by pid: to tell
    moto's servers apart in `cpu_by_child`."""
    found: dict[int, str] = {}
    for pid in _children():
        try:
            words = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        except OSError:
            continue
        for flag, value in itertools.pairwise(words):
            if flag == "-p" and value.isdigit() and int(value) in names:
                found[pid] = names[int(value)]
    return found
