"""Input checks shared by simulators, tasks and estimators: the package's one boundary.

Every public entry point validates its arguments here, so that a student sees
``ValueError("theta must have shape (*, 4) for lotka_volterra, got (3,)")`` instead of a
shape mismatch deep inside torch. The helpers and the contract they enforce:

* :func:`flatten_batch` / :func:`unflatten_batch`: ``(*, D)`` semantics. An argument of shape
  ``batch_shape + (D,)`` is flattened to ``(N, D)`` for the computation and the result is given
  back the same ``batch_shape``; ``(D,)`` is one row.
* :func:`paired_batches`: two arguments that go together row by row (``theta`` and ``x``): their
  batch shapes must broadcast (equal, or one of them a single row), checked once here.
* :func:`as_batch`: the older ``(N, D)`` or ``(D,)`` form, kept for callers that need it.
* :func:`single_observation`: one ``x_o`` of shape ``(D,)`` or ``(1, D)``.
* :func:`check_count`: a positive integer count (``int`` or a numpy integer, never ``bool``).
* :func:`check_generator`: ``None`` or a ``torch.Generator``.
* NaN policy: tensors are finite unless the caller passes ``allow_nan=True`` (data ``x`` whose
  failed simulations are NaN rows); conversion keeps a floating dtype and turns integers and
  booleans into the default float dtype.
* :func:`check_memory`: refuse up front a request that would exhaust memory.

Example:
    >>> import torch
    >>> flat, batch_shape = flatten_batch(torch.zeros(4, 3, 2), 2, name="theta", owner="demo")
    >>> flat.shape, batch_shape
    (torch.Size([12, 2]), torch.Size([4, 3]))
    >>> unflatten_batch(flat.sum(-1), batch_shape).shape
    torch.Size([4, 3])
    >>> check_count(np.int64(5), "num_samples", "demo")
    5
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
from torch import Tensor


def _to_tensor(value, *, name: str, owner: str, dim: int, dtype: torch.dtype | None) -> Tensor:
    """Convert array-likes to a floating tensor (``dtype``, or keep a floating dtype)."""
    if not isinstance(value, Tensor):
        try:
            value = torch.as_tensor(np.asarray(value) if isinstance(value, list) else value)
        except (TypeError, ValueError, RuntimeError) as error:
            raise TypeError(
                f"{name} for {owner} must be a tensor of shape (*, {dim}); "
                f"could not convert {type(value).__name__}: {error}"
            ) from None
    if value.is_complex():
        raise TypeError(f"{name} for {owner} must be real, got dtype {value.dtype}")
    if dtype is not None:
        value = value.to(dtype)
    elif not value.is_floating_point():
        value = value.to(torch.get_default_dtype())
    return value


def _check_finite(value: Tensor, *, name: str, owner: str) -> None:
    if not torch.isfinite(value).all():
        rows = value.reshape(-1, value.shape[-1]) if value.ndim else value.reshape(1, 1)
        bad = int((~torch.isfinite(rows)).any(dim=-1).sum())
        raise ValueError(
            f"{name} for {owner} contains NaN or infinite values in {bad} of {rows.shape[0]} rows"
        )


def flatten_batch(
    value: Tensor,
    dim: int,
    *,
    name: str,
    owner: str,
    allow_nan: bool = False,
    dtype: torch.dtype | None = None,
) -> tuple[Tensor, torch.Size]:
    """Return ``value`` of shape ``(*, dim)`` as ``(N, dim)`` and its batch shape ``*``.

    Args:
        value: array-like of shape ``batch_shape + (dim,)``; ``(dim,)`` has ``batch_shape == ()``.
        dim: the expected size of the last dimension.
        name: the argument's name, for the message.
        owner: who asks (a function name), for the message.
        allow_nan: accept NaN and infinite entries.
        dtype: convert to this floating dtype (default: keep a floating dtype, else the
            default float dtype).

    Returns:
        ``(flat, batch_shape)`` with ``flat.shape == (prod(batch_shape), dim)``; restore a
        per-row result with :func:`unflatten_batch`.

    Raises:
        TypeError: for something that is no array.
        ValueError: on a wrong last dimension, a scalar, an empty batch, or (unless allowed)
            NaN/inf entries.
    """
    value = _to_tensor(value, name=name, owner=owner, dim=dim, dtype=dtype)
    if value.ndim == 0 or value.shape[-1] != dim:
        raise ValueError(
            f"{name} must have shape (*, {dim}) for {owner} (a last dimension of {dim}), "
            f"got {tuple(value.shape)}"
        )
    batch_shape = value.shape[:-1]
    if value.numel() == 0:
        raise ValueError(f"{name} for {owner} is empty: got shape {tuple(value.shape)}")
    if not allow_nan:
        _check_finite(value, name=name, owner=owner)
    return value.reshape(-1, dim), batch_shape


def unflatten_batch(value: Tensor, batch_shape: torch.Size) -> Tensor:
    """Give a result of shape ``(N, *rest)`` the leading shape ``batch_shape`` back."""
    return value.reshape(tuple(batch_shape) + tuple(value.shape[1:]))


def paired_batches(
    first: Tensor,
    second: Tensor,
    dims: tuple[int, int],
    *,
    names: tuple[str, str] = ("theta", "x"),
    owner: str,
    allow_nan: tuple[bool, bool] = (False, False),
    dtype: torch.dtype | None = None,
) -> tuple[Tensor, Tensor, torch.Size]:
    """Flatten two row-paired arguments (``theta`` and ``x``) after one row check.

    Their batch shapes must broadcast: equal, or one of them a single row (``(D,)`` or
    ``(1, D)``) that pairs with every row of the other.

    Args:
        first, second: arrays of shapes ``(*, dims[0])`` and ``(*, dims[1])``.
        dims: the two last dimensions.
        names: the arguments' names, for messages.
        owner: the function that asks.
        allow_nan: per argument, whether NaN/inf entries are accepted.
        dtype: convert ``first`` to this dtype; ``second`` follows ``first``'s dtype.

    Returns:
        ``(first, second, batch_shape)``: both flattened to ``(N, D)`` with the same ``N``.

    Raises:
        ValueError: when the rows do not pair up, naming both shapes.
    """
    a, shape_a = flatten_batch(
        first, dims[0], name=names[0], owner=owner, allow_nan=allow_nan[0], dtype=dtype
    )
    b, shape_b = flatten_batch(
        second, dims[1], name=names[1], owner=owner, allow_nan=allow_nan[1], dtype=a.dtype
    )
    batch_shape = broadcast_rows(shape_a, shape_b, dims, names=names, owner=owner)
    a = a.reshape(tuple(shape_a) + (dims[0],)).expand(tuple(batch_shape) + (dims[0],))
    b = b.reshape(tuple(shape_b) + (dims[1],)).expand(tuple(batch_shape) + (dims[1],))
    return a.reshape(-1, dims[0]), b.reshape(-1, dims[1]), batch_shape


def broadcast_rows(
    shape_a: torch.Size,
    shape_b: torch.Size,
    dims: tuple[int, int],
    *,
    names: tuple[str, str],
    owner: str,
) -> torch.Size:
    """The common batch shape of two row-paired arguments, or a ``ValueError`` naming both.

    Args:
        shape_a, shape_b: the batch shapes (without the last dimension).
        dims: the last dimensions, for the message.
        names: the arguments' names.
        owner: the function that asks.
    """
    try:
        return torch.broadcast_shapes(shape_a, shape_b)
    except RuntimeError:
        raise ValueError(
            f"{names[0]} and {names[1]} for {owner} must have the same number of rows (or one "
            f"of them a single row), got shapes {tuple(shape_a) + (dims[0],)} and "
            f"{tuple(shape_b) + (dims[1],)}"
        ) from None


def single_observation(
    x_o: Tensor,
    dim: int,
    *,
    owner: str,
    name: str = "x_o",
    dtype: torch.dtype | None = None,
) -> Tensor:
    """Return one observation as shape ``(dim,)``, accepting ``(dim,)`` or ``(1, dim)``.

    Raises:
        ValueError: for several observations, a wrong width, or NaN/inf entries.
    """
    flat, batch_shape = flatten_batch(x_o, dim, name=name, owner=owner, dtype=dtype)
    if flat.shape[0] != 1 or len(batch_shape) > 1:
        raise ValueError(
            f"{name} must be a single observation of shape ({dim},) or (1, {dim}) for {owner}, "
            f"got {tuple(batch_shape) + (dim,)}"
        )
    return flat[0]


def check_count(value, name: str, owner: str, *, minimum: int = 1) -> int:
    """Return ``value`` as an ``int`` if it is an integer of at least ``minimum``.

    Python ints and numpy integers pass; ``bool`` and floats (even ``5.0``) do not.

    Raises:
        TypeError: for a value that is not a number at all (``None``, a string).
        ValueError: for a float, a bool, or an integer below ``minimum``.
    """
    what = "a positive integer" if minimum == 1 else f"an integer of at least {minimum}"
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        error = ValueError if isinstance(value, numbers.Number | np.bool_) else TypeError
        raise error(f"{name} for {owner} must be {what}, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} for {owner} must be {what}, got {value!r}")
    return int(value)


def as_batch(
    value: Tensor,
    dim: int,
    *,
    name: str,
    owner: str,
    allow_nan: bool = False,
    dtype: torch.dtype | None = None,
) -> tuple[Tensor, bool]:
    """Return ``value`` as a float tensor of shape ``(N, dim)`` and whether it was unbatched.

    Args:
        value: array-like of shape ``(dim,)`` or ``(N, dim)``.
        dim: the expected size of the last dimension.
        name: the argument's name, for the message (``"theta"``, ``"x_o"``).
        owner: who asks (a task or function name), for the message.
        allow_nan: accept NaN and infinite entries.
        dtype: convert to this floating dtype (default: keep a floating dtype, else float32).

    Returns:
        ``(batch, unbatched)``: the ``(N, dim)`` tensor and ``True`` when the input was ``(dim,)``.

    Raises:
        ValueError: on a wrong shape, an empty batch, or (unless allowed) NaN/inf entries.
    """
    value = _to_tensor(value, name=name, owner=owner, dim=dim, dtype=dtype)
    unbatched = value.ndim == 1
    if unbatched:
        value = value.unsqueeze(0)
    if value.ndim != 2 or value.shape[-1] != dim:
        raise ValueError(
            f"{name} must have shape (N, {dim}) or ({dim},) for {owner}, got {tuple(value.shape)}"
        )
    if value.shape[0] == 0:
        raise ValueError(f"{name} for {owner} is empty: got shape {tuple(value.shape)}")
    if not allow_nan:
        _check_finite(value, name=name, owner=owner)
    return value, unbatched


def check_generator(generator: torch.Generator | None, owner: str) -> None:
    """Raise a clear error when ``generator`` is neither ``None`` nor a ``torch.Generator``."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(
            f"generator for {owner} must be a torch.Generator or None, "
            f"got {type(generator).__name__} (use torch.Generator().manual_seed(seed))"
        )


