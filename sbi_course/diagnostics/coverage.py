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

import inspect
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from sbi_course._validation import as_batch, check_generator
from sbi_course.diagnostics._posteriors import posterior_factory

__all__ = ["hpd_levels", "coverage_from_levels", "expected_coverage"]


def _unnormalised_log_prob(posterior: Any, theta: Tensor) -> Tensor:
    """``posterior.log_prob(theta)``, skipping the normalising constant where that is optional.

    Only the ordering of densities matters here, and estimating the normaliser of a truncated
    NPE posterior costs thousands of extra samples per observation.
    """
    if "normalize" in inspect.signature(posterior.log_prob).parameters:
        return posterior.log_prob(theta, normalize=False)
    return posterior.log_prob(theta)


def hpd_levels(
    posterior: Any,
    theta: Tensor,
    x: Tensor,
    num_posterior_samples: int = 1000,
    generator: torch.Generator | None = None,
    show_progress: bool = False,
) -> np.ndarray:
    """The smallest HPD level containing each true parameter.

    Args:
        posterior: an inference object with ``posterior(x_o)`` (``NPE``, ``NLE``, ``NRE``), or
            a function ``x_o -> posterior``; the posterior needs ``sample(shape, generator=)``
            and ``log_prob(theta)`` (unnormalised is fine).
        theta: true parameters drawn from the prior, shape (N, D).
        x: data simulated from them, shape (N, L).
        num_posterior_samples: posterior draws per observation.
        generator: random generator for the posterior draws.
        show_progress: show a progress bar over the N observations.

    Returns:
        Levels :math:`c_i` in [0, 1], shape (N,): uniform for a calibrated posterior, piled up
        near 1 for an overconfident one.
    """
    check_generator(generator, "hpd_levels")
    factory = posterior_factory(posterior, "hpd_levels")
    if factory is None:
        raise ValueError("hpd_levels needs posteriors with log_prob, not a bare sampler")
    theta = torch.as_tensor(theta)
    theta, _ = as_batch(theta, theta.shape[-1], name="theta", owner="hpd_levels")
    x = torch.as_tensor(x)
    x, _ = as_batch(x, x.shape[-1], name="x", owner="hpd_levels", allow_nan=True)
    if x.shape[0] != theta.shape[0]:
        raise ValueError(
            f"hpd_levels needs as many rows in x as in theta, got {x.shape[0]} and {theta.shape[0]}"
        )
    levels = np.empty(theta.shape[0])
    for i in tqdm(range(theta.shape[0]), desc="coverage", disable=not show_progress):
        posterior_i = factory(x[i])
        samples = posterior_i.sample((int(num_posterior_samples),), generator=generator)
        points = torch.cat([theta[i : i + 1].to(samples), samples])
        with torch.no_grad():
            log_q = _unnormalised_log_prob(posterior_i, points)
        levels[i] = float((log_q[1:] > log_q[0]).double().mean())
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

    Returns:
        ``(nominal, empirical)``, numpy arrays of shape (K,); a calibrated posterior gives
        ``empirical`` close to ``nominal``.
    """
    if nominal is None:
        nominal = np.linspace(0.0, 1.0, 21)
    levels = hpd_levels(posterior, theta, x, num_posterior_samples, generator, show_progress)
    nominal = np.asarray(nominal, dtype=float)
    return nominal, coverage_from_levels(levels, nominal)
