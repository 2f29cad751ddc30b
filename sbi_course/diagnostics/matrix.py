r"""Which diagnostic detects which failure? The failure x diagnostic matrix, computed exactly.

Every diagnostic answers one question, and no single one answers all. This module measures,
on a conjugate Gaussian model whose posterior is known in closed form, how often each
diagnostic flags each way a posterior can be wrong, over repeated seeds (its *power*; in the
row of the correct posterior, its false-alarm rate).

**The model.** :math:`\theta \sim \mathcal N(0, I_2)` and two noisy replicate measurements
:math:`x = (x_a, x_b)`, :math:`x_a, x_b \mid \theta \sim \mathcal N(\theta, I_2)`
independently, so :math:`x \in \mathbb R^4` and the posterior is

.. math::
    p(\theta \mid x) = \mathcal N\big(\tfrac13 (x_a + x_b),\ \tfrac13 I_2\big).

**The failures**, each a Gaussian :math:`q(\theta \mid x)` built on purpose:

* ``correct``: the exact posterior (the control row: every rejection is a false alarm);
* ``over-confident``: standard deviation halved; ``under-confident``: doubled;
* ``biased``: the mean shifted by one posterior standard deviation in each coordinate;
* ``lossy summary``: the exact posterior given :math:`x_a` alone,
  :math:`\mathcal N(x_a / 2, \tfrac12 I_2)`: calibrated, but it wastes information;
* ``prior``: the prior returned as the posterior;
* ``misspecified``: the exact posterior of the model, but the observation comes from a
  different process, in which instrument :math:`b` reads ``offset`` too high (a feature the
  model lacks).

**The diagnostics**, each turned into a p-value and a rejection at level :math:`\alpha`:
posterior predictive check (two-sided p-values of the data and of :math:`x_a - x_b`,
Bonferroni), SBC (chi-squared, Bonferroni over dimensions), expected coverage (KS test of the
HPD levels), TARP (KS test of the credibilities), C2ST against exact reference samples at
:math:`x_o` (one-sided binomial test of the accuracy), L-C2ST at :math:`x_o` (flow-trick null),
and the misspecification MMD at :math:`x_o` in an embedding space. The embedding is the
posterior mean :math:`\tfrac13(x_a + x_b)`, the sufficient statistic that a well-trained
NPE summary network learns. The global diagnostics (SBC, coverage, TARP) use
``num_simulations`` simulations of the model; the local ones test one observation
:math:`x_o`, drawn anew for each seed (from the model, or from the offset process for the
misspecified row).

What theory fixes, and :func:`failure_matrix` reproduces: SBC, coverage and TARP (with
references independent of :math:`x`) pass the prior and the lossy summary, which are
calibrated on average; only diagnostics at :math:`x_o` with a reference (C2ST) or a local
classifier (L-C2ST) see them. No diagnostic that uses simulations of the model alone can see
misspecification (the estimator is exact for the model): only the predictive check and the MMD
compare the model with the observation.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from scipy import stats
from torch import Tensor
from torch.distributions import Distribution, constraints

from sbi_course._validation import check_generator
from sbi_course.diagnostics.c2st import c2st
from sbi_course.diagnostics.local_c2st import LocalC2ST
from sbi_course.diagnostics.misspecification import misspecification_mmd
from sbi_course.diagnostics.predictive import predictive_pvalue
from sbi_course.diagnostics.sbc import sbc_uniformity
from sbi_course.diagnostics.tarp import tarp

__all__ = ["FAILURES", "DIAGNOSTICS", "FailureMatrix", "failure_matrix", "GaussianPosterior"]

FAILURES = (
    "correct",
    "over-confident",
    "under-confident",
    "biased",
    "lossy summary",
    "prior",
    "misspecified",
)
DIAGNOSTICS = ("predictive", "SBC", "coverage", "TARP", "C2ST", "L-C2ST", "MMD")
POSTERIOR_STD = 1 / math.sqrt(3)


class GaussianPosterior(Distribution):
    """:math:`\\mathcal N(\\mu, \\sigma^2 I)` with ``sample(sample_shape, generator=)``.

    Args:
        mean: shape (*batch, D).
        std: standard deviations, broadcastable to ``mean``.
    """

    arg_constraints: dict = {}
    support = constraints.real_vector

    def __init__(self, mean: Tensor, std: Tensor | float):
        self.mean_, self.std_ = torch.broadcast_tensors(
            mean, torch.as_tensor(std, dtype=mean.dtype)
        )
        super().__init__(mean.shape[:-1], mean.shape[-1:], validate_args=False)

    def sample(self, sample_shape=torch.Size(), generator=None) -> Tensor:
        shape = torch.Size(sample_shape) + self.mean_.shape
        noise = torch.randn(shape, generator=generator, dtype=self.mean_.dtype)
        return self.mean_ + self.std_ * noise

    def log_prob(self, theta: Tensor) -> Tensor:
        z = (theta - self.mean_) / self.std_
        return (-0.5 * z**2 - self.std_.log() - 0.5 * math.log(2 * math.pi)).sum(-1)


def simulate(theta: Tensor, offset: float = 0.0, generator: torch.Generator | None = None):
    """Two replicate measurements: theta (N, 2) -> x (N, 4); ``offset`` is added to x_b."""
    noise = torch.randn(theta.shape[0], 4, generator=generator, dtype=theta.dtype)
    x = torch.cat([theta, theta], dim=1) + noise
    x[:, 2:] += offset
    return x


def _mean_std(failure: str, x: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and std (both (N, 2)) of the failure's Gaussian posterior for data x (N, 4)."""
    exact = (x[:, :2] + x[:, 2:]) / 3
    std = torch.full_like(exact, POSTERIOR_STD)
    if failure in ("correct", "misspecified"):
        return exact, std
    if failure == "over-confident":
        return exact, std / 2
    if failure == "under-confident":
        return exact, std * 2
    if failure == "biased":
        return exact + POSTERIOR_STD, std
    if failure == "lossy summary":
        return x[:, :2] / 2, torch.full_like(exact, math.sqrt(0.5))
    if failure == "prior":
        return torch.zeros_like(exact), torch.ones_like(exact)
    raise ValueError(f"failure_matrix: unknown failure {failure!r}; known: {FAILURES}")


