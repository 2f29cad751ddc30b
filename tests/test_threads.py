"""sbi_course._threads: torch's threads from the CPUs available (affinity, cgroup quota)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sbi_course import _threads

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_cgroup_v2_quota_is_the_smallest_on_the_way_up(tmp_path):
    _tree(
        tmp_path,
        {
            "proc": "0::/user.slice/user-1000.slice/session.scope\n",
            "fs/cpu.max": "max 100000\n",
            "fs/user.slice/user-1000.slice/cpu.max": "150000 100000\n",  # 1.5 CPUs for the user
            "fs/user.slice/user-1000.slice/session.scope/cpu.max": "max 100000\n",
        },
    )
    assert _threads.cgroup_cpu_limit(tmp_path / "proc", tmp_path / "fs") == 1.5
    (tmp_path / "fs/cpu.max").write_text("50000 100000\n")  # a stricter limit above
    assert _threads.cgroup_cpu_limit(tmp_path / "proc", tmp_path / "fs") == 0.5


def test_cgroup_v2_without_quota_and_container_root(tmp_path):
    _tree(tmp_path, {"proc": "0::/\n", "fs/cpu.max": "max 100000\n"})
    assert _threads.cgroup_cpu_limit(tmp_path / "proc", tmp_path / "fs") is None
    # a container sees its own cgroup at the mount's root while the path names the host's
    _tree(tmp_path, {"proc": "0::/kubepods/pod42/abc\n", "fs/cpu.max": "200000 100000\n"})
    assert _threads.cgroup_cpu_limit(tmp_path / "proc", tmp_path / "fs") == 2.0
    assert _threads.cgroup_cpu_limit(tmp_path / "missing", tmp_path / "fs") is None


def test_cgroup_v1_quota(tmp_path):
    _tree(
        tmp_path,
        {
            "proc": "5:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n",
            "fs/cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "300000\n",
            "fs/cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n",
        },
    )
    assert _threads.cgroup_cpu_limit(tmp_path / "proc", tmp_path / "fs") == 3.0
    (tmp_path / "fs/cpu,cpuacct/docker/abc/cpu.cfs_quota_us").write_text("-1\n")
    assert _threads.cgroup_cpu_limit(tmp_path / "proc", tmp_path / "fs") is None


def test_available_cpus_takes_the_quota_and_the_affinity(monkeypatch):
    affinity = len(os.sched_getaffinity(0))
    monkeypatch.setattr(_threads, "cgroup_cpu_limit", lambda: None)
    assert _threads.available_cpus() == affinity
    monkeypatch.setattr(_threads, "cgroup_cpu_limit", lambda: 0.5)  # half a CPU: still 1
    assert _threads.available_cpus() == 1
    monkeypatch.setattr(_threads, "cgroup_cpu_limit", lambda: 1000.0)
    assert _threads.available_cpus() == affinity


def test_policy_says_so_once_and_respects_the_user(monkeypatch, caplog, torch_threads):
    monkeypatch.setattr(_threads, "_announced", False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv(_threads.ENV_VAR, "1")
    torch.set_num_threads(2)
    with caplog.at_level(logging.WARNING, logger="sbi_course"):
        assert _threads.apply_policy() == 1
        torch.set_num_threads(2)
        assert _threads.apply_policy() == 1
    assert torch.get_num_threads() == 1
    lines = [r.getMessage() for r in caplog.records if r.name == "sbi_course"]
    assert len(lines) == 1 and "torch will use 1 thread" in lines[0], lines
    # OMP_NUM_THREADS set and no SBI_COURSE_NUM_THREADS: the user has chosen, nothing changes
    monkeypatch.delenv(_threads.ENV_VAR)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    torch.set_num_threads(2)
    assert _threads.apply_policy() is None and torch.get_num_threads() == 2
    # fewer CPUs available than the machine has: lowered to them
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(_threads, "available_cpus", lambda: 1)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert _threads.apply_policy() == 1 and torch.get_num_threads() == 1
    monkeypatch.setenv(_threads.ENV_VAR, "zero")
    with pytest.raises(ValueError, match="SBI_COURSE_NUM_THREADS must be a positive integer"):
        _threads.apply_policy()
    with pytest.raises(ValueError, match="set_num_threads: num_threads must be"):
        _threads.set_num_threads(0)
    assert _threads.set_num_threads(2) == 2


_IMPORT_SCRIPT = """
import torch
torch.set_num_threads(2)
g = torch.Generator().manual_seed(0)
state, global_state = g.get_state(), torch.random.get_rng_state()
import sbi_course
assert torch.equal(torch.random.get_rng_state(), global_state)
assert torch.equal(g.get_state(), state)
print("threads", torch.get_num_threads())
from sbi_course.simulate import simulate
out = simulate("two_moons", 50, generator=g, chunk_size=20, progress=False)
torch.save(out.x, __import__("sys").argv[1])
"""


def test_import_lowers_threads_once_without_changing_seeded_results(tmp_path, torch_threads):
    env = dict(os.environ, PYTHONPATH=str(ROOT), **{_threads.ENV_VAR: "1"})
    env.pop("OMP_NUM_THREADS", None)
    path = tmp_path / "x.pt"
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_SCRIPT, str(path)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "threads 1" in done.stdout  # lowered from 2 by SBI_COURSE_NUM_THREADS
    said = [line for line in done.stderr.splitlines() if "torch will use" in line]
    assert len(said) == 1, done.stderr  # once, although simulate imports more of the package
    # the same seed with two threads here gives the same numbers
    from sbi_course.simulate import simulate

    torch.set_num_threads(2)
    g = torch.Generator().manual_seed(0)
    here = simulate("two_moons", 50, generator=g, chunk_size=20, progress=False)
    assert torch.equal(torch.load(path), here.x)
