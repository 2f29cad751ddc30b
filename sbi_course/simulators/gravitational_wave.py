r"""Toy gravitational-wave chirp of a binary black-hole inspiral, in white noise.

Two compact objects spiral in, radiating gravitational waves whose frequency and amplitude
grow until they merge: the "chirp" that LIGO saw on 14 September 2015 (GW150914). At leading
(Newtonian quadrupole) order the signal depends on the masses only through the chirp mass
:math:`\mathcal{M} = (m_1 m_2)^{3/5} / (m_1 + m_2)^{1/5}`. With :math:`\tau = t_c - t` the
time left until coalescence and :math:`T_\mathcal{M} = G\mathcal{M}/c^3` (seconds),

.. math::

    f(\tau) = \frac{1}{\pi} \left(\frac{5}{256\,\tau}\right)^{3/8} T_\mathcal{M}^{-5/8},
    \qquad
    \Phi(\tau) = \phi_c - 2 \left(\frac{\tau}{5 T_\mathcal{M}}\right)^{5/8},

    h(t) = \frac{4 c}{D} \, T_\mathcal{M}^{5/3} \, (\pi f)^{2/3} \cos \Phi,

where :math:`\Phi` is the gravitational-wave phase (:math:`d\Phi/dt = 2 \pi f`) and
:math:`h` is the strain of an optimally oriented source at luminosity distance :math:`D`
(Maggiore 2008, eqs. 4.30-4.37; Cutler and Flanagan 1994). The formula breaks down as the
orbit shrinks to the innermost stable circular orbit (ISCO), so the signal is switched off once
:math:`f` exceeds :math:`f_{ISCO} = c^3 / (6^{3/2} \pi G M)` of an equal-mass binary, whose
total mass is :math:`M = 2^{6/5} \mathcal{M}` (and at 0.45 times the sampling rate at the
latest, against aliasing), and after :math:`t_c`.

Toy choices, so that the lecture runs on a laptop: one detector, no antenna pattern, white
Gaussian noise instead of LIGO's coloured noise, 1 s sampled at 512 Hz (L = 512 samples), and
strain measured in units of :math:`10^{-21}` (:data:`STRAIN_UNIT`). The noise standard
deviation :data:`noise_std` is set so that a GW150914-like source (chirp mass 30, 400 Mpc)
reaches an optimal signal-to-noise ratio of about 23 (GW150914: 24); over the prior the median
is about 11 and one source in twenty stays below 3, hard to tell from noise alone.

Shapes: ``theta`` (N, 4) = (chirp mass in solar masses, distance in Mpc, coalescence time
:math:`t_c` in s, phase :math:`\phi_c` in rad) -> ``x`` (N, 512), strain in units of
:math:`10^{-21}` at the times of :func:`time_grid`.

References:
    Cutler, C. and Flanagan, E. E. (1994). Gravitational waves from merging compact binaries:
    How accurately can one extract the binary's parameters from the inspiral waveform?
    Phys. Rev. D 49, 2658.

    Maggiore, M. (2008). Gravitational Waves, Volume 1: Theory and Experiments. Oxford
    University Press, chapter 4.1.

    Abbott, B. P. et al. (LIGO Scientific Collaboration and Virgo Collaboration) (2016).
    Observation of gravitational waves from a binary black hole merger. Phys. Rev. Lett. 116,
    061102.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.distributions import Distribution

from sbi_course._validation import (
    broadcast_rows,
    check_count,
    check_generator,
    check_memory,
    check_positive,
    flatten_batch,
    unflatten_batch,
)
from sbi_course.priors import BoxUniform
from sbi_course.simulators._spec import SimulatorSpec

__all__ = [
    "theta_dim",
    "x_dim",
    "parameter_labels",
    "noise_std",
    "prior",
    "time_grid",
    "frequency",
    "cutoff_frequency",
    "waveform",
    "simulate",
    "simulate_noise",
    "optimal_snr",
    "matched_filter_snr",
    "spec",
]

theta_dim: int = 4
parameter_labels: tuple[str, ...] = ("chirp_mass", "distance", "t_c", "phi_c")

SAMPLING_RATE = 512.0  # Hz
DURATION = 1.0  # s
x_dim: int = round(SAMPLING_RATE * DURATION)

T_SUN = 4.925490947641267e-6  # G M_sun / c^3 in s
SPEED_OF_LIGHT = 299_792_458.0  # m/s
MEGAPARSEC = 3.085677581491367e22  # m
STRAIN_UNIT = 1e-21  # the data are strain / 1e-21
noise_std: float = 0.5  # white-noise standard deviation per sample, in STRAIN_UNIT

# Chirp mass (solar masses), distance (Mpc), coalescence time (s), phase (rad).
PRIOR_LOW = (10.0, 100.0, 0.6, 0.0)
PRIOR_HIGH = (50.0, 1500.0, 0.95, 2 * math.pi)
_OWNER = "gravitational_wave"


def prior() -> Distribution:
    """Uniform prior over (chirp mass, distance, t_c, phi_c).

    Chirp mass in [10, 50] solar masses (GW150914: about 30), distance in [100, 1500] Mpc
    (GW150914: about 400), coalescence time in [0.6, 0.95] s of the 1 s window and phase in
    [0, 2 pi).
    """
    return BoxUniform(torch.tensor(PRIOR_LOW), torch.tensor(PRIOR_HIGH))


def time_grid() -> Tensor:
    """Sample times in seconds, shape (L,) = (512,): ``i / SAMPLING_RATE``."""
    return torch.arange(x_dim) / SAMPLING_RATE  # exact in float32: powers of two


def _as_theta(theta: Tensor) -> tuple[Tensor, torch.Size]:
    theta, batch_shape = flatten_batch(theta, theta_dim, name="theta", owner=_OWNER)
    check_positive(theta[:, :2], _OWNER, parameter_labels[:2])
    return theta, batch_shape


def _times(t: Tensor | None, owner: str) -> Tensor:
    """The time grid ``t`` as shape (L,), or a ValueError naming ``owner``."""
    if t is None:
        return time_grid()
    t = torch.as_tensor(t)
    if t.ndim != 1 or t.numel() == 0:
        raise ValueError(
            f"t for {owner} must have shape (L,) (one time grid), got {tuple(t.shape)}"
        )
    if not torch.isfinite(t).all():
        raise ValueError(f"t for {owner} contains NaN or infinite times")
    return t


def cutoff_frequency(chirp_mass: Tensor) -> Tensor:
    r"""Frequency (Hz) at which the toy signal stops, for chirp masses in solar masses.

    The ISCO frequency of an equal-mass binary, :math:`c^3 / (6^{3/2} \pi G M)` with
    :math:`M = 2^{6/5} \mathcal{M}`, capped at 0.45 times the sampling rate.
    """
    total_mass = 2 ** (6 / 5) * torch.as_tensor(chirp_mass, dtype=torch.float64)
    f_isco = 1.0 / (6**1.5 * math.pi * T_SUN * total_mass)
    return f_isco.clamp(max=0.45 * SAMPLING_RATE)


def _chirp(theta: Tensor, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Frequency (Hz), phase (rad) and on/off mask of the chirp, each of shape (N, L)."""
    chirp_mass, t_c, phi_c = (theta[:, j, None].double() for j in (0, 2, 3))
    t_m = T_SUN * chirp_mass  # G M / c^3 in seconds
    tau = t_c - t.double()
    on = tau > 0
    tau = torch.where(on, tau, torch.ones_like(tau))  # placeholder where the signal is off
    freq = (5.0 / (256.0 * tau)) ** 0.375 * t_m**-0.625 / math.pi
    phase = phi_c - 2.0 * (tau / (5.0 * t_m)) ** 0.625
    on = on & (freq <= cutoff_frequency(chirp_mass))
    return torch.where(on, freq, torch.zeros_like(freq)), phase, on


