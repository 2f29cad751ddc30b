r"""Is the simulator able to produce the observed data? Two tests of model misspecification.

A neural posterior is trained on simulations. For an observation unlike all of them the
network *extrapolates*, and returns a posterior that looks as confident as any other, with
no warning. All calibration checks (SBC, coverage, TARP, L-C2ST) use simulations from the
same model and so cannot see this: the question must be asked of the observation itself.

**MMD in an embedding space** (after Schmitt et al., 2023). With a kernel :math:`k`, the
squared maximum mean discrepancy between samples :math:`X = (x_1..x_m)` and
:math:`Y = (y_1..y_n)` is

.. math::
    \mathrm{MMD}^2(X, Y) = \overline{k(X, X)} + \overline{k(Y, Y)} - 2\, \overline{k(X, Y)}

(means over all pairs, the biased V-statistic; zero only when the two distributions agree
for a characteristic kernel such as the Gaussian :math:`k(a, b) = \exp(-|a-b|^2 / 2h^2)`).
Compare the observation(s) with simulations from the prior predictive, after mapping both
through an *embedding* :math:`s(x)`: the summary network of a trained estimator, which keeps
what the estimator looks at, or any learned or hand-made summary (the identity compares raw
data). Calibration: the statistic with :math:`M` observations and a fixed reference set
:math:`R` of simulations is compared with the same statistic for :math:`M` *fresh*
simulations (not in :math:`R`), many times. Under the null hypothesis "the observations come
from the model" the observed statistic is exchangeable with these, so

.. math::
    p = \frac{1 + \#\{b : \mathrm{MMD}^2_b \ge \mathrm{MMD}^2_{\mathrm{obs}}\}}{1 + B}

is a valid p-value. (The bandwidth :math:`h`, the median distance within :math:`R`, is fixed
before the test, so that it is the same function of the data for every draw.) ``sbi``'s
``calc_misspecification_mmd`` does the same with a median bandwidth recomputed for each pair
of sets.

**Marginal log-density test.** Fit a density :math:`\hat p(x)` (or :math:`\hat p(s(x))`) to
simulations and rank the observation's log-density among those of held-out simulations:
:math:`p = (1 + \#\{j : \log \hat p(x_j) \le \log \hat p(x_o)\}) / (1 + n)`. A small p-value
says the observation lies where the model rarely puts data.

Example:
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(1000, 3, generator=g)  # simulations
    >>> test = misspecification_mmd(torch.full((3,), 4.0), x, generator=g)
    >>> bool(test.pvalue < 0.05)
    True

References:
    Gretton, Borgwardt, Rasch, Schoelkopf & Smola (2012), A kernel two-sample test, JMLR.
    Schmitt, Buerkner, Koethe & Radev (2023), Detecting model misspecification in amortized
    Bayesian inference with neural networks, GCPR.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor

from sbi_course._validation import as_batch, check_generator

__all__ = [
    "mmd",
    "median_bandwidth",
    "MisspecificationTest",
    "misspecification_mmd",
    "marginal_logprob_test",
]


class MisspecificationTest(NamedTuple):
    """Result of a misspecification test (tensors).

    Attributes:
        statistic: the observed statistic (MMD^2, or the observation's log-density), scalar.
        pvalue: the p-value, scalar; small values say the model does not produce such data.
        null: the statistic under the null hypothesis, shape (B,).
    """

    statistic: Tensor
    pvalue: Tensor
    null: Tensor


def median_bandwidth(z: Tensor) -> Tensor:
    """Median pairwise distance within ``z`` (N, K), the median heuristic's kernel width."""
    distances = torch.cdist(z, z)
    upper = torch.triu_indices(z.shape[0], z.shape[0], offset=1)
    return distances[upper[0], upper[1]].median().clamp_min(1e-12)


def mmd(x: Tensor, y: Tensor, bandwidth: float | Tensor | None = None) -> Tensor:
    r"""Squared MMD (biased V-statistic) with a Gaussian kernel.

    Args:
        x: first sample, shape (M, K).
        y: second sample, shape (N, K).
        bandwidth: kernel width :math:`h` (default: the median distance in the pooled sample).

    Returns:
        :math:`\mathrm{MMD}^2`, a scalar tensor.
    """
    if bandwidth is None:
        bandwidth = median_bandwidth(torch.cat([x, y]))
    scale = 2.0 * torch.as_tensor(bandwidth, dtype=x.dtype) ** 2

    def mean_kernel(a: Tensor, b: Tensor) -> Tensor:
        return torch.exp(-(torch.cdist(a, b) ** 2) / scale).mean()

    return mean_kernel(x, x) + mean_kernel(y, y) - 2.0 * mean_kernel(x, y)


def _embed(embedding: Callable[[Tensor], Tensor] | None, x: Tensor) -> Tensor:
    if embedding is None:
        return x
    with torch.no_grad():
        z = torch.as_tensor(embedding(x))
    return z.reshape(x.shape[0], -1).to(torch.get_default_dtype())


def misspecification_mmd(
    x_o: Tensor,
    x: Tensor,
    *,
    embedding: Callable[[Tensor], Tensor] | None = None,
    num_reference: int | None = None,
    num_permutations: int = 500,
    bandwidth: float | None = None,
    generator: torch.Generator | None = None,
) -> MisspecificationTest:
    """MMD test of "the observation(s) come from the model", in an embedding space.

    Args:
        x_o: one observation (L,) or M observations (M, L).
        x: simulations from the prior predictive (the training data, say), shape (N, L);
            ``num_reference`` of them form the reference set, the rest serve the null draws.
        embedding: map (n, L) -> (n, K) applied to all data first, for example the summary
            network of a trained estimator (``None``: the raw data).
        num_reference: size of the reference set (default: half of the simulations).
        num_permutations: B, draws of the null statistic.
        bandwidth: kernel width in the embedding space (default: median distance of the
            reference set).
        generator: random generator for the split and the null draws.

    Returns:
        A :class:`MisspecificationTest` with the MMD^2 of the observations, its p-value and the
        null statistics.
    """
    check_generator(generator, "misspecification_mmd")
    x = torch.as_tensor(x)
    x, _ = as_batch(x, x.shape[-1], name="x", owner="misspecification_mmd")
    x_o, _ = as_batch(torch.as_tensor(x_o), x.shape[1], name="x_o", owner="misspecification_mmd")
    num_obs = x_o.shape[0]
    if num_reference is None:
        num_reference = x.shape[0] // 2
    if not 2 <= num_reference <= x.shape[0] - num_obs:
        raise ValueError(
            f"misspecification_mmd needs 2 <= num_reference <= N - M simulations beside the "
            f"{num_obs} observation(s); got num_reference={num_reference}, N={x.shape[0]}"
        )
    z = _embed(embedding, x[torch.randperm(x.shape[0], generator=generator)])
    z_o = _embed(embedding, x_o)
    reference, pool = z[:num_reference], z[num_reference:]
    if bandwidth is None:
        bandwidth = median_bandwidth(reference)
    statistic = mmd(z_o, reference, bandwidth)
    null = torch.empty(int(num_permutations))
    for b in range(int(num_permutations)):
        fresh = pool[torch.randperm(pool.shape[0], generator=generator)[:num_obs]]
        null[b] = mmd(fresh, reference, bandwidth)
    pvalue = (1.0 + (null >= statistic).sum()) / (1.0 + num_permutations)
    return MisspecificationTest(statistic, pvalue, null)


def marginal_logprob_test(
    x_o: Tensor,
    x: Tensor,
    density: Any,
    *,
    embedding: Callable[[Tensor], Tensor] | None = None,
) -> MisspecificationTest:
    """Rank the observation's marginal log-density among those of held-out simulations.

    Args:
        x_o: the observation, shape (L,).
        x: held-out simulations from the prior predictive (not used to fit ``density``),
            shape (N, L).
        density: a fitted density of the (embedded) data with ``log_prob`` of shape (n, K)
            -> (n,).
        embedding: map (n, L) -> (n, K) applied before ``density`` (``None``: raw data).

    Returns:
        A :class:`MisspecificationTest`: the observation's log-density, the p-value
        (1 + #{simulations with log-density <= it}) / (1 + N), and the simulations'
        log-densities.
    """
    x = torch.as_tensor(x)
    x, _ = as_batch(x, x.shape[-1], name="x", owner="marginal_logprob_test")
    x_o, _ = as_batch(torch.as_tensor(x_o), x.shape[1], name="x_o", owner="marginal_logprob_test")
    if x_o.shape[0] != 1:
        raise ValueError(f"marginal_logprob_test takes one observation (L,), got {x_o.shape[0]}")
    if not callable(getattr(density, "log_prob", None)):
        raise TypeError(
            f"marginal_logprob_test: density needs a log_prob method, got {type(density).__name__}"
        )
    with torch.no_grad():
        null = torch.as_tensor(density.log_prob(_embed(embedding, x))).reshape(-1)
        statistic = torch.as_tensor(density.log_prob(_embed(embedding, x_o))).reshape(())
    pvalue = (1.0 + (null <= statistic).sum()) / (1.0 + null.shape[0])
    return MisspecificationTest(statistic, pvalue, null)
