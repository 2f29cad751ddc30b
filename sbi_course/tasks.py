"""Benchmark tasks: a prior, a simulator and, where known, a reference posterior.

A :class:`Task` bundles what an inference method needs: ``task.prior``, ``task.simulate``,
``task.sample_joint`` and, for the tasks with a closed-form posterior (``gaussian_linear``,
``two_moons``, ``gaussian_mixture``), ``task.reference_posterior(x_o, num_samples)``. For the
seven sbibm tasks, :func:`load_sbibm` reads sbibm's observations and reference samples.

Example:
    >>> import torch
    >>> from sbi_course import tasks
    >>> task = tasks.get("two_moons")
    >>> theta, x = task.sample_joint(100, generator=torch.Generator().manual_seed(0))
    >>> theta.shape, x.shape
    (torch.Size([100, 2]), torch.Size([100, 2]))
    >>> task.reference_posterior(x[0], 500).shape
    torch.Size([500, 2])

References:
    Lueckmann, Boelts, Greenberg, Goncalves & Macke (2021). Benchmarking simulation-based
    inference. AISTATS.
"""

from __future__ import annotations

import bz2
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor
from torch.distributions import Distribution

from sbi_course._validation import check_count, check_generator, flatten_batch
from sbi_course.priors import sample_prior
from sbi_course.simulators._spec import SimulatorSpec

__all__ = ["Task", "SbibmObservation", "names", "get", "load_sbibm", "SBIBM_TASKS"]

#: The tasks of the sbibm benchmark, defined here exactly as sbibm defines them.
SBIBM_TASKS: tuple[str, ...] = (
    "two_moons",
    "gaussian_linear",
    "gaussian_mixture",
    "slcp",
    "bernoulli_glm",
    "sir",
    "lotka_volterra",
)
_OTHER_TASKS: tuple[str, ...] = ("hodgkin_huxley", "gravitational_wave")
NUM_OBSERVATIONS = 10


def names() -> list[str]:
    """Names of all tasks: the seven sbibm tasks, then hodgkin_huxley and gravitational_wave."""
    return list(SBIBM_TASKS + _OTHER_TASKS)


@dataclass(frozen=True)
class Task:
    """A simulation-based inference problem.

    Build one with :func:`get`. Attributes:
        name: the task's name, e.g. ``"two_moons"``.
        prior: the prior, a ``torch.distributions.Distribution`` with event shape (theta_dim,).
        theta_dim: number of parameters D.
        x_dim: number of data dimensions L.
        parameter_labels: one label per parameter, for plots.
        module: the simulator module (:mod:`sbi_course.simulators`) with model-specific helpers.
        spec: the module's :class:`~sbi_course.simulators._spec.SimulatorSpec`, which the
            other attributes are read from.
    """

    name: str
    prior: Distribution
    theta_dim: int
    x_dim: int
    parameter_labels: tuple[str, ...]
    module: ModuleType = field(repr=False)
    spec: SimulatorSpec = field(repr=False)

    @property
    def has_reference_posterior(self) -> bool:
        """Whether :meth:`reference_posterior` can sample the exact posterior for any ``x_o``."""
        return self.spec.has_exact_posterior

    @property
    def in_sbibm(self) -> bool:
        """Whether sbibm has observations and reference samples for it (see :func:`load_sbibm`)."""
        return self.name in SBIBM_TASKS

    def simulate(self, theta: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Simulate data for parameters ``theta``.

        Args:
            theta: parameters, shape (*, theta_dim).
            generator: random number generator.

        Returns:
            Data of shape (*, x_dim); failed simulations give rows of NaN.
        """
        flatten_batch(theta, self.theta_dim, name="theta", owner=f"task {self.name}")
        check_generator(generator, f"task {self.name}")
        return self.spec.simulate(theta, generator=generator)

    def sample_joint(
        self, num_simulations: int, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Draw ``theta`` from the prior and simulate ``x`` for each.

        Args:
            num_simulations: number of (theta, x) pairs.
            generator: random number generator for both the prior and the simulator.

        Returns:
            ``(theta, x)`` of shapes (num_simulations, theta_dim) and (num_simulations, x_dim).
        """
        num_simulations = check_count(num_simulations, "num_simulations", f"task {self.name}")
        check_generator(generator, f"task {self.name}")
        theta = sample_prior(self.prior, num_simulations, generator=generator)
        return theta, self.simulate(theta, generator=generator)

    def reference_posterior(
        self, x_o: Tensor, num_samples: int, generator: torch.Generator | None = None
    ) -> Tensor:
        """Draw exact posterior samples for the observation ``x_o``.

        Args:
            x_o: observed data, shape (x_dim,) or (1, x_dim).
            num_samples: number of samples.
            generator: random number generator.

        Returns:
            Posterior samples of shape (num_samples, theta_dim).

        Raises:
            NotImplementedError: for tasks without a closed-form posterior; use
                :func:`load_sbibm` (sbibm tasks) or MCMC instead.
        """
        if not self.has_reference_posterior:
            raise NotImplementedError(
                f"task {self.name} has no closed-form reference posterior (only "
                f"{', '.join(_exact_tasks())} do); for the sbibm tasks use "
                f"sbi_course.tasks.load_sbibm(directory, {self.name!r}, num_observation) to "
                f"read sbibm's reference samples"
            )
        num_samples = check_count(num_samples, "num_samples", f"task {self.name}")
        return self.spec.sample_posterior(x_o, num_samples, generator=generator)


def get(name: str) -> Task:
    """Return the task called ``name`` (see :func:`names`).

    The simulator module is imported here, so that importing this module stays cheap.

    Raises:
        ValueError: for an unknown name, listing the valid ones.
    """
    if name not in names():
        raise ValueError(f"unknown task {name!r}; valid names are: {', '.join(names())}")
    module = _module(name)
    spec: SimulatorSpec = module.spec
    return Task(
        name=name,
        prior=spec.prior(),
        theta_dim=spec.theta_dim,
        x_dim=spec.x_dim,
        parameter_labels=spec.parameter_labels,
        module=module,
        spec=spec,
    )


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"sbi_course.simulators.{name}")


