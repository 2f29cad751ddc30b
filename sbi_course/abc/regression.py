r"""Linear regression adjustment of ABC samples (Beaumont, Zhang & Balding, 2002).

Rejection ABC keeps parameters whose summaries :math:`s_i` are merely *close* to the
observed :math:`s_o`; with a large tolerance, that blurs the posterior. Regression adjustment
removes most of the blur: near :math:`s_o`, fit the local linear model

.. math::
    \theta_i = \alpha + (s_i - s_o)^\top \beta + \varepsilon_i

by weighted least squares with Epanechnikov weights
:math:`K_i = 1 - (d_i / h)^2` for :math:`d_i < h` (0 beyond the bandwidth :math:`h`), and move
each sample to where it would have been, had it been simulated at :math:`s_o`:

.. math::
    \theta_i^* = \theta_i - (s_i - s_o)^\top \hat\beta.

The adjusted samples, weighted by :math:`K_i`, approximate the posterior much better than
the unadjusted ones when the posterior mean varies roughly linearly in :math:`s` over the
accepted region and the residual spread does not depend on :math:`s`.

Adjusted samples can leave a bounded prior's support (a rate may become negative). The
usual remedy is to adjust a transformed parameter (log for positive, logit for bounded) and
map back; do that by passing transformed ``theta`` with the tuple form of the function.

References:
    Beaumont, M. A., Zhang, W., & Balding, D. J. (2002). Approximate Bayesian computation in
    population genetics. Genetics 162(4), 2025-2035.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sbi_course.abc.distances import Distance, check_distances, get_distance
from sbi_course.abc.rejection import ABCResult, check_observation

__all__ = ["regression_adjustment", "epanechnikov"]


def epanechnikov(distances: Tensor, bandwidth: float) -> Tensor:
    r"""Epanechnikov kernel weights :math:`\max(0, 1 - (d / h)^2)`, shape like ``distances``."""
    return (1.0 - (distances / bandwidth) ** 2).clamp_min(0.0)


def regression_adjustment(
    result: ABCResult | Tensor,
    x: Tensor | None = None,
    x_o: Tensor | None = None,
    *,
    bandwidth: float | None = None,
    distance: str | Distance = "euclidean",
) -> ABCResult:
    r"""Adjust ABC samples by weighted local-linear regression on the summaries.

    Call it either with an :class:`ABCResult` (from :func:`rejection_abc` or
    :func:`smc_abc`, which store the accepted summaries), or with tensors
    ``regression_adjustment(theta, x, x_o)``.

    Args:
        result: an ABC result, or the accepted parameters ``theta`` of shape (M, D).
        x: with tensors: the accepted summaries, shape (M, S).
        x_o: with tensors: the observed summary, shape (S,).
        bandwidth: kernel bandwidth :math:`h`; default: the result's ``epsilon``, or with
            tensors the largest distance. Samples at distance :math:`\ge h` get weight 0.
        distance: with tensors, the distance of ``x`` to ``x_o`` (an ABC result brings its
            own distances).

    Returns:
        An :class:`ABCResult` with the adjusted samples of positive kernel weight, weights
        proportional to the result's weights times the kernel weights, and
        ``info["coefficients"]`` (S, D) and ``info["intercept"]`` (D,) of the regression.

    Raises:
        ValueError: on inconsistent shapes, a result without stored summaries, or fewer
            samples of positive weight than the regression has coefficients.
    """
    owner = "regression_adjustment"
    if isinstance(result, ABCResult):
        if x is not None or x_o is not None:
            raise ValueError(f"{owner}: pass either an ABCResult or (theta, x, x_o), not both")
        if result.x is None or result.x_o is None:
            raise ValueError(f"{owner} needs the accepted summaries: result.x and result.x_o")
        theta, s, s_o = result.samples, result.x, result.x_o
        d, prior_weights = result.distances, result.weights
        h = result.epsilon if bandwidth is None else bandwidth
        num_simulations, num_failed, method = (
            result.num_simulations,
            result.num_failed,
            result.method,
        )
    else:
        if x is None or x_o is None:
            raise ValueError(f"{owner} needs x and x_o when called with a theta tensor")
        theta = torch.as_tensor(result)
        s = torch.as_tensor(x)
        s = s[:, None] if s.ndim == 1 else s
        s_o = check_observation(x_o, owner)
        for name, value in (("theta", theta), ("x", s)):
            if value.numel() and not torch.isfinite(value).all():
                bad = int((~torch.isfinite(value.reshape(value.shape[0], -1))).any(-1).sum())
                raise ValueError(
                    f"{name} for {owner} contains NaN or infinite values in {bad} of "
                    f"{value.shape[0]} rows; drop those rows (and their theta/x) first"
                )
        if theta.ndim != 2 or s.ndim != 2 or s.shape[0] != theta.shape[0]:
            raise ValueError(
                f"{owner} needs theta (M, D) and x (M, S) with the same M, got "
                f"{tuple(theta.shape)} and {tuple(s.shape)}"
            )
        if s.shape[1] != s_o.shape[0]:
            raise ValueError(
                f"x_o must have shape ({s.shape[1]},) for x of shape {tuple(s.shape)} in "
                f"{owner}, got {tuple(s_o.shape)}"
            )
        s_o = s_o.to(s.dtype)
        d = check_distances(get_distance(distance, s)(s, s_o), s.shape[0], "for " + owner)
        prior_weights = torch.full_like(d, 1.0 / d.shape[0])
        h = float(d.max()) if bandwidth is None else bandwidth
        num_simulations, num_failed, method = theta.shape[0], 0, "rejection"
    if bandwidth is None and not h > 0:
        raise ValueError(
            f"{owner}: every accepted summary equals x_o (all distances are {h}), so there is "
            f"nothing to regress on; the default bandwidth is the largest distance"
        )
    if not h > 0:
        raise ValueError(f"bandwidth for {owner} must be > 0, got {h}")

    weights = prior_weights.double() * epanechnikov(d.double(), h)
    keep = weights > 0
    num_coefficients = s.shape[1] + 1
    if int(keep.sum()) <= num_coefficients:
        raise ValueError(
            f"{owner} has {int(keep.sum())} samples within the bandwidth {h:.4g}, too few to "
            f"fit {num_coefficients} regression coefficients; accept more samples"
        )
    theta_k, s_k, w = theta[keep].double(), s[keep].double(), weights[keep]
    w = w / w.sum()

    # Standardise the regressors: the fit is the same, but better conditioned when
    # summaries live on very different scales.
    delta = s_k - s_o.double()
    spread = delta.std(dim=0).clamp_min(1e-12)
    design = torch.cat([torch.ones_like(delta[:, :1]), delta / spread], dim=1)
    root_w = w.sqrt()[:, None]
    solution = torch.linalg.lstsq(root_w * design, root_w * theta_k, driver="gelsd").solution
    intercept, beta = solution[0], solution[1:] / spread[:, None]

    adjusted = theta_k - delta @ beta
    dtype = theta.dtype
    return ABCResult(
        samples=adjusted.to(dtype),
        weights=w.to(dtype),
        num_simulations=num_simulations,
        distances=d[keep],
        epsilon=float(h),
        num_failed=num_failed,
        x=s[keep],
        x_o=s_o,
        method=f"{method}+regression",
        info={"coefficients": beta.to(dtype), "intercept": intercept.to(dtype)},
    )
