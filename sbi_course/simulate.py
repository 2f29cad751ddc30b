r"""Many simulations, on one core or many, with the same numbers for the same seed.

:func:`simulate` runs a simulator (a function ``simulator(theta, generator=g)``, a
:class:`~sbi_course.tasks.Task` or a task's name) on a batch of parameters, split into chunks
that run in parallel through joblib: local processes (loky, joblib's default), threads, or a
Dask cluster through ``joblib.parallel_config(backend="dask")``.

Why the numbers do not depend on the workers. Simulators draw their noise from a
``torch.Generator``; if the chunks shared one generator, the noise a simulation receives would
depend on which chunks ran before it, hence on the scheduling. Here the split is fixed by
``chunk_size`` alone (chunk :math:`c` holds rows :math:`c\,s, \dots, (c+1)\,s - 1`), and
each chunk gets its own generator. Their seeds come from **one** draw :math:`e` of the
caller's generator: ``numpy.random.SeedSequence(e).spawn(C)`` derives :math:`C` independent
child seeds by hashing (O'Neill 2015, the scheme numpy and Dask use for parallel streams), so
chunk :math:`c`'s noise depends on :math:`(e, c)` only. Each chunk runs with one torch
thread, so that even floating-point reductions are summed in the same order everywhere. The
result is therefore bit-identical for any number of workers and any backend, and it changes
only with the seed or ``chunk_size``. (It differs from one call of the simulator on the whole
batch, which draws all noise from one stream.)

Failed simulations follow the package's policy: a row of NaN. :func:`simulate` returns the
validity mask beside ``x`` and warns once with the number of failed rows.

Example:
    >>> import torch
    >>> from sbi_course.simulate import simulate
    >>> g = torch.Generator().manual_seed(0)
    >>> out = simulate("two_moons", 1000, generator=g, workers=1, progress=False)
    >>> out.theta.shape, out.x.shape, out.num_failed
    (torch.Size([1000, 2]), torch.Size([1000, 2]), 0)

References:
    O'Neill, M. E. (2015). PCG: A family of simple fast space-efficient statistically good
    algorithms for random number generation. Technical report HMC-CS-2014-0905 (and numpy's
    ``SeedSequence``, which implements its seed hashing).
"""

from __future__ import annotations

import functools
import inspect
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

__all__ = ["Simulations", "simulate", "chunk_seeds", "DEFAULT_CHUNK_SIZE"]

#: Simulations per chunk. Part of the result's definition: the same seed and chunk size give
#: the same numbers for any number of workers. Batched simulators pay a fixed cost per call
#: (Hodgkin-Huxley's 12,000-step time loop, SIR's adaptive ODE steps), so chunks must be
#: large: Hodgkin-Huxley runs about 1.5 times faster per simulation in batches of 1,000 than
#: of 500 (benchmarks/results/hodgkin_huxley_speed.md). 1,000 still gives 10 chunks to share
#: 10^4 simulations and 1,000 chunks for 10^6 on a cluster; a trace batch is about 100 MB.
DEFAULT_CHUNK_SIZE = 1000

_OWNER = "simulate"


class Simulations(NamedTuple):
    """What :func:`simulate` returns; unpacks as ``theta, x, valid = simulate(...)``.

    Attributes:
        theta: parameters, shape (N, D).
        x: data, shape (N, L); failed simulations are rows of NaN.
        valid: boolean mask, shape (N,): True where the simulation succeeded.
    """

    theta: Tensor
    x: Tensor
    valid: Tensor

    @property
    def num_failed(self) -> int:
        """The number of failed simulations (rows of NaN)."""
        return int((~self.valid).sum())


class _TaskSimulator:
    """A registered task's simulator, sent to workers by name (a module cannot be pickled)."""

    def __init__(self, name: str):
        self.name = name

    def __call__(self, theta: Tensor, generator: torch.Generator) -> Tensor:
        return _task(self.name).simulate(theta, generator=generator)

    def __repr__(self) -> str:
        return f"task {self.name}"


@functools.cache
def _task(name: str):
    from sbi_course import tasks

    return tasks.get(name)


