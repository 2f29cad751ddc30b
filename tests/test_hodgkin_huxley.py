"""Tests of the Hodgkin-Huxley simulator: shapes, seeds, bad input, physiology, and equality
with the one-neuron-at-a-time loop of :mod:`sbi_course.simulators._hh_reference`."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch

from sbi_course.simulators import hodgkin_huxley as hh
from sbi_course.simulators._hh_reference import simulate_loop

NUM_STEPS = round(hh.DURATION / hh.DT)
AMPLITUDES_NA = (0.0, 0.1, 0.3, 0.5, 1.0)


@pytest.fixture(scope="module")
def current_sweep():
    """The tutorial's neuron (gbar_Na = 50, gbar_K = 5) under growing current steps, with the
    same noise for every neuron (one 120 ms batched run)."""
    theta = hh.reference_parameters().expand(len(AMPLITUDES_NA), 2)
    current = torch.stack([hh.step_current(amplitude_nA=a) for a in AMPLITUDES_NA])
    noise = torch.randn(NUM_STEPS, generator=torch.Generator().manual_seed(0))
    traces = hh.voltage_traces(theta, noise=noise, current=current)
    return traces, hh.summary_statistics(traces)


def test_interface():
    assert (hh.theta_dim, hh.x_dim) == (2, 7)
    assert hh.parameter_labels == ("gbar_Na", "gbar_K")
    assert len(hh.summary_labels) == hh.x_dim
    assert hh.time_grid().shape == (NUM_STEPS + 1,)
    assert hh.time_grid()[-1].item() == pytest.approx(120.0)


def test_prior(generator):
    prior = hh.prior()
    theta = prior.sample((1000,), generator=generator)
    assert theta.shape == (1000, 2)
    assert (theta[:, 0] >= 0.5).all() and (theta[:, 0] <= 80).all()
    assert (theta[:, 1] >= 1e-4).all() and (theta[:, 1] <= 15).all()
    assert torch.isfinite(prior.log_prob(theta)).all()
    wide = hh.prior(parameters=hh.PARAMETER_NAMES)
    assert wide.sample((3,), generator=generator).shape == (3, len(hh.PARAMETER_NAMES))
    assert torch.isfinite(wide.log_prob(hh.reference_parameters(hh.PARAMETER_NAMES))).all()


def test_step_current():
    current = hh.step_current()
    assert current.shape == (NUM_STEPS + 1,)
    # 0.5 nA over pi * (70 um)^2 is 3.25 uA/cm^2, on from sample 1000 (10 ms) to 10999.
    assert current[1000].item() == pytest.approx(0.5e-3 / (np.pi * 70e-4**2))
    assert current[999] == 0 and current[10999] > 0 and current[11000] == 0


def test_reproducible_and_noise_argument():
    theta = torch.tensor([[50.0, 5.0], [10.0, 2.0]])
    kwargs = {"duration": 5.0}

    def run(seed):
        return hh.voltage_traces(theta, torch.Generator().manual_seed(seed), **kwargs)

    assert torch.equal(run(1), run(1))
    assert not torch.equal(run(1), run(2))
    # the generator draws float32 noise time-major, shape (T - 1, N)
    noise = torch.randn(500, 2, generator=torch.Generator().manual_seed(1)).T
    assert torch.equal(hh.voltage_traces(theta, noise=noise, **kwargs), run(1))
    unbatched = hh.voltage_traces(theta[0], noise=noise[0], **kwargs)
    assert unbatched.shape == (501,)
    assert torch.equal(unbatched, hh.voltage_traces(theta, noise=noise, **kwargs)[0])


def test_batched_equals_loop():
    """Same equations, same noise: the batched simulator and the loop agree to rounding."""
    generator = torch.Generator().manual_seed(3)
    theta = torch.tensor([[50.0, 5.0], [12.0, 9.0], [70.0, 1.0]], dtype=torch.float64)
    duration = 40.0  # long enough for spikes, short enough for a fast test
    current = hh.step_current(t_off=30.0, duration=duration)
    noise = torch.randn(3, 4000, generator=generator, dtype=torch.float64)
    batched = hh.voltage_traces(theta, noise=noise, current=current, duration=duration)
    for row in range(3):
        params = dict(hh.FIXED_VALUES, gbar_Na=theta[row, 0].item(), gbar_K=theta[row, 1].item())
        loop = simulate_loop(params, current.numpy(), noise[row].numpy())
        np.testing.assert_allclose(batched[row].numpy(), loop, rtol=0, atol=1e-7)
    tutorial = simulate_loop(params, current.numpy(), noise[2].numpy(), tutorial_style=True)
    np.testing.assert_allclose(batched[2].numpy(), tutorial, rtol=0, atol=1e-7)
    assert (batched.max(dim=1).values > 0).all()  # every neuron spiked: a real test


def test_extra_parameters_match_fixed_values():
    """Inferring gbar_M at its fixed value gives the default model's traces."""
    noise = torch.randn(300, generator=torch.Generator().manual_seed(4))
    default = hh.voltage_traces(torch.tensor([50.0, 5.0]), noise=noise, duration=3.0)
    names = ("gbar_K", "gbar_Na", "gbar_M", "V_T")
    theta = torch.tensor([5.0, 50.0, 0.07, -60.0], dtype=torch.float64)
    assert torch.allclose(hh.reference_parameters(names), theta.float())
    extended = hh.voltage_traces(theta, noise=noise, duration=3.0, parameters=names)
    assert torch.equal(default, extended)


