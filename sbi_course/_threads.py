"""How many threads torch should use: the CPUs this process may actually use.

torch sizes its intra-op thread pool from the machine's cores. On a JupyterHub, in a container
or under a batch scheduler, a process may use far fewer: the CPUs of its affinity mask
(``taskset``, cpusets) and, more often, a CPU-time quota of the cgroup it runs in (a quota of
``Q`` microseconds per period ``P`` is ``Q / P`` CPUs: Kubernetes limits, ``docker --cpus``,
systemd's ``CPUQuota`` that The Littlest JupyterHub sets per user). More threads than CPUs
make every parallel operation wait for descheduled threads: NPE training that takes 25 s with
one thread took 409 s with two threads on a shared 2-core machine (issue 18).

The policy, applied once when :mod:`sbi_course` is imported:

* ``SBI_COURSE_NUM_THREADS=n`` in the environment: use n threads;
* else, when ``OMP_NUM_THREADS`` is set, the user has chosen: change nothing;
* else use :func:`available_cpus` threads when that is fewer than torch would use.

Whenever it changes something it says so in one log line (logger ``sbi_course``, level
WARNING, so that it shows once in a notebook); :func:`set_num_threads` overrides it later.
The choice also goes to ``OMP_NUM_THREADS``, which torch reads when it starts (so importing
:mod:`sbi_course` need not import torch) and which the processes started later inherit.
Thread counts change no random draw: seeded results stay the same.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from pathlib import Path

__all__ = ["available_cpus", "cgroup_cpu_limit", "set_num_threads", "ENV_VAR"]

#: The environment variable that sets torch's number of threads for sbi_course users.
ENV_VAR = "SBI_COURSE_NUM_THREADS"

logger = logging.getLogger("sbi_course")
_announced = False


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _quota_v2(folder: Path) -> float | None:
    """CPUs allowed by ``cpu.max`` ("QUOTA PERIOD" or "max PERIOD") in a cgroup v2 folder."""
    text = _read(folder / "cpu.max")
    if not text:
        return None
    quota, _, period = text.partition(" ")
    if quota == "max" or not period:
        return None
    return int(quota) / int(period)


def _quota_v1(folder: Path) -> float | None:
    """CPUs allowed by ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (-1: no quota), cgroup v1."""
    quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
    if not quota or not period or int(quota) <= 0:
        return None
    return int(quota) / int(period)


def cgroup_cpu_limit(
    proc_cgroup: str | Path = "/proc/self/cgroup", mount: str | Path = "/sys/fs/cgroup"
) -> float | None:
    """The CPU quota of this process's cgroup (and its ancestors) in CPUs, or None if unlimited.

    Reads cgroup v2 (``0::/path`` in ``/proc/self/cgroup``, ``cpu.max`` under the unified
    mount) and v1 (the ``cpu`` controller's ``cpu.cfs_quota_us``). The smallest quota on the
    way from the process's cgroup up to the root applies. Inside a container the process's
    path may name the host's hierarchy while the container sees its own cgroup at the mount's
    root, so the mount's root folder is read too.

    Args:
        proc_cgroup: the file that lists the process's cgroups (for tests).
        mount: where the cgroup file systems are mounted (for tests).

    Returns:
        The number of CPUs (a float, e.g. 1.5) or None without a quota.
    """
    text = _read(Path(proc_cgroup))
    if text is None:
        return None
    mount = Path(mount)
    limits: list[float] = []
    for line in text.splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # cgroup v2
            roots, reader = [mount, mount / "unified"], _quota_v2
        elif "cpu" in controllers.split(","):
            roots = [mount / controllers, mount / "cpu", mount / "cpu,cpuacct"]
            reader = _quota_v1
        else:
            continue
        parts = [p for p in path.split("/") if p]
        for root in roots:
            if not root.is_dir():
                continue
            for depth in range(len(parts), -1, -1):
                limit = reader(root.joinpath(*parts[:depth]))
                if limit is not None:
                    limits.append(limit)
            break
    return min(limits) if limits else None


def available_cpus() -> int:
    """The CPUs this process can use: its affinity mask, capped by the cgroup quota (>= 1)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cpus = os.cpu_count() or 1
    quota = cgroup_cpu_limit()
    if quota is not None:
        cpus = min(cpus, max(1, math.floor(quota)))
    return max(1, cpus)


def _parse(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise ValueError(f"{ENV_VAR} must be a positive integer number of threads, got {value!r}")
    return number


def _announce(message: str) -> None:
    global _announced
    if not _announced:
        _announced = True
        logger.warning("sbi_course: %s", message)


def set_num_threads(num_threads: int | None = None) -> int:
    """Set torch's number of threads; None picks :func:`available_cpus`.

    Use it to override the choice made at import, e.g. ``set_num_threads(4)`` on a machine
    of your own, or ``set_num_threads(1)`` next to other CPU-bound work.

    Args:
        num_threads: the number of threads, >= 1, or None.

    Returns:
        The number of threads torch uses now.
    """
    import torch

    if num_threads is None:
        num_threads = available_cpus()
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
        raise ValueError(
            f"set_num_threads: num_threads must be a positive integer or None, got {num_threads!r}"
        )
    torch.set_num_threads(num_threads)
    return torch.get_num_threads()


def apply_policy() -> int | None:
    """Apply the import-time policy (module docstring); return the threads chosen, or None."""
    requested = os.environ.get(ENV_VAR)
    if requested:
        number, why = _parse(requested), f"{ENV_VAR}={requested}"
    elif os.environ.get("OMP_NUM_THREADS"):
        return None
    else:
        number = available_cpus()
        host = os.cpu_count() or number
        if number >= host:
            return None
        why = f"this process may use {number} of the machine's {host} CPUs"
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() == number:
        return number
    # torch reads it when it loads, and so do the processes started from here (joblib's
    # workers, kernels): they get the same number without saying so again.
    os.environ["OMP_NUM_THREADS"] = str(number)
    if torch is not None:
        torch.set_num_threads(number)
    _announce(
        f"torch will use {number} thread{'s' if number > 1 else ''} ({why}); override with "
        f"{ENV_VAR}=n or sbi_course.set_num_threads(n)"
    )
    return number
