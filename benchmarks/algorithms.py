"""The inference algorithms the benchmark compares, behind one interface.

Every algorithm is an :class:`Algorithm` with a ``run`` function

    run(task, setup, observations) -> iterator of ObservationResult

that yields, for each observation ``x_o`` in ``observations``, ``num_samples`` posterior samples
and what they cost. Amortised methods (NPE, NLE, NRE) train once on the shared training
simulations ``setup.theta, setup.x`` and then sample for each observation; ABC methods run
once per observation with their own simulations.

The course's algorithms (``sbi_course``):

* ``rej_abc``: :func:`sbi_course.abc.rejection_abc` keeping the best 100 simulations
  (Euclidean distance on the data), smoothed by a KDE (:mod:`benchmarks.kde`), as in the sbibm
  paper;
* ``smc_abc``: :func:`sbi_course.abc.smc_abc`, populations of 100 (1,000 above 10^4
  simulations, as the paper), tolerance quantile 0.2, final population smoothed by a KDE;
* ``npe``, ``nle``, ``nre``: :mod:`sbi_course.inference` with their default networks and
  training settings; NLE and NRE sample with the package's MCMC defaults.

Flow matching and score-based estimators (group ``vector_field``): ``fmpe`` and ``npse``
(:mod:`sbi_course.inference.fmpe`, :mod:`sbi_course.inference.npse`, defaults, sampled by the
probability-flow ODE) beside ``sbi_fmpe`` and ``sbi_npse`` (``sbi``'s ``FMPE`` and ``NPSE``
with its defaults).

The ``sbi`` library's (version 0.27), with its defaults: ``sbi_npe`` (NPE with a MAF),
``sbi_npe_nsf`` (NPE with a neural spline flow), ``sbi_nle`` (MAF likelihood, slice-sampling
MCMC) and ``sbi_nre`` (NRE-B classifier, slice-sampling MCMC). Its TensorBoard logging is
switched off (no ``sbi-logs/`` folder), and its global-RNG draws are seeded per run.
"""

from __future__ import annotations

import contextlib
import io
import time
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from benchmarks.kde import fit_kde
from sbi_course.tasks import Task

__all__ = [
    "ALGORITHMS",
    "GROUPS",
    "Algorithm",
    "ObservationResult",
    "Setup",
    "Timer",
    "resolve_algorithms",
]


class Timer:
    """Measure CPU seconds (of this process) and wall-clock seconds of a ``with`` block.

    CPU time is the fair measure on a shared machine: other jobs slow the wall clock, not it.
    """

    def __enter__(self) -> Timer:
        self._cpu, self._wall = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.cpu = time.process_time() - self._cpu
        self.wall = time.perf_counter() - self._wall


@dataclass
class Setup:
    """What one (task, simulation budget) cell gives every algorithm.

    Attributes:
        num_simulations: the simulation budget.
        theta, x: the shared training simulations for the amortised methods, shapes (N, D)
            and (N, L).
        num_samples: posterior samples to draw per observation.
        seed: base seed of this cell and algorithm.
        max_num_epochs: cap on training epochs (``None``: the method's default), for tests and
            quick runs.
    """

    num_simulations: int
    theta: Tensor
    x: Tensor
    num_samples: int
    seed: int
    max_num_epochs: int | None = None


@dataclass
class ObservationResult:
    """Samples for one observation and what they cost.

    ``train_*`` is the one-off training of an amortised method (the same for each of its
    observations, 0 for ABC); ``sample_*`` is the per-observation work (for ABC: simulating,
    accepting and smoothing).
    """

    samples: Tensor
    train_cpu: float = 0.0
    train_wall: float = 0.0
    sample_cpu: float = 0.0
    sample_wall: float = 0.0
    info: dict = field(default_factory=dict)


Runner = Callable[[Task, Setup, list[Tensor]], Iterator[ObservationResult]]


@dataclass(frozen=True)
class Algorithm:
    """One benchmarked method.

    Attributes:
        name: command-line name, e.g. ``"npe"``.
        label: name in the tables.
        library: ``"sbi_course"`` or ``"sbi"``.
        paper: the sbibm paper's algorithm whose numbers sit beside it (``None``: none).
        run: the runner (see the module docstring).
        description: its settings, for the report.
    """

    name: str
    label: str
    library: str
    paper: str | None
    run: Runner
    description: str = ""


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _epochs(setup: Setup) -> dict:
    return {} if setup.max_num_epochs is None else {"max_num_epochs": setup.max_num_epochs}