def positive_parameters(
    theta: Tensor, labels: tuple[str, ...], *, owner: str
) -> tuple[Tensor, torch.Size]:
    """:func:`flatten_batch` for parameters that must be positive (rates, conductances).

    ``theta`` is detached: the simulators that need this solve ODEs in place and give no
    gradients.
    """
    flat, batch_shape = flatten_batch(theta, len(labels), name="theta", owner=owner)
    check_positive(flat, owner, labels)
    return flat.detach(), batch_shape


def check_positive(theta: Tensor, owner: str, labels: list[str] | tuple[str, ...]) -> None:
    """Raise when any parameter is not strictly positive (rates, conductances, masses)."""
    bad = theta <= 0
    if bad.any():
        columns = [labels[j] for j in range(theta.shape[-1]) if bad[..., j].any()]
        rows = int(bad.any(dim=-1).sum())
        raise ValueError(
            f"{owner} is undefined for non-positive {', '.join(columns)}: "
            f"{rows} of {theta.shape[0]} rows have a value <= 0"
        )


#: Largest allocation (bytes) a single request may need before it is refused; override with the
#: environment variable ``SBI_COURSE_MAX_BYTES`` (e.g. ``SBI_COURSE_MAX_BYTES=64e9``).
DEFAULT_MAX_BYTES = 4 * 2**30


