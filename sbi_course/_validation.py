"""Input checks shared by simulators, tasks and estimators.

Every public entry point validates its tensors here, so that a student sees
``ValueError("theta must have shape (N, 4) for lotka_volterra, got (3,)")`` instead of a
shape mismatch deep inside torch.
"""

from __future__ import annotations

import torch
from torch import Tensor


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
    if not isinstance(value, Tensor):
        try:
            value = torch.as_tensor(value)
        except (TypeError, ValueError, RuntimeError) as error:
            raise ValueError(
                f"{name} for {owner} must be a tensor of shape (N, {dim}); "
                f"could not convert {type(value).__name__}: {error}"
            ) from None
    if dtype is not None:
        value = value.to(dtype)
    elif not value.is_floating_point():
        value = value.to(torch.get_default_dtype())
    unbatched = value.ndim == 1
    if unbatched:
        value = value.unsqueeze(0)
    if value.ndim != 2 or value.shape[-1] != dim:
        raise ValueError(
            f"{name} must have shape (N, {dim}) or ({dim},) for {owner}, got {tuple(value.shape)}"
        )
    if value.shape[0] == 0:
        raise ValueError(f"{name} for {owner} is empty: got shape {tuple(value.shape)}")
    if not allow_nan and not torch.isfinite(value).all():
        bad = int((~torch.isfinite(value)).any(dim=-1).sum())
        raise ValueError(
            f"{name} for {owner} contains NaN or infinite values in {bad} of {value.shape[0]} rows"
        )
    return value, unbatched


def check_generator(generator: torch.Generator | None, owner: str) -> None:
    """Raise a clear error when ``generator`` is neither ``None`` nor a ``torch.Generator``."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(
            f"generator for {owner} must be a torch.Generator or None, "
            f"got {type(generator).__name__} (use torch.Generator().manual_seed(seed))"
        )


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
