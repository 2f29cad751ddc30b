r"""Two moons: a 2-D toy simulator whose posterior is a pair of crescents.

A point :math:`p` is drawn on a noisy half circle of radius 0.1 around :math:`(0.25, 0)`,

.. math::

    a \sim U(-\pi/2, \pi/2), \quad r \sim N(0.1, 0.01^2), \quad
    p = (r \cos a + 0.25,\; r \sin a),

and shifted by the parameters rotated by :math:`-\pi/4`:

.. math::

    z = R(-\pi/4)\,\theta, \qquad x = p + (-|z_1|,\; z_2).

The absolute value makes :math:`\theta` and its mirror image (flip the sign of :math:`z_1`)
equally likely, so the posterior has two crescent-shaped modes. Prior: uniform on
:math:`[-1, 1]^2`. Shapes: ``theta`` (N, 2) -> ``x`` (N, 2); no units.

This module follows sbibm's ``two_moons`` task to the letter, so sbibm's reference posteriors
check it. Because the simulator is an invertible map of its noise (up to the mirror), the
posterior can be sampled exactly: see :func:`sample_posterior`.

References:
    Greenberg, Nonnenmacher & Macke (2019). Automatic posterior transformation for
    likelihood-free inference. ICML.

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
    "sample_posterior",
    "spec",
]

theta_dim: int = 2
x_dim: int = 2
parameter_labels: tuple[str, ...] = ("theta_1", "theta_2")

PRIOR_BOUND = 1.0
RADIUS_MEAN = 0.1
RADIUS_STD = 0.01
OFFSET = 0.25
_NAME = "two_moons"


def prior() -> BoxUniform:
    """Uniform prior on :math:`[-1, 1]^2`."""
    return BoxUniform(low=-PRIOR_BOUND * torch.ones(2), high=PRIOR_BOUND * torch.ones(2))


def _rotate(theta: Tensor) -> tuple[Tensor, Tensor]:
    """Return :math:`z = R(-\\pi/4)\\theta` as two tensors of shape (N,)."""
    c, s = math.cos(-math.pi / 4), math.sin(-math.pi / 4)
    z0 = c * theta[..., 0] - s * theta[..., 1]
    z1 = s * theta[..., 0] + c * theta[..., 1]
    return z0, z1


def _sample_moon(num: int, generator: torch.Generator | None, dtype: torch.dtype) -> Tensor:
    """Draw the noise point ``p`` on the half circle, shape (num, 2)."""
    a = (torch.rand(num, generator=generator, dtype=dtype) - 0.5) * math.pi
    r = RADIUS_MEAN + RADIUS_STD * torch.randn(num, generator=generator, dtype=dtype)
    return torch.stack((r * torch.cos(a) + OFFSET, r * torch.sin(a)), dim=-1)


def simulate(theta: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Simulate two-moons data.

    Args:
        theta: parameters, shape (*, 2): (N, 2), (2,) or any leading batch shape.
        generator: random number generator for the noise.

    Returns:
        Data ``x`` of shape (*, 2), the batch shape of ``theta``.
    """
    check_generator(generator, _NAME)
    theta, batch_shape = flatten_batch(theta, theta_dim, name="theta", owner=_NAME)
    p = _sample_moon(theta.shape[0], generator, theta.dtype)
    z0, z1 = _rotate(theta)
    x = p + torch.stack((-z0.abs(), z1), dim=-1)
    return unflatten_batch(x, batch_shape)


