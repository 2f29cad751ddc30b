r"""Gaussian mixture: a broad and a narrow Gaussian around the same unknown mean.

.. math::

    \theta \sim U([-10, 10]^2), \qquad
    x \mid \theta \sim 0.5\, N(\theta, I) + 0.5\, N(\theta, 0.01\, I),

where the component is drawn anew for every simulation. Shapes: ``theta`` (N, 2) ->
``x`` (N, 2); no units. The posterior for one observation is the same mixture centred at
:math:`x_o`, cut to the prior box (see :func:`sample_posterior`): a sharp peak on a broad base,
which ABC and density estimators often get wrong in one of the two.

This module follows sbibm's ``gaussian_mixture`` task to the letter (the version after sbibm's
fix that draws the component per simulation, not once per batch).

References:
    Sisson, Fan & Tanaka (2007). Sequential Monte Carlo without likelihoods. PNAS.

    Lueckmann et al. (2021). Benchmarking simulation-based inference. AISTATS.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from sbi_course._validation import (
    check_count,
    check_generator,
    check_memory,
    flatten_batch,
    paired_batches,
    single_observation,
    unflatten_batch,
)
from sbi_course.priors import BoxUniform
from sbi_course.simulators._spec import SimulatorSpec

__all__ = [
    "theta_dim",
    "x_dim",
    "parameter_labels",
    "prior",
    "simulate",
    "log_likelihood",
    "posterior_log_prob",
    "sample_posterior",
    "spec",
]

theta_dim: int = 2
x_dim: int = 2
parameter_labels: tuple[str, ...] = ("theta_1", "theta_2")

PRIOR_BOUND = 10.0
WEIGHTS = (0.5, 0.5)
SCALES = (1.0, 0.1)  # standard deviations: variances 1 and 0.01
_NAME = "gaussian_mixture"


def prior() -> BoxUniform:
    """Uniform prior on :math:`[-10, 10]^2`."""
    return BoxUniform(low=-PRIOR_BOUND * torch.ones(2), high=PRIOR_BOUND * torch.ones(2))


def simulate(theta: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Simulate one draw from the two-component mixture per parameter row.

    Args:
        theta: parameters (the common mean), shape (*, 2): (N, 2), (2,) or any batch shape.
        generator: random number generator for the component choice and the noise.

    Returns:
        Data ``x`` of shape (*, 2), the batch shape of ``theta``.
    """
    check_generator(generator, _NAME)
    theta, batch_shape = flatten_batch(theta, theta_dim, name="theta", owner=_NAME)
    x = theta + _mixture_noise(theta.shape[0], generator, theta.dtype)
    return unflatten_batch(x, batch_shape)


def _mixture_noise(num: int, generator: torch.Generator | None, dtype: torch.dtype) -> Tensor:
    """Noise of shape (num, 2): each row picks its own component, then a Gaussian draw."""
    broad = torch.rand(num, 1, generator=generator, dtype=dtype) < WEIGHTS[0]
    scale = torch.where(broad, SCALES[0], SCALES[1]).to(dtype)
    return scale * torch.randn(num, 2, generator=generator, dtype=dtype)


def _log_mixture_density(delta: Tensor) -> Tensor:
    r""":math:`\log \sum_k w_k N(\delta; 0, s_k^2 I)` for ``delta`` of shape (N, 2), shape (N,)."""
    squared = (delta**2).sum(dim=-1)
    terms = [
        math.log(w)
        - 0.5 * squared / s**2
        - x_dim * math.log(s)
        - 0.5 * x_dim * math.log(2 * math.pi)
        for w, s in zip(WEIGHTS, SCALES, strict=True)
    ]
    return torch.logsumexp(torch.stack(terms, dim=-1), dim=-1)


def log_likelihood(theta: Tensor, x: Tensor) -> Tensor:
    r"""Exact :math:`\log p(x \mid \theta)` of the mixture, shape (N,).

    Args:
        theta: parameters, shape (*, 2).
        x: data, shape (*, 2); the batch shapes must broadcast (equal, or one a single row).

    Returns:
        Log-likelihoods of the broadcast batch shape: (N,) for (N, 2) inputs, a scalar
        tensor when both inputs are (2,).

    Raises:
        ValueError: when the rows of ``theta`` and ``x`` do not pair up.
    """
    theta, x, batch_shape = paired_batches(
        theta, x, (theta_dim, x_dim), owner=f"{_NAME}.log_likelihood"
    )
    log_lik = _log_mixture_density(x - theta)
    return unflatten_batch(log_lik, batch_shape)