def frequency(theta: Tensor, t: Tensor | None = None) -> Tensor:
    """Gravitational-wave frequency f(t) in Hz, and 0 where the signal is off.

    Args:
        theta: parameters, shape (*, 4).
        t: times in s, shape (L,); defaults to :func:`time_grid`.

    Returns:
        Frequencies, shape (N, L) (or (L,)), in ``theta``'s dtype.
    """
    theta, batch_shape = _as_theta(theta)
    freq, _, _ = _chirp(theta, _times(t, f"{_OWNER}.frequency"))
    return unflatten_batch(freq.to(theta.dtype), batch_shape)


def waveform(theta: Tensor, t: Tensor | None = None) -> Tensor:
    """Noise-free strain h(t) in units of :data:`STRAIN_UNIT` (1e-21).

    Args:
        theta: parameters (chirp mass in solar masses, distance in Mpc, t_c in s, phi_c in
            rad), shape (*, 4).
        t: times in s, shape (L,); defaults to :func:`time_grid`.

    Returns:
        Strain, shape (N, L) (or (L,)), in ``theta``'s dtype; zero after the cutoff.

    Raises:
        ValueError: on a wrong shape, non-finite entries or non-positive mass or distance.
    """
    theta, batch_shape = _as_theta(theta)
    t = _times(t, f"{_OWNER}.waveform")
    check_memory(
        theta.shape[0] * t.shape[0] * 8 * 6,
        what=f"{theta.shape[0]} waveforms of {t.shape[0]} float64 samples",
        owner=f"{_OWNER}.waveform",
        argument="theta or t",
    )
    freq, phase, on = _chirp(theta, t)
    t_m = T_SUN * theta[:, 0, None].double()
    distance = MEGAPARSEC * theta[:, 1, None].double()
    amplitude = 4.0 * SPEED_OF_LIGHT / distance * t_m ** (5 / 3) * (math.pi * freq) ** (2 / 3)
    h = torch.where(on, amplitude * torch.cos(phase), torch.zeros_like(phase)) / STRAIN_UNIT
    return unflatten_batch(h.to(theta.dtype), batch_shape)


