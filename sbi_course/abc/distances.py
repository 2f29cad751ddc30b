r"""Distances between simulated data and the observation, for ABC.

ABC accepts a parameter when its simulation lands close to the observation, so the
distance decides what "close" means. Every distance here maps a batch of simulated
summaries ``x`` of shape (N, L) and one observed summary ``x_o`` of shape (L,) to the
distances, shape (N,):

* :func:`euclidean` :math:`\lVert x - x_o \rVert_2`, :func:`manhattan` :math:`\lVert x - x_o
  \rVert_1` and :func:`chebyshev` :math:`\lVert x - x_o \rVert_\infty`;
* :func:`scaled_euclidean` :math:`\sqrt{\sum_l (x_l - x_{o,l})^2 / s_l^2}`, which divides each
  summary by a scale :math:`s_l`. Without it, a summary measured in milliseconds outweighs one
  measured in seconds. The scale is estimated from simulations of the prior predictive, by
  the median absolute deviation (:func:`mad`, robust to outliers) or the standard deviation.

Any callable with the same signature works too. :func:`get_distance` turns a name
(``"euclidean"``, ``"manhattan"``, ``"chebyshev"``, ``"mad"``, ``"std"``) or a callable into
such a function, fitting the scale where it needs one.

Example:
    >>> import torch
    >>> x = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    >>> euclidean(x, torch.zeros(2))
    tensor([0., 5.])
    >>> chebyshev(x, torch.zeros(2))
    tensor([0., 4.])

References:
    Prangle, D. (2017). Adapting the ABC distance function. Bayesian Analysis 12(1), 289-309.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from sbi_course._validation import flatten_batch, single_observation, unflatten_batch

__all__ = [
    "Distance",
    "euclidean",
    "manhattan",
    "chebyshev",
    "scaled_euclidean",
    "mad",
    "get_distance",
    "DISTANCES",
]

Distance = Callable[[Tensor, Tensor], Tensor]

# 1.4826 makes the median absolute deviation estimate the standard deviation of a Gaussian.
_MAD_TO_STD = 1.4826


def _norm(x: Tensor, x_o: Tensor, order: float, owner: str) -> Tensor:
    """``order``-norm of each row of ``x`` (*, L) minus ``x_o`` (L,), after one width check."""
    x = torch.as_tensor(x)
    width = x.shape[-1] if x.ndim else 0
    flat, batch_shape = flatten_batch(x, width, name="x", owner=owner, allow_nan=True)
    x_o = torch.as_tensor(x_o)
    if x_o.shape[-1:] != (width,):
        raise ValueError(
            f"x and x_o for {owner} must have the same number of summaries L: x has shape "
            f"{tuple(x.shape)} (L = {width}), x_o has shape {tuple(x_o.shape)}"
        )
    x_o = single_observation(x_o, width, owner=owner, dtype=flat.dtype)
    return unflatten_batch(torch.linalg.vector_norm(flat - x_o, ord=order, dim=-1), batch_shape)


def euclidean(x: Tensor, x_o: Tensor) -> Tensor:
    """Euclidean (L2) distance of each row of ``x`` (N, L) to ``x_o`` (L,); returns (N,)."""
    return _norm(x, x_o, 2, "euclidean")


def manhattan(x: Tensor, x_o: Tensor) -> Tensor:
    """Manhattan (L1) distance of each row of ``x`` (N, L) to ``x_o`` (L,); returns (N,)."""
    return _norm(x, x_o, 1, "manhattan")


def chebyshev(x: Tensor, x_o: Tensor) -> Tensor:
    """Chebyshev (max) distance of each row of ``x`` (N, L) to ``x_o`` (L,); returns (N,)."""
    return _norm(x, x_o, float("inf"), "chebyshev")


def scaled_euclidean(x: Tensor, x_o: Tensor, scale: Tensor) -> Tensor:
    """Euclidean distance after dividing each summary by its scale.

    Args:
        x: simulated summaries, shape (N, L).
        x_o: observed summary, shape (L,).
        scale: positive scale of each summary, shape (L,), e.g. :func:`mad` of simulations.

    Returns:
        Distances, shape (N,).
    """
    scale = torch.as_tensor(scale)
    width = torch.as_tensor(x).shape[-1]
    if scale.shape != (width,):
        raise ValueError(
            f"scale for scaled_euclidean must have shape ({width},) like a row of x, got "
            f"{tuple(scale.shape)}"
        )
    return euclidean(x / scale, x_o / scale)


def mad(x: Tensor) -> Tensor:
    """Median absolute deviation of each column of ``x`` (N, L), scaled to estimate a std.

    Rows with NaN are ignored. A column whose MAD is zero (a summary that is mostly one
    value, such as a spike count) falls back to its standard deviation, and then to 1, so
    that the scale can always be divided by.

    Args:
        x: simulated summaries, shape (N, L); for a single summary pass ``x[:, None]``.

    Returns:
        Scales, shape (L,), all positive.
    """
    x = _two_dimensional(x, "mad")
    x = x[torch.isfinite(x).all(dim=-1)]
    if x.shape[0] == 0:
        raise ValueError("cannot estimate a scale: every simulated summary contains NaN")
    median = x.median(dim=0).values
    scale = _MAD_TO_STD * (x - median).abs().median(dim=0).values
    return _positive(scale, x)


def _two_dimensional(x: Tensor, owner: str) -> Tensor:
    x = torch.as_tensor(x)
    if x.ndim != 2:
        raise ValueError(
            f"x for {owner} must have shape (N, L): N simulations of L summaries (for one "
            f"summary use x[:, None]), got {tuple(x.shape)}"
        )
    return x if x.is_floating_point() else x.to(torch.get_default_dtype())


def _std(x: Tensor) -> Tensor:
    x = _two_dimensional(x, "std")
    x = x[torch.isfinite(x).all(dim=-1)]
    if x.shape[0] == 0:
        raise ValueError("cannot estimate a scale: every simulated summary contains NaN")
    scale = x.std(dim=0) if x.shape[0] > 1 else torch.zeros_like(x[0])
    return _positive(scale, x)


def _positive(scale: Tensor, x: Tensor) -> Tensor:
    if x.shape[0] > 1:
        scale = torch.where(scale > 0, scale, x.std(dim=0))
    return torch.where(scale > 0, scale, torch.ones_like(scale))


DISTANCES: dict[str, Distance] = {
    "euclidean": euclidean,
    "manhattan": manhattan,
    "chebyshev": chebyshev,
}
_SCALES = {"mad": mad, "std": _std, "scaled_euclidean": mad}


def get_distance(distance: str | Distance, x: Tensor | None = None) -> Distance:
    """Turn a distance name or callable into a function ``(x (N, L), x_o (L,)) -> (N,)``.

    Args:
        distance: ``"euclidean"``, ``"manhattan"``, ``"chebyshev"``, ``"mad"`` (Euclidean
            after scaling each summary by its median absolute deviation; alias
            ``"scaled_euclidean"``), ``"std"`` (scaled by the standard deviation), or a callable.
        x: simulated summaries, shape (N, L), to estimate the scale from; needed only for
            ``"mad"`` and ``"std"``. Use prior-predictive simulations, so that the scale
            reflects the spread of the summaries before conditioning on ``x_o``.

    Returns:
        The distance function. A scaled distance carries its scale as ``.scale`` (L,).

    Raises:
        ValueError: for an unknown name, or a scaled distance without ``x``.
    """
    if callable(distance):
        return distance
    if not isinstance(distance, str):
        raise ValueError(f"distance must be a name or a callable, got {type(distance).__name__}")
    name = distance.lower()
    if name in DISTANCES:
        return DISTANCES[name]
    if name in _SCALES:
        if x is None:
            raise ValueError(f"distance {distance!r} needs simulated summaries x to fit its scale")
        scale = _SCALES[name](x)

        def scaled(x: Tensor, x_o: Tensor) -> Tensor:
            return scaled_euclidean(x, x_o, scale.to(x.dtype))

        scaled.scale = scale  # type: ignore[attr-defined]
        scaled.__name__ = f"{name}_scaled_euclidean"
        return scaled
    known = ", ".join(repr(n) for n in [*DISTANCES, *_SCALES])
    raise ValueError(f"unknown distance {distance!r}; choose one of {known} or pass a callable")


def check_distances(d: Tensor, num: int, name: str) -> Tensor:
    """Check that a (user) distance returned one value per simulation, shape (num,)."""
    if not isinstance(d, Tensor):
        d = torch.as_tensor(d)
    if d.shape != (num,):
        raise ValueError(
            f"the distance {name} must return shape ({num},) for x of shape ({num}, L), "
            f"got {tuple(d.shape)}"
        )
    return d
