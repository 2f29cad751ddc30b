"""The real data sets shipped in data/ and the models of sbi_course.real_data."""

from __future__ import annotations

import pytest
import torch

from sbi_course import real_data


def test_lynx_hare_table_is_the_published_one():
    years, pelts = real_data.load_lynx_hare()
    assert years.shape == (21,) and pelts.shape == (21, 2)
    assert years[0] == 1900 and years[-1] == 1920
    # Spot checks against the published table (hares, lynx; thousands of pelts).
    assert pelts[0].tolist() == pytest.approx([30.0, 4.0])
    assert pelts[4].tolist() == pytest.approx([36.3, 59.4])  # 1904: the lynx peak
    assert pelts[17].tolist() == pytest.approx([7.6, 15.8])  # 1917: the hare trough


def test_boarding_school_counts_are_the_bmj_ones():
    days, counts = real_data.load_boarding_school_flu()
    assert days.tolist() == list(range(1, 15))
    assert counts.tolist() == [3, 8, 26, 76, 225, 298, 258, 233, 189, 128, 68, 29, 14, 4]
    assert counts.max() < real_data.SCHOOL_SIZE


def test_simulators_shapes_reproducibility_and_errors():
    theta_lv = torch.tensor([[0.55, 0.028, 0.8, 0.024, 33.9, 5.9]] * 3)
    x = real_data.pelts_simulate(theta_lv, generator=torch.Generator().manual_seed(0))
    again = real_data.pelts_simulate(theta_lv, generator=torch.Generator().manual_seed(0))
    assert x.shape == (3, 42) and torch.equal(x, again)
    # The noise-free solution starts at the initial populations and oscillates.
    u = real_data.pelts_solve(theta_lv[:1])[0]
    assert u[0].tolist() == pytest.approx([33.9, 5.9])
    assert u[:, 1].max() > 3 * u[:, 1].min()

    theta_flu = torch.tensor([[1.7, 0.5]])
    infected = real_data.flu_solve(theta_flu)[0]
    assert infected[0] == pytest.approx(1.0) and infected.max() > 200
    counts = real_data.flu_simulate(theta_flu, generator=torch.Generator().manual_seed(1))
    assert counts.shape == (1, 14) and (counts >= 0).all()

    with pytest.raises(ValueError, match="pelts_solve"):
        real_data.pelts_solve(torch.ones(2, 5))
    with pytest.raises(ValueError, match="flu_solve"):
        real_data.flu_solve(torch.tensor([[1.0, -0.5]]))
