"""How the diagnostics get posterior samples (and log-densities) for many observations.

SBC and expected coverage need a posterior for each of many simulated observations ``x_i``.
They accept

* a trained inference object with a ``posterior(x_o)`` method (``NPE``, ``NLE``, ``NRE``);
* an amortised posterior: a function ``x_o -> posterior`` (``npe.posterior``, an exact
  posterior, a density estimator called on a context), where a *posterior* is anything with
  ``sample(sample_shape, generator=None)`` and ``log_prob`` or ``unnormalized_log_prob``;
* for samples only, the older form: a function ``(x_o, num_samples, generator) -> Tensor``.

Nothing here reads signatures: a function is called with one observation first, and read as
the older three-argument sampler only if Python refuses that call (TypeError).

With ``batch_size`` an amortised posterior is asked for several observations at once:
``factory(x[rows])`` must return one posterior with ``batch_shape == (len(rows),)``, whose
``sample((L,))`` has shape (L, len(rows), D) (NPE does this); no Python loop per observation.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from sbi_course._validation import as_batch

Sampler = Callable[[Tensor, int, "torch.Generator | None"], Tensor]


def simulation_pairs(theta: Tensor, x: Tensor, owner: str) -> tuple[Tensor, Tensor, Tensor]:
    """Check ``theta`` (N, D) and ``x`` (N, L); drop the rows whose ``x`` is not finite.

    Returns:
        ``(theta, x, kept)``: the kept rows and their indices in the input (for messages).
    """
    theta = torch.as_tensor(theta)
    theta, _ = as_batch(theta, theta.shape[-1], name="theta", owner=owner)
    x = torch.as_tensor(x)
    x, _ = as_batch(x, x.shape[-1], name="x", owner=owner, allow_nan=True)
    if x.shape[0] != theta.shape[0]:
        raise ValueError(
            f"{owner} needs as many rows in x as in theta, got {x.shape[0]} and {theta.shape[0]}"
        )
    finite = torch.isfinite(x).all(dim=1)
    kept = torch.nonzero(finite).reshape(-1)
    if not bool(finite.all()):
        warnings.warn(
            f"{owner}: dropped {int((~finite).sum())} of {x.shape[0]} simulations whose x "
            "contains NaN or inf (failed simulations), together with their theta",
            stacklevel=3,
        )
        if kept.numel() == 0:
            raise ValueError(f"{owner}: every row of x contains NaN or inf")
    return theta[kept], x[kept], kept


def check_count(value: int, name: str, owner: str) -> int:
    """A positive integer count, or a ValueError naming it."""
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")
    return int(value)


def check_finite_samples(samples: Tensor, rows: Tensor, owner: str) -> None:
    """Raise on NaN or inf posterior samples; ``samples`` (L, m, D) belong to input ``rows``."""
    bad = ~torch.isfinite(samples).all(dim=-1).all(dim=0)  # (m,)
    if bool(bad.any()):
        row = int(rows[int(torch.nonzero(bad)[0])])
        more = f" (and {int(bad.sum()) - 1} more rows of this batch)" if int(bad.sum()) > 1 else ""
        raise ValueError(
            f"{owner}: the posterior returned NaN or inf samples for row {row} of x{more}; a "
            "broken posterior would otherwise give plausible-looking ranks or levels. Check the "
            "estimator (NaN weights?) and x"
        )


class PosteriorSource:
    """Posterior samples and log-densities for rows of ``x``, from any accepted form."""

    def __init__(self, posterior: Any, owner: str):
        self.owner = owner
        method = getattr(posterior, "posterior", None)
        if callable(method):
            self.factory, self.sampler = method, None
        elif callable(posterior):
            self.factory, self.sampler = posterior, None
        else:
            raise ValueError(
                f"{owner} needs an object with a .posterior(x_o) method, a function x_o -> "
                f"posterior, or a sampler (x_o, num_samples, generator) -> samples; got "
                f"{type(posterior).__name__}"
            )
        self._resolved = callable(method)

    def posterior(self, x_o: Tensor) -> Any:
        """The posterior at ``x_o``, or ``None`` when only the older sampler form was given."""
        if self._resolved:
            return None if self.sampler is not None else self.factory(x_o)
        function = self.factory
        try:
            result = function(x_o)
        except TypeError as error:
            # Perhaps the older form, a sampler of three arguments: tried on the first call.
            self.factory, self.sampler, self._first_error = None, function, error
            self._resolved = True
            return None
        self._resolved = True
        return result

    def samples(
        self, x: Tensor, num_samples: int, generator: torch.Generator | None, batched: bool
    ) -> tuple[Tensor, Any]:
        """Samples (L, m, D) for the m rows of ``x`` and the posterior (or ``None``)."""
        if batched and x.shape[0] > 1:
            posterior = self.posterior(x)
            if posterior is not None:
                if tuple(getattr(posterior, "batch_shape", ())) != (x.shape[0],):
                    raise ValueError(
                        f"{self.owner} with batch_size: the posterior of {x.shape[0]} "
                        f"observations must have batch_shape ({x.shape[0]},), got "
                        f"{tuple(getattr(posterior, 'batch_shape', ()))}; NLE and NRE read "
                        "several rows as independent observations of one posterior: leave "
                        "batch_size=None for them"
                    )
                samples = posterior.sample((num_samples,), generator=generator)
                return torch.as_tensor(samples).reshape(num_samples, x.shape[0], -1), posterior
        if x.shape[0] != 1:
            raise ValueError(f"{self.owner}: internal error, one observation expected")
        posterior = self.posterior(x[0])
        if posterior is None:
            first_error, self._first_error = getattr(self, "_first_error", None), None
            try:
                samples = self.sampler(x[0], num_samples, generator)
            except TypeError:
                if first_error is None:
                    raise
                raise first_error from None
        else:
            samples = posterior.sample((num_samples,), generator=generator)
        return torch.as_tensor(samples).reshape(num_samples, 1, -1), posterior


def unnormalized_log_prob(posterior: Any, theta: Tensor) -> Tensor:
    """Log-density up to a constant: ``unnormalized_log_prob`` when the posterior has one
    (NPE skips its normaliser, NLE/NRE have no other), else ``log_prob``."""
    method = getattr(posterior, "unnormalized_log_prob", None)
    if callable(method):
        return method(theta)
    return posterior.log_prob(theta)
