r"""A batched adaptive ODE solver: Dormand-Prince 5(4) for many systems at once.

The SIR and Lotka-Volterra simulators solve one small ODE per parameter vector, and SBI needs
thousands of them. Looping over simulations in Python is slow, so :func:`solve_batch`
integrates a whole batch of :math:`N` systems :math:`\dot y = f(t, y; p_n)` together with
tensor operations. Each trajectory keeps its own time, step size and error control; the Python
loop runs over *steps*, never over simulations.

The method is the explicit Runge-Kutta pair of Dormand and Prince: a 5th-order solution
propagates, an embedded 4th-order one estimates the local error, and the step size follows

.. math::

    \mathrm{err} = \sqrt{\tfrac{1}{D}\sum_d \Big(\frac{e_d}{\mathrm{atol}
    + \mathrm{rtol}\,\max(|y_d|, |y^{\mathrm{new}}_d|)}\Big)^2},\qquad
    h \leftarrow h \cdot \mathrm{clip}\big(0.9\,\mathrm{err}^{-1/5},\, 0.2,\, 10\big),

accepting a step when :math:`\mathrm{err} \le 1`. Values at the requested save times come
from the method's 4th-order dense output (a polynomial through the stages of the step that
covers them), so the step size never depends on how many save times are asked for.

A trajectory fails, and returns NaN, when it produces non-finite values, grows beyond
``max_value``, needs a step below ``min_step``, turns out stiff (its steps are limited by
stability, not accuracy) or exceeds ``max_steps``; nothing raises and nothing loops forever.
Finished and failed trajectories drop out of the working set now and then, so a few slow
trajectories do not make the whole batch pay for every step.

Why not one step size for the whole batch, one big stacked ODE as ``scipy.integrate`` would
solve it? That can even be faster, but then the solution for one parameter would depend on
which other parameters share its batch. Here every trajectory is computed as if it were alone.

References:
    Dormand, J. R. and Prince, P. J. (1980). A family of embedded Runge-Kutta formulae.
    Journal of Computational and Applied Mathematics 6(1), 19-26.

    Shampine, L. F. (1986). Some practical Runge-Kutta formulas. Mathematics of
    Computation 46(173), 135-150 (the dense output).

    Hairer, E., Norsett, S. P. and Wanner, G. (1993). Solving Ordinary Differential
    Equations I, 2nd ed., Sections II.4-II.6 (step-size control, starting step).

    Hairer, E. and Wanner, G. (1996). Solving Ordinary Differential Equations II, 2nd ed.,
    Section IV.2 (detecting stiffness in an explicit method).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction as F

import torch
from torch import Tensor

__all__ = ["ODESolution", "solve_batch"]

# The Butcher tableau of Dormand-Prince 5(4). Row i of A gives stage i from stages 0..i-1.
_C = [F(0), F(1, 5), F(3, 10), F(4, 5), F(8, 9), F(1), F(1)]
_A = [
    [],
    [F(1, 5)],
    [F(3, 40), F(9, 40)],
    [F(44, 45), F(-56, 15), F(32, 9)],
    [F(19372, 6561), F(-25360, 2187), F(64448, 6561), F(-212, 729)],
    [F(9017, 3168), F(-355, 33), F(46732, 5247), F(49, 176), F(-5103, 18656)],
]
# 5th-order weights (these are also row 6 of A: the last stage is f at the new point, "FSAL").
_B5 = [F(35, 384), F(0), F(500, 1113), F(125, 192), F(-2187, 6784), F(11, 84), F(0)]
_B4 = [F(5179, 57600), F(0), F(7571, 16695), F(393, 640), F(-92097, 339200), F(187, 2100), F(1, 40)]
# Dense output: y(t + s h) = y + h * sum_i k_i * (s P[i,0] + s^2 P[i,1] + s^3 P[i,2] + s^4 P[i,3]).
_P = [
    [F(1), F(-8048581381, 2820520608), F(8663915743, 2820520608), F(-12715105075, 11282082432)],
    [F(0), F(0), F(0), F(0)],
    [F(0), F(131558114200, 32700410799), F(-68118460800, 10900136933), F(87487479700, 32700410799)],
    [F(0), F(-1754552775, 470086768), F(14199869525, 1410260304), F(-10690763975, 1880347072)],
    [
        F(0),
        F(127303824393, 49829197408),
        F(-318862633887, 49829197408),
        F(701980252875, 199316789632),
    ],
    [F(0), F(-282668133, 205662961), F(2019193451, 616988883), F(-1453857185, 822651844)],
    [F(0), F(40617522, 29380423), F(-110615467, 29380423), F(69997945, 29380423)],
]


def _float64(values: list) -> Tensor:
    """Exact fractions, in a list or a list of rows, as a float64 tensor (each rounded once)."""

    def to_float(value):
        return [to_float(v) for v in value] if isinstance(value, list) else float(value)

    return torch.tensor(to_float(values), dtype=torch.float64)


_C_F = [float(c) for c in _C]
_A_T = [_float64(row) for row in _A]
_B5_T = _float64(_B5[:6])
_E_T = _float64([b5 - b4 for b5, b4 in zip(_B5, _B4, strict=True)])  # error weights
_P_T = _float64(_P)  # (7, 4)

# Step-size controller constants (Hairer et al., II.4).
_SAFETY, _MIN_FACTOR, _MAX_FACTOR = 0.9, 0.2, 10.0

RHS = Callable[[Tensor, Tensor, Tensor], Tensor]


@dataclass
class ODESolution:
    """What :func:`solve_batch` returns.

    Attributes:
        y: the solution at the save times, shape (N, T, D), float64; NaN rows where failed.
        success: whether each trajectory reached the last save time, shape (N,), bool.
        num_steps: attempted steps (accepted and rejected) per trajectory, shape (N,).
    """

    y: Tensor
    success: Tensor
    num_steps: Tensor


def _rms(values: Tensor) -> Tensor:
    return values.square().mean(dim=-1).sqrt()


def _select(keep: Tensor, *values: Tensor) -> tuple[Tensor, ...]:
    return tuple(value[keep] for value in values)


def _initial_step(rhs: RHS, t0, y0, f0, params, rtol, atol, span) -> Tensor:
    """Starting step size per trajectory (Hairer et al., II.4, "starting step size")."""
    scale = atol + rtol * y0.abs()
    d0, d1 = _rms(y0 / scale), _rms(f0 / scale)
    h0 = torch.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / d1).clamp(max=span)
    y1 = y0 + h0[:, None] * f0
    d2 = _rms((rhs(t0 + h0, y1, params) - f0) / scale) / h0
    d = torch.maximum(d1, d2)
    h1 = torch.where(d <= 1e-15, (h0 * 1e-3).clamp(min=1e-6), (0.01 / d) ** 0.2)
    h = torch.minimum(100 * h0, h1).clamp(max=span)
    return torch.nan_to_num(h, nan=1e-6)


def _stages(
    rhs: RHS,
    t: Tensor,
    y: Tensor,
    f: Tensor,
    h_step: Tensor,
    t_new: Tensor,
    params: Tensor,
    hk: Tensor,
) -> tuple[Tensor, Tensor, Tensor]:
    """One Dormand-Prince step: fill ``hk`` (7, n, D) with the stages times the step size.

    The six stages, then the new point; stage 7 is ``f(t + h, y_new)`` and becomes the first
    stage of the next step ("first same as last").

    Returns:
        ``(y_new, f_new, y_6)``: the 5th-order solution, its derivative and the last stage's
        point (which the stiffness test needs).
    """
    hc = h_step[:, None]
    hk_flat = hk.view(7, -1)  # (7, n * D): stage combinations become one matrix-vector product
    y_flat = y.view(-1)
    torch.mul(f, hc, out=hk[0])
    for i in range(1, 6):
        y_i = torch.addmv(y_flat, hk_flat[:i].T, _A_T[i]).view_as(y)
        torch.mul(rhs(torch.add(t, h_step, alpha=_C_F[i]), y_i, params), hc, out=hk[i])
    y_new = torch.addmv(y_flat, hk_flat[:6].T, _B5_T).view_as(y)
    f_new = rhs(t_new, y_new, params)
    torch.mul(f_new, hc, out=hk[6])
    return y_new, f_new, y_i


def _dense_output(
    accept: Tensor,
    t: Tensor,
    t_new: Tensor,
    h_step: Tensor,
    y: Tensor,
    hk: Tensor,
    rows: Tensor,
    next_save: Tensor,
    times_ext: Tensor,
    out_flat: Tensor,
) -> None:
    """Write the solution at every save time an accepted step passes; advance ``next_save``.

    All rows are evaluated together; rows without a save time in this step write to the spare
    last row of ``out_flat`` (of shape (N * T + 1, D)).
    """
    num_times = times_ext.shape[0] - 1
    spare = out_flat.shape[0] - 1
    while True:
        hit = accept & (times_ext[next_save] <= t_new)
        if not bool(hit.any()):
            break
        s = torch.nan_to_num((times_ext[next_save] - t) / h_step).clamp_(0.0, 1.0)
        powers = torch.cumprod(s[:, None].expand(-1, 4), dim=1)  # s, s^2, s^3, s^4
        weights = (powers @ _P_T.T).T[:, :, None]  # (7, n, 1)
        y_save = y + (weights * hk).sum(dim=0)
        target = torch.where(hit, rows * num_times + next_save, spare)
        out_flat.index_copy_(0, target, y_save)
        next_save += hit


def _stiffness(
    hk: Tensor,
    y_new: Tensor,
    y_6: Tensor,
    accept: Tensor,
    stiff_count: Tensor,
    calm_count: Tensor,
) -> tuple[Tensor, Tensor]:
    r"""Hairer's stiffness test; returns the updated ``(stiff_count, calm_count)``.

    :math:`|h\lambda| \approx |h k_7 - h k_6| / |y_{new} - y_6|` estimates the step against the
    fastest local time scale; above 3.25 the step sits at the edge of the method's stability
    region instead of being set by the accuracy. Six calm steps in a row reset the count.
    """
    h_lambda_sq = (hk[6] - hk[5]).square().sum(-1) / (y_new - y_6).square().sum(-1)
    looks_stiff = h_lambda_sq > 3.25**2
    calm_count = torch.where(accept, (calm_count + 1) * ~looks_stiff, calm_count)
    stiff_count = torch.where(accept & looks_stiff, stiff_count + 1, stiff_count)
    return stiff_count * (calm_count < 6), calm_count


def solve_batch(
    rhs: RHS,
    y0: Tensor,
    times: Tensor,
    params: Tensor,
    *,
    rtol: float = 1e-6,
    atol: float | Tensor = 1e-9,
    max_steps: int = 10_000,
    max_value: float = 1e20,
    stiff_steps: int | None = 15,
) -> ODESolution:
    r"""Solve :math:`\dot y = f(t, y; p_n)`, :math:`y(t_0) = y_{0,n}` for a batch of systems.

    Args:
        rhs: the right-hand side ``rhs(t, y, params) -> dy/dt`` for a (sub)batch: ``t`` of shape
            (n,), ``y`` (n, D), ``params`` (n, P); returns (n, D). It must act row by row.
        y0: initial states at ``times[0]``, shape (N, D) (or (D,) to share one).
        times: save times, shape (T,), strictly increasing; the solve runs from ``times[0]``
            to ``times[-1]``.
        params: parameters of each system, shape (N, P).
        rtol: relative tolerance of the local error.
        atol: absolute tolerance, a float or a tensor of shape (D,) (one per state variable).
        max_steps: the most steps (accepted and rejected) a trajectory may take.
        max_value: a state whose absolute value exceeds this counts as blown up.
        stiff_steps: a trajectory whose steps have been limited by stability rather than
            accuracy this many times (Hairer's stiffness test) and that cannot reach the end
            within its remaining step budget at its current step size fails at once, instead
            of spending the budget (``None``: never give up early).

    Returns:
        An :class:`ODESolution` with ``y`` of shape (N, T, D) in float64; failed trajectories
        (non-finite values, blow-up, stiffness, step-size underflow, step budget exhausted)
        are NaN.
    """
    dtype = torch.float64
    params = torch.as_tensor(params, dtype=dtype)
    times = torch.as_tensor(times, dtype=dtype).reshape(-1)
    n, num_times = params.shape[0], times.shape[0]
    y0 = torch.as_tensor(y0, dtype=dtype).expand(n, -1).clone()
    atol = torch.as_tensor(atol, dtype=dtype)
    if num_times > 1 and not bool((times[1:] > times[:-1]).all()):
        raise ValueError("solve_batch needs strictly increasing save times")

    # One spare row at the end of the flat output takes the writes of rows that save nothing.
    out_flat = torch.full((n * num_times + 1, y0.shape[1]), float("nan"), dtype=dtype)
    out = out_flat[:-1].view(n, num_times, -1)
    out[:, 0] = y0
    success = torch.zeros(n, dtype=torch.bool)
    num_steps = torch.zeros(n, dtype=torch.long)
    if num_times == 1:
        success[:] = torch.isfinite(y0).all(dim=-1)
        out[~success] = float("nan")
        return ODESolution(out, success, num_steps)

    t0, t_end = times[0], times[-1]
    min_step = 1e-12 * float(t_end - t0)
    # Save times padded with +inf, so that `times_ext[next_save] <= t` is False once all are saved.
    times_ext = torch.cat([times, times.new_full((1,), float("inf"))])

    # The working set: rows of the batch that are still being integrated. `rows` maps a
    # working index to its place in the batch; finished and failed rows are dropped now and then.
    rows = torch.arange(n)
    t = t0.expand(n).clone()
    y = y0
    f = rhs(t, y, params)
    active = torch.isfinite(y).all(dim=-1) & torch.isfinite(f).all(dim=-1)
    h = _initial_step(rhs, t, y, f, params, rtol, atol, float(t_end - t0))
    h = torch.where(active, h, 0.0)
    next_save = torch.ones(n, dtype=torch.long)  # index of the next save time to fill
    finished = torch.zeros(n, dtype=torch.bool)
    just_rejected = torch.zeros(n, dtype=torch.bool)
    # Hairer's stiffness counters: steps that looked stiff, and calm steps since the last one.
    stiff_count = torch.zeros(n, dtype=torch.long)
    calm_count = torch.zeros(n, dtype=torch.long)
    steps = torch.zeros(n, dtype=torch.long)
    # The stages times the step size, h * k_i, for all 7 stages: shape (7, n, D).
    hk = torch.empty((7, n, y0.shape[1]), dtype=dtype)

    def retire(leaving: Tensor) -> None:
        # Record the outcome of the rows that leave the working set.
        success[rows[leaving]] = finished[leaving]
        num_steps[rows[leaving]] = steps[leaving]

    for _ in range(max_steps):
        num_active = int(active.sum())
        if num_active == 0:
            break
        # Drop finished and failed rows once they make up half of the working set.
        if rows.numel() >= 32 and num_active <= rows.numel() // 2:
            retire(~active)
            keep = active.nonzero().squeeze(1)
            rows, t, y, f, h, params = _select(keep, rows, t, y, f, h, params)
            next_save, finished, steps = _select(keep, next_save, finished, steps)
            active, just_rejected = _select(keep, active, just_rejected)
            stiff_count, calm_count = _select(keep, stiff_count, calm_count)
            hk = hk[:, keep]

        # Do not step past the end. Inactive rows have h = 0 and take a step of zero length.
        remaining = t_end - t
        last = active & (h >= remaining)
        h_step = torch.minimum(h, remaining)
        t_new = torch.where(last, t_end, t + h_step)
        y_new, f_new, y_i = _stages(rhs, t, y, f, h_step, t_new, params, hk)
        hk_flat = hk.view(7, -1)

        # Error estimate from the embedded 4th-order solution. NaN or inf in the step gives a
        # NaN or inf error, which is never <= 1: the step is rejected and h shrinks.
        error = torch.mv(hk_flat.T, _E_T).view_as(y)
        y_new_abs = y_new.abs()
        scale = torch.maximum(y.abs(), y_new_abs).mul_(rtol).add_(atol)
        err = torch.nan_to_num(_rms(error / scale), nan=float("inf"))
        accept = active & (err <= 1.0)

        _dense_output(accept, t, t_new, h_step, y, hk, rows, next_save, times_ext, out_flat)

        t = torch.where(accept, t_new, t)
        y = torch.where(accept[:, None], y_new, y)
        f = torch.where(accept[:, None], f_new, f)

        # New step size; no growth right after a rejection (Hairer et al., II.4).
        factor = (_SAFETY * err.clamp(min=1e-10) ** -0.2).clamp_(_MIN_FACTOR, _MAX_FACTOR)
        factor = torch.where(just_rejected, factor.clamp(max=1.0), factor)
        h = h_step * factor
        just_rejected = active & ~accept

        # Blow-up, step-size underflow and hopeless stiffness end a trajectory as failed.
        blown_up = accept & (y_new_abs.amax(dim=-1) > max_value)
        give_up = just_rejected & (h < min_step)
        if stiff_steps is not None:
            stiff_count, calm_count = _stiffness(hk, y_new, y_i, accept, stiff_count, calm_count)
            budget = (max_steps - 1 - steps) * h
            give_up |= (stiff_count >= stiff_steps) & (budget < t_end - t)
        done = accept & last & ~blown_up
        finished |= done
        steps += active
        active = active & ~(done | blown_up | give_up)
        h = h * active

    retire(torch.ones_like(active))
    out[~success] = float("nan")
    return ODESolution(out, success, num_steps)
