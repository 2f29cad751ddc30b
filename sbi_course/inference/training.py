r"""The training loop shared by every neural estimator (NPE, NLE, NRE).

All three methods fit a network by minimising an average loss over simulated pairs
:math:`(\theta_i, x_i)`: the negative log-density :math:`-\log q(\theta_i \mid x_i)` for NPE,
:math:`-\log q(x_i \mid \theta_i)` for NLE and a classification loss for NRE. The loop is the
same each time:

1. shuffle the rows once (with the caller's generator) and hold out a validation fraction;
2. each epoch, visit the training rows in a fresh random order in mini-batches, take an Adam
   step on each, clipping the gradient norm so that one bad batch cannot throw the weights far;
3. after each epoch, compute the loss on the held-out rows; stop when it has not improved for
   ``stop_after_epochs`` epochs and restore the weights of the best epoch (early stopping).

The held-out loss is an honest estimate of how well the estimator generalises; the training
loss keeps falling when the network starts memorising the training rows.

Example:
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Linear(1, 1)
    >>> x = torch.linspace(-1, 1, 200).unsqueeze(1)
    >>> y = 3 * x + 1
    >>> history = train(net, lambda x, y: ((net(x) - y) ** 2).mean(), [x, y],
    ...                 max_num_epochs=5, show_progress=False)
    >>> len(history.train_loss) == history.epochs
    True

References:
    Kingma & Ba (2015), Adam: a method for stochastic optimization, ICLR.
    Prechelt (1998), Early stopping -- but when?, in Neural Networks: Tricks of the Trade.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from sbi_course._validation import check_generator
from sbi_course.inference.invalid import drop_invalid  # re-exported: its former home

__all__ = ["TrainingHistory", "train", "drop_invalid", "seeded_init"]


@dataclass
class TrainingHistory:
    """What happened during :func:`train`, one entry per epoch.

    Attributes:
        train_loss: mean training loss of each epoch (averaged over its mini-batches).
        validation_loss: loss on the held-out rows after each epoch (empty without a
            validation set).
        best_epoch: the epoch (counted from 1) whose weights were kept.
        epochs: number of epochs run.
        wall_time: seconds spent in :func:`train`.
        stopped_early: ``True`` when early stopping (or ``max_time``) ended training before
            ``max_num_epochs``.
    """

    train_loss: list[float] = field(default_factory=list)
    validation_loss: list[float] = field(default_factory=list)
    best_epoch: int = 0
    epochs: int = 0
    wall_time: float = 0.0
    stopped_early: bool = False

    @property
    def best_validation_loss(self) -> float:
        """The lowest validation loss (the training loss without a validation set)."""
        losses = self.validation_loss or self.train_loss
        return losses[self.best_epoch - 1] if losses else math.nan


@contextlib.contextmanager
def seeded_init(generator: torch.Generator | None):
    """Context in which torch's global RNG (used by ``nn.Linear`` & co. to draw initial
    weights) is seeded from ``generator``, and restored afterwards.

    torch layers initialise their weights from the global random number generator. Building a
    network inside ``with seeded_init(generator):`` makes the initial weights a function of
    ``generator`` (which advances by one draw) without changing the global state; with
    ``None`` the global generator is used as usual.

    Example:
        >>> g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
        >>> with seeded_init(g1):
        ...     a = nn.Linear(2, 2)
        >>> with seeded_init(g2):
        ...     b = nn.Linear(2, 2)
        >>> torch.equal(a.weight, b.weight)
        True
    """
    if generator is None:
        yield
        return
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _check_tensors(tensors: Sequence[Tensor]) -> list[Tensor]:
    tensors = [torch.as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("train needs at least one tensor of training data")
    num_rows = {t.shape[0] if t.ndim > 0 else -1 for t in tensors}
    if len(num_rows) != 1 or -1 in num_rows:
        shapes = [tuple(t.shape) for t in tensors]
        raise ValueError(
            f"train needs row-aligned tensors with equal first dimensions, got {shapes}"
        )
    return tensors


def _adam(parameters, learning_rate: float) -> torch.optim.Optimizer:
    """Adam, fused into one kernel where this torch supports it on the CPU (torch >= 2.4).

    Small networks spend most of a step in per-tensor overhead; the fused version updates all
    parameters at once and makes a training step noticeably faster. The arithmetic is the same.
    """
    parameters = list(parameters)
    try:
        return torch.optim.Adam(parameters, lr=learning_rate, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(parameters, lr=learning_rate)


@torch.no_grad()
def _mean_loss(loss_fn: Callable[..., Tensor], tensors: list[Tensor], batch_size: int) -> float:
    """Row-weighted mean loss over ``tensors``, evaluated in chunks to bound memory."""
    num_rows = tensors[0].shape[0]
    total = 0.0
    for start in range(0, num_rows, batch_size):
        batch = [t[start : start + batch_size] for t in tensors]
        total += float(loss_fn(*batch)) * batch[0].shape[0]
    return total / num_rows


def _check_settings(
    validation_fraction: float,
    learning_rate: float,
    lr_decay_factor: float | None,
    *,
    positive_integers: dict[str, int],
) -> None:
    """Raise a ValueError naming the first out-of-range setting of :func:`train`;
    ``positive_integers`` maps the names of the integer settings to their values."""
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    for name, value in positive_integers.items():
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value}")
    if lr_decay_factor is not None and not 0 < lr_decay_factor < 1:
        raise ValueError(f"lr_decay_factor must be in (0, 1), got {lr_decay_factor}")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be positive, got {learning_rate}")


def _split(
    tensors: list[Tensor], validation_fraction: float, generator: torch.Generator | None
) -> tuple[list[Tensor], list[Tensor]]:
    """Training and held-out rows of ``tensors``: at least one of each when both are asked for.

    One shuffle decides the split, so that the held-out rows are a random subset.
    """
    num_rows = tensors[0].shape[0]
    num_validation = int(round(validation_fraction * num_rows))
    if validation_fraction > 0 and num_rows >= 2:
        num_validation = min(max(num_validation, 1), num_rows - 1)
    else:
        num_validation = 0
    order = torch.randperm(num_rows, generator=generator)
    validation_rows, train_rows = order[:num_validation], order[num_validation:]
    return [t[train_rows] for t in tensors], [t[validation_rows] for t in tensors]


def _train_epoch(
    model: nn.Module,
    loss_fn: Callable[..., Tensor],
    train_data: list[Tensor],
    optimizer: torch.optim.Optimizer,
    batch_size: int,
    clip_max_norm: float | None,
    generator: torch.Generator | None,
) -> float:
    """One pass over ``train_data`` in shuffled mini-batches; returns the row-weighted mean loss."""
    model.train()
    num_train = train_data[0].shape[0]
    batch_order = torch.randperm(num_train, generator=generator)
    total, count = 0.0, 0
    for start in range(0, num_train, batch_size):
        rows = batch_order[start : start + batch_size]
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(*(t[rows] for t in train_data))
        loss.backward()
        if clip_max_norm is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip_max_norm, foreach=True)
        optimizer.step()
        total += float(loss.detach()) * rows.shape[0]
        count += rows.shape[0]
    return total / count


class _Patience:
    """Early stopping and learning-rate decay: keeps the best weights and counts the epochs
    since the loss last improved.

    Args:
        stop_after_epochs: epochs without improvement after which training should stop.
        lr_decay_factor: multiply the learning rate by this factor after every
            ``lr_decay_patience`` epochs without improvement (``None``: never).
        lr_decay_patience: epochs without improvement before each decay.
    """

    def __init__(
        self, stop_after_epochs: int, lr_decay_factor: float | None, lr_decay_patience: int
    ) -> None:
        self.stop_after_epochs = stop_after_epochs
        self.lr_decay_factor = lr_decay_factor
        self.lr_decay_patience = lr_decay_patience
        self.best_loss = math.inf
        self.best_state: dict | None = None
        self.epochs_since_best = 0
        self.epochs_since_decay = 0

    def update(self, loss: float, model: nn.Module, optimizer: torch.optim.Optimizer) -> bool:
        """Record one epoch's ``loss``; True when it improved (the model's weights are kept).

        A NaN loss never counts as an improvement, so the last finite weights are kept.
        """
        improved = loss < self.best_loss
        if improved:
            self.best_loss, self.epochs_since_best, self.epochs_since_decay = loss, 0, 0
            self.best_state = copy.deepcopy(model.state_dict())
        else:
            self.epochs_since_best += 1
            self.epochs_since_decay += 1
        if self.lr_decay_factor is not None and self.epochs_since_decay >= self.lr_decay_patience:
            for group in optimizer.param_groups:
                group["lr"] *= self.lr_decay_factor
            self.epochs_since_decay = 0
        return improved

    @property
    def exhausted(self) -> bool:
        """Whether the loss has not improved for ``stop_after_epochs`` epochs."""
        return self.epochs_since_best >= self.stop_after_epochs


def _raise_diverged(description: str, num_epochs: int, learning_rate: float) -> None:
    """Not one epoch had a finite loss: the weights are NaN or meaningless; never hand them back
    silently."""
    raise RuntimeError(
        f"{description}: training diverged, the loss was NaN or infinite in every one of "
        f"{num_epochs} epochs. Try a smaller learning_rate (now "
        f"{learning_rate}), standardised (z-scored) data, and check the training data for "
        "NaN, infinite or huge values; the network's weights are not usable"
    )


def train(
    model: nn.Module,
    loss_fn: Callable[..., Tensor],
    tensors: Sequence[Tensor],
    *,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    max_num_epochs: int = 500,
    stop_after_epochs: int = 20,
    validation_fraction: float = 0.1,
    clip_max_norm: float | None = 5.0,
    lr_decay_factor: float | None = None,
    lr_decay_patience: int = 5,
    max_time: float | None = None,
    generator: torch.Generator | None = None,
    show_progress: bool = True,
    description: str = "training",
) -> TrainingHistory:
    """Fit ``model`` by minimising ``loss_fn`` with Adam and early stopping.

    Args:
        model: the network whose parameters are trained (in place).
        loss_fn: ``loss_fn(*batch)`` returns the mean loss (a scalar tensor) of a mini-batch,
            where ``batch`` holds the same rows of each tensor in ``tensors``.
        tensors: row-aligned training data, for example ``(theta, x)``, each of shape (N, ...).
        batch_size: rows per gradient step.
        learning_rate: Adam's step size.
        max_num_epochs: upper bound on passes through the training rows.
        stop_after_epochs: stop when the validation loss has not improved for this many epochs.
        validation_fraction: share of rows held out for early stopping, in [0, 1). With 0 the
            training loss decides when to stop.
        clip_max_norm: clip the gradient's total norm to this value (``None``: no clipping).
        lr_decay_factor: when set (e.g. 0.5), multiply the learning rate by this factor each
            time the validation loss has not improved for ``lr_decay_patience`` epochs; smaller
            steps late in training settle the weights into a better minimum.
        lr_decay_patience: epochs without improvement before each decay.
        max_time: optional budget in seconds; training stops after the epoch that exceeds it.
        generator: random generator for the split and the mini-batch order.
        show_progress: show a tqdm progress bar over epochs.
        description: label of the progress bar.

    Returns:
        A :class:`TrainingHistory`. The model holds the weights of the best epoch and is left in
        ``eval()`` mode.

    Raises:
        ValueError: on misaligned tensors or out-of-range settings.
    """
    check_generator(generator, "train")
    tensors = _check_tensors(tensors)
    _check_settings(
        validation_fraction,
        learning_rate,
        lr_decay_factor,
        positive_integers={
            "batch_size": batch_size,
            "max_num_epochs": max_num_epochs,
            "stop_after_epochs": stop_after_epochs,
        },
    )

    start_time = time.perf_counter()
    train_data, validation_data = _split(tensors, validation_fraction, generator)
    num_validation = validation_data[0].shape[0]
    num_train = train_data[0].shape[0]
    batch_size = min(int(batch_size), num_train)

    optimizer = _adam(model.parameters(), learning_rate)
    history = TrainingHistory()
    patience = _Patience(stop_after_epochs, lr_decay_factor, lr_decay_patience)

    bar = tqdm(range(max_num_epochs), desc=description, disable=not show_progress, leave=False)
    for epoch in bar:
        history.train_loss.append(
            _train_epoch(
                model, loss_fn, train_data, optimizer, batch_size, clip_max_norm, generator
            )
        )

        model.eval()
        if num_validation > 0:
            history.validation_loss.append(_mean_loss(loss_fn, validation_data, 4096))
            current = history.validation_loss[-1]
        else:
            current = history.train_loss[-1]
        history.epochs = epoch + 1

        if patience.update(current, model, optimizer):
            history.best_epoch = epoch + 1
        bar.set_postfix(train=f"{history.train_loss[-1]:.3f}", best=f"{patience.best_loss:.3f}")

        out_of_time = max_time is not None and time.perf_counter() - start_time > max_time
        if patience.exhausted or out_of_time:
            history.stopped_early = epoch + 1 < max_num_epochs
            break
    bar.close()

    if patience.best_state is None:
        _raise_diverged(description, len(history.train_loss), learning_rate)
    model.load_state_dict(patience.best_state)
    model.eval()
    history.wall_time = time.perf_counter() - start_time
    return history
