r"""Matched-filter search of the toy gravitational-wave data over a bank of templates.

A search slides *templates* (noise-free chirps) over the data and reports how well each one
fits (Allen et al., 2012). For a template of chirp mass :math:`\mathcal{M}` and merger time
:math:`t_c`, the unknown phase is handled by its two quadratures :math:`h_c` (phase 0) and
:math:`h_s` (phase :math:`\pi/2`): the least-squares fit of the data :math:`x` on
:math:`\mathrm{span}(h_c, h_s)` has squared length

.. math::

    \lVert P x \rVert^2 = \frac{g_{ss}\, p_c^2 - 2 g_{cs}\, p_c p_s + g_{cc}\, p_s^2}
                             {g_{cc} g_{ss} - g_{cs}^2},

with projections :math:`p_c = \langle x, h_c \rangle`, :math:`p_s = \langle x, h_s \rangle` and
the Gram entries :math:`g_{ab} = \langle h_a, h_b \rangle`. The signal-to-noise ratio is
:math:`\rho = \lVert P x \rVert / \sigma`; for noise alone :math:`\rho^2 \sim \chi^2_2` for
each template. The distance only scales a template, so templates are built at 400 Mpc.

:class:`TemplateBank` holds the quadratures of every (mass, merger time) pair of a grid and
computes the SNR of a batch of data sets against all of them with two matrix products; its
:meth:`TemplateBank.features` are the summary statistics lecture 7 gives NPE: for each bank
mass, the largest SNR over merger times and the merger time where it occurs.

Example:
    >>> import torch
    >>> from sbi_course.simulators import gravitational_wave
    >>> from sbi_course.simulators.gw_search import TemplateBank
    >>> bank = TemplateBank(torch.linspace(10, 50, 5), torch.linspace(0.6, 0.9, 30))
    >>> x = gravitational_wave.simulate_noise(3, generator=torch.Generator().manual_seed(0))
    >>> bank.snr(x).shape, bank.features(x).shape
    (torch.Size([3, 5, 30]), torch.Size([3, 10]))

References:
    Allen, B., Anderson, W. G., Brady, P. R., Brown, D. A. & Creighton, J. D. E. (2012).
    FINDCHIRP: an algorithm for detection of gravitational waves from inspiraling compact
    binaries. Physical Review D 85, 122006.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from sbi_course.simulators import gravitational_wave

__all__ = ["TemplateBank"]

_REFERENCE_DISTANCE = 400.0  # Mpc; the SNR does not depend on it


class TemplateBank:
    """Both phase quadratures of every template on a grid of chirp masses and merger times.

    Args:
        masses: chirp masses of the bank in solar masses, shape (K,).
        times: merger times of the bank in s, shape (T,).
        dtype: dtype of the templates and of the SNRs (float32 or float64).

    Attributes:
        masses, times: the grid.
        grid: (mass, merger time) of every template, shape (K * T, 2), masses varying slowest.
        h_cos, h_sin: the quadratures, shape (K * T, 512).
    """

    def __init__(self, masses: Tensor, times: Tensor, dtype: torch.dtype = torch.float32):
        masses, times = torch.as_tensor(masses).reshape(-1), torch.as_tensor(times).reshape(-1)
        if len(masses) == 0 or len(times) == 0:
            raise ValueError("TemplateBank needs at least one mass and one merger time")
        self.masses, self.times, self.dtype = masses, times, dtype
        self.grid = torch.cartesian_prod(masses, times)
        self.h_cos, self.h_sin = self._templates(0.0), self._templates(math.pi / 2)
        self._g_cc = (self.h_cos * self.h_cos).sum(1)
        self._g_cs = (self.h_cos * self.h_sin).sum(1)
        self._g_ss = (self.h_sin * self.h_sin).sum(1)

    def _templates(self, phase: float) -> Tensor:
        n = len(self.grid)
        theta = torch.stack(
            [
                self.grid[:, 0],
                torch.full((n,), _REFERENCE_DISTANCE),
                self.grid[:, 1],
                torch.full((n,), phase),
            ],
            dim=1,
        )
        return gravitational_wave.waveform(theta.to(self.dtype))

    def snr(self, x: Tensor) -> Tensor:
        """Matched-filter SNR of data ``x`` (N, 512) against every template: (N, K, T)."""
        x = torch.as_tensor(x)
        if x.ndim != 2 or x.shape[1] != self.h_cos.shape[1]:
            raise ValueError(
                f"TemplateBank.snr: x must have shape (N, {self.h_cos.shape[1]}), got "
                f"{tuple(x.shape)}"
            )
        x = x.to(self.dtype)
        p_cos, p_sin = x @ self.h_cos.T, x @ self.h_sin.T
        g_cc, g_cs, g_ss = self._g_cc, self._g_cs, self._g_ss
        fit = (g_ss * p_cos**2 - 2 * g_cs * p_cos * p_sin + g_cc * p_sin**2) / (
            g_cc * g_ss - g_cs**2
        )
        snr = fit.clamp(min=0).sqrt() / gravitational_wave.noise_std
        return snr.reshape(len(x), len(self.masses), len(self.times))

    def features(self, x: Tensor, chunk_size: int = 1000) -> Tensor:
        """Per bank mass, the best SNR over merger times and its merger time: (N, 2 K).

        Data are processed in chunks of ``chunk_size`` rows to keep the (N, K * T) matrices
        small.
        """
        out = []
        for chunk in torch.as_tensor(x).split(chunk_size):
            best, where = self.snr(chunk).max(dim=2)
            out.append(torch.cat([best, self.times[where].to(best.dtype)], dim=1))
        return torch.cat(out)
