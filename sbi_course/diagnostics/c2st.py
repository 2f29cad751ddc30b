r"""Classifier two-sample test (C2ST): can a classifier tell two samples apart?

Given samples :math:`X \sim P` and :math:`Y \sim Q`, label them 0 and 1, train a classifier
on part of the pooled data and measure its accuracy on the rest (Lopez-Paz & Oquab, 2017).
If :math:`P = Q` no classifier beats guessing, and the held-out accuracy is about **0.5**; if
the two samples do not overlap at all, a good classifier reaches **1.0**. For equally many
samples the best possible accuracy is :math:`\tfrac12 + \tfrac12 \mathrm{TV}(P, Q)`, half of
one plus the total variation distance.

In simulation-based inference, :math:`X` are reference posterior samples and :math:`Y` an
estimator's samples; the sbibm benchmark (Lueckmann et al., 2021) reports this accuracy, so a
lower number is better and 0.5 is perfect.

Two modes:

* ``"sbibm"``: the benchmark's exact recipe: z-score both samples with the mean and
  standard deviation of ``X``; scikit-learn's ``MLPClassifier`` (ReLU, two hidden layers of
  ``10 * dim`` units, Adam, up to 10,000 epochs, ``random_state=seed``); 5-fold shuffled
  ``KFold`` with ``random_state=seed``; the mean held-out accuracy. Use it to compare with the
  paper's numbers. (With ``quick_sklearn=True`` one step of scikit-learn's back-propagation is
  swapped, through a private table of scikit-learn, for a quicker one that gives bit-identical
  results; see :func:`_quick_relu_backward`. It is off by default.)
* ``"fast"`` (default): the same z-scoring, network and 5 folds, but the 5 networks train
  *together* as one batched ensemble in torch (one matrix product per layer serves all folds)
  for a fixed budget (30 epochs, at least 500 steps) with a one-cycle learning-rate
  schedule, instead of until the training loss stops improving. In 2-D it agrees with
  ``"sbibm"`` to about 0.005 and is ten times faster or more.

The two modes differ on 10-D problems with little signal: there scikit-learn trains for
hundreds of epochs, overfits, and reads *lower* than a well-trained classifier (by 0.03 to
0.07 in our measurements, for example 0.54 instead of 0.59 for two 10-D Gaussians whose best
possible accuracy is 0.60). ``"fast"`` is then the stronger, more honest test; use
``"sbibm"`` only to compare with numbers from the sbibm paper.

Sizes, seeds and duplicates:

* The classes must be balanced for 0.5 to mean "indistinguishable": with 10,000 reference and
  1,000 posterior samples a classifier that always answers "reference" already scores 0.91.
  When ``X`` and ``Y`` differ in size, the larger one is subsampled (without replacement, with
  ``generator`` or ``seed``) to the size of the smaller, and a warning says so.
* The result is deterministic: ``seed`` (default 1, as in sbibm) fixes the folds, the network
  initialisation and the subsampling; pass ``generator=`` to draw the seed from your own
  generator instead.
* Rows that occur in both ``X`` and ``Y`` (for example ``c2st(A, A)``) cannot be classified:
  the same point carries both labels, and cross-validation puts one copy in the training fold
  and the other in the held-out fold, where the classifier, which memorised the training copy's
  label, is wrong. Identical samples therefore score far *below* 0.5 (about 0.2), not 0.5;
  compare independent samples instead. A warning is given when more than 1% of the rows of
  ``Y`` also occur in ``X``.

Example:
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> X, Y = torch.randn(500, 2, generator=g), torch.randn(500, 2, generator=g)
    >>> 0.4 < c2st(X, Y) < 0.6
    True

References:
    Lopez-Paz & Oquab (2017), Revisiting classifier two-sample tests, ICLR.
    Lueckmann, Boelts, Greenberg, Goncalves & Macke (2021), Benchmarking simulation-based
    inference, AISTATS.
    Smith & Topin (2019), Super-convergence: very fast training of neural networks using large
    learning rates (the one-cycle schedule).
"""

from __future__ import annotations

import math
import numbers
import warnings
from contextlib import contextmanager, nullcontext

import numpy as np
import torch
from torch import Tensor

from sbi_course._validation import as_batch, check_count, check_generator

__all__ = ["c2st"]


def _z_score(X: Tensor, Y: Tensor) -> tuple[Tensor, Tensor]:
    """Standardise both samples with the mean and (unbiased) std of ``X``, as sbibm does."""
    mean, std = X.mean(dim=0), X.std(dim=0)
    std = torch.where(std > 0, std, torch.ones_like(std))
    return (X - mean) / std, (Y - mean) / std


