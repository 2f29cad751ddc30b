r"""The seven summary statistics of a Hodgkin-Huxley voltage trace.

Spike count, resting potential and its spread before the stimulus, and the first four moments
of the voltage during it, as in the ``sbi`` library's Hodgkin-Huxley tutorial. Used by
:mod:`sbi_course.simulators.hodgkin_huxley`, which re-exports :func:`summary_statistics`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sbi_course._validation import unflatten_batch
from sbi_course.simulators._hh_protocol import DT, T_OFF, T_ON, _num_steps

__all__ = ["SPIKE_THRESHOLD", "summary_labels", "summary_statistics"]

SPIKE_THRESHOLD = -10.0  # mV
summary_labels: tuple[str, ...] = (
    "spike_count",
    "rest_mean",
    "rest_std",
    "stim_mean",
    "stim_variance",
    "stim_skewness",
    "stim_kurtosis",
)


def summary_statistics(
    traces: Tensor,
    *,
    dt: float = DT,
    t_on: float = T_ON,
    t_off: float = T_OFF,
    threshold: float = SPIKE_THRESHOLD,
) -> Tensor:
    r"""The tutorial's seven summary statistics of voltage traces.

    1. spike count: upward crossings of ``threshold`` (mV) during the stimulus
       (:math:`t_{on} < t < t_{off}`); a spike rises by about 100 mV/ms, far faster than the
       noise moves V, so each spike crosses exactly once;
    2. resting potential: mean voltage before the stimulus (:math:`t < t_{on}`);
    3. its standard deviation over the last tenth of that window (the neuron has settled);
    4. to 7. mean, variance, skewness :math:`m_3 / s^3` and kurtosis :math:`m_4 / s^4` (not
       the excess) of the voltage during the stimulus, with central moments :math:`m_k` and
       :math:`s^2 = m_2` (no Bessel correction).

    Args:
        traces: voltages in mV, shape (*, T), sampled every ``dt`` ms from t = 0; T must
            cover the protocol (more than ``t_off / dt`` samples).
        dt: sampling interval in ms.
        t_on: stimulus onset in ms.
        t_off: stimulus offset in ms.
        threshold: spike detection threshold in mV.

    Returns:
        Summary statistics, shape (*, 7), in ``traces``' dtype; NaN rows for traces
        with NaN entries (failed simulations).

    Raises:
        ValueError: for traces too short for the protocol, or an inconsistent protocol.
    """
    owner = "hodgkin_huxley.summary_statistics"
    if not isinstance(traces, Tensor) or traces.ndim == 0:
        shape = tuple(traces.shape) if isinstance(traces, Tensor) else type(traces).__name__
        raise ValueError(f"traces for {owner} must have shape (*, T), got {shape}")
    _num_steps(t_off, dt, owner)
    if not 0 < t_on < t_off:
        raise ValueError(f"{owner} needs 0 < t_on < t_off, got t_on={t_on}, t_off={t_off}")
    # Sample indices rather than float times, so that t = 10 ms is not "just after" t_on.
    i_on, i_off = round(t_on / dt), round(t_off / dt)
    if traces.shape[-1] <= i_off or i_on < 2:
        raise ValueError(
            f"traces for {owner} have {traces.shape[-1]} samples, but the protocol (t_on={t_on} "
            f"ms, t_off={t_off} ms, dt={dt} ms) needs more than {i_off}"
        )
    batch_shape = traces.shape[:-1]
    v = traces.reshape(-1, traces.shape[-1])
    # A block of rows at a time: the temporaries stay small, which is twice as fast.
    x = torch.cat([_statistics(block, i_on, i_off, threshold) for block in v.split(128)])
    x = x.to(traces.dtype if traces.is_floating_point() else torch.get_default_dtype())
    return unflatten_batch(x, batch_shape)


def _statistics(v: Tensor, i_on: int, i_off: int, threshold: float) -> Tensor:
    """The seven statistics of traces of shape (n, T), as float64 of shape (n, 7)."""
    v = v.to(torch.float64)  # the moments of a 10,000-sample window deserve float64
    stim = v[:, i_on + 1 : i_off]  # t_on < t < t_off
    # a crossing between samples i - 1 and i, for every i inside the stimulus window
    crossings = (v[:, i_on : i_off - 1] < threshold) & (stim >= threshold)
    spike_count = crossings.sum(dim=1).to(torch.float64)
    rest_mean = v[:, :i_on].mean(dim=1)
    rest_std = v[:, int(0.9 * i_on) : i_on].std(dim=1, correction=0)
    stim_mean = stim.mean(dim=1)
    centred = stim - stim_mean[:, None]
    squared = centred * centred  # products are cheaper than pow
    variance = squared.mean(dim=1)
    skewness = (squared * centred).mean(dim=1) / variance**1.5
    kurtosis = (squared * squared).mean(dim=1) / variance**2
    x = torch.stack(
        [spike_count, rest_mean, rest_std, stim_mean, variance, skewness, kurtosis], dim=1
    )
    x[~torch.isfinite(v).all(dim=1)] = float("nan")
    return x
