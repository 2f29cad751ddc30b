"""The one declaration each simulator module makes: :class:`SimulatorSpec`.

A simulator module (``two_moons``, ``sir``, ...) ends with ``spec = SimulatorSpec(...)``, which
names its dimensions, parameter labels, prior, simulator, exact log-likelihood (or ``None``) and
exact posterior sampler (or ``None``). :mod:`sbi_course.tasks` reads nothing else, so the
dimensions live in one place; the module-level names ``theta_dim``, ``x_dim``, ``prior``,
``simulate`` stay for the lectures that import them.

Example:
    >>> from sbi_course.simulators import two_moons
    >>> two_moons.spec.theta_dim, two_moons.spec.x_dim, two_moons.spec.has_exact_posterior
    (2, 2, True)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor
from torch.distributions import Distribution

__all__ = ["SimulatorSpec"]


@dataclass(frozen=True)
class SimulatorSpec:
    """What a task needs to know about a simulator.

    Attributes:
        name: the simulator's (and task's) name.
        theta_dim: number of parameters D.
        x_dim: number of data dimensions L.
        parameter_labels: D labels, for plots.
        prior: a function returning the prior (event shape ``(D,)``).
        simulate: ``simulate(theta (*, D), generator=None) -> x (*, L)``.
        log_likelihood: ``log_likelihood(theta (*, D), x (*, L)) -> (*,)``, or ``None`` when
            the likelihood is intractable.
        sample_posterior: ``sample_posterior(x_o (L,), num_samples, generator=None) ->
            (num_samples, D)`` exact posterior samples, or ``None``.
    """

    name: str
    theta_dim: int
    x_dim: int
    parameter_labels: tuple[str, ...]
    prior: Callable[[], Distribution]
    simulate: Callable[..., Tensor]
    log_likelihood: Callable[[Tensor, Tensor], Tensor] | None = None
    sample_posterior: Callable[..., Tensor] | None = None

    def __post_init__(self) -> None:
        if len(self.parameter_labels) != self.theta_dim:
            raise ValueError(
                f"simulator {self.name} declares theta_dim={self.theta_dim} but "
                f"{len(self.parameter_labels)} parameter labels"
            )

    @property
    def has_exact_posterior(self) -> bool:
        """Whether :attr:`sample_posterior` samples the exact posterior for any ``x_o``."""
        return self.sample_posterior is not None
