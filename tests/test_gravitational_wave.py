"""Tests of the toy gravitational-wave chirp: physics of the Newtonian chirp, noise, shapes,
seeds and bad input."""

from __future__ import annotations

import math

import pytest
import torch

from sbi_course.simulators import gravitational_wave as gw

GW150914 = torch.tensor([30.0, 400.0, 0.8, 0.3], dtype=torch.float64)


def test_interface_and_prior(generator):
    assert (gw.theta_dim, gw.x_dim) == (4, 512)
    assert gw.parameter_labels == ("chirp_mass", "distance", "t_c", "phi_c")
    t = gw.time_grid()
    assert t.shape == (512,) and t[0] == 0 and torch.allclose(t.diff(), torch.tensor(1 / 512.0))
    theta = gw.prior().sample((1000,), generator=generator)
    assert theta.shape == (1000, 4)
    assert torch.isfinite(gw.prior().log_prob(theta)).all()
    assert (theta[:, 2] < t[-1]).all(), "the merger happens inside the window"


def test_shapes_and_seed():
    theta = torch.stack([GW150914, torch.tensor([12.0, 900.0, 0.7, 5.0], dtype=torch.float64)])
    x1 = gw.simulate(theta, torch.Generator().manual_seed(0))
    x2 = gw.simulate(theta, torch.Generator().manual_seed(0))
    x3 = gw.simulate(theta, torch.Generator().manual_seed(1))
    assert x1.shape == (2, 512) and x1.dtype == theta.dtype
    assert torch.equal(x1, x2) and not torch.equal(x1, x3)
    assert gw.simulate(GW150914).shape == (512,)
    assert gw.waveform(GW150914).shape == (512,)
    assert gw.waveform(theta.float()).dtype == torch.float32
    assert torch.equal(gw.waveform(theta)[0], gw.waveform(GW150914))


def test_chirp_frequency_rises_until_coalescence():
    t = gw.time_grid()
    f = gw.frequency(GW150914)
    on = f > 0
    assert on[0] and not on[-1], "on from the window start, off after the merger"
    last = int(on.nonzero().max())
    assert on[: last + 1].all(), "one contiguous chirp"
    assert (f[: last + 1].diff() > 0).all(), "the frequency rises"
    assert t[last] < GW150914[2], "the signal ends before t_c"
    assert f[last] <= gw.cutoff_frequency(GW150914[0])
    assert f[last] > 0.9 * gw.cutoff_frequency(GW150914[0])
    assert (gw.waveform(GW150914)[last + 1 :] == 0).all()


def test_chirp_mass_from_frequency_and_its_derivative():
    """Known answer: Mc = (c^3 / G) [5/96 pi^(-8/3) f^(-11/3) df/dt]^(3/5) (Abbott et al. 2016)."""
    t = torch.linspace(0.1, 0.6, 2001, dtype=torch.float64)
    for chirp_mass in (12.0, 30.0, 45.0):
        theta = torch.tensor([chirp_mass, 500.0, 0.8, 0.0], dtype=torch.float64)
        f = gw.frequency(theta, t)
        f_dot = torch.gradient(f, spacing=(t,))[0]
        estimate = (5 / 96 * math.pi ** (-8 / 3) * f ** (-11 / 3) * f_dot) ** 0.6 / gw.T_SUN
        assert torch.allclose(estimate[1:-1], torch.tensor(chirp_mass).double(), rtol=1e-4)


def test_phase_advances_with_the_frequency():
    """The number of zero crossings of h equals twice the cycles, the integral of f."""
    t = torch.linspace(0.0, 1.0, 200_001, dtype=torch.float64)
    h = gw.waveform(GW150914, t)
    f = gw.frequency(GW150914, t)
    crossings = ((h[:-1] > 0) != (h[1:] > 0)) & (f[1:] > 0)
    cycles = torch.trapezoid(f, t)
    assert abs(int(crossings.sum()) - 2 * cycles.item()) <= 2


def test_amplitude_scales_with_distance_and_is_realistic():
    near, far = GW150914.clone(), GW150914.clone()
    far[1] = 3 * near[1]
    assert torch.allclose(gw.waveform(far), gw.waveform(near) / 3, atol=1e-12)
    # GW150914's peak strain was about 1e-21.
    assert 0.5 < gw.waveform(near).abs().max() * gw.STRAIN_UNIT / 1e-21 < 3


def test_noise_statistics():
    generator = torch.Generator().manual_seed(2)
    noise = gw.simulate_noise(2000, generator)
    assert noise.shape == (2000, 512)
    assert noise.var().item() == pytest.approx(gw.noise_std**2, rel=0.02)
    assert abs(noise.mean().item()) < 0.01
    theta = GW150914.expand(2000, 4)
    residual = gw.simulate(theta, generator) - gw.waveform(theta)
    assert residual.var().item() == pytest.approx(gw.noise_std**2, rel=0.02)


def test_matched_filter_snr():
    generator = torch.Generator().manual_seed(3)
    noise = gw.simulate_noise(4000, generator)
    snr_noise = gw.matched_filter_snr(noise, GW150914)
    assert snr_noise.shape == (4000,)
    # best amplitude and phase over two quadratures: chi-square with 2 degrees of freedom
    assert (snr_noise**2).mean().item() == pytest.approx(2.0, abs=0.15)
    optimal = gw.optimal_snr(GW150914)
    assert 15 < optimal < 35
    x = gw.simulate(GW150914.expand(200, 4), generator)
    wrong_phase = GW150914.clone()
    wrong_phase[3] = 2.0  # the phase is fitted, so it does not matter
    snr = gw.matched_filter_snr(x, wrong_phase)
    assert snr.mean().item() == pytest.approx(optimal.item(), abs=0.5)
    assert gw.matched_filter_snr(x[0], GW150914).shape == ()
    templates = GW150914.repeat(3, 1)
    templates[:, 0] = torch.tensor([15.0, 30.0, 45.0])
    scan = gw.matched_filter_snr(x[0], templates)  # one data set against three templates
    assert scan.shape == (3,) and scan.argmax() == 1


@pytest.mark.parametrize(
    ("theta", "match"),
    [
        (torch.tensor([-30.0, 400.0, 0.8, 0.0]), "non-positive chirp_mass"),
        (torch.tensor([30.0, 0.0, 0.8, 0.0]), "non-positive distance"),
        (torch.tensor([30.0, 400.0, 0.8]), r"shape \(\*, 4\)"),
        (torch.tensor([30.0, float("inf"), 0.8, 0.0]), "NaN or infinite"),
    ],
)
def test_bad_theta(theta, match):
    with pytest.raises(ValueError, match=match):
        gw.simulate(theta)
    with pytest.raises(ValueError, match=match):
        gw.waveform(theta)


def test_bad_other_input():
    with pytest.raises(ValueError, match="num_simulations"):
        gw.simulate_noise(0)
    with pytest.raises(ValueError, match="generator"):
        gw.simulate(GW150914, generator=1)
    with pytest.raises(ValueError, match=r"shape \(\*, 512\)"):
        gw.matched_filter_snr(torch.zeros(100), GW150914)
    with pytest.raises(ValueError, match="rows"):
        gw.matched_filter_snr(torch.zeros(3, 512), GW150914.expand(2, 4))