def _box_masses(x_o: Tensor) -> Tensor:
    r"""Mass of each component :math:`N(x_o, s_k^2 I)` inside the prior box, shape (2,).

    The box and the isotropic Gaussians both factorise over dimensions, so each mass is a
    product of one-dimensional normal probabilities.
    """
    x64 = x_o.to(torch.float64)
    masses = []
    for s in SCALES:
        upper = torch.special.ndtr((PRIOR_BOUND - x64) / s)
        lower = torch.special.ndtr((-PRIOR_BOUND - x64) / s)
        masses.append((upper - lower).prod())
    return torch.stack(masses)


def posterior_log_prob(theta: Tensor, x_o: Tensor) -> Tensor:
    r"""Exact, normalised log posterior density :math:`\log p(\theta \mid x_o)`, shape (N,).

    With a uniform prior the posterior is the likelihood, read as a function of
    :math:`\theta`, cut to the box: :math:`\sum_k w_k N(\theta; x_o, s_k^2 I)` on
    :math:`[-10, 10]^2`, divided by its mass there, :math:`\sum_k w_k m_k(x_o)`.

    Args:
        theta: parameters, shape (*, 2).
        x_o: observed data, shape (2,) or (1, 2).

    Returns:
        Log-densities of shape (*,), the batch shape of ``theta`` ((1,) for a (2,) ``theta``,
        as before); ``-inf`` outside the prior box.
    """
    owner = f"{_NAME}.posterior_log_prob"
    theta, batch_shape = flatten_batch(theta, theta_dim, name="theta", owner=owner)
    batch_shape = batch_shape if len(batch_shape) else torch.Size((1,))
    x_o = single_observation(x_o, x_dim, owner=owner, dtype=theta.dtype)
    log_evidence = torch.log(torch.tensor(WEIGHTS, dtype=torch.float64) @ _box_masses(x_o))
    log_prob = _log_mixture_density(theta - x_o) - log_evidence.to(theta.dtype)
    inside = (theta.abs() <= PRIOR_BOUND).all(dim=-1)
    out = torch.where(inside, log_prob, torch.full_like(log_prob, -math.inf))
    return unflatten_batch(out, batch_shape)


def sample_posterior(
    x_o: Tensor,
    num_samples: int,
    generator: torch.Generator | None = None,
    min_acceptance: float = 1e-6,
) -> Tensor:
    r"""Draw exact posterior samples by rejection against the prior box.

    Propose from the untruncated mixture :math:`\sum_k w_k N(x_o, s_k^2 I)` (component first,
    then the Gaussian draw) and keep the proposals inside :math:`[-10, 10]^2`. The kept samples
    follow the truncated mixture exactly; component :math:`k` ends up with weight proportional
    to :math:`w_k m_k(x_o)`, its mass inside the box. This is also how sbibm made its
    reference samples.

    Args:
        x_o: observed data, shape (2,) or (1, 2).
        num_samples: number of posterior samples.
        generator: random number generator.
        min_acceptance: refuse (``ValueError``) an ``x_o`` so far outside the box that fewer
            than this fraction of proposals would land inside it.

    Returns:
        Posterior samples of shape (num_samples, 2).
    """
    owner = f"{_NAME}.sample_posterior"
    check_generator(generator, owner)
    x_o = single_observation(x_o, x_dim, owner=owner)
    num_samples = check_count(num_samples, "num_samples", owner)
    check_memory(
        num_samples * theta_dim * x_o.element_size(),
        what=f"{num_samples} posterior samples of {theta_dim} floats",
        owner=owner,
        argument="num_samples",
    )
    # The acceptance rate is known exactly, so size the proposal batches from it.
    acceptance = float(torch.tensor(WEIGHTS, dtype=torch.float64) @ _box_masses(x_o))
    if acceptance < min_acceptance:
        raise ValueError(
            f"x_o = {x_o.tolist()} lies so far outside the prior box of {_NAME} that only "
            f"{acceptance:.2e} of the posterior proposals fall inside it"
        )
    accepted: list[Tensor] = []
    num_accepted = 0
    while num_accepted < num_samples:
        remaining = num_samples - num_accepted
        batch = min(int(1.2 * remaining / acceptance) + 100, 1_000_000)
        proposal = x_o + _mixture_noise(batch, generator, x_o.dtype)
        keep = (proposal.abs() <= PRIOR_BOUND).all(dim=-1)
        accepted.append(proposal[keep])
        num_accepted += int(keep.sum())
    return torch.cat(accepted)[:num_samples]


spec = SimulatorSpec(
    name=_NAME,
    theta_dim=theta_dim,
    x_dim=x_dim,
    parameter_labels=parameter_labels,
    prior=prior,
    simulate=simulate,
    log_likelihood=log_likelihood,
    sample_posterior=sample_posterior,
)
