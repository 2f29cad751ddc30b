r"""TARP: tests of accuracy with random points (Lemos, Coogan, Hezaveh & Perreault-Levasseur, 2023).

Expected coverage (:mod:`~sbi_course.diagnostics.coverage`) needs the posterior's density to
rank samples. TARP needs samples only. For each simulation :math:`(\theta_i, x_i)` pick a
*reference point* :math:`\theta^r_i` and call the ball around :math:`\theta^r_i` through
:math:`\theta_i` the credible region. Its posterior mass, estimated with :math:`L` samples
:math:`\theta_i^{(\ell)} \sim q(\theta \mid x_i)`,

.. math::
    f_i = \frac1L \#\{\ell : d(\theta^r_i, \theta_i^{(\ell)}) < d(\theta^r_i, \theta_i)\},

is uniform on [0, 1] when :math:`q` is the true posterior: :math:`\theta_i` is then one more
draw of :math:`q(\cdot \mid x_i)`, so its distance to the reference is ranked uniformly among
the samples' distances. The *expected coverage probability* at credibility :math:`\alpha` is
:math:`\mathrm{ECP}(\alpha) = \frac1N \#\{i : f_i \le \alpha\}` and lies on the diagonal for a
calibrated estimator. Lemos et al. prove the converse too: if the ECP is the diagonal for
reference points drawn from a distribution that depends on :math:`x` suitably (random points
are the practical choice), then :math:`q` is the true posterior. With a *fixed* reference point
TARP is only a necessary check, like SBC: a biased posterior can pass it.

Reading the curve as for expected coverage: below the diagonal the posterior is
*over-confident*, above it *under-confident*. The *area to curve*
:math:`\int_{1/2}^{1} (\mathrm{ECP}(\alpha) - \alpha)\, d\alpha` summarises it (the number
``sbi``'s ``check_tarp`` reports; negative: over-confident), and a Kolmogorov-Smirnov test of
the :math:`f_i` against the uniform distribution gives a p-value.

Reference points, as in ``sbi``: drawn uniformly from the bounding box of the true
parameters, after the parameters are rescaled to [0, 1] with that box (``z_score=True``); or
chosen by the caller, one point for all simulations or one per simulation.

Example:
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> theta = torch.randn(300, 2, generator=g)
    >>> x = theta + torch.randn(300, 2, generator=g)
    >>> exact = 0.5**0.5 * torch.randn(500, 300, 2, generator=g) + x / 2  # N(x/2, 1/2)
    >>> result = tarp(exact, theta, x, generator=g)
    >>> bool(result.ks_pvalue > 0.01)
    True

References:
    Lemos, Coogan, Hezaveh & Perreault-Levasseur (2023), Sampling-based accuracy testing of
    posterior estimators for general inference, ICML (arXiv:2302.03026).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from scipy import stats
from torch import Tensor

from sbi_course._validation import as_batch, check_generator
from sbi_course.diagnostics._draws import draw_posterior_samples

__all__ = ["TARPResult", "tarp", "tarp_credibility", "tarp_coverage"]


class TARPResult(NamedTuple):
    """What :func:`tarp` returns (all tensors, float64).

    Attributes:
        alpha: credibility levels, shape (K,), from 0 to 1.
        ecp: expected coverage probability at each level, shape (K,); the diagonal
            ``ecp == alpha`` for a calibrated posterior.
        credibility: the :math:`f_i` of each simulation, shape (N,); uniform when calibrated.
        atc: area to curve :math:`\\int_{1/2}^1 (\\mathrm{ECP} - \\alpha)`, scalar; negative for an
            over-confident posterior, positive for an under-confident one.
        ks_pvalue: Kolmogorov-Smirnov p-value of the :math:`f_i` against U(0, 1) (each
            :math:`f_i = k / L` spread uniformly over :math:`[k, k + 1) / (L + 1)`), scalar.
        references: the reference points used, shape (N, D), in the parameters' own units.
    """

    alpha: Tensor
    ecp: Tensor
    credibility: Tensor
    atc: Tensor
    ks_pvalue: Tensor
    references: Tensor


def tarp_credibility(
    samples: Tensor, theta: Tensor, references: Tensor, distance: str = "l2"
) -> Tensor:
    r"""The credibility :math:`f_i` of the ball around each reference through each truth.

    Args:
        samples: posterior samples, shape (L, N, D): L draws for each of N observations.
        theta: the true parameters, shape (N, D).
        references: reference points, shape (N, D) or (D,).
        distance: ``"l2"`` (Euclidean) or ``"l1"``.

    Returns:
        :math:`f_i`, the share of samples closer to the reference than the truth, shape (N,).
    """
    if distance not in ("l1", "l2"):
        raise ValueError(f"tarp: distance must be 'l1' or 'l2', got {distance!r}")
    order = 2 if distance == "l2" else 1
    sample_distance = torch.linalg.vector_norm(samples - references, ord=order, dim=-1)
    theta_distance = torch.linalg.vector_norm(theta - references, ord=order, dim=-1)
    return (sample_distance < theta_distance).double().mean(dim=0)


def tarp_coverage(credibility: Tensor, alpha: Tensor) -> Tensor:
    """Expected coverage probability: the share of credibilities at or below each level.

    (At or below, as in ``sbi``, so that the curve ends at 1 for :math:`\alpha = 1`.)

    Args:
        credibility: :math:`f_i`, shape (N,).
        alpha: credibility levels, shape (K,).

    Returns:
        ECP, float64 tensor of shape (K,).
    """
    credibility = torch.as_tensor(credibility, dtype=torch.float64)
    alpha = torch.as_tensor(alpha, dtype=torch.float64)
    return (credibility[None, :] <= alpha[:, None]).double().mean(dim=1)


def tarp(
    posterior: Any,
    theta: Tensor,
    x: Tensor,
    *,
    num_posterior_samples: int = 1000,
    references: Tensor | None = None,
    distance: str = "l2",
    z_score: bool = True,
    num_levels: int = 51,
    generator: torch.Generator | None = None,
) -> TARPResult:
    r"""Run TARP on simulations ``(theta_i, x_i)`` from the prior and the simulator.

    Args:
        posterior: an inference object with ``posterior(x_o)``, a function ``x_o -> posterior``
            (anything with ``sample(sample_shape, generator=)``), or posterior samples already
            drawn, shape (L, N, D).
        theta: true parameters drawn from the prior, shape (N, D).
        x: data simulated from them, shape (N, L_x).
        num_posterior_samples: draws L per observation (ignored for a tensor of samples).
        references: reference points: ``None`` (uniform in the bounding box of ``theta``, one
            per simulation), one point of shape (D,), or one per simulation (N, D); in the
            parameters' units.
        distance: ``"l2"`` or ``"l1"``.
        z_score: rescale parameters, samples and references with the bounding box of
            ``theta`` to [0, 1] before measuring distances (as ``sbi`` does).
        num_levels: number of credibility levels between 0 and 1 in the curve.
        generator: random generator for the posterior draws and the reference points.

    Returns:
        A :class:`TARPResult`.
    """
    check_generator(generator, "tarp")
    theta = torch.as_tensor(theta)
    theta, _ = as_batch(theta, theta.shape[-1], name="theta", owner="tarp")
    x = torch.as_tensor(x)
    x, _ = as_batch(x, x.shape[-1], name="x", owner="tarp", allow_nan=True)
    num_sims, dim = theta.shape
    if x.shape[0] != num_sims:
        raise ValueError(
            f"tarp needs as many rows in x as in theta, got {x.shape[0]} and {num_sims}"
        )
    if num_levels < 2:
        raise ValueError(f"tarp: num_levels must be at least 2, got {num_levels}")
    samples = draw_posterior_samples(
        posterior, x, num_posterior_samples, dim=dim, generator=generator, owner="tarp"
    )
    low, high = theta.min(dim=0).values, theta.max(dim=0).values
    if references is None:
        uniform = torch.rand(num_sims, dim, generator=generator, dtype=theta.dtype)
        references = low + (high - low) * uniform
    else:
        references = torch.as_tensor(references, dtype=theta.dtype)
        if references.shape not in ((dim,), (num_sims, dim)):
            raise ValueError(
                f"tarp: references must have shape ({dim},) or ({num_sims}, {dim}), "
                f"got {tuple(references.shape)}"
            )
        references = references.expand(num_sims, dim)
    scale = high - low + 1e-10 if z_score else torch.ones(dim, dtype=theta.dtype)
    shift = low if z_score else torch.zeros(dim, dtype=theta.dtype)
    credibility = tarp_credibility(
        (samples - shift) / scale, (theta - shift) / scale, (references - shift) / scale, distance
    )
    alpha = torch.linspace(0.0, 1.0, num_levels, dtype=torch.float64)
    ecp = tarp_coverage(credibility, alpha)
    upper = alpha >= 0.5
    # trapezoidal integral of ECP - alpha over [1/2, 1]
    atc = torch.trapezoid((ecp - alpha)[upper], alpha[upper])
    # f_i takes the values 0, 1/L, ..., 1: spread each over its share of [0, 1] before the
    # KS test, which is then exact for a calibrated posterior
    num_draws = samples.shape[0]
    jitter = torch.rand(num_sims, generator=generator, dtype=torch.float64)
    spread = (credibility * num_draws + jitter) / (num_draws + 1)
    ks_pvalue = torch.tensor(stats.kstest(spread.numpy(), "uniform").pvalue, dtype=torch.float64)
    return TARPResult(alpha, ecp, credibility, atc, ks_pvalue, references)