def log_likelihood(theta: Tensor, x: Tensor) -> Tensor:
    r"""Exact log-likelihood :math:`\log p(x \mid \theta)`, shape (N,).

    Given :math:`\theta`, the noise point is :math:`p = x - (-|z_1|, z_2)`. Writing
    :math:`(u, v) = (p_1 - 0.25, p_2)` and :math:`\rho = \sqrt{u^2 + v^2}`, the change of
    variables from :math:`(r, a)` to :math:`(u, v)` has Jacobian :math:`\rho`, so

    .. math::

        p(x \mid \theta) = \frac{N(\operatorname{sign}(u)\,\rho;\; 0.1, 0.01^2)}{\pi \rho}.

    (A negative radius, probability about :math:`10^{-23}`, lands at :math:`u < 0`.)
    sbibm's own likelihood leaves out the factor :math:`1 / (\pi\rho)`; that does not matter
    for its reference posteriors, which come from :func:`sample_posterior`'s exact method.

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
    z0, z1 = _rotate(theta)
    u = x[..., 0] + z0.abs() - OFFSET
    v = x[..., 1] - z1
    rho = torch.sqrt(u**2 + v**2)
    signed_radius = torch.where(u >= 0, rho, -rho)
    log_radius_density = (
        -0.5 * ((signed_radius - RADIUS_MEAN) / RADIUS_STD) ** 2
        - math.log(RADIUS_STD)
        - 0.5 * math.log(2 * math.pi)
    )
    log_lik = log_radius_density - math.log(math.pi) - torch.log(rho)
    return unflatten_batch(log_lik, batch_shape)


def sample_posterior(
    x_o: Tensor,
    num_samples: int,
    generator: torch.Generator | None = None,
    max_proposals: int = 10_000_000,
) -> Tensor:
    r"""Draw exact samples from the posterior :math:`p(\theta \mid x_o)` by inverting the simulator.

    For a noise point :math:`p` drawn as in the simulator, the equation
    :math:`x_o = p + (-|z_1|, z_2)` has two solutions, :math:`z = (\pm(p_1 - x_{o,1}),\;
    x_{o,2} - p_2)`, whenever :math:`p_1 \ge x_{o,1}`. The map from :math:`p` to either solution
    is a translation and a reflection (Jacobian 1), and :math:`\theta = R(\pi/4)z` is a rotation,
    so picking one of the two solutions with probability 1/2 gives a draw whose density is
    proportional to the likelihood. The uniform prior then only cuts the box: proposals outside
    :math:`[-1, 1]^2` are rejected (so where one mirror image leaves the box, the other keeps
    all the mass there).

    Args:
        x_o: observed data, shape (2,) or (1, 2).
        num_samples: number of posterior samples.
        generator: random number generator.
        max_proposals: give up (``ValueError``) after this many proposals, for an ``x_o`` that
            the simulator can hardly produce.

    Returns:
        Posterior samples of shape (num_samples, 2).
    """
    owner = f"{_NAME}.sample_posterior"
    check_generator(generator, owner)
    x_o = single_observation(x_o, x_dim, owner=owner)
    num_samples = check_count(num_samples, "num_samples", owner)
    max_proposals = check_count(max_proposals, "max_proposals", owner)
    itemsize = x_o.element_size()
    check_memory(
        num_samples * theta_dim * itemsize,
        what=f"{num_samples} posterior samples",
        owner=owner,
        argument="num_samples",
    )
    accepted: list[Tensor] = []
    num_accepted, num_proposed = 0, 0
    c, s = math.cos(math.pi / 4), math.sin(math.pi / 4)
    while num_accepted < num_samples:
        if num_proposed >= max_proposals:
            raise ValueError(
                f"x_o = {x_o.tolist()} is (nearly) impossible under {_NAME}: only "
                f"{num_accepted} of {num_proposed} proposals were inside the prior"
            )
        # Grow the batches geometrically, so that a rare x_o fails fast instead of looping.
        batch = min(max(2 * (num_samples - num_accepted), 1000, num_proposed), 1_000_000)
        p = _sample_moon(batch, generator, x_o.dtype)
        sign = torch.where(torch.rand(batch, generator=generator) < 0.5, 1.0, -1.0)
        z0 = sign.to(x_o.dtype) * (p[:, 0] - x_o[0])
        z1 = x_o[1] - p[:, 1]
        theta = torch.stack((c * z0 - s * z1, s * z0 + c * z1), dim=-1)
        # Only p with p_1 >= x_o,1 solve the equation; then the box prior cuts.
        keep = (p[:, 0] >= x_o[0]) & (theta.abs() <= PRIOR_BOUND).all(dim=-1)
        accepted.append(theta[keep])
        num_accepted += int(keep.sum())
        num_proposed += batch
        _check_projected_budget(num_samples, num_accepted, num_proposed, max_proposals, x_o)
    return torch.cat(accepted)[:num_samples]


def _check_projected_budget(
    num_samples: int, num_accepted: int, num_proposed: int, max_proposals: int, x_o: Tensor
) -> None:
    """Fail at once, not after ``max_proposals``, when the acceptance so far is far too low.

    The projection uses the acceptance rate seen so far; a factor 2 of slack leaves the borderline
    cases to the plain ``max_proposals`` check of the loop.
    """
    if num_accepted >= num_samples:
        return
    if num_accepted == 0:
        if num_proposed < min(100_000, max_proposals):
            return  # too few proposals to tell a rare x_o from an impossible one
        needed = math.inf
    else:
        needed = num_proposed * num_samples / num_accepted
    if needed > 2 * max_proposals:
        raise ValueError(
            f"x_o = {x_o.tolist()} is (nearly) impossible under {_NAME}: {num_accepted} of "
            f"{num_proposed} proposals were inside the prior, so {num_samples} samples would "
            f"need about {needed:.3g} proposals, more than max_proposals = {max_proposals}"
        )


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