def simulate(theta: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Chirp plus white Gaussian noise of standard deviation :data:`noise_std`.

    Args:
        theta: parameters, shape (*, 4) (see :func:`waveform`).
        generator: random number generator for the noise.

    Returns:
        Data ``x`` (strain / 1e-21), shape (N, 512) (or (512,)).
    """
    theta, batch_shape = _as_theta(theta)
    check_generator(generator, _OWNER)
    h = waveform(theta)
    x = h + noise_std * torch.randn(h.shape, generator=generator, dtype=h.dtype)
    return unflatten_batch(x, batch_shape)


def simulate_noise(num_simulations: int, generator: torch.Generator | None = None) -> Tensor:
    """Data under the "no merger" hypothesis: noise only, shape (num_simulations, 512)."""
    check_generator(generator, _OWNER)
    num_simulations = check_count(num_simulations, "num_simulations", f"{_OWNER}.simulate_noise")
    check_memory(
        num_simulations * x_dim * 4,
        what=f"{num_simulations} noise series of {x_dim} floats",
        owner=f"{_OWNER}.simulate_noise",
        argument="num_simulations",
    )
    return noise_std * torch.randn(num_simulations, x_dim, generator=generator)


def optimal_snr(theta: Tensor) -> Tensor:
    r"""Signal-to-noise ratio :math:`\sqrt{\sum_i h_i^2} / \sigma` of a perfectly matched
    filter, shape (N,) (or a scalar for unbatched ``theta``)."""
    h = waveform(theta)
    return h.pow(2).sum(dim=-1).sqrt() / noise_std


def matched_filter_snr(x: Tensor, theta: Tensor) -> Tensor:
    r"""Matched-filter signal-to-noise ratio of data against the template of ``theta``.

    The template's phase and amplitude are fitted: the data are projected on the plane
    spanned by the two quadratures :math:`h(\phi_c = 0)` and :math:`h(\phi_c = \pi / 2)`
    (with ``theta``'s chirp mass and :math:`t_c`; its distance and phase do not matter), and
    the length of the projection is measured in units of the noise. For pure noise its square
    is chi-square distributed with 2 degrees of freedom; for data with the template's signal it
    is close to :func:`optimal_snr`.

    Args:
        x: data, shape (N, 512) or (512,).
        theta: template parameters, shape (*, 4); a single row of either is used with
            every row of the other.

    Returns:
        SNR, shape (N,) (or a scalar when both inputs are unbatched).
    """
    owner = f"{_OWNER}.matched_filter_snr"
    x, x_shape = flatten_batch(x, x_dim, name="x", owner=owner)
    theta, theta_shape = _as_theta(theta)
    batch_shape = broadcast_rows(
        x_shape, theta_shape, (x_dim, theta_dim), names=("x", "theta"), owner=owner
    )
    if x.shape[0] != theta.shape[0] and 1 not in (x.shape[0], theta.shape[0]):
        # Several batch dimensions that broadcast: pair the rows explicitly.
        x = unflatten_batch(x, x_shape).expand(batch_shape + (x_dim,)).reshape(-1, x_dim)
        theta = (
            unflatten_batch(theta, theta_shape)
            .expand(batch_shape + (theta_dim,))
            .reshape(-1, theta_dim)
        )
    num = max(x.shape[0], theta.shape[0])
    quadratures = []
    for phase in (0.0, math.pi / 2):
        template = theta.double().clone()
        template[:, 3] = phase
        quadratures.append(waveform(template))
    basis = torch.stack(quadratures, dim=-1)  # (N or 1, L, 2): the two templates as columns
    gram = basis.mT @ basis  # (., 2, 2)
    if (gram.diagonal(dim1=-2, dim2=-1) == 0).any():
        raise ValueError(f"{_OWNER}.matched_filter_snr: a template is zero on the time grid")
    projections = (x.double().unsqueeze(-2) @ basis).squeeze(-2)  # (N, 2)
    # The least-squares fit of x on the basis has squared length p^T G^{-1} p.
    coefficients = torch.linalg.solve(gram.expand(num, 2, 2), projections.expand(num, 2))
    snr = (projections * coefficients).sum(-1).clamp(min=0).sqrt() / noise_std
    return snr.to(x.dtype).reshape(batch_shape)


spec = SimulatorSpec(
    name="gravitational_wave",
    theta_dim=theta_dim,
    x_dim=x_dim,
    parameter_labels=parameter_labels,
    prior=prior,
    simulate=simulate,
    log_likelihood=None,
    sample_posterior=None,
)
