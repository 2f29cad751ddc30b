r"""A Gaussian kernel density estimate, to smooth the few samples that ABC keeps.

Rejection ABC keeps, say, the 100 best of 10,000 simulations; a C2ST against 10,000
reference samples needs 10,000 samples, and 100 samples repeated a hundred times each would be
trivially told apart. The sbibm paper therefore fitted a kernel density estimate (KDE) to the
kept parameters and sampled from it (Lueckmann et al., 2021). This module does the same:

* the samples are whitened with their (weighted) mean and covariance, so that one bandwidth
  suits parameters of very different scales (Lotka-Volterra's 0.05 and 1.0);
* the bandwidth :math:`h` maximises the leave-one-out log-likelihood

  .. math::
      \sum_i w_i \log \frac{\sum_{j \ne i} w_j\, N(z_i; z_j, h^2 I)}{\sum_{j \ne i} w_j}

  over a grid around Silverman's rule of thumb;
* :meth:`GaussianKDE.sample` draws a kept sample by weight and adds Gaussian noise, and
  rejects draws outside the prior's support (the posterior has no mass there).

References:
    Silverman (1986), Density Estimation for Statistics and Data Analysis, Chapman & Hall.
    Lueckmann, Boelts, Greenberg, Goncalves & Macke (2021), Benchmarking simulation-based
    inference, AISTATS.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.distributions import Distribution

from sbi_course.priors import in_support

__all__ = ["GaussianKDE", "fit_kde"]


class GaussianKDE:
    """Mixture of Gaussians ``N(samples[i], bandwidth^2 * covariance)`` with weights ``weights``.

    Args:
        samples: kernel centres, shape (M, D).
        weights: normalised weights, shape (M,).
        scale_tril: Cholesky factor of the kernel covariance, shape (D, D).
        bandwidth: the bandwidth in whitened units (for reports).
    """

    def __init__(self, samples: Tensor, weights: Tensor, scale_tril: Tensor, bandwidth: float):
        self.samples = samples.double()
        self.weights = weights.double()
        self.scale_tril = scale_tril.double()
        self.bandwidth = bandwidth

    def sample(
        self,
        num_samples: int,
        generator: torch.Generator | None = None,
        prior: Distribution | None = None,
        max_rounds: int = 100,
    ) -> Tensor:
        """Draw ``num_samples`` samples, shape (num_samples, D), float32.

        With a ``prior``, draws outside its support are rejected and redrawn; after
        ``max_rounds`` rounds the remaining draws are taken untruncated (never seen on the
        benchmark tasks, where most kernels lie well inside the support).
        """
        kept: list[Tensor] = []
        count = 0
        for _ in range(max_rounds):
            draws = self._draw(max(num_samples - count, 100), generator)
            if prior is not None:
                draws = draws[in_support(prior, draws.float())]
            kept.append(draws)
            count += draws.shape[0]
            if count >= num_samples:
                break
        else:
            kept.append(self._draw(num_samples - count, generator))
        return torch.cat(kept)[:num_samples].float()

    def _draw(self, n: int, generator: torch.Generator | None) -> Tensor:
        index = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        noise = torch.randn(n, self.samples.shape[1], generator=generator, dtype=torch.float64)
        return self.samples[index] + noise @ self.scale_tril.T


def _loo_log_likelihood(z: Tensor, weights: Tensor, bandwidth: float) -> float:
    """Weighted leave-one-out log-likelihood of whitened samples ``z`` (M, D)."""
    dim = z.shape[1]
    squared = torch.cdist(z, z).pow(2)
    log_kernel = -0.5 * squared / bandwidth**2 - dim * math.log(bandwidth)
    log_kernel.fill_diagonal_(-math.inf)  # leave sample i out of its own estimate
    log_w = weights.log()
    log_density = torch.logsumexp(log_kernel + log_w[None, :], dim=1)
    log_density = log_density - torch.log1p(-weights.clamp(max=1 - 1e-12))
    return float((weights * log_density).sum())


def fit_kde(samples: Tensor, weights: Tensor | None = None, num_grid: int = 40) -> GaussianKDE:
    """Fit a Gaussian KDE with a cross-validated bandwidth.

    Args:
        samples: the samples to smooth, shape (M, D), M >= 2.
        weights: optional importance weights, shape (M,) (normalised here).
        num_grid: bandwidths tried, log-spaced from 0.1 to 3 times Silverman's rule.

    Returns:
        The fitted :class:`GaussianKDE`.
    """
    samples = samples.double()
    num, dim = samples.shape
    if num < 2:
        raise ValueError(f"fit_kde needs at least 2 samples, got {num}")
    if weights is None:
        weights = torch.full((num,), 1.0 / num, dtype=torch.float64)
    weights = weights.double() / weights.double().sum()
    mean = weights @ samples
    centred = samples - mean
    covariance = (weights[:, None] * centred).T @ centred / (1.0 - (weights**2).sum())
    # A little jitter keeps the Cholesky factor finite when samples are (almost) collinear.
    jitter = 1e-9 * covariance.diagonal().mean().clamp_min(1e-12)
    chol = torch.linalg.cholesky(covariance + jitter * torch.eye(dim, dtype=torch.float64))
    z = torch.linalg.solve_triangular(chol, centred.T, upper=False).T

    ess = float(1.0 / (weights**2).sum())
    silverman = (4.0 / (dim + 2)) ** (1.0 / (dim + 4)) * ess ** (-1.0 / (dim + 4))
    grid = silverman * torch.logspace(math.log10(0.1), math.log10(3.0), num_grid)
    scores = [_loo_log_likelihood(z, weights, float(h)) for h in grid]
    best = float(grid[int(torch.tensor(scores).argmax())])
    return GaussianKDE(samples, weights, best * chol, best)