def posterior_for(failure: str):
    """The amortised posterior ``x_o -> GaussianPosterior`` of one failure."""

    def posterior(x_o: Tensor) -> GaussianPosterior:
        x_o = torch.as_tensor(x_o)
        mean, std = _mean_std(failure, x_o.reshape(-1, 4))
        return GaussianPosterior(mean.reshape(*x_o.shape[:-1], 2), std.reshape(*x_o.shape[:-1], 2))

    return posterior


def _embedding(x: Tensor) -> Tensor:
    return (x[:, :2] + x[:, 2:]) / 3


def _ppc_statistic(x: Tensor) -> Tensor:
    return torch.cat([x, x[:, :2] - x[:, 2:]], dim=1)


class FailureMatrix(NamedTuple):
    """What :func:`failure_matrix` returns.

    Attributes:
        failures: row names, F of them.
        diagnostics: column names, G of them.
        pvalues: p-values, tensor (R, F, G), one per seed.
        detected: ``pvalues < alpha``, bool tensor (R, F, G).
        power: share of seeds with a detection, tensor (F, G).
        alpha: the level of every test.
        num_simulations: simulations behind the global diagnostics and L-C2ST.
        num_repeats: R, the number of seeds.
    """

    failures: tuple[str, ...]
    diagnostics: tuple[str, ...]
    pvalues: Tensor
    detected: Tensor
    power: Tensor
    alpha: float
    num_simulations: int
    num_repeats: int


