r"""Convergence diagnostics of MCMC chains: split R-hat and effective sample size.

:math:`\hat R` compares the variance between chains with the variance within them (near 1
when the chains agree, above 1.01-1.1 when they do not); the effective sample size counts how
many independent draws the autocorrelated chains are worth (Geyer's initial positive
sequence). :class:`MCMCResult` carries chains and both diagnostics.

References:
    Gelman, Carlin, Stern, Dunson, Vehtari & Rubin (2013), Bayesian Data Analysis, 3rd ed.,
    chapter 11 (split R-hat, effective sample size).
    Geyer (1992), Practical Markov chain Monte Carlo, Statistical Science 7(4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["MCMCResult", "rhat", "effective_sample_size"]


@dataclass
class MCMCResult:
    """Chains and diagnostics of :func:`run_mcmc`.

    Attributes:
        chains: the kept states after warm-up and thinning, shape (C, S, D).
        log_prob: ``log_prob_fn`` at those states, shape (C, S).
        acceptance_rate: share of accepted proposals after warm-up (always 1.0 for slice
            sampling, which never rejects a move).
        evaluations_per_step: mean number of ``log_prob_fn`` evaluations per chain and step.
        method: ``"slice"`` or ``"mh"``.
    """

    chains: Tensor
    log_prob: Tensor
    acceptance_rate: float
    evaluations_per_step: float
    method: str

    @property
    def samples(self) -> Tensor:
        """All kept states, shape (C * S, D), ordered step by step across chains."""
        return self.chains.transpose(0, 1).reshape(-1, self.chains.shape[-1])

    @property
    def rhat(self) -> Tensor:
        """Split R-hat of every dimension, shape (D,)."""
        return rhat(self.chains)

    @property
    def ess(self) -> Tensor:
        """Effective sample size of every dimension, shape (D,)."""
        return effective_sample_size(self.chains)

    def __repr__(self) -> str:
        num_chains, num_steps, dim = self.chains.shape
        return (
            f"MCMCResult(method={self.method!r}, chains={num_chains}, steps={num_steps}, "
            f"dim={dim}, max R-hat={float(self.rhat.max()):.3f}, "
            f"min ESS={float(self.ess.min()):.0f}, acceptance={self.acceptance_rate:.2f})"
        )


def _as_chains(chains: Tensor) -> Tensor:
    chains = torch.as_tensor(chains, dtype=torch.float64)
    if chains.ndim == 2:
        chains = chains.unsqueeze(-1)
    if chains.ndim != 3 or chains.shape[1] < 4:
        raise ValueError(
            f"chains must have shape (num_chains, num_steps, D) or (num_chains, num_steps) "
            f"with at least 4 steps, got {tuple(chains.shape)}"
        )
    return chains


def _split(chains: Tensor) -> Tensor:
    """Cut each chain into halves: (C, S, D) -> (2C, S // 2, D)."""
    half = chains.shape[1] // 2
    return torch.cat([chains[:, :half], chains[:, -half:]], dim=0)


def rhat(chains: Tensor) -> Tensor:
    r"""Split :math:`\hat R` of each dimension (Gelman et al., 2013, section 11.4).

    Each chain is cut in half, so that a chain that drifts also counts as disagreeing with
    itself. With ``m`` half-chains of length ``n``, within-chain variance ``W`` and
    between-chain variance ``B``,

    .. math::
        \hat R = \sqrt{\frac{(n - 1)/n \, W + B / n}{W}}.

    Values near 1 (below about 1.01 to 1.1) mean the chains agree; larger values mean they have
    not mixed (for example chains stuck in different modes).

    Args:
        chains: shape (C, S, D) or (C, S), at least 4 steps per chain.

    Returns:
        Split R-hat per dimension, shape (D,) (float64).
    """
    halves = _split(_as_chains(chains))
    n = halves.shape[1]
    chain_means = halves.mean(dim=1)
    within = halves.var(dim=1, unbiased=True).mean(dim=0)
    between = n * chain_means.var(dim=0, unbiased=True)
    pooled = (n - 1) / n * within + between / n
    return torch.sqrt(pooled / within)


def effective_sample_size(chains: Tensor) -> Tensor:
    r"""Effective sample size of each dimension across all chains (Gelman et al., 2013).

    Autocorrelations :math:`\rho_t` are estimated from the split chains together, and the
    integrated autocorrelation time :math:`\tau = -1 + 2 \sum_k (\rho_{2k} + \rho_{2k+1})` is
    summed while these pair sums stay positive (Geyer's initial positive sequence);
    ESS :math:`= m n / \tau`. It can exceed the number of samples (anti-correlated chains)
    and is unreliable for chains of only a few tens of steps.

    Args:
        chains: shape (C, S, D) or (C, S), at least 4 steps per chain.

    Returns:
        Effective sample size per dimension, shape (D,) (float64).
    """
    halves = _split(_as_chains(chains))
    m, n, _ = halves.shape
    centred = halves - halves.mean(dim=1, keepdim=True)
    # Autocovariance of every chain via FFT, zero-padded to avoid wrap-around.
    size = 2 ** math.ceil(math.log2(2 * n))
    spectrum = torch.fft.rfft(centred, n=size, dim=1)
    autocov = torch.fft.irfft(spectrum * spectrum.conj(), n=size, dim=1)[:, :n] / n
    within = halves.var(dim=1, unbiased=True).mean(dim=0)
    pooled = (n - 1) / n * within + halves.mean(dim=1).var(dim=0, unbiased=True)
    rho = 1.0 - (within - autocov.mean(dim=0)) / pooled  # (n, D)
    num_pairs = n // 2
    pairs = rho[: 2 * num_pairs].reshape(num_pairs, 2, -1).sum(dim=1)  # (n // 2, D)
    # Keep pair sums up to (not including) the first negative one.
    keep = torch.cumprod((pairs > 0).to(pairs.dtype), dim=0)
    tau = -1.0 + 2.0 * (pairs * keep).sum(dim=0)
    tau = torch.clamp(tau, min=1.0 / math.log10(max(m * n, 10)))
    return m * n / tau