def _relu_backward(Z: np.ndarray, delta: np.ndarray) -> None:
    """ReLU's backward step, in place: zero the error where the unit was off (``Z == 0``).

    The same numbers as scikit-learn's ``delta[Z == 0] = 0`` (``Z`` is a ReLU output, so
    ``Z > 0`` is its complement), with a multiplication instead of boolean-mask indexing.
    """
    np.multiply(delta, Z > 0, out=delta)


@contextmanager
def _quick_relu_backward():
    """Use :func:`_relu_backward` in scikit-learn's MLP while the block runs.

    scikit-learn's ``MLPClassifier`` back-propagates through a ReLU by boolean-mask
    assignment, which takes about a fifth of the sbibm C2ST's time. Swapping in the
    multiplication leaves every weight, every epoch count and hence every score bit for bit
    the same (``tests/test_c2st.py`` checks this) and makes the test about a quarter quicker.
    The swap goes through scikit-learn's private table of derivatives; if a later version
    drops that table, nothing is swapped and only speed is lost. Not thread-safe: another
    thread's MLP in the same process would see the swap too, with the same results.
    """
    try:
        from sklearn.neural_network._base import DERIVATIVES as table
    except ImportError:  # pragma: no cover - a future scikit-learn layout
        table = None
    if not isinstance(table, dict) or "relu" not in table:  # pragma: no cover
        yield
        return
    original = table["relu"]
    table["relu"] = _relu_backward
    try:
        yield
    finally:
        table["relu"] = original


def _c2st_sbibm(
    data: np.ndarray, target: np.ndarray, seed: int, num_folds: int, quick: bool = False
) -> float:
    from sklearn.model_selection import KFold, cross_val_score
    from sklearn.neural_network import MLPClassifier

    dim = data.shape[1]
    classifier = MLPClassifier(
        activation="relu",
        hidden_layer_sizes=(10 * dim, 10 * dim),
        max_iter=10_000,
        solver="adam",
        random_state=seed,
    )
    folds = KFold(n_splits=num_folds, shuffle=True, random_state=seed)
    with _quick_relu_backward() if quick else nullcontext():
        scores = cross_val_score(classifier, data, target, cv=folds, scoring="accuracy")
    return float(np.mean(scores))


def _init_layer(num_nets: int, fan_in: int, fan_out: int, generator: torch.Generator):
    """Weights like ``nn.Linear``'s default: uniform in +-1/sqrt(fan_in), for every net.

    Always float32, like the data, whatever ``torch.get_default_dtype()`` is.
    """
    bound = 1.0 / math.sqrt(fan_in)
    shape_w, shape_b = (num_nets, fan_in, fan_out), (num_nets, 1, fan_out)
    weight = (2 * torch.rand(shape_w, generator=generator, dtype=torch.float32) - 1) * bound
    bias = (2 * torch.rand(shape_b, generator=generator, dtype=torch.float32) - 1) * bound
    return weight.requires_grad_(), bias.requires_grad_()


def _ensemble_logits(layers: list[tuple[Tensor, Tensor]], inputs: Tensor) -> Tensor:
    """Forward pass of F networks at once: inputs (F, B, dim) -> logits (F, B)."""
    h = inputs
    for i, (weight, bias) in enumerate(layers):
        h = torch.baddbmm(bias, h, weight)
        if i < len(layers) - 1:
            h = torch.relu(h)
    return h.squeeze(-1)


