"""Posterior draws for many observations, from any posterior the course's diagnostics accept.

A *posterior* here is, following the course's distribution interface, either

* an inference object with a ``posterior(x_o)`` method (``NPE``, ``NLE``, ``NRE``),
* a function ``x_o -> distribution`` (anything with ``sample(sample_shape, generator=)``), or
* already drawn samples, a tensor of shape ``(num_samples, N, D)``, one column per observation.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from sbi_course._validation import check_generator


def posterior_of(posterior: Any, owner: str):
    """Return ``x_o -> distribution`` for an inference object or a function."""
    method = getattr(posterior, "posterior", None)
    if callable(method):
        return method
    if callable(posterior):
        return posterior
    raise TypeError(
        f"{owner} needs an object with a .posterior(x_o) method, a function x_o -> posterior, "
        f"or a tensor of samples (num_samples, N, D); got {type(posterior).__name__}"
    )


def draw_posterior_samples(
    posterior: Any,
    x: Tensor,
    num_samples: int,
    *,
    dim: int,
    generator: torch.Generator | None,
    owner: str,
) -> Tensor:
    """Posterior samples for each row of ``x``.

    Args:
        posterior: see the module docstring.
        x: observations, shape (N, L).
        num_samples: draws per observation.
        dim: the parameter dimension D.
        generator: random generator for the draws.
        owner: the calling function, for error messages.

    Returns:
        Samples of shape (num_samples, N, D).
    """
    check_generator(generator, owner)
    if isinstance(posterior, Tensor):
        if posterior.ndim != 3 or posterior.shape[1:] != (x.shape[0], dim):
            raise ValueError(
                f"{owner}: posterior samples must have shape (num_samples, {x.shape[0]}, {dim}), "
                f"got {tuple(posterior.shape)}"
            )
        return posterior.to(torch.get_default_dtype())
    if int(num_samples) != num_samples or num_samples < 1:
        raise ValueError(
            f"{owner}: num_posterior_samples must be a positive integer, got {num_samples}"
        )
    factory = posterior_of(posterior, owner)
    columns = []
    for i in range(x.shape[0]):
        draws = factory(x[i]).sample((int(num_samples),), generator=generator)
        columns.append(torch.as_tensor(draws).reshape(int(num_samples), dim))
    return torch.stack(columns, dim=1)