def _exact_tasks() -> list[str]:
    """The tasks whose spec has an exact posterior sampler."""
    return [name for name in names() if _module(name).spec.has_exact_posterior]


class SbibmObservation(NamedTuple):
    """One sbibm observation: ``x_o`` (L,), ``true_theta`` (D,), ``reference_samples`` (10000, D).

    All float32 tensors.
    """

    x_o: Tensor
    true_theta: Tensor
    reference_samples: Tensor


def load_sbibm(directory: str | Path, task_name: str, num_observation: int) -> SbibmObservation:
    """Read one observation of an sbibm task and its reference posterior samples.

    Expects sbibm's layout, ``<directory>/<task_name>/num_observation_<n>/`` with
    ``observation.csv``, ``true_parameters.csv`` and ``reference_posterior_samples.csv.bz2``
    (one header line each, whatever the column names).

    Args:
        directory: the folder that holds one sub-folder per sbibm task.
        task_name: one of :data:`SBIBM_TASKS`.
        num_observation: observation number, 1 to 10.

    Returns:
        An :class:`SbibmObservation` of float32 tensors.

    Raises:
        ValueError: for a task sbibm does not have, or ``num_observation`` outside 1..10.
        FileNotFoundError: for a missing folder or file.
    """
    if task_name not in SBIBM_TASKS:
        raise ValueError(
            f"sbibm has no task {task_name!r}; its tasks are: {', '.join(SBIBM_TASKS)}"
        )
    if (
        isinstance(num_observation, bool)
        or not isinstance(num_observation, (int, np.integer))
        or not 1 <= num_observation <= NUM_OBSERVATIONS
    ):
        raise ValueError(
            f"num_observation must be an integer from 1 to {NUM_OBSERVATIONS} for sbibm task "
            f"{task_name}, got {num_observation!r}"
        )
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"sbibm folder {root} does not exist")
    folder = root / task_name / f"num_observation_{int(num_observation)}"
    if not folder.is_dir():
        raise FileNotFoundError(
            f"no folder {folder}: expected sbibm's layout <directory>/<task>/num_observation_<n>/"
        )
    spec: SimulatorSpec = _module(task_name).spec
    theta_dim, x_dim = spec.theta_dim, spec.x_dim
    x_o = _read_csv(folder / "observation.csv", x_dim)
    true_theta = _read_csv(folder / "true_parameters.csv", theta_dim)
    samples = _read_csv(folder / "reference_posterior_samples.csv.bz2", theta_dim)
    return SbibmObservation(x_o=x_o[0], true_theta=true_theta[0], reference_samples=samples)


def _read_csv(path: Path, num_columns: int) -> Tensor:
    """Read a comma-separated file with one header line into a float32 (rows, columns) tensor."""
    if not path.is_file():
        raise FileNotFoundError(f"sbibm file {path} is missing")
    opener = bz2.open if path.suffix == ".bz2" else open
    with opener(path, "rt") as handle:
        values = np.loadtxt(handle, delimiter=",", skiprows=1, dtype=np.float32, ndmin=2)
    if values.shape[1] != num_columns or values.shape[0] == 0:
        raise ValueError(
            f"sbibm file {path} should hold rows of {num_columns} values, got shape {values.shape}"
        )
    return torch.from_numpy(values)
