r"""Continuous normalizing flows: sampling and densities through an ODE.

A *continuous* flow moves a point :math:`u(s)` from noise (:math:`s = 0`) to a sample
(:math:`s = 1`) along a learned velocity field,

.. math::
    \frac{du}{ds} = v(u, s),\qquad u(0) \sim \mathcal N(0, I).

The densities :math:`p_s` of :math:`u(s)` obey the continuity equation
:math:`\partial_s p_s + \nabla\cdot(p_s v) = 0`. Along one trajectory this becomes the
*instantaneous change of variables* (Chen et al. 2018):

.. math::
    \frac{d}{ds}\log p_s\big(u(s)\big) = -\nabla\cdot v\big(u(s), s\big),
    \qquad\text{so}\qquad
    \log p_1(u_1) = \log \mathcal N\big(u(0); 0, I\big) - \int_0^1 \nabla\cdot v\,ds ,

where :math:`u(\cdot)` is the trajectory through :math:`u_1` at :math:`s = 1`, found by
solving the ODE backwards. It replaces the log-determinant of a discrete flow by the integral
of a trace. Two ways to get the divergence
:math:`\nabla\cdot v = \mathrm{tr}(\partial v/\partial u)`:

* **exact**: one backward pass per dimension (``D`` passes), used when :math:`D \le 10`
  (:data:`EXACT_DIVERGENCE_MAX_DIM`);
* **Hutchinson's estimator** (Hutchinson 1990; Grathwohl et al. 2019):
  :math:`\mathrm{tr}(J) = \mathbb E[\epsilon^\top J \epsilon]` for Rademacher :math:`\epsilon`,
  one backward pass, with the same :math:`\epsilon` along a whole trajectory; the log-density
  is then unbiased but noisy. Used above 10 dimensions.

Two solvers: fixed-step Euler (``method="euler"``, ``num_steps`` steps, what a student writes
first) and the adaptive Dormand-Prince 5(4) pair of :mod:`sbi_course.simulators._ode`
(``method="dopri5"``, error control by ``rtol`` and ``atol``), the default.

:class:`ContinuousFlowPosterior` wraps this into the course's distribution interface:
``sample(sample_shape, generator=)`` and ``log_prob(theta)``, restricted to the prior's support
(draws outside are rejected, as for NPE).

References:
    Chen, Rubanova, Bettencourt & Duvenaud (2018), Neural ordinary differential equations,
    NeurIPS.
    Grathwohl, Chen, Bettencourt, Sutskever & Duvenaud (2019), FFJORD: free-form continuous
    dynamics for scalable reversible generative models, ICLR.
    Hutchinson (1990), A stochastic estimator of the trace of the influence matrix for
    Laplacian smoothing splines, Communications in Statistics.
    Dormand & Prince (1980), A family of embedded Runge-Kutta formulae, J. Comput. Appl. Math.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import torch
from torch import Tensor
from torch.distributions import Distribution, constraints

from sbi_course._validation import check_generator
from sbi_course.inference.vector_field import VectorFieldNet
from sbi_course.priors import in_support
from sbi_course.simulators._ode import solve_batch

__all__ = [
    "EXACT_DIVERGENCE_MAX_DIM",
    "Velocity",
    "divergence",
    "integrate",
    "flow_log_prob",
    "ContinuousFlowPosterior",
]

#: Up to this dimension :func:`flow_log_prob` computes the divergence exactly.
EXACT_DIVERGENCE_MAX_DIM = 10

#: ``velocity(u, s, context) -> du/ds``: u of shape (n, D), s (n,), context (n, C).
Velocity = Callable[[Tensor, Tensor, Tensor], Tensor]

_METHODS = ("dopri5", "euler")


def _check_method(method: str, num_steps: int, owner: str) -> None:
    if method not in _METHODS:
        raise ValueError(f"method for {owner} must be one of {_METHODS}, got {method!r}")
    if int(num_steps) != num_steps or num_steps < 1:
        raise ValueError(f"num_steps for {owner} must be a positive integer, got {num_steps}")


def divergence(
    velocity: Velocity, u: Tensor, s: Tensor, context: Tensor, noise: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    r"""The velocity and its divergence :math:`\nabla_u\cdot v(u, s)` at ``u`` (n, D).

    With ``noise`` (n, D) Hutchinson's estimate :math:`\epsilon^\top (\partial v/\partial u)
    \epsilon` (one backward pass), otherwise the exact trace (D backward passes).

    Returns:
        ``(v, div)`` of shapes (n, D) and (n,), detached.
    """
    with torch.enable_grad():
        u = u.detach().requires_grad_(True)
        v = velocity(u, s, context)
        if noise is not None:
            (grad,) = torch.autograd.grad((v * noise).sum(), u)
            div = (grad * noise).sum(dim=1)
        else:
            dim = u.shape[1]
            div = torch.zeros(u.shape[0], dtype=v.dtype)
            for i in range(dim):
                (grad,) = torch.autograd.grad(v[:, i].sum(), u, retain_graph=i < dim - 1)
                div = div + grad[:, i]
    return v.detach(), div.detach()


def integrate(
    velocity: Velocity,
    u0: Tensor,
    context: Tensor,
    *,
    s_start: float = 0.0,
    s_end: float = 1.0,
    method: str = "dopri5",
    num_steps: int = 50,
    rtol: float = 1e-4,
    atol: float = 1e-4,
    save_times: Tensor | None = None,
) -> Tensor:
    r"""Solve :math:`du/ds = v(u, s, \text{context})` from ``s_start`` to ``s_end``.

    Args:
        velocity: the field, ``velocity(u, s, context)``.
        u0: states at ``s_start``, shape (n, D).
        context: one row per state, shape (n, C) (passed through unchanged).
        s_start, s_end: the interval (``s_end < s_start`` runs backwards).
        method: ``"dopri5"`` (adaptive) or ``"euler"`` (``num_steps`` fixed steps).
        num_steps: steps of the Euler method.
        rtol, atol: tolerances of the adaptive method.
        save_times: optional fractions of the way, increasing from 0 to 1, at which to return
            the states (shape (T,)); by default only the end.

    Returns:
        The states at ``s_end``, shape (n, D), or at ``save_times``, shape (T, n, D), in the
        dtype of ``u0``. Trajectories the adaptive solver could not finish are NaN.
    """
    _check_method(method, num_steps, "integrate")
    span = s_end - s_start
    dtype = u0.dtype
    n, dim = u0.shape
    taus = torch.tensor([0.0, 1.0]) if save_times is None else torch.as_tensor(save_times)

    def rhs(tau: Tensor, u: Tensor, ctx: Tensor) -> Tensor:
        s = (s_start + span * tau).to(dtype)
        return span * velocity(u.to(dtype), s, ctx.to(dtype)).to(u.dtype)

    with torch.no_grad():
        if method == "dopri5":
            solution = solve_batch(
                rhs, u0, taus, context, rtol=rtol, atol=atol, stiff_steps=None, max_steps=2000
            )
            states = solution.y.to(dtype).transpose(0, 1)  # (T, n, D)
        else:
            saved, u, h = [u0], u0.clone(), 1.0 / num_steps
            targets = taus.tolist()[1:]
            for k in range(num_steps):
                tau = torch.full((n,), k * h, dtype=dtype)
                u = u + h * rhs(tau, u, context)
                while targets and targets[0] <= (k + 1) * h + 1e-12:
                    saved.append(u.clone())
                    targets.pop(0)
            states = torch.stack(saved)
    return states[-1] if save_times is None else states


def flow_log_prob(
    velocity: Velocity,
    u1: Tensor,
    context: Tensor,
    *,
    hutchinson: bool | None = None,
    method: str = "dopri5",
    num_steps: int = 50,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Log-density :math:`\log p_1(u_1)` of the flow's samples, by the instantaneous change
    of variables (solved backwards from :math:`s = 1` to :math:`s = 0`, standard normal base).

    Args:
        velocity: the field.
        u1: points, shape (n, D).
        context: one row per point, shape (n, C).
        hutchinson: use Hutchinson's estimator (default: when D > 10).
        method, num_steps, rtol, atol: the solver (see :func:`integrate`).
        generator: draws Hutchinson's Rademacher vectors (default: a fixed seed, so that the
            same points give the same numbers).

    Returns:
        Log-densities, shape (n,).
    """
    n, dim = u1.shape
    if hutchinson is None:
        hutchinson = dim > EXACT_DIVERGENCE_MAX_DIM
    noise_width = dim if hutchinson else 0
    if hutchinson:
        generator = generator or torch.Generator().manual_seed(0)
        noise = torch.randint(0, 2, (n, dim), generator=generator).to(u1.dtype) * 2 - 1
    else:
        noise = u1.new_zeros(n, 0)
    width = context.shape[1]

    # The augmented state (u, l) with dl/ds = div v; params carry the context and the noise.
    def augmented(y: Tensor, s: Tensor, params: Tensor) -> Tensor:
        ctx, eps = params[:, :width], params[:, width : width + noise_width]
        v, div = divergence(velocity, y[:, :dim], s, ctx, eps if hutchinson else None)
        return torch.cat([v, div[:, None]], dim=1)

    y1 = torch.cat([u1, u1.new_zeros(n, 1)], dim=1)
    y0 = integrate(
        augmented,
        y1,
        torch.cat([context, noise], dim=1),
        s_start=1.0,
        s_end=0.0,
        method=method,
        num_steps=num_steps,
        rtol=rtol,
        atol=atol,
    )
    u0, ell = y0[:, :dim], y0[:, dim]
    base = -0.5 * (u0**2).sum(dim=1) - 0.5 * dim * math.log(2 * math.pi)
    return base + ell


class ContinuousFlowPosterior(Distribution):
    r"""The posterior of a continuous flow at ``x_o``, restricted to the prior's support.

    Samples are ODE solutions from standard normal noise, mapped back from z-scored
    coordinates; draws outside the prior's support are rejected and the accepted fraction kept
    in :attr:`acceptance_rate`. :meth:`log_prob` solves the ODE backwards with the divergence
    (exact up to 10 dimensions, Hutchinson above), adds the z-scoring's log-determinant and,
    with ``normalize=True``, subtracts the log of the acceptance rate (estimated once per
    observation from ``num_normalization_samples`` draws with a fixed seed).

    Args:
        net: the trained network (for its z-scoring and context embedding).
        velocity: ``velocity(u, s, context)``, noise at ``s = 0``, posterior at ``s = 1``, on
            z-scored parameters and embedded contexts.
        prior: the prior.
        x_o: one observation (L,) (``batch_shape == ()``) or several (M, L) (``(M,)``).
        method, num_steps, rtol, atol: the ODE solver (see :func:`integrate`).
        hutchinson: force (``True``) or forbid (``False``) Hutchinson's divergence estimate.
        max_proposals: give up after this many proposals for one observation.
        warn_below: warn when the acceptance rate is below this value.
        num_normalization_samples: draws used to estimate the acceptance rate for
            :meth:`log_prob`.
    """

    arg_constraints: dict = {}
    has_rsample = False

    def __init__(
        self,
        net: VectorFieldNet,
        velocity: Velocity,
        prior: Distribution,
        x_o: Tensor,
        *,
        method: str = "dopri5",
        num_steps: int = 50,
        rtol: float = 1e-4,
        atol: float = 1e-4,
        hutchinson: bool | None = None,
        max_proposals: int = 10_000_000,
        warn_below: float = 0.01,
        num_normalization_samples: int = 2_000,
    ):
        owner = type(self).__name__
        _check_method(method, num_steps, owner)
        x_o = torch.as_tensor(x_o)
        if not x_o.is_floating_point():
            x_o = x_o.to(torch.get_default_dtype())
        if x_o.ndim not in (1, 2) or x_o.shape[-1] != net.x_dim or x_o.numel() == 0:
            raise ValueError(
                f"x_o for {owner} must have shape ({net.x_dim},) or (M, {net.x_dim}), "
                f"got {tuple(x_o.shape)}"
            )
        if not torch.isfinite(x_o).all():
            raise ValueError(f"x_o for {owner} contains NaN or infinite values")
        self.net, self.velocity, self.prior, self.x_o = net, velocity, prior, x_o
        self.method, self.num_steps, self.rtol, self.atol = method, int(num_steps), rtol, atol
        self.hutchinson = hutchinson
        self.max_proposals, self.warn_below = int(max_proposals), warn_below
        self.num_normalization_samples = int(num_normalization_samples)
        self.theta_dim = net.theta_dim
        self.num_proposed, self.num_accepted = 0, 0
        self._log_normalizer: Tensor | None = None
        super().__init__(x_o.shape[:-1], torch.Size([net.theta_dim]), validate_args=False)

    @property
    def support(self):
        return getattr(self.prior, "support", constraints.real_vector)

    @property
    def acceptance_rate(self) -> float:
        """Accepted / proposed draws over all :meth:`sample` calls (``nan`` before any)."""
        return self.num_accepted / self.num_proposed if self.num_proposed else math.nan

    def _observations(self) -> Tensor:
        return self.x_o.reshape(-1, self.net.x_dim)

    def _draw(self, num: int, context: Tensor, generator: torch.Generator | None) -> Tensor:
        """``num`` unconstrained draws in z-scored coordinates for one embedded context (1, C)."""
        u0 = torch.randn(num, self.theta_dim, generator=generator, dtype=self.net.dtype)
        return integrate(
            self.velocity,
            u0,
            context.expand(num, -1),
            method=self.method,
            num_steps=self.num_steps,
            rtol=self.rtol,
            atol=self.atol,
        )

    def _sample_one(self, num: int, x: Tensor, generator: torch.Generator | None) -> Tensor:
        with torch.no_grad():
            context = self.net.embed_context(x[None])
        accepted, count, proposed, accepted_here = [], 0, 0, 0
        while count < num:
            if proposed >= self.max_proposals:
                raise RuntimeError(
                    f"{type(self).__name__}: only {count} of {num} samples inside the prior after "
                    f"{proposed} proposals; the estimator puts its mass outside the prior: "
                    "train longer or on more simulations"
                )
            rate = max(accepted_here, 1) / proposed if proposed else 1.0
            batch = int(min(max((num - count) / rate * 1.1, 100), 100_000))
            batch = min(batch, self.max_proposals - proposed)
            with torch.no_grad():
                theta = self.net.theta_standardize.inverse(self._draw(batch, context, generator))
            keep = in_support(self.prior, theta) & torch.isfinite(theta).all(dim=1)
            proposed += batch
            accepted_here += int(keep.sum())
            accepted.append(theta[keep])
            count += int(keep.sum())
        self.num_proposed += proposed
        self.num_accepted += accepted_here
        return torch.cat(accepted)[:num]

    def sample(self, sample_shape=torch.Size(), generator: torch.Generator | None = None) -> Tensor:
        """Draw samples of shape ``sample_shape + batch_shape + (D,)`` inside the prior.

        Raises:
            RuntimeError: when too few draws land inside the prior's support.
        """
        owner = f"{type(self).__name__}.sample"
        check_generator(generator, owner)
        shape = torch.Size((sample_shape,) if isinstance(sample_shape, int) else sample_shape)
        if any(size < 0 for size in shape):
            raise ValueError(f"sample_shape for {owner} must be non-negative, got {tuple(shape)}")
        num = math.prod(shape)
        draws = [self._sample_one(num, x, generator) for x in self._observations()]
        if self.acceptance_rate < self.warn_below:
            warnings.warn(
                f"{type(self).__name__}: only {self.acceptance_rate:.2%} of the draws lie inside "
                "the prior's support; the posterior estimate is unreliable",
                stacklevel=2,
            )
        samples = torch.stack(draws, dim=1)  # (num, M, D)
        return samples.reshape(shape + self.batch_shape + self.event_shape)

    def log_normalizer(self) -> Tensor:
        """Log of the estimated acceptance rate per observation, shape ``batch_shape``."""
        if self._log_normalizer is None:
            values = []
            for x in self._observations():
                with torch.no_grad():
                    context = self.net.embed_context(x[None])
                    generator = torch.Generator().manual_seed(0)
                    u = self._draw(self.num_normalization_samples, context, generator)
                    theta = self.net.theta_standardize.inverse(u)
                inside = int(in_support(self.prior, theta).sum())
                values.append(math.log(max(inside, 1) / self.num_normalization_samples))
            self._log_normalizer = torch.tensor(values).reshape(self.batch_shape)
        return self._log_normalizer

    def log_prob(
        self,
        theta: Tensor,
        normalize: bool = True,
        generator: torch.Generator | None = None,
        chunk_size: int = 4096,
    ) -> Tensor:
        """Log-density of ``theta`` of shape ``(*, D)``, broadcast against ``batch_shape``.

        Args:
            theta: parameters.
            normalize: subtract the log of the estimated acceptance rate.
            generator: Hutchinson's noise (only used above 10 dimensions).
            chunk_size: points per ODE solve, to bound memory.

        Returns:
            Log-densities, shape ``broadcast(theta.shape[:-1], batch_shape)``; ``-inf``
            outside the prior's support.
        """
        owner = f"{type(self).__name__}.log_prob"
        theta = torch.as_tensor(theta, dtype=self.net.dtype)
        if theta.ndim == 0 or theta.shape[-1] != self.theta_dim:
            raise ValueError(
                f"theta for {owner} must have shape (*, {self.theta_dim}), got {tuple(theta.shape)}"
            )
        try:
            shape = torch.broadcast_shapes(theta.shape[:-1], self.batch_shape)
        except RuntimeError:
            raise ValueError(
                f"theta of shape {tuple(theta.shape)} does not broadcast against the batch "
                f"shape {tuple(self.batch_shape)} of {type(self).__name__}"
            ) from None
        flat_theta = theta.expand(shape + (self.theta_dim,)).reshape(-1, self.theta_dim)
        flat_x = self.x_o.expand(shape + (self.net.x_dim,)).reshape(-1, self.net.x_dim)
        standardize = self.net.theta_standardize
        values = []
        for start in range(0, flat_theta.shape[0], chunk_size):
            rows = slice(start, start + chunk_size)
            with torch.no_grad():
                context = self.net.embed_context(flat_x[rows])
            values.append(
                flow_log_prob(
                    self.velocity,
                    standardize(flat_theta[rows]),
                    context,
                    hutchinson=self.hutchinson,
                    method=self.method,
                    num_steps=self.num_steps,
                    rtol=min(self.rtol, 1e-5),
                    atol=min(self.atol, 1e-5),
                    generator=generator,
                )
            )
        log_q = torch.cat(values).reshape(shape) + standardize.log_abs_det()
        if normalize:
            log_q = log_q - self.log_normalizer()
        inside = in_support(self.prior, flat_theta).reshape(shape)
        return torch.where(inside, log_q, torch.full_like(log_q, -math.inf))

    def trajectories(
        self, num_samples: int, num_times: int = 21, generator: torch.Generator | None = None
    ) -> Tensor:
        """Paths from noise to the (unconstrained) posterior for a single observation.

        Returns:
            Parameters along the paths, shape (num_times, num_samples, D), at equally spaced
            times from noise (index 0) to the posterior (last index), no rejection.
        """
        if self.batch_shape != torch.Size():
            raise ValueError("trajectories needs a posterior for one observation x_o of shape (L,)")
        check_generator(generator, f"{type(self).__name__}.trajectories")
        with torch.no_grad():
            context = self.net.embed_context(self.x_o[None]).expand(num_samples, -1)
            u0 = torch.randn(num_samples, self.theta_dim, generator=generator)
            paths = integrate(
                self.velocity,
                u0.to(self.net.dtype),
                context,
                method=self.method,
                num_steps=self.num_steps,
                rtol=self.rtol,
                atol=self.atol,
                save_times=torch.linspace(0, 1, num_times),
            )
            return self.net.theta_standardize.inverse(paths)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(batch_shape={tuple(self.batch_shape)}, method={self.method})"