def _resolve(simulator_or_task: Any) -> tuple[Callable, Any, int | None, str]:
    """Return ``(simulator, prior, theta_dim, label)`` for a callable, a Task or a task name."""
    from sbi_course import tasks

    if isinstance(simulator_or_task, str):
        task = tasks.get(simulator_or_task)  # ValueError listing the names for a bad one
        return _TaskSimulator(task.name), task.prior, task.theta_dim, f"task {task.name}"
    if isinstance(simulator_or_task, tasks.Task):
        task = simulator_or_task
        registered = task.name in tasks.names()
        call = _TaskSimulator(task.name) if registered else task.simulate
        return call, task.prior, task.theta_dim, f"task {task.name}"
    if not callable(simulator_or_task):
        raise TypeError(
            f"{_OWNER}: simulator_or_task must be a function simulator(theta, generator=g), a "
            f"Task or a task name, got {type(simulator_or_task).__name__}"
        )
    label = getattr(simulator_or_task, "__qualname__", None) or repr(simulator_or_task)
    try:
        parameters = inspect.signature(simulator_or_task).parameters
    except (TypeError, ValueError):  # some builtins have no signature: trust them
        parameters = None
    if parameters is not None and not (
        "generator" in parameters
        or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    ):
        raise TypeError(
            f"{_OWNER}: the simulator {label} must accept a keyword argument `generator` (a "
            f"torch.Generator) and draw all its randomness from it; a simulator that uses the "
            f"global random state cannot give the same numbers on any number of workers"
        )
    return simulator_or_task, None, None, label


def _parameters(
    theta: Tensor | int, prior: Any, theta_dim: int | None, generator: torch.Generator | None
) -> Tensor:
    """``theta`` as an (N, D) tensor, drawn from ``prior`` when it is a number of simulations."""
    if isinstance(theta, (int, np.integer)) and not isinstance(theta, bool):
        if theta < 1:
            raise ValueError(
                f"{_OWNER}: the number of simulations must be positive, got {int(theta)}"
            )
        if prior is None:
            raise ValueError(
                f"{_OWNER}: got a number of simulations ({int(theta)}) but no prior to draw "
                f"theta from; pass prior=... or a task, or pass theta of shape (N, D)"
            )
        from sbi_course.priors import sample_prior

        return sample_prior(prior, int(theta), generator=generator)
    if not isinstance(theta, Tensor):
        raise TypeError(
            f"{_OWNER}: theta must be a tensor of shape (N, D) or a number of simulations, "
            f"got {type(theta).__name__}"
        )
    if theta.ndim != 2 or theta.shape[0] == 0:
        raise ValueError(
            f"{_OWNER}: theta must have shape (N, D) with N >= 1, got {tuple(theta.shape)}"
        )
    if theta_dim is not None and theta.shape[1] != theta_dim:
        raise ValueError(
            f"{_OWNER}: theta must have shape (N, {theta_dim}) for this task, "
            f"got {tuple(theta.shape)}"
        )
    return theta


def chunk_seeds(generator: torch.Generator | None, num_chunks: int) -> list[int]:
    """One 64-bit seed per chunk, all from a single draw of ``generator``.

    Args:
        generator: the caller's generator (None: torch's global one); advanced by one draw.
        num_chunks: the number of chunks C.

    Returns:
        C seeds, the c-th a function of the drawn entropy and c only.
    """
    entropy = int(torch.randint(0, 2**62, (), generator=generator))
    children = np.random.SeedSequence(entropy).spawn(num_chunks)
    return [int(child.generate_state(1, dtype=np.uint64)[0]) for child in children]


@contextmanager
def _torch_threads(num_threads: int) -> Iterator[None]:
    """Run with ``num_threads`` torch threads, then restore the caller's setting."""
    before = torch.get_num_threads()
    if before != num_threads:
        torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def _run_chunk(
    simulator: Callable, theta: Tensor, seed: int, index: int, parent_pid: int
) -> tuple[int, Tensor]:
    """Simulate one chunk with its own generator and one torch thread; return (index, x)."""
    if os.getpid() != parent_pid:
        # A worker process (loky, Dask): one torch thread, for good. Restoring afterwards
        # would race with the other threads of a multi-threaded Dask worker.
        if torch.get_num_threads() != 1:
            torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(seed)
    return index, simulator(theta, generator=generator)


def _uses_threads_only(workers: int) -> bool:
    """Whether joblib would run the chunks in this process (serial or threads)."""
    from joblib.parallel import get_active_backend

    if workers == 1:
        return True
    backend, _ = get_active_backend()
    return bool(getattr(backend, "uses_threads", False))


def _check_picklable(simulator: Callable, label: str) -> None:
    try:  # what loky and Dask pickle with; joblib < 1.5 ships its own copy
        import cloudpickle
    except ImportError:  # pragma: no cover
        from joblib.externals import cloudpickle

    try:
        cloudpickle.dumps(simulator)
    except Exception as error:  # pickling raises many types: PicklingError, TypeError, ...
        raise TypeError(
            f"{_OWNER}: the simulator {label} cannot be sent to worker processes "
            f"({type(error).__name__}: {error}). Define it as a function at module level, in "
            f"a .py file that the workers can import, and let it create what it needs (open "
            f"files, locks, connections) inside the call instead of capturing them; or run "
            f"it with workers=1 or in threads (joblib.parallel_config(prefer='threads'))"
        ) from error


