"""Tests of sbi_course.abc against a conjugate Gaussian model with a closed-form posterior.

Model: theta ~ N(0, 3^2 I_2); x = 10 draws of N(theta, I_2), flattened to (N, 20); the
summary is the sample mean s (sufficient). The posterior is Gaussian with precision
1/9 + 10 per coordinate, mean beta * s_o with beta = 10 / (1/9 + 10).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sbi_course.abc import (
    ABCResult,
    chebyshev,
    euclidean,
    get_distance,
    mad,
    manhattan,
    regression_adjustment,
    rejection_abc,
    scaled_euclidean,
    smc_abc,
)
from sbi_course.priors import BoxUniform, GaussianPrior

D, NUM_DRAWS, PRIOR_SD = 2, 10, 3.0
PRECISION = 1 / PRIOR_SD**2 + NUM_DRAWS
BETA = NUM_DRAWS / PRECISION  # slope of the posterior mean in s
POSTERIOR_VAR = 1 / PRECISION
PRIOR = GaussianPrior(torch.zeros(D), PRIOR_SD**2 * torch.eye(D))


def simulator(theta, generator=None):
    noise = torch.randn(theta.shape[0], NUM_DRAWS, D, generator=generator)
    return (theta[:, None, :] + noise).reshape(theta.shape[0], NUM_DRAWS * D)


def sample_mean(x):
    return x.reshape(x.shape[0], NUM_DRAWS, D).mean(1)


X_O = simulator(torch.tensor([[0.7, -0.4]]), generator=torch.Generator().manual_seed(1))[0]
S_O = sample_mean(X_O[None])[0]
POSTERIOR_MEAN = BETA * S_O


class Counting:
    """Wraps a simulator; records every simulated row and every NaN row it returns."""

    def __init__(self, simulator):
        self.simulator, self.thetas, self.calls, self.nan_rows = simulator, [], [], 0

    def __call__(self, theta, generator=None):
        x = self.simulator(theta, generator=generator)
        self.thetas.append(theta.clone())
        self.calls.append(theta.shape[0])
        self.nan_rows += int(torch.isnan(x).any(dim=-1).sum())
        return x

    @property
    def total(self):
        return sum(self.calls)


def wasserstein_to_posterior(result: ABCResult) -> float:
    """Sum over coordinates of W1(weighted samples, analytic marginal)."""
    total = 0.0
    for j in range(D):
        order = torch.argsort(result.samples[:, j])
        x, w = result.samples[order, j].double(), result.weights[order].double()
        mid = (torch.cumsum(w, 0) - w / 2).clamp(1e-9, 1 - 1e-9)
        normal = torch.distributions.Normal(float(POSTERIOR_MEAN[j]), math.sqrt(POSTERIOR_VAR))
        total += float((w * (x - normal.icdf(mid)).abs()).sum())
    return total


# --- rejection ABC -------------------------------------------------------------------------


def test_rejection_recovers_the_analytic_abc_posterior():
    # Accepted s are (nearly) uniform in the disc |s - s_o| <= eps: the prior predictive
    # of s, N(0, 9.1 I), varies by < 3% across it. With theta | s ~ N(beta s, 1/precision),
    # the ABC posterior has mean beta s_o and per-coordinate variance
    # 1/precision + beta^2 eps^2 / 4 (E[u_j^2] = eps^2 / 4 for u uniform in a disc).
    result = rejection_abc(
        PRIOR,
        simulator,
        X_O,
        400_000,
        quantile=0.005,
        summary=sample_mean,
        generator=torch.Generator().manual_seed(0),
    )
    m = result.num_accepted
    assert m == 2000 and result.num_simulations == 400_000 and result.num_failed == 0
    assert torch.allclose(result.weights, torch.full((m,), 1 / m))
    assert (result.distances <= result.epsilon).all()
    abc_var = POSTERIOR_VAR + BETA**2 * result.epsilon**2 / 4
    # Mean within 4 standard errors; variance within 4 relative standard errors sqrt(2/m).
    assert (result.mean() - POSTERIOR_MEAN).abs().max() < 4 * math.sqrt(abc_var / m)
    variance = result.covariance().diagonal()
    assert ((variance / abc_var - 1).abs() < 4 * math.sqrt(2 / m)).all()
    # ... and the tolerance is small enough that this is close to the true posterior:
    # epsilon inflates the variance by less than 30%.
    assert BETA**2 * result.epsilon**2 / 4 < 0.3 * POSTERIOR_VAR


def test_rejection_criteria_agree():
    kwargs = dict(summary=sample_mean, batch_size=700)
    by_quantile = rejection_abc(
        PRIOR,
        simulator,
        X_O,
        5000,
        quantile=0.1,
        generator=torch.Generator().manual_seed(2),
        **kwargs,
    )
    by_number = rejection_abc(
        PRIOR,
        simulator,
        X_O,
        5000,
        num_accepted=500,
        generator=torch.Generator().manual_seed(2),
        **kwargs,
    )
    by_epsilon = rejection_abc(
        PRIOR,
        simulator,
        X_O,
        5000,
        epsilon=by_number.epsilon,
        generator=torch.Generator().manual_seed(2),
        **kwargs,
    )
    assert torch.equal(by_quantile.samples, by_number.samples)
    assert torch.equal(by_epsilon.samples, by_number.samples)
    assert by_number.acceptance_rate == pytest.approx(0.1)


def test_rejection_simulates_in_batches_and_accepts_one_dimensional_summaries():
    counting = Counting(simulator)
    result = rejection_abc(
        PRIOR,
        counting,
        X_O,
        2500,
        num_accepted=50,
        summary=lambda x: sample_mean(x)[:, 0],  # (N,) is read as (N, 1)
        batch_size=1000,
        generator=torch.Generator().manual_seed(0),
    )
    assert counting.calls == [1000, 1000, 500]
    assert result.x.shape == (50, 1) and result.x_o.shape == (1,)


def test_rejection_is_reproducible():
    def run(seed):
        g = torch.Generator().manual_seed(seed)
        return rejection_abc(
            PRIOR, simulator, X_O, 3000, quantile=0.05, summary=sample_mean, generator=g
        )

    assert torch.equal(run(5).samples, run(5).samples)
    assert not torch.equal(run(5).samples, run(6).samples)


def failing(theta, generator=None):
    """The conjugate simulator, failing (NaN rows) wherever theta_1 > 1."""
    x = simulator(theta, generator=generator)
    return torch.where((theta[:, :1] > 1.0), torch.full_like(x, math.nan), x)


def test_rejection_drops_and_counts_nan_simulations():
    counting = Counting(failing)
    result = rejection_abc(
        PRIOR,
        counting,
        X_O,
        4000,
        quantile=0.1,
        summary=sample_mean,
        generator=torch.Generator().manual_seed(0),
    )
    assert counting.nan_rows > 1000  # P(theta_1 > 1) = 0.37
    assert result.num_failed == counting.nan_rows
    assert result.num_simulations == 4000
    # The quantile applies to the successful simulations.
    assert result.num_accepted == math.ceil(0.1 * (4000 - counting.nan_rows))
    assert torch.isfinite(result.samples).all() and torch.isfinite(result.x).all()
    assert (result.samples[:, 0] <= 1.0).all()


def test_rejection_errors_when_nothing_is_accepted_or_everything_fails():
    g = torch.Generator().manual_seed(0)
    with pytest.raises(RuntimeError, match="accepted none"):
        rejection_abc(PRIOR, simulator, X_O, 100, epsilon=1e-6, summary=sample_mean, generator=g)

    def always_nan(theta, generator=None):
        return torch.full((theta.shape[0], NUM_DRAWS * D), math.nan)

    with pytest.raises(RuntimeError, match="failed"):
        rejection_abc(PRIOR, always_nan, X_O, 100, quantile=0.1, generator=g)
    with pytest.raises(RuntimeError, match="succeeded"):
        rejection_abc(PRIOR, failing, X_O, 100, num_accepted=90, summary=sample_mean, generator=g)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(), "exactly one acceptance criterion"),
        (dict(epsilon=0.1, quantile=0.1), "exactly one acceptance criterion"),
        (dict(epsilon=-1.0), "epsilon"),
        (dict(quantile=1.5), "quantile"),
        (dict(num_accepted=101), "budget is too small"),
        (dict(num_accepted=0), "num_accepted"),
        (dict(quantile=0.1, distance="cosine"), "unknown distance"),
        (dict(quantile=0.1, distance=lambda x, x_o: x.sum()), r"shape \(100,\)"),
        (dict(quantile=0.1, generator=0), "torch.Generator"),
        (dict(quantile=0.1, batch_size=0), "batch_size"),
    ],
)
def test_rejection_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        rejection_abc(PRIOR, simulator, X_O, 100, **kwargs)


@pytest.mark.parametrize(
    "x_o, match",
    [
        (torch.zeros(5), r"x_o must have shape \(20,\)"),
        (torch.zeros(2, 20), r"single observation of shape \(20,\)"),
        (torch.full((20,), math.nan), "NaN"),
    ],
)
def test_rejection_rejects_a_bad_observation(x_o, match):
    with pytest.raises(ValueError, match=match):
        rejection_abc(PRIOR, simulator, x_o, 100, quantile=0.1, summary=sample_mean)


def test_observation_may_be_a_single_row():
    g = torch.Generator
    a = rejection_abc(PRIOR, simulator, X_O[None], 500, quantile=0.1, generator=g().manual_seed(0))
    b = rejection_abc(PRIOR, simulator, X_O, 500, quantile=0.1, generator=g().manual_seed(0))
    assert torch.equal(a.samples, b.samples)


def test_result_helpers():
    result = rejection_abc(
        PRIOR,
        simulator,
        X_O,
        1000,
        quantile=0.1,
        summary=sample_mean,
        generator=torch.Generator().manual_seed(0),
    )
    assert result.ess == pytest.approx(100)
    draws = result.resample(300, generator=torch.Generator().manual_seed(0))
    assert draws.shape == (300, D)
    assert "rejection" in repr(result) and "num_simulations=1000" in repr(result)


# --- distances -------------------------------------------------------------------------------


def test_distance_values():
    x, x_o = torch.tensor([[3.0, -4.0], [1.0, 1.0]]), torch.tensor([0.0, 0.0])
    assert torch.allclose(euclidean(x, x_o), torch.tensor([5.0, math.sqrt(2)]))
    assert torch.allclose(manhattan(x, x_o), torch.tensor([7.0, 2.0]))
    assert torch.allclose(chebyshev(x, x_o), torch.tensor([4.0, 1.0]))
    assert torch.allclose(
        scaled_euclidean(x, x_o, torch.tensor([3.0, 4.0])),
        torch.tensor([math.sqrt(2), math.sqrt(1 / 9 + 1 / 16)]),
        atol=1e-4,
    )


def test_mad_scale_estimates_the_standard_deviation_and_stays_positive():
    x = torch.randn(20_000, 2, generator=torch.Generator().manual_seed(0)) * torch.tensor(
        [2.0, 0.5]
    )
    assert torch.allclose(mad(x), torch.tensor([2.0, 0.5]), rtol=0.05)
    constant = torch.zeros(50, 2)
    constant[0, 1] = 1.0  # MAD 0 but std > 0 -> falls back to std; all-constant -> 1
    scale = mad(constant)
    assert scale[0] == 1.0 and 0 < scale[1] < 1
    with pytest.raises(ValueError, match="scale"):
        get_distance("mad")


def test_scaled_distance_is_invariant_to_the_units_of_a_summary():
    # Measuring one summary in other units (x1000) changes what Euclidean rejection ABC
    # accepts, but not what MAD-scaled rejection ABC accepts.
    units = torch.tensor([1000.0, 1.0])

    def run(distance, scale):
        return rejection_abc(
            PRIOR,
            simulator,
            X_O,
            4000,
            quantile=0.05,
            summary=lambda x: sample_mean(x) * scale,
            distance=distance,
            generator=torch.Generator().manual_seed(3),
        ).samples

    def overlap(a, b):
        return len({tuple(r) for r in a.tolist()} & {tuple(r) for r in b.tolist()}) / len(a)

    assert overlap(run("mad", 1.0), run("mad", units)) > 0.98
    assert overlap(run("std", 1.0), run("std", units)) > 0.98
    assert overlap(run("euclidean", 1.0), run("euclidean", units)) < 0.7


def test_callable_distance():
    # A monotone transform of the Euclidean distance selects the same draws by quantile.
    def run(distance):
        return rejection_abc(
            PRIOR,
            simulator,
            X_O,
            2000,
            quantile=0.05,
            summary=sample_mean,
            distance=distance,
            generator=torch.Generator().manual_seed(4),
        )

    squared = run(lambda x, x_o: ((x - x_o) ** 2).sum(-1))
    plain = run("euclidean")
    assert torch.equal(squared.samples, plain.samples)
    assert squared.epsilon == pytest.approx(plain.epsilon**2, rel=1e-5)


# --- regression adjustment --------------------------------------------------------------------


def test_regression_adjustment_corrects_a_large_tolerance():
    result = rejection_abc(
        PRIOR,
        simulator,
        X_O,
        5000,
        quantile=0.2,
        summary=sample_mean,
        generator=torch.Generator().manual_seed(0),
    )
    adjusted = regression_adjustment(result)
    assert adjusted.method == "rejection+regression"
    assert adjusted.weights.sum() == pytest.approx(1.0) and (adjusted.weights > 0).all()
    # The local-linear model is exact here: theta = beta s + noise, so beta is recovered.
    assert torch.allclose(adjusted.info["coefficients"], BETA * torch.eye(D), atol=0.1)
    plain_var = result.covariance().diagonal() / POSTERIOR_VAR
    adjusted_var = adjusted.covariance().diagonal() / POSTERIOR_VAR
    assert (plain_var > 3).all()  # eps ~ 1.5: the plain ABC posterior is far too wide
    # ESS ~ 600: relative standard error of a variance ~ 0.06; 0.25 leaves 4 of them.
    assert ((adjusted_var - 1).abs() < 0.25).all()
    assert wasserstein_to_posterior(adjusted) < 0.3 * wasserstein_to_posterior(result)


def test_regression_adjustment_from_tensors_matches_the_result_form():
    result = rejection_abc(
        PRIOR,
        simulator,
        X_O,
        2000,
        quantile=0.1,
        summary=sample_mean,
        generator=torch.Generator().manual_seed(0),
    )
    from_result = regression_adjustment(result)
    from_tensors = regression_adjustment(
        result.samples, result.x, result.x_o, bandwidth=result.epsilon
    )
    assert torch.allclose(from_result.samples, from_tensors.samples, atol=1e-5)
    assert torch.allclose(from_result.weights, from_tensors.weights, atol=1e-6)


def test_regression_adjustment_errors():
    theta, x = torch.randn(3, D), torch.randn(3, D)
    with pytest.raises(ValueError, match="too few"):
        regression_adjustment(theta, x, torch.zeros(D))
    with pytest.raises(ValueError, match="x_o must have shape"):
        regression_adjustment(torch.randn(50, D), torch.randn(50, D), torch.zeros(3))
    with pytest.raises(ValueError, match="needs x and x_o"):
        regression_adjustment(theta)
    bare = ABCResult(theta, torch.full((3,), 1 / 3), 3, torch.ones(3), 1.0)
    with pytest.raises(ValueError, match="accepted summaries"):
        regression_adjustment(bare)


# --- SMC-ABC -----------------------------------------------------------------------------------


def test_smc_beats_rejection_at_the_same_budget():
    budget, size = 20_000, 500
    kwargs = dict(summary=sample_mean, generator=torch.Generator().manual_seed(0))
    rejection = rejection_abc(PRIOR, simulator, X_O, budget, num_accepted=size, **kwargs)
    kwargs["generator"] = torch.Generator().manual_seed(0)
    smc = smc_abc(PRIOR, simulator, X_O, budget, population_size=size, **kwargs)
    assert smc.num_simulations <= budget
    assert smc.epsilon < 0.7 * rejection.epsilon
    # Measured: rejection ~0.26, SMC ~0.06-0.10 (sum of W1 over both coordinates).
    assert wasserstein_to_posterior(smc) < 0.6 * wasserstein_to_posterior(rejection)
    assert smc.ess > 0.5 * size


@pytest.mark.parametrize("budget", [400, 401, 1234, 3000])
def test_smc_never_exceeds_its_budget(budget):
    counting = Counting(simulator)
    result = smc_abc(
        PRIOR,
        counting,
        X_O,
        budget,
        population_size=200,
        summary=sample_mean,
        batch_size=150,
        generator=torch.Generator().manual_seed(budget),
    )
    assert counting.total == result.num_simulations <= budget
    assert result.num_simulations >= budget - 1  # the budget is spent, not left over
    assert max(counting.calls) <= 150
    spent = sum(result.simulations_per_round) + result.info["num_simulations_discarded"]
    assert spent == result.num_simulations
    assert all(a >= b for a, b in zip(result.epsilons[:-1], result.epsilons[1:], strict=True))
    assert result.num_rounds == len(result.populations) == len(result.ess_history)
    assert result.weights.sum() == pytest.approx(1.0)
    assert result.samples.shape[0] >= 100 and result.samples.shape[0] == result.x.shape[0]


def test_smc_budget_too_small():
    with pytest.raises(ValueError, match="too small"):
        smc_abc(PRIOR, simulator, X_O, 399, population_size=200, quantile=0.5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(quantile=1.0), "quantile"),
        (dict(ess_threshold=2.0), "ess_threshold"),
        (dict(kernel_scale=0.0), "kernel_scale"),
        (dict(population_size=0), "population_size"),
    ],
)
def test_smc_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        smc_abc(PRIOR, simulator, X_O, 1000, **kwargs)


def test_smc_does_not_simulate_outside_a_bounded_prior():
    # A box prior with the posterior against its upper edge: many perturbations fall out.
    box = BoxUniform(-torch.ones(D), torch.ones(D))
    x_o = torch.full((NUM_DRAWS * D,), 0.95)
    counting = Counting(simulator)
    result = smc_abc(
        box,
        counting,
        x_o,
        4000,
        population_size=200,
        summary=sample_mean,
        generator=torch.Generator().manual_seed(0),
    )
    simulated = torch.cat(counting.thetas)
    assert ((simulated >= -1) & (simulated <= 1)).all()
    assert result.info["num_outside_support"] > 0
    assert counting.total == result.num_simulations <= 4000
    assert ((result.samples >= -1) & (result.samples <= 1)).all()


def test_smc_drops_and_counts_nan_simulations():
    counting = Counting(failing)
    result = smc_abc(
        PRIOR,
        counting,
        X_O,
        3000,
        population_size=200,
        summary=sample_mean,
        generator=torch.Generator().manual_seed(0),
    )
    assert counting.nan_rows > 0 and result.num_failed == counting.nan_rows
    assert torch.isfinite(result.samples).all() and (result.samples[:, 0] <= 1.0).all()


def test_smc_is_reproducible_and_respects_max_rounds():
    def run(seed, **kwargs):
        g = torch.Generator().manual_seed(seed)
        return smc_abc(
            PRIOR,
            simulator,
            X_O,
            3000,
            population_size=200,
            summary=sample_mean,
            generator=g,
            **kwargs,
        )

    a, b = run(0), run(0)
    assert torch.equal(a.samples, b.samples) and torch.equal(a.weights, b.weights)
    assert a.epsilons == b.epsilons
    assert not torch.equal(a.samples, run(1).samples)
    short = run(0, max_rounds=2)
    assert short.num_rounds == 2 and short.num_simulations < 3000


def test_smc_resamples_when_the_ess_is_low():
    # ess_threshold=1 resamples before every round; the run still returns a weighted
    # population of the final round with a valid ESS.
    result = smc_abc(
        PRIOR,
        simulator,
        X_O,
        3000,
        population_size=200,
        summary=sample_mean,
        ess_threshold=1.0,
        generator=torch.Generator().manual_seed(0),
    )
    assert result.num_rounds >= 3
    assert 1 <= result.ess <= result.samples.shape[0] * (1 + 1e-6)  # float rounding


def test_regression_adjustment_of_an_smc_result():
    smc = smc_abc(
        PRIOR,
        simulator,
        X_O,
        3000,
        population_size=300,
        summary=sample_mean,
        generator=torch.Generator().manual_seed(0),
    )
    adjusted = regression_adjustment(smc)
    assert adjusted.method == "smc+regression"
    assert wasserstein_to_posterior(adjusted) < wasserstein_to_posterior(smc)


# --- issue #14: batch_size, absurd sizes, widths, counts ----------------------------------------


def test_batch_size_does_not_change_seeded_results():
    """rejection_abc and smc_abc used to give other samples for another batch_size."""
    runs = [
        rejection_abc(
            PRIOR,
            simulator,
            X_O,
            5000,
            num_accepted=50,
            summary=sample_mean,
            batch_size=batch_size,
            generator=torch.Generator().manual_seed(3),
        ).samples
        for batch_size in (1000, 2000, 10_000)
    ]
    assert torch.equal(runs[0], runs[1]) and torch.equal(runs[0], runs[2])
    runs = [
        smc_abc(
            PRIOR,
            simulator,
            X_O,
            3000,
            population_size=200,
            summary=sample_mean,
            batch_size=batch_size,
            generator=torch.Generator().manual_seed(3),
        ).samples
        for batch_size in (1000, 10_000)
    ]
    assert torch.equal(runs[0], runs[1])


def test_absurd_budget_is_refused_before_simulating():
    calls = Counting(simulator)
    with pytest.raises(MemoryError, match="num_simulations.*SBI_COURSE_MAX_BYTES"):
        rejection_abc(PRIOR, calls, X_O, 10**9, quantile=0.1)
    assert calls.total == 0


def test_distances_check_widths():
    """euclidean(x (3, 2), x_o (1,)) used to broadcast to three numbers."""
    for distance in (euclidean, manhattan, chebyshev):
        with pytest.raises(ValueError, match=r"same number of summaries.*\(3, 2\).*\(1,\)"):
            distance(torch.zeros(3, 2), torch.zeros(1))
    assert euclidean(torch.ones(3, 2), torch.zeros(2)).shape == (3,)
    with pytest.raises(ValueError, match=r"x for mad must have shape \(N, L\)"):
        mad(torch.arange(10.0))  # used to return one number for 10 rows of one summary


def test_numpy_integer_counts_are_accepted():
    result = rejection_abc(
        PRIOR,
        simulator,
        X_O,
        np.int64(2000),
        num_accepted=np.int32(20),
        summary=sample_mean,
        generator=torch.Generator().manual_seed(0),
    )
    assert result.samples.shape == (20, 2)


def test_regression_adjustment_does_not_blame_an_unpassed_bandwidth():
    theta = torch.randn(50, 2, generator=torch.Generator().manual_seed(0))
    x = torch.randn(50, 3, generator=torch.Generator().manual_seed(1))
    x[4, 1] = float("nan")
    with pytest.raises(ValueError, match="x for regression_adjustment contains NaN.*1 of 50"):
        regression_adjustment(theta, x, torch.zeros(3))
    with pytest.raises(ValueError, match="every accepted summary equals x_o"):
        regression_adjustment(theta, torch.zeros(50, 3), torch.zeros(3))