def _c2st_fast(
    data: Tensor,
    target: Tensor,
    seed: int,
    num_folds: int,
    num_epochs: int | None,
    batch_size: int,
    learning_rate: float,
) -> float:
    generator = torch.Generator().manual_seed(seed)
    num_rows, dim = data.shape
    # Shuffled folds of (almost) equal size; fold k is held out by network k.
    fold_of_row = torch.empty(num_rows, dtype=torch.long)
    fold_of_row[torch.randperm(num_rows, generator=generator)] = torch.arange(num_rows) % num_folds
    train_rows = [torch.nonzero(fold_of_row != k).squeeze(1) for k in range(num_folds)]
    num_train = min(len(rows) for rows in train_rows)

    widths = [dim, 10 * dim, 10 * dim, 1]
    layers = [
        _init_layer(num_folds, a, b, generator)
        for a, b in zip(widths[:-1], widths[1:], strict=True)
    ]
    parameters = [p for layer in layers for p in layer]
    optimizer = torch.optim.Adam(parameters, lr=learning_rate)
    steps_per_epoch = math.ceil(num_train / batch_size)
    if num_epochs is None:
        # Enough passes for large samples, and enough steps for small ones. Fewer (8 epochs)
        # underfit sharp differences, such as a thin crescent against a wide blob, by 0.01 to
        # 0.08; with 30 the agreement with "sbibm" on such cases is within 0.002.
        num_epochs = max(30, math.ceil(500 / steps_per_epoch))
    # One-cycle: warm up to a large learning rate, then anneal; converges in few epochs.
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=learning_rate, total_steps=num_epochs * steps_per_epoch
    )
    for _ in range(num_epochs):
        # Each network visits its own training rows in a fresh random order.
        order = torch.stack(
            [
                rows[torch.randperm(len(rows), generator=generator)[:num_train]]
                for rows in train_rows
            ]
        )
        for start in range(0, num_train, batch_size):
            batch = order[:, start : start + batch_size]
            logits = _ensemble_logits(layers, data[batch])
            # Sum over networks of each one's mean loss: the networks train independently.
            loss = (
                torch.nn.functional.binary_cross_entropy_with_logits(
                    logits, target[batch], reduction="none"
                )
                .mean(dim=1)
                .sum()
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()

    correct = 0
    with torch.no_grad():
        for k in range(num_folds):
            held_out = torch.nonzero(fold_of_row == k).squeeze(1)
            single = [(w[k : k + 1], b[k : k + 1]) for w, b in layers]
            logits = _ensemble_logits(single, data[held_out].unsqueeze(0))[0]
            correct += int(((logits > 0).float() == target[held_out]).sum())
    return correct / num_rows


def c2st(
    X: Tensor,
    Y: Tensor,
    *,
    mode: str = "fast",
    seed: int | None = 1,
    generator: torch.Generator | None = None,
    num_folds: int = 5,
    z_score: bool = True,
    num_epochs: int | None = None,
    batch_size: int = 512,
    learning_rate: float = 1e-2,
    quick_sklearn: bool = False,
) -> float:
    r"""Classifier two-sample test accuracy between samples ``X`` and ``Y``.

    Args:
        X: first sample (for example reference posterior samples), shape (N, D); a 1-D
            tensor is read as N samples of dimension one.
        Y: second sample (for example an estimator's samples), shape (M, D).
        mode: ``"fast"`` (batched torch ensemble, the default) or ``"sbibm"`` (scikit-learn,
            exactly as the sbibm benchmark).
        seed: seed of the classifier initialisation, the folds and the subsampling of the
            larger sample; the default 1 is sbibm's. Ignored when ``generator`` is given.
        generator: draw the seed from this generator instead (keyword only).
        num_folds: number of cross-validation folds, at least 2.
        z_score: standardise both samples with the mean and std of ``X`` first.
        num_epochs: training epochs in ``"fast"`` mode (default: 30, or more for small samples
            so that each network takes at least 500 gradient steps).
        batch_size: mini-batch size in ``"fast"`` mode.
        learning_rate: peak Adam learning rate in ``"fast"`` mode, positive and finite.
        quick_sklearn: in ``"sbibm"`` mode, swap scikit-learn's ReLU backward step for a quicker
            one with bit-identical results (it patches a private scikit-learn table while the
            test runs; off by default).

    Returns:
        The mean held-out accuracy, a float in [0, 1]: about 0.5 when the samples come from
        the same distribution (the classifier can only guess), 1.0 when they are perfectly
        separable. Values below 0.5 are chance fluctuations.

    Raises:
        ValueError: on an unknown mode, mismatched dimensions, non-finite samples, or a bad
            setting (``num_folds < 2``, ``batch_size < 1``, ``num_epochs < 1``, a learning rate
            that is not a positive finite number, no seed).

    Warns:
        UserWarning: when the larger sample is subsampled, or many rows occur in both.
    """
    seed = _check_settings(mode, seed, generator, num_folds, num_epochs, batch_size, learning_rate)
    X, Y = _as_samples(X, Y, z_score)
    if min(X.shape[0], Y.shape[0]) < num_folds:
        raise ValueError(
            f"c2st needs at least num_folds={num_folds} samples in X and in Y, got "
            f"{X.shape[0]} and {Y.shape[0]}"
        )
    X, Y = _balance(X, Y, seed)
    _warn_shared_rows(X, Y)
    if z_score:
        X, Y = _z_score(X, Y)
    X, Y = _to_float32(X, Y)
    data = torch.cat([X, Y])
    target = torch.cat([torch.zeros(X.shape[0]), torch.ones(Y.shape[0])])
    if mode == "sbibm":
        return _c2st_sbibm(data.numpy(), target.numpy(), seed, num_folds, quick=quick_sklearn)
    return _c2st_fast(data, target, seed, num_folds, num_epochs, batch_size, learning_rate)


def _check_settings(
    mode: str,
    seed: int | None,
    generator: torch.Generator | None,
    num_folds: int,
    num_epochs: int | None,
    batch_size: int,
    learning_rate: float,
) -> int:
    """Validate the settings of :func:`c2st` and return the seed to use."""
    if mode not in ("fast", "sbibm"):
        raise ValueError(f"c2st mode must be 'fast' or 'sbibm', got {mode!r}")
    check_generator(generator, "c2st")
    if generator is not None:
        seed = int(torch.randint(0, 2**31 - 1, (), generator=generator))
    elif seed is None:
        raise ValueError(
            "c2st needs a seed (an int, default 1) or a generator=torch.Generator(); got "
            "seed=None: the result would not be reproducible"
        )
    seed = check_count(seed, "seed", "c2st", minimum=0)
    check_count(num_folds, "num_folds", "c2st", minimum=2)
    check_count(batch_size, "batch_size", "c2st")
    if num_epochs is not None:
        check_count(num_epochs, "num_epochs", "c2st")
    if (
        isinstance(learning_rate, bool)
        or not isinstance(learning_rate, numbers.Real)
        or not math.isfinite(learning_rate)
        or learning_rate <= 0
    ):
        raise ValueError(
            f"learning_rate for c2st must be a positive finite number, got {learning_rate!r}"
        )
    return seed


def _as_samples(X, Y, z_score: bool) -> tuple[Tensor, Tensor]:
    """Both samples as (N, D) float tensors, checked for finiteness in their own precision."""
    # One-dimensional inputs are N scalar samples, not one sample of dimension N.
    X, Y = (v.reshape(-1, 1) if v.ndim == 1 else v for v in map(torch.as_tensor, (X, Y)))
    X, _ = as_batch(X, X.shape[-1] if X.ndim else 1, name="X", owner="c2st")
    Y, _ = as_batch(Y, X.shape[1], name="Y", owner="c2st")
    if X.dtype == torch.float32 and Y.dtype == torch.float32:
        return X, Y
    limit = torch.finfo(torch.float32).max
    if X.abs().max() <= limit and Y.abs().max() <= limit:
        # float32 throughout, as sbibm computes with its float32 samples.
        return X.to(torch.float32), Y.to(torch.float32)
    if not z_score:
        raise ValueError(
            f"c2st computes in float32, whose largest value is {limit:.3g}; X or Y has larger "
            f"entries: rescale them, or keep z_score=True"
        )
    # Standardise in float64 first; the z-scores then fit in float32.
    return X.to(torch.float64), Y.to(torch.float64)


def _to_float32(X: Tensor, Y: Tensor) -> tuple[Tensor, Tensor]:
    X, Y = X.to(torch.float32), Y.to(torch.float32)
    if not (torch.isfinite(X).all() and torch.isfinite(Y).all()):
        raise ValueError(
            "c2st: after z-scoring with X's mean and std, some entries of Y exceed float32's "
            "range: Y lies astronomically far from X, and the accuracy would be 1.0"
        )
    return X, Y


def _balance(X: Tensor, Y: Tensor, seed: int) -> tuple[Tensor, Tensor]:
    """Subsample the larger sample to the size of the smaller, with a warning."""
    n, m = X.shape[0], Y.shape[0]
    if n == m:
        return X, Y
    name, big, small = ("X", X, m) if n > m else ("Y", Y, n)
    warnings.warn(
        f"c2st: X has {n} and Y {m} rows; with unequal classes a classifier scores above 0.5 "
        f"by guessing the larger one, so {small} of the {big.shape[0]} rows of {name} are used "
        f"(drawn without replacement). Pass samples of equal size to silence this.",
        UserWarning,
        stacklevel=3,
    )
    keep = torch.randperm(big.shape[0], generator=torch.Generator().manual_seed(seed))[:small]
    big = big[keep]
    return (big, Y) if n > m else (X, big)


def _warn_shared_rows(X: Tensor, Y: Tensor) -> None:
    """Warn when many rows of ``Y`` also occur in ``X`` (see the module docstring)."""
    _, ids = torch.unique(torch.cat([X, Y]), dim=0, return_inverse=True)
    shared = torch.isin(ids[X.shape[0] :], ids[: X.shape[0]])
    count = int(shared.sum())
    if count > 0.01 * Y.shape[0]:
        warnings.warn(
            f"c2st: {count} of the {Y.shape[0]} rows of Y also occur in X; a row with both "
            f"labels is misclassified in cross-validation, so the accuracy reads below 0.5 "
            f"(about 0.2 for c2st(A, A)). Compare independent samples.",
            UserWarning,
            stacklevel=3,
        )