def _check_chunk(x: Any, rows: int, index: int, label: str) -> Tensor:
    if not isinstance(x, Tensor) or x.ndim != 2 or x.shape[0] != rows:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(
            f"{_OWNER}: the simulator {label} must return a tensor of shape (N, L) with one row "
            f"per parameter; for chunk {index} with N = {rows} it returned {shape}"
        )
    return x


def simulate(
    simulator_or_task: Callable | Any,
    theta: Tensor | int,
    *,
    generator: torch.Generator | None,
    workers: int = 1,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: bool = True,
    prior: Any = None,
) -> Simulations:
    """Run a simulator on many parameters in parallel, reproducibly.

    Args:
        simulator_or_task: a function ``simulator(theta, generator=g)`` mapping (n, D) to
            (n, L) and drawing all its noise from ``g``; or a
            :class:`~sbi_course.tasks.Task`; or a task's name. A function must be defined at
            module level when it runs in worker processes.
        theta: parameters of shape (N, D), or a number of simulations N, in which case theta
            is drawn from ``prior`` (default: the task's prior) with ``generator``.
        generator: the caller's generator. It is advanced by one draw (plus the prior draws),
            from which every chunk's seed derives. None uses torch's global generator.
        workers: joblib's ``n_jobs``: 1 runs in this process, k > 1 uses k workers, -1 all
            of them. The backend is joblib's active one: loky processes by default, threads
            under ``joblib.parallel_config(prefer="threads")``, a Dask cluster under
            ``joblib.parallel_config(backend="dask")``.
        chunk_size: simulations per chunk; the result depends on it, never on ``workers``.
        progress: show a progress bar that counts simulations.
        prior: the prior to draw from when ``theta`` is a number (overrides a task's).

    Returns:
        :class:`Simulations` ``(theta, x, valid)``: theta (N, D), x (N, L) with failed
        simulations (any NaN or inf) set to rows of NaN, and the boolean mask valid (N,).

    Raises:
        TypeError: for a simulator that does not take ``generator``, or that cannot be
            pickled for worker processes (with how to fix it).
        ValueError: for a bad ``theta``, ``workers`` or ``chunk_size``, or a simulator that
            returns a wrong shape.
    """
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    from sbi_course._validation import check_generator

    check_generator(generator, _OWNER)
    for name, value in (("workers", workers), ("chunk_size", chunk_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{_OWNER}: {name} must be an integer, got {type(value).__name__}")
    if workers == 0 or workers < -1:
        raise ValueError(f"{_OWNER}: workers must be a positive number or -1 (all), got {workers}")
    if chunk_size < 1:
        raise ValueError(f"{_OWNER}: chunk_size must be positive, got {chunk_size}")
    call, task_prior, theta_dim, label = _resolve(simulator_or_task)
    theta = _parameters(theta, prior if prior is not None else task_prior, theta_dim, generator)

    num = theta.shape[0]
    starts = range(0, num, chunk_size)
    seeds = chunk_seeds(generator, len(starts))
    if not _uses_threads_only(workers):
        _check_picklable(call, label)
    parent = os.getpid()
    tasks = (
        delayed(_run_chunk)(call, theta[start : start + chunk_size], seed, index, parent)
        for index, (start, seed) in enumerate(zip(starts, seeds, strict=True))
    )
    chunks: list[Tensor | None] = [None] * len(starts)
    bar = tqdm(total=num, unit="sim", desc=_OWNER, disable=not progress)
    results = None
    try:
        # One torch thread here too: serial and threaded chunks run in this process.
        with _torch_threads(1):
            results = Parallel(n_jobs=workers, return_as="generator_unordered")(tasks)
            for index, x in results:
                rows = min(chunk_size, num - index * chunk_size)
                chunks[index] = _check_chunk(x, rows, index, label)
                bar.update(rows)
    finally:
        # On an error or Ctrl-C, closing the generator now (not whenever a kept traceback
        # lets it be collected) makes joblib cancel the chunks and stop its worker processes.
        if results is not None:
            results.close()
        bar.close()
    x = torch.cat(chunks)  # type: ignore[arg-type]
    valid = torch.isfinite(x).all(dim=1)
    num_failed = int((~valid).sum())
    if num_failed:
        if x.is_floating_point():
            x[~valid] = float("nan")
        warnings.warn(
            f"{_OWNER}: {num_failed} of {num} simulations failed (rows of NaN; "
            f"`valid` marks the others)",
            stacklevel=2,
        )
    return Simulations(theta=theta, x=x, valid=valid)
