"""sbi_course.simulate: the same numbers for any workers and backend, NaN rows, clear errors.

The equality checks run a real stochastic task (two moons) in this process, in 2 loky worker
processes, in 2 threads and on a Dask ``LocalCluster`` with 2 worker processes; Dask is part of
the dev extra, so CI runs that test (a missing Dask fails there instead of skipping).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import joblib
import pytest
import torch

from sbi_course import tasks
from sbi_course.simulate import chunk_seeds, simulate

ROOT = Path(__file__).resolve().parents[1]
NUM, CHUNK, SEED = 2000, 300, 7  # 7 chunks, the last one short


def _run(workers: int = 1, chunk_size: int = CHUNK, what="two_moons", **kwargs):
    generator = torch.Generator().manual_seed(SEED)
    return simulate(
        what, NUM, generator=generator, workers=workers, chunk_size=chunk_size, **kwargs
    )


@pytest.fixture(scope="module")
def reference():
    return _run(progress=False)


def _assert_same(a, b) -> None:
    assert torch.equal(a.theta, b.theta)
    assert torch.equal(a.x, b.x)  # bit for bit
    assert torch.equal(a.valid, b.valid)


def test_reference_run_is_a_real_simulation(reference, capsys):
    theta, x, valid = reference
    assert theta.shape == (NUM, 2) and x.shape == (NUM, 2) and valid.all()
    assert reference.num_failed == 0
    # the chunks draw different noise: no two chunks repeat each other
    assert not torch.equal(x[:CHUNK] - theta[:CHUNK].sum(1, keepdim=True), x[CHUNK : 2 * CHUNK])
    # the prior draw uses the caller's generator exactly as the task does
    g = torch.Generator().manual_seed(SEED)
    assert torch.equal(theta, tasks.get("two_moons").prior.sample((NUM,), generator=g))
    # the same chunk size gives the same numbers; another chunk size other noise
    _assert_same(_run(progress=False), reference)
    assert not torch.equal(_run(chunk_size=CHUNK + 1, progress=False).x, reference.x)
    # progress counts simulations, not chunks
    _run(progress=True)
    assert f"{NUM}/{NUM}" in capsys.readouterr().err


def test_generator_is_advanced_by_one_draw():
    theta = torch.rand(10, 2, generator=torch.Generator().manual_seed(1)) - 0.5
    g, expected = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    simulate("two_moons", theta, generator=g, chunk_size=3, progress=False)
    torch.randint(0, 2**62, (), generator=expected)
    assert torch.equal(g.get_state(), expected.get_state())
    assert len(set(chunk_seeds(torch.Generator().manual_seed(3), 4))) == 4


def test_same_numbers_in_processes_and_threads(reference):
    _assert_same(_run(workers=2, progress=False), reference)  # loky processes
    with joblib.parallel_config(prefer="threads"):
        _assert_same(_run(workers=2, progress=False), reference)
    # a Task object and the module's function give the same numbers as the task's name
    task = tasks.get("two_moons")
    _assert_same(_run(workers=2, what=task, progress=False), reference)
    from sbi_course.simulators import two_moons

    by_function = _run(what=two_moons.simulate, prior=task.prior, progress=False)
    _assert_same(by_function, reference)


def test_caller_keeps_its_torch_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        simulate("two_moons", 10, generator=torch.Generator(), chunk_size=3, progress=False)
        assert torch.get_num_threads() == 2  # one thread inside, restored after
    finally:
        torch.set_num_threads(before)


def test_same_numbers_on_a_dask_cluster(reference):
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("Dask is part of the dev extra; CI must run the Dask test")
        pytest.skip("dask.distributed is not installed (pip install -e '.[cluster]')")
    with (
        LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        with joblib.parallel_config(backend="dask"):
            on_dask = _run(workers=2, progress=False)
        pids = client.run(os.getpid)  # two worker processes, neither of them this one
        threads = client.run(torch.get_num_threads)
    _assert_same(on_dask, reference)
    assert len(set(pids.values())) == 2 and os.getpid() not in pids.values()
    assert set(threads.values()) == {1}


def flaky_simulator(theta: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """theta + noise; rows with theta[:, 0] < 0 fail (NaN), rows with theta[:, 0] > 17 give inf."""
    x = theta + 0.1 * torch.randn(theta.shape, generator=generator)
    x[theta[:, 0] < 0, 1] = float("nan")
    x[theta[:, 0] > 17, 0] = float("inf")
    return x


def test_failed_simulations_are_rows_of_nan_and_counted():
    theta = torch.arange(-20.0, 21.0).unsqueeze(1).repeat(1, 2)  # 20 below 0, 3 above 17
    g = torch.Generator().manual_seed(0)
    with pytest.warns(UserWarning, match=r"simulate: 23 of 41 simulations failed"):
        out = simulate(flaky_simulator, theta, generator=g, chunk_size=8, progress=False)
    expected_bad = (theta[:, 0] < 0) | (theta[:, 0] > 17)
    assert out.num_failed == int(expected_bad.sum()) == 23
    assert torch.equal(out.valid, ~expected_bad)
    assert torch.isnan(out.x[expected_bad]).all()  # the whole row, not just the bad entry
    assert torch.isfinite(out.x[~expected_bad]).all()
    with joblib.parallel_config(prefer="threads"), pytest.warns(UserWarning):
        threaded = simulate(
            flaky_simulator,
            theta,
            generator=torch.Generator().manual_seed(0),
            chunk_size=8,
            workers=2,
            progress=False,
        )
    assert torch.equal(threaded.x.nan_to_num(-1.0), out.x.nan_to_num(-1.0))


def test_unpicklable_simulator_says_how_to_fix_it():
    lock = threading.Lock()  # a lock cannot be pickled, so neither can this closure

    def simulator(theta, generator):
        with lock:
            return theta + torch.randn(theta.shape, generator=generator)

    theta = torch.zeros(6, 2)
    with pytest.raises(TypeError, match=r"simulate: the simulator .*module level"):
        simulate(simulator, theta, generator=torch.Generator(), workers=2, progress=False)
    # in this process (serial or threads) it needs no pickling and runs
    serial = simulate(simulator, theta, generator=torch.Generator().manual_seed(0), chunk_size=2)
    with joblib.parallel_config(prefer="threads"):
        threaded = simulate(
            simulator,
            theta,
            generator=torch.Generator().manual_seed(0),
            chunk_size=2,
            workers=2,
            progress=False,
        )
    assert torch.equal(serial.x, threaded.x)


def test_bad_input_is_named():
    g = torch.Generator()
    with pytest.raises(ValueError, match=r"theta must have shape \(N, 2\) for this task, got"):
        simulate("two_moons", torch.zeros(5, 3), generator=g)
    with pytest.raises(ValueError, match="no prior"):
        simulate(flaky_simulator, 10, generator=g)
    with pytest.raises(TypeError, match="must accept a keyword argument `generator`"):
        simulate(lambda theta: theta, torch.zeros(3, 1), generator=g)
    with pytest.raises(ValueError, match="chunk_size must be positive"):
        simulate("two_moons", 10, generator=g, chunk_size=0)
    with pytest.raises(ValueError, match="workers must be"):
        simulate("two_moons", 10, generator=g, workers=0)
    with pytest.raises(ValueError, match=r"unknown task"):
        simulate("two_moon", 10, generator=g)
    with pytest.raises(ValueError, match=r"shape \(N, L\) with one row per parameter"):
        simulate(lambda theta, generator: theta[:1], torch.zeros(4, 2), generator=g)


_INTERRUPT_SCRIPT = """
import os, sys, time, torch, psutil
from sbi_course.simulate import simulate
from slow_simulator import slow
if __name__ == "__main__":
    try:
        simulate(slow, torch.zeros(8, 1), generator=torch.Generator(), workers=2, chunk_size=1,
                 progress=False)
        print("not interrupted")
    except KeyboardInterrupt:
        pids = [int(p.stem) for p in __import__("pathlib").Path(sys.argv[1]).glob("*.pid")]
        deadline = time.monotonic() + 20
        alive = pids
        while alive and time.monotonic() < deadline:
            alive = [p for p in pids if psutil.pid_exists(p)
                     and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
            time.sleep(0.2)
        print("interrupted; workers", sorted(pids), "alive", alive, flush=True)
"""

_SLOW_SIMULATOR = """
import os, time, pathlib, sys
def slow(theta, generator):
    pathlib.Path(os.environ["PID_DIR"], f"{os.getpid()}.pid").touch()
    time.sleep(120)
    return theta
"""


def test_keyboard_interrupt_leaves_no_worker_behind(tmp_path):
    (tmp_path / "slow_simulator.py").write_text(textwrap.dedent(_SLOW_SIMULATOR))
    (tmp_path / "main.py").write_text(textwrap.dedent(_INTERRUPT_SCRIPT))
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    env = dict(
        os.environ,
        PID_DIR=str(pid_dir),
        PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT), os.environ.get("PYTHONPATH", "")]),
    )
    process = subprocess.Popen(
        [sys.executable, str(tmp_path / "main.py"), str(pid_dir)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while len(list(pid_dir.glob("*.pid"))) < 2:  # both workers are inside a simulation
            assert process.poll() is None, process.stdout.read()
            assert time.monotonic() < deadline, "the workers never started"
            time.sleep(0.2)
        process.send_signal(2)  # SIGINT, what Ctrl-C or Jupyter's interrupt button sends
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    workers = sorted(int(p.stem) for p in pid_dir.glob("*.pid"))
    assert f"interrupted; workers {workers} alive []" in output, output