def test_spikes_during_stimulus_only(current_sweep):
    traces, x = current_sweep
    before = hh.time_grid() < hh.T_ON
    assert traces.shape == (len(AMPLITUDES_NA), NUM_STEPS + 1)
    assert (traces[:, before] < -60).all(), "the neuron should rest before the stimulus"
    assert x.shape == (len(AMPLITUDES_NA), hh.x_dim)
    counts = x[:, 0]
    assert counts[0] == 0, "no current, no spikes"
    assert counts[AMPLITUDES_NA.index(0.5)] >= 3, "the tutorial's neuron spikes at 0.5 nA"
    assert (counts.diff() >= 0).all(), f"spike count should grow with the current: {counts}"
    assert counts[-1] > counts[1]
    # resting potential near E_leak, with the small noise it is given
    assert torch.allclose(x[:, 1], torch.full_like(x[:, 1], -70.0), atol=2.0)
    assert (x[:, 2] > 0).all() and (x[:, 2] < 0.5).all()
    spiking = AMPLITUDES_NA.index(1.0)
    assert x[spiking, 3] > x[spiking, 1] and x[spiking, 4] > 10.0


def test_summary_statistics_known_answer():
    """Spike counting and moments on a hand-made trace, against scipy."""
    generator = torch.Generator().manual_seed(5)
    trace = -65.0 + torch.randn(NUM_STEPS + 1, generator=generator, dtype=torch.float64)
    for start in (1500, 4000, 9000):  # three square "spikes" inside the stimulus
        trace[start : start + 100] = 20.0
    trace[500:600] = 20.0  # a spike before the stimulus does not count
    x = hh.summary_statistics(trace)
    stim = trace[1001:11000].numpy()
    assert x.shape == (7,)
    assert x[0].item() == 3
    assert x[1].item() == pytest.approx(trace[:1000].mean().item())
    assert x[2].item() == pytest.approx(np.std(trace[900:1000].numpy()))
    assert x[3].item() == pytest.approx(stim.mean())
    assert x[4].item() == pytest.approx(stim.var())
    assert x[5].item() == pytest.approx(scipy.stats.skew(stim))
    assert x[6].item() == pytest.approx(scipy.stats.kurtosis(stim, fisher=False))


def test_failed_simulation_gives_nan_row():
    theta = torch.tensor([[50.0, 5.0], [50.0, 5.0]])
    noise = torch.zeros(2, 200)
    noise[1, 50] = float("inf")
    traces = hh.voltage_traces(theta, noise=noise, duration=2.0)
    assert torch.isnan(traces[1]).all() and torch.isfinite(traces[0]).all()
    full = torch.full((2, NUM_STEPS + 1), -70.0)
    full[1, 7] = float("nan")
    x = hh.summary_statistics(full)
    assert torch.isnan(x[1]).all() and torch.isfinite(x[0, :3]).all()


def test_simulate_shapes_and_seed():
    theta = torch.tensor([[50.0, 5.0], [2.0, 10.0]])
    x = hh.simulate(theta, torch.Generator().manual_seed(6), batch_size=1)
    assert x.shape == (2, 7) and x.dtype == theta.dtype
    assert torch.isfinite(x).all()
    single = hh.simulate(theta[0], torch.Generator().manual_seed(6))
    assert single.shape == (7,)
    assert torch.allclose(single, x[0])  # the first chunk draws the same noise
    # batch_size bounds memory only: every neuron has its own noise (issue #14, item 9).
    assert torch.equal(hh.simulate(theta, torch.Generator().manual_seed(6), batch_size=2), x)


@pytest.mark.parametrize(
    ("theta", "kwargs", "match"),
    [
        (torch.tensor([50.0, -1.0]), {}, "non-positive gbar_K"),
        (torch.tensor([[0.0, 5.0]]), {}, "non-positive gbar_Na"),
        (torch.tensor([50.0, 5.0, 1.0]), {}, r"shape \(\*, 2\)"),
        (torch.tensor([float("nan"), 5.0]), {}, "NaN"),
        (torch.tensor([50.0]), {"parameters": ("gbar_Ca",)}, "parameters"),
        (torch.tensor([50.0, 5.0]), {"parameters": ("gbar_K", "gbar_K")}, "distinct"),
        (torch.tensor([50.0, 5.0]), {"noise": torch.zeros(7)}, "noise"),
        (torch.tensor([50.0, 5.0]), {"current": torch.zeros(7)}, "current"),
        (torch.tensor([50.0, 5.0]), {"generator": 0}, "generator"),
    ],
)
def test_bad_input(theta, kwargs, match):
    with pytest.raises(ValueError, match=match):
        hh.voltage_traces(theta, **kwargs)


def test_bad_input_simulate_and_statistics():
    with pytest.raises(ValueError, match="hodgkin_huxley"):
        hh.simulate(torch.tensor([50.0, 5.0]), batch_size=0)
    with pytest.raises(ValueError, match="non-positive tau_max"):
        hh.simulate(torch.tensor([-5.0]), parameters="tau_max")
    with pytest.raises(ValueError, match=r"shape \(\*, T\)"):
        hh.summary_statistics(torch.tensor(1.0))
    with pytest.raises(ValueError, match="4 samples.*protocol"):
        hh.summary_statistics(torch.zeros(2, 3, 4))