# --- the course's algorithms -------------------------------------------------------------

REJECTION_KEPT = 100
SMC_QUANTILE = 0.2


def run_rejection_abc(task: Task, setup: Setup, observations: list[Tensor]):
    """Rejection ABC, best 100 (or 10% of tiny budgets), KDE-smoothed (the paper's REJ-ABC)."""
    from sbi_course.abc import rejection_abc

    kept = min(REJECTION_KEPT, max(2, setup.num_simulations // 10))
    for i, x_o in enumerate(observations):
        g = _generator(setup.seed + i)
        with Timer() as timer:
            result = rejection_abc(
                task.prior,
                task.simulate,
                x_o,
                setup.num_simulations,
                num_accepted=kept,
                generator=g,
            )
            kde = fit_kde(result.samples)
            samples = kde.sample(setup.num_samples, generator=g, prior=task.prior)
        yield ObservationResult(
            samples,
            sample_cpu=timer.cpu,
            sample_wall=timer.wall,
            info={"epsilon": result.epsilon, "kde_bandwidth": kde.bandwidth},
        )


def run_smc_abc(task: Task, setup: Setup, observations: list[Tensor]):
    """SMC-ABC (Beaumont et al. 2009) with the paper's population sizes, KDE-smoothed."""
    from sbi_course.abc import smc_abc

    population = 100 if setup.num_simulations <= 10_000 else 1000
    # Round 0 simulates population / quantile; keep it to at most half of a tiny budget.
    population = max(2, min(population, int(setup.num_simulations * SMC_QUANTILE / 2)))
    for i, x_o in enumerate(observations):
        g = _generator(setup.seed + i)
        with Timer() as timer:
            result = smc_abc(
                task.prior,
                task.simulate,
                x_o,
                setup.num_simulations,
                population_size=population,
                quantile=SMC_QUANTILE,
                generator=g,
            )
            kde = fit_kde(result.samples, result.weights)
            samples = kde.sample(setup.num_samples, generator=g, prior=task.prior)
        yield ObservationResult(
            samples,
            sample_cpu=timer.cpu,
            sample_wall=timer.wall,
            info={"rounds": result.num_rounds, "epsilon": result.epsilon, "ess": result.ess},
        )


def _run_course_neural(method: str):
    def run(task: Task, setup: Setup, observations: list[Tensor]):
        from sbi_course.inference import NLE, NPE, NRE

        g = _generator(setup.seed)
        estimator = {"npe": NPE, "nle": NLE, "nre": NRE}[method](task.prior)
        with Timer() as train_timer, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # NaN rows dropped, as the estimators report
            history = estimator.train(
                setup.theta, setup.x, generator=g, show_progress=False, **_epochs(setup)
            )
        for i, x_o in enumerate(observations):
            g = _generator(setup.seed + 1 + i)
            with Timer() as timer:
                samples = estimator.posterior(x_o).sample((setup.num_samples,), generator=g)
            yield ObservationResult(
                samples.float(),
                train_cpu=train_timer.cpu,
                train_wall=train_timer.wall,
                sample_cpu=timer.cpu,
                sample_wall=timer.wall,
                info={"epochs": history.epochs},
            )

    return run


# --- the sbi library ---------------------------------------------------------------------


class _NoTracker:
    """A do-nothing experiment tracker: keeps ``sbi`` from writing TensorBoard logs."""

    log_dir = None

    def log_metric(self, *args, **kwargs) -> None:
        pass

    def log_metrics(self, *args, **kwargs) -> None:
        pass

    def log_params(self, *args, **kwargs) -> None:
        pass

    def add_figure(self, *args, **kwargs) -> None:
        pass

    def flush(self) -> None:
        pass


@contextlib.contextmanager
def _quiet():
    """Silence ``sbi``'s convergence messages and warnings."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _seed_globals(seed: int) -> None:
    """Seed the global generators of torch and numpy, the only handles ``sbi`` offers."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def _run_sbi(method: str, density_estimator: str | None = None):
    def run(task: Task, setup: Setup, observations: list[Tensor]):
        import sbi.inference as sbi_inference

        cls = {"npe": sbi_inference.NPE, "nle": sbi_inference.NLE, "nre": sbi_inference.NRE}[method]
        kwargs = {} if density_estimator is None else {"density_estimator": density_estimator}
        # sbi draws from torch's global RNG, and its vectorised slice sampler (NLE, NRE) from
        # numpy's: seed both, so that a run can be repeated.
        _seed_globals(setup.seed)
        with Timer() as train_timer, _quiet():
            inference = cls(
                prior=task.prior, tracker=_NoTracker(), show_progress_bars=False, **kwargs
            )
            theta = setup.theta.float()
            x = setup.x.float()
            valid = torch.isfinite(theta).all(1) & torch.isfinite(x).all(1)
            inference.append_simulations(theta[valid], x[valid]).train(**_epochs(setup))
            posterior = inference.build_posterior()
        epochs = inference.summary["epochs_trained"][-1]
        for i, x_o in enumerate(observations):
            _seed_globals(setup.seed + 1 + i)
            with Timer() as timer, _quiet():
                samples = posterior.sample(
                    (setup.num_samples,), x=x_o.float()[None], show_progress_bars=False
                )
            yield ObservationResult(
                samples.float(),
                train_cpu=train_timer.cpu,
                train_wall=train_timer.wall,
                sample_cpu=timer.cpu,
                sample_wall=timer.wall,
                info={"epochs": epochs},
            )

    return run


ALGORITHMS: dict[str, Algorithm] = {
    a.name: a
    for a in [
        Algorithm(
            "rej_abc",
            "REJ-ABC",
            "sbi_course",
            "REJ-ABC",
            run_rejection_abc,
            "rejection_abc keeping the 100 closest simulations (Euclidean distance on x), "
            "smoothed by a Gaussian KDE (whitened, leave-one-out bandwidth) truncated to the "
            "prior's support",
        ),
        Algorithm(
            "smc_abc",
            "SMC-ABC",
            "sbi_course",
            "SMC-ABC",
            run_smc_abc,
            f"smc_abc with populations of 100 (1,000 above 10^4 simulations), tolerance "
            f"quantile {SMC_QUANTILE} (round 0: 5 x population), final weighted population "
            "smoothed by the same KDE",
        ),
        Algorithm(
            "npe",
            "NPE (NSF)",
            "sbi_course",
            "NPE",
            _run_course_neural("npe"),
            "sbi_course.inference.NPE, its default neural spline flow and training settings",
        ),
        Algorithm(
            "nle",
            "NLE (MAF)",
            "sbi_course",
            "NLE",
            _run_course_neural("nle"),
            "sbi_course.inference.NLE (MAF) with its default MCMC (slice sampling, 100 chains)",
        ),
        Algorithm(
            "nre",
            "NRE (NRE-C)",
            "sbi_course",
            "NRE",
            _run_course_neural("nre"),
            "sbi_course.inference.NRE (NRE-C, residual classifier) with its default MCMC",
        ),
        Algorithm(
            "sbi_npe",
            "sbi NPE (MAF, default)",
            "sbi",
            "NPE",
            _run_sbi("npe"),
            "sbi.inference.NPE with all defaults (MAF, batches of 200, learning rate 5e-4)",
        ),
        Algorithm(
            "sbi_npe_nsf",
            "sbi NPE (NSF)",
            "sbi",
            "NPE",
            _run_sbi("npe", "nsf"),
            "sbi.inference.NPE(density_estimator='nsf'), other settings default",
        ),
        Algorithm(
            "sbi_nle",
            "sbi NLE (MAF)",
            "sbi",
            "NLE",
            _run_sbi("nle"),
            "sbi.inference.NLE with defaults; MCMC slice_np_vectorized, 20 chains, 200 warm-up",
        ),
        Algorithm(
            "sbi_nre",
            "sbi NRE (NRE-B)",
            "sbi",
            "NRE",
            _run_sbi("nre"),
            "sbi.inference.NRE (NRE-B) with defaults and the same default MCMC",
        ),
    ]
}

#: Names that stand for several algorithms on the command line.
GROUPS: dict[str, list[str]] = {
    "all": list(ALGORITHMS),
    "ours": [n for n, a in ALGORITHMS.items() if a.library == "sbi_course"],
    "sbi": [n for n, a in ALGORITHMS.items() if a.library == "sbi"],
    "abc": ["rej_abc", "smc_abc"],
    "neural": ["npe", "nle", "nre"],
}


# --- flow matching and score-based posterior estimation (FMPE, NPSE) ----------------------


def _run_course_vector_field(method: str):
    """The course's FMPE or NPSE with default settings (ODE sampling, Dormand-Prince)."""

    def run(task: Task, setup: Setup, observations: list[Tensor]):
        from sbi_course.inference import FMPE, NPSE

        g = _generator(setup.seed)
        estimator = {"fmpe": FMPE, "npse": NPSE}[method](task.prior)
        with Timer() as train_timer, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # NaN rows dropped, as the estimators report
            history = estimator.train(
                setup.theta, setup.x, generator=g, show_progress=False, **_epochs(setup)
            )
        for i, x_o in enumerate(observations):
            g = _generator(setup.seed + 1 + i)
            with Timer() as timer:
                posterior = estimator.posterior(x_o)
                samples = posterior.sample((setup.num_samples,), generator=g)
            yield ObservationResult(
                samples.float(),
                train_cpu=train_timer.cpu,
                train_wall=train_timer.wall,
                sample_cpu=timer.cpu,
                sample_wall=timer.wall,
                info={"epochs": history.epochs, "acceptance": posterior.acceptance_rate},
            )

    return run


def _run_sbi_vector_field(method: str):
    """``sbi``'s FMPE or NPSE with its defaults (NPSE: VE SDE), seeded like the other rows."""

    def run(task: Task, setup: Setup, observations: list[Tensor]):
        import sbi.inference as sbi_inference

        cls = {"fmpe": sbi_inference.FMPE, "npse": sbi_inference.NPSE}[method]
        _seed_globals(setup.seed)
        with Timer() as train_timer, _quiet():
            inference = cls(prior=task.prior, tracker=_NoTracker(), show_progress_bars=False)
            theta, x = setup.theta.float(), setup.x.float()
            valid = torch.isfinite(theta).all(1) & torch.isfinite(x).all(1)
            inference.append_simulations(theta[valid], x[valid]).train(**_epochs(setup))
            posterior = inference.build_posterior()
        epochs = inference.summary["epochs_trained"][-1]
        for i, x_o in enumerate(observations):
            _seed_globals(setup.seed + 1 + i)
            with Timer() as timer, _quiet():
                samples = posterior.sample(
                    (setup.num_samples,), x=x_o.float()[None], show_progress_bars=False
                )
            yield ObservationResult(
                samples.float(),
                train_cpu=train_timer.cpu,
                train_wall=train_timer.wall,
                sample_cpu=timer.cpu,
                sample_wall=timer.wall,
                info={"epochs": epochs},
            )

    return run


# FMPE and NPSE join "all" and a group of their own; "ours" and "sbi" keep their earlier
# members, so that existing runs and their tests are unchanged.
VECTOR_FIELD = ["fmpe", "npse", "sbi_fmpe", "sbi_npse"]
ALGORITHMS.update(
    {
        a.name: a
        for a in [
            Algorithm(
                "fmpe",
                "FMPE",
                "sbi_course",
                "NPE",
                _run_course_vector_field("fmpe"),
                "sbi_course.inference.FMPE (residual MLP, 3 blocks of 128, time embedding, "
                "straight paths), default training, sampled by Dormand-Prince; "
                "beside the paper's NPE",
            ),
            Algorithm(
                "npse",
                "NPSE (VP)",
                "sbi_course",
                "NPE",
                _run_course_vector_field("npse"),
                "sbi_course.inference.NPSE (VP SDE, same network), probability-flow ODE "
                "sampling by Dormand-Prince; beside the paper's NPE",
            ),
            Algorithm(
                "sbi_fmpe",
                "sbi FMPE",
                "sbi",
                "NPE",
                _run_sbi_vector_field("fmpe"),
                "sbi.inference.FMPE with all defaults",
            ),
            Algorithm(
                "sbi_npse",
                "sbi NPSE (VE)",
                "sbi",
                "NPE",
                _run_sbi_vector_field("npse"),
                "sbi.inference.NPSE with all defaults (VE SDE)",
            ),
        ]
    }
)

GROUPS["all"] = list(ALGORITHMS)
GROUPS["vector_field"] = VECTOR_FIELD


def resolve_algorithms(names: list[str]) -> list[str]:
    """Expand group names and check every name, keeping the order of :data:`ALGORITHMS`."""
    chosen: set[str] = set()
    for name in names:
        if name in GROUPS:
            chosen.update(GROUPS[name])
        elif name in ALGORITHMS:
            chosen.add(name)
        else:
            valid = ", ".join([*ALGORITHMS, *GROUPS])
            raise ValueError(f"unknown algorithm {name!r}; valid names are: {valid}")
    return [name for name in ALGORITHMS if name in chosen]


def seed_for(*parts) -> int:
    """A stable seed from strings and numbers (independent of run order, so runs resume)."""
    return zlib.crc32("/".join(map(str, parts)).encode()) % (2**31 - 1)
