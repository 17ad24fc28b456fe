"""What the benchmark tables say about the machine they ran on, and the memory of its processes."""

import platform
import re
from pathlib import Path


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def proc_bytes(field: str, pid: int | str = "self", file: str = "status") -> int:
    """A size field of Linux's /proc/PID/FILE, in bytes: `VmRSS`, `VmHWM` (the peak RSS) in `status`, `Pss` in
    `smaps_rollup`. 0 when the process is gone or exiting; `RuntimeError` when a live process's file has no such
    field."""
    try:
        lines = Path(f"/proc/{pid}/{file}").read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024  # the kernel writes kB
    if _exited(pid):  # a sampled worker can exit between two reads: its /proc entry stays, without its memory
        return 0
    raise RuntimeError(f"no {field} in /proc/{pid}/{file}")


def _exited(pid: int | str) -> bool:
    """Whether PID is a zombie (exited, not yet reaped by its parent) or dead: the kernel has freed its memory and
    lists none of it."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    state = re.search(r"^State:\s*(\S)", status, re.MULTILINE)
    return state is not None and state.group(1) in "ZX"


def descendants(pid: int) -> list[int]:
    """The processes PID started, and theirs (a job's decoding workers), as Linux lists them now; [] elsewhere."""
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        found += [int(child) for child in children]
        frontier += [int(child) for child in children]
    return found


def reset_peak_rss() -> bool:
    """Reset the kernel's high-water mark (VmHWM) of this process, so that the next `proc_bytes("VmHWM")` is the peak
    of what runs from now on, not of loading. False where the kernel does not let us (the peak is then the
    process's)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


__all__ = ["cpu_name", "descendants", "proc_bytes", "reset_peak_rss"]
