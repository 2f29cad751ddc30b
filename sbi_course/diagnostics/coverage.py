r"""Expected coverage of highest-posterior-density (HPD) regions.

The :math:`1 - \alpha` HPD region of a posterior :math:`q(\theta \mid x)` is the smallest set
holding probability :math:`1 - \alpha`: all :math:`\theta` whose density exceeds a threshold.
For a calibrated posterior, the true parameter lies in the :math:`1 - \alpha` region of its
observation's posterior in a fraction :math:`1 - \alpha` of simulations, at every level.

With posterior samples :math:`\theta^{(1..L)} \sim q(\theta \mid x_i)`, the smallest HPD level
that contains the true :math:`\theta_i` is estimated by

.. math::
    c_i = \frac1L \#\{\ell : q(\theta^{(\ell)} \mid x_i) > q(\theta_i \mid x_i)\},

and the empirical coverage at nominal level :math:`\ell` is the share of :math:`c_i < \ell`
(Hermans et al., 2022). Plot empirical against nominal coverage:

* on the diagonal: calibrated;
* below it: the regions miss the truth too often, the posterior is *overconfident*;
* above it: *conservative* (underconfident), usually the safer failure in science.

Only the ordering of the densities within one observation matters, so unnormalised
log-densities (NLE, NRE) work too. Unlike SBC this is a joint test over all dimensions.

Example:
    >>> import numpy as np
    >>> levels = np.array([0.1, 0.5, 0.9])
    >>> coverage_from_levels(np.array([0.05, 0.3, 0.6, 0.95]), levels)
    array([0.25, 0.5 , 0.75])

References:
    Hermans, Delaunoy, Rozet, Wehenkel, Begy & Louppe (2022), A trust crisis in
    simulation-based inference? Your posterior approximations can be unfaithful, TMLR.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from sbi_course._validation import check_generator
from sbi_course.diagnostics._posteriors import (
    PosteriorSource,
    check_count,
    check_finite_samples,
    simulation_pairs,
    unnormalized_log_prob,
)

__all__ = ["hpd_levels", "coverage_from_levels", "expected_coverage"]


def hpd_levels(
    posterior: Any,
    theta: Tensor,
    x: Tensor,
    num_posterior_samples: int = 1000,
    generator: torch.Generator | None = None,
    show_progress: bool = False,
    *,
    batch_size: int | None = None,
) -> np.ndarray:
    """The smallest HPD level containing each true parameter.

    Args:
        posterior: an inference object with ``posterior(x_o)`` (``NPE``, ``NLE``, ``NRE``), or
            a function ``x_o -> posterior``; the posterior needs ``sample(shape, generator=)``
            and ``unnormalized_log_prob(theta)`` or ``log_prob(theta)`` (only the ordering of
            densities matters, so NPE's normaliser is skipped).
        theta: true parameters drawn from the prior, shape (N, D).
        x: data simulated from them, shape (N, L). Rows with NaN or inf (failed simulations)
            are dropped with their theta, with a warning saying how many.
        num_posterior_samples: posterior draws per observation (at least one).
        generator: random generator for the posterior draws.
        show_progress: show a progress bar over the N observations.
        batch_size: evaluate the posteriors of this many observations in one call of an
            amortised posterior (see :func:`~sbi_course.diagnostics.sbc_ranks`); ``None``
            (default): one at a time, the numbers of earlier versions.

    Returns:
        Levels :math:`c_i` in [0, 1], shape (N,) (fewer if rows were dropped): uniform for a
        calibrated posterior, piled up near 1 for an overconfident one.

    Raises:
        ValueError: on a bare sampler (no log-density), or NaN or inf posterior samples
            (naming the row of ``x``).
    """
    check_generator(generator, "hpd_levels")
    num_samples = check_count(num_posterior_samples, "num_posterior_samples", "hpd_levels")
    step = 1 if batch_size is None else check_count(batch_size, "batch_size", "hpd_levels")
    theta, x, kept = simulation_pairs(theta, x, "hpd_levels")
    source = PosteriorSource(posterior, "hpd_levels")
    levels = np.empty(theta.shape[0])
    for start in tqdm(range(0, theta.shape[0], step), desc="coverage", disable=not show_progress):
        rows = slice(start, start + step)
        samples, posterior_rows = source.samples(x[rows], num_samples, generator, step > 1)
        if posterior_rows is None:
            raise ValueError("hpd_levels needs posteriors with log_prob, not a bare sampler")
        check_finite_samples(samples, kept[rows], "hpd_levels")
        if samples.shape[1] == 1 and not getattr(posterior_rows, "batch_shape", ()):
            # One observation: the points (L + 1, D), as in earlier versions.
            points = torch.cat([theta[rows].to(samples), samples[:, 0]])
            with torch.no_grad():
                log_q = unnormalized_log_prob(posterior_rows, points).reshape(-1, 1)
        else:
            points = torch.cat([theta[rows].to(samples)[None], samples])  # (L + 1, m, D)
            with torch.no_grad():
                log_q = unnormalized_log_prob(posterior_rows, points)
        levels[rows] = (log_q[1:] > log_q[0]).double().mean(dim=0).numpy()
    return levels


def coverage_from_levels(levels: np.ndarray, nominal: np.ndarray) -> np.ndarray:
    """Share of true parameters inside the HPD region of each nominal level.

    Args:
        levels: HPD levels of the true parameters from :func:`hpd_levels`, shape (N,).
        nominal: credibility levels in [0, 1], shape (K,).

    Returns:
        Empirical coverage, shape (K,).
    """
    levels = np.asarray(levels, dtype=float)
    nominal = np.asarray(nominal, dtype=float)
    return (levels[None, :] < nominal[:, None]).mean(axis=1)


def expected_coverage(
    posterior: Any,
    theta: Tensor,
    x: Tensor,
    num_posterior_samples: int = 1000,
    nominal: np.ndarray | None = None,
    generator: torch.Generator | None = None,
    show_progress: bool = False,
    *,
    batch_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Nominal and empirical coverage of HPD regions over simulations ``(theta_i, x_i)``.

    Args:
        posterior: see :func:`hpd_levels`.
        theta: true parameters drawn from the prior, shape (N, D).
        x: data simulated from them, shape (N, L).
        num_posterior_samples: posterior draws per observation.
        nominal: credibility levels, shape (K,) (default: 0, 0.05, ..., 1).
        generator: random generator for the posterior draws.
        show_progress: show a progress bar.
        batch_size: observations per batched posterior call (see :func:`hpd_levels`).

    Returns:
        ``(nominal, empirical)``, numpy arrays of shape (K,); a calibrated posterior gives
        ``empirical`` close to ``nominal``.
    """
    if nominal is None:
        nominal = np.linspace(0.0, 1.0, 21)
    levels = hpd_levels(
        posterior,
        theta,
        x,
        num_posterior_samples,
        generator,
        show_progress,
        batch_size=batch_size,
    )
    nominal = np.asarray(nominal, dtype=float)
    return nominal, coverage_from_levels(levels, nominal)