def _one_seed(
    failures, num_simulations, num_posterior_samples, offset, num_null, generator
) -> Tensor:
    theta = torch.randn(num_simulations, 2, generator=generator)
    x = simulate(theta, generator=generator)
    theta_o = torch.randn(1, 2, generator=generator)
    x_model = simulate(theta_o, generator=generator)[0]
    # the misspecified process: the same parameter, instrument b offset
    x_offset = x_model.clone()
    x_offset[2:] += offset
    exact_o = posterior_for("correct")
    lc2st_null = None
    pvalues = torch.ones(len(failures), len(DIAGNOSTICS), dtype=torch.float64)
    for f, failure in enumerate(failures):
        posterior = posterior_for(failure)
        x_o = x_offset if failure == "misspecified" else x_model
        q_o = posterior(x_o)
        samples_o = q_o.sample((num_posterior_samples,), generator=generator)
        # predictive check
        x_rep = simulate(samples_o, generator=generator)
        p = predictive_pvalue(x_rep, x_o, _ppc_statistic)
        pvalues[f, 0] = min(1.0, float(p.min()) * p.numel())
        # SBC, coverage and TARP from one set of draws for all simulations (vectorised, the
        # same numbers as sbc_ranks and hpd_levels, which loop over the observations)
        q = posterior(x)
        draws = q.sample((100,), generator=generator)  # (100, N, 2)
        ranks = (draws < theta).sum(dim=0)
        test = sbc_uniformity(ranks, 100, num_bins=10, generator=generator)
        pvalues[f, 1] = min(1.0, float(np.min(test.chi2_pvalue)) * 2)
        # expected coverage: KS test of the (jittered) HPD levels
        levels = (q.log_prob(draws) > q.log_prob(theta)).double().mean(dim=0)
        jitter = torch.rand(len(levels), generator=generator, dtype=torch.float64)
        pvalues[f, 2] = stats.kstest(((levels * 100 + jitter) / 101).numpy(), "uniform").pvalue
        pvalues[f, 3] = float(tarp(draws, theta, x, generator=generator).ks_pvalue)
        # C2ST against exact reference samples at x_o (one-sided binomial test)
        reference = exact_o(x_o).sample((num_posterior_samples,), generator=generator)
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        accuracy = c2st(reference, samples_o, seed=seed, num_epochs=20, batch_size=128)
        hits = round(accuracy * 2 * num_posterior_samples)
        pvalues[f, 4] = stats.binom.sf(hits - 1, 2 * num_posterior_samples, 0.5)

        # L-C2ST with the flow trick: z = (theta - mean(x)) / std(x); null shared by failures
        def inverse(theta_, x_, failure=failure):
            m, s = _mean_std(failure, x_)
            return (theta_ - m) / s

        lc2st = LocalC2ST(
            theta,
            x,
            None,
            null="flow",
            inverse_transform=inverse,
            num_null=num_null,
            num_epochs=20,
            null_from=lc2st_null,
            generator=generator,
        )
        lc2st_null = lc2st_null or lc2st
        pvalues[f, 5] = float(
            lc2st.test(x_o, num_samples=num_posterior_samples, generator=generator).pvalue
        )
        # misspecification MMD in the embedding space
        test = misspecification_mmd(
            x_o, x, embedding=_embedding, num_permutations=200, generator=generator
        )
        pvalues[f, 6] = float(test.pvalue)
    return pvalues


def failure_matrix(
    *,
    failures: tuple[str, ...] = FAILURES,
    num_simulations: int = 500,
    num_posterior_samples: int = 500,
    num_repeats: int = 10,
    alpha: float = 0.05,
    offset: float = 6.0,
    num_null: int = 39,
    generator: torch.Generator | None = None,
) -> FailureMatrix:
    """Power of each diagnostic against each failure, over ``num_repeats`` seeds.

    Args:
        failures: rows, a subset of :data:`FAILURES`.
        num_simulations: simulations of the model for SBC, coverage, TARP, L-C2ST and MMD.
        num_posterior_samples: posterior samples at ``x_o`` (predictive check, C2ST, L-C2ST).
        num_repeats: R, independent repetitions (new simulations, new ``x_o``).
        alpha: level of every test.
        offset: the misspecified process's offset of instrument b.
        num_null: null classifiers of L-C2ST (the smallest p-value is 1 / (1 + num_null)).
        generator: random generator for everything.

    Returns:
        A :class:`FailureMatrix`.
    """
    check_generator(generator, "failure_matrix")
    unknown = [f for f in failures if f not in FAILURES]
    if unknown:
        raise ValueError(f"failure_matrix: unknown failures {unknown}; known: {FAILURES}")
    if num_repeats < 1 or num_simulations < 20:
        raise ValueError(
            "failure_matrix needs num_repeats >= 1 and num_simulations >= 20, "
            f"got {num_repeats} and {num_simulations}"
        )
    pvalues = torch.stack(
        [
            _one_seed(failures, num_simulations, num_posterior_samples, offset, num_null, generator)
            for _ in range(num_repeats)
        ]
    )
    detected = pvalues < alpha
    return FailureMatrix(
        tuple(failures),
        DIAGNOSTICS,
        pvalues,
        detected,
        detected.double().mean(0),
        alpha,
        num_simulations,
        num_repeats,
    )
