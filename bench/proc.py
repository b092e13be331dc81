"""The processes of a live run as Linux shows them in /proc, for tests and benchmarks that
kill things and then check that nothing was left behind."""

from __future__ import annotations

from pathlib import Path


def _stat(pid: int | str) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state, ppid, ...); None if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def descendants(root: int) -> dict[int, tuple[str, str]]:
    """{pid: (name, start time)} of every process below ``root``, at any depth."""
    parents = {}
    for entry in Path("/proc").iterdir():
        fields = _stat(entry.name) if entry.name.isdigit() else None
        if fields is not None:
            parents[int(entry.name)] = (int(fields[1]), fields[19])
    found, frontier = {}, {root}
    while frontier:
        frontier = {pid for pid, (ppid, _) in parents.items() if ppid in frontier}
        found.update({pid: (comm(pid), parents[pid][1]) for pid in frontier})
    return found


def running(pid: int, start: str) -> bool:
    """That very process (pid and start time) exists and is not a zombie."""
    fields = _stat(pid)
    return fields is not None and fields[19] == start and fields[0] != "Z"