def max_bytes() -> float:
    """The memory limit of :func:`check_memory`, in bytes (``SBI_COURSE_MAX_BYTES`` or 4 GiB)."""
    import os

    value = os.environ.get("SBI_COURSE_MAX_BYTES")
    if value is None:
        return float(DEFAULT_MAX_BYTES)
    try:
        limit = float(value)
    except ValueError:
        raise ValueError(
            f"SBI_COURSE_MAX_BYTES must be a number of bytes such as 8e9, got {value!r}"
        ) from None
    if not limit > 0:
        raise ValueError(f"SBI_COURSE_MAX_BYTES must be positive, got {value!r}")
    return limit


def check_memory(num_bytes: float, *, what: str, owner: str, argument: str) -> None:
    """Refuse, before allocating, a request that needs more than :func:`max_bytes`.

    Args:
        num_bytes: the estimated size of the largest allocation the request makes.
        what: what would be allocated, for the message (``"1e9 prior draws of 2 floats"``).
        owner: the function that asks.
        argument: the argument to make smaller.

    Raises:
        MemoryError: with the estimate, the limit and how to raise it.
    """
    limit = max_bytes()
    if num_bytes > limit:
        raise MemoryError(
            f"{owner}: {what} needs about {num_bytes / 2**30:.3g} GiB, above the limit of "
            f"{limit / 2**30:.3g} GiB; make {argument} smaller, or raise the limit with the "
            f"environment variable SBI_COURSE_MAX_BYTES (bytes) if this machine has the memory"
        )
