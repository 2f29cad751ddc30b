"""The template bank of sbi_course.simulators.gw_search against the package's matched filter."""

from __future__ import annotations

import pytest
import torch

from sbi_course.simulators import gravitational_wave
from sbi_course.simulators.gw_search import TemplateBank


def test_bank_snr_matches_the_single_template_filter_and_finds_the_signal():
    g = torch.Generator().manual_seed(3)
    bank = TemplateBank(torch.linspace(20, 40, 5), torch.arange(0.7, 0.9, 0.01), torch.float64)
    theta = torch.tensor([30.0, 300.0, 0.8, 1.0])
    x = gravitational_wave.simulate(theta, generator=g)[None]
    snr = bank.snr(x)[0]  # (5, 20)
    k, t = divmod(int(snr.argmax()), snr.shape[1])
    assert bank.masses[k] == pytest.approx(30.0) and bank.times[t] == pytest.approx(0.8, abs=0.02)
    template = torch.tensor([bank.masses[k], 400.0, bank.times[t], 0.0])
    single = gravitational_wave.matched_filter_snr(x[0], template)
    assert snr.max() == pytest.approx(float(single), rel=1e-4)

    features = bank.features(torch.cat([x, gravitational_wave.simulate_noise(2, generator=g)]))
    assert features.shape == (3, 10)
    assert features[0, :5].max() > 2 * features[1:, :5].max()  # signal beats noise
    with pytest.raises(ValueError, match="TemplateBank.snr"):
        bank.snr(torch.zeros(2, 100))
