"""Tests of the shared training loop and of dropping failed simulations."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn

from sbi_course.inference.training import TrainingHistory, drop_invalid, train


def _seeded_linear(seed: int = 0) -> nn.Linear:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return nn.Linear(1, 1)


def _regression_data(generator: torch.Generator, n: int = 400):
    x = torch.randn(n, 1, generator=generator)
    y = 3 * x - 1 + 0.1 * torch.randn(n, 1, generator=generator)
    return x, y


def test_train_fits_linear_regression(generator):
    x, y = _regression_data(generator)
    net = _seeded_linear()
    history = train(
        net,
        lambda xb, yb: ((net(xb) - yb) ** 2).mean(),
        [x, y],
        batch_size=50,
        learning_rate=0.05,
        max_num_epochs=200,
        generator=generator,
        show_progress=False,
    )
    assert isinstance(history, TrainingHistory)
    assert net.weight.item() == pytest.approx(3.0, abs=0.05)
    assert net.bias.item() == pytest.approx(-1.0, abs=0.05)
    assert len(history.train_loss) == len(history.validation_loss) == history.epochs
    assert 1 <= history.best_epoch <= history.epochs
    assert history.best_validation_loss == min(history.validation_loss)
    assert history.wall_time > 0
    assert not net.training  # left in eval mode


def test_early_stopping_restores_best_weights(generator):
    # Every row is identical, so the validation loss is a function of w alone. With a huge
    # learning rate Adam keeps jumping around the minimum and never improves for long.
    w = nn.Parameter(torch.zeros(()))
    model = nn.Module()
    model.w = w
    data = torch.ones(100, 1)

    def loss_fn(batch):
        return ((w - batch) ** 2).mean()

    history = train(
        model,
        loss_fn,
        [data],
        learning_rate=0.7,
        max_num_epochs=1000,
        stop_after_epochs=5,
        generator=generator,
        show_progress=False,
    )
    assert history.stopped_early
    assert history.epochs == history.best_epoch + 5
    # The weights are those of the best epoch, not the last.
    with torch.no_grad():
        final_loss = float(loss_fn(data))
    assert final_loss == pytest.approx(min(history.validation_loss), rel=1e-6)


def test_train_is_reproducible(generator):
    x, y = _regression_data(generator)
    results = []
    for _ in range(2):
        net = _seeded_linear()
        history = train(
            net,
            lambda xb, yb, net=net: ((net(xb) - yb) ** 2).mean(),
            [x, y],
            max_num_epochs=5,
            generator=torch.Generator().manual_seed(7),
            show_progress=False,
        )
        results.append((history.train_loss, history.validation_loss, net.weight.item()))
    assert results[0] == results[1]


def test_no_validation_set_and_options(generator, capsys):
    x, y = _regression_data(generator, n=64)
    net = _seeded_linear()
    history = train(
        net,
        lambda xb, yb: ((net(xb) - yb) ** 2).mean(),
        [x, y],
        validation_fraction=0.0,
        max_num_epochs=20,
        lr_decay_factor=0.5,
        lr_decay_patience=1,
        clip_max_norm=None,
        generator=generator,
        show_progress=False,
    )
    assert history.validation_loss == []
    assert history.best_validation_loss == min(history.train_loss)
    assert capsys.readouterr().err == ""  # no progress bar


def test_max_time_stops_training(generator):
    x, y = _regression_data(generator)
    net = _seeded_linear()
    history = train(
        net,
        lambda xb, yb: ((net(xb) - yb) ** 2).mean(),
        [x, y],
        max_num_epochs=10_000,
        stop_after_epochs=10_000,
        max_time=0.0,
        show_progress=False,
    )
    assert history.epochs == 1 and history.stopped_early


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"validation_fraction": 1.0}, "validation_fraction"),
        ({"batch_size": 0}, "batch_size"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"lr_decay_factor": 2.0}, "lr_decay_factor"),
        ({"generator": 3}, "generator"),
    ],
)
def test_train_rejects_bad_settings(kwargs, message):
    net = _seeded_linear()
    x = torch.randn(10, 1)
    with pytest.raises(ValueError, match=message):
        train(net, lambda xb: net(xb).mean(), [x], show_progress=False, **kwargs)


def test_train_rejects_misaligned_tensors():
    net = _seeded_linear()
    with pytest.raises(ValueError, match="row-aligned"):
        train(net, lambda a, b: net(a).mean(), [torch.randn(10, 1), torch.randn(9, 1)])


def test_drop_invalid_counts_and_keeps_valid_rows():
    theta = torch.arange(20.0).reshape(10, 2)
    x = torch.arange(30.0).reshape(10, 3)
    theta[1, 0] = math.nan
    x[4, 2] = math.inf
    x[7] = math.nan
    with pytest.warns(UserWarning, match="dropped 3 of 10"):
        kept_theta, kept_x = drop_invalid(theta, x, owner="NPE")
    keep = [0, 2, 3, 5, 6, 8, 9]
    assert torch.equal(kept_theta, theta[keep]) and torch.equal(kept_x, x[keep])


def test_drop_invalid_is_silent_without_invalid_rows():
    theta, x = torch.randn(5, 2), torch.randint(0, 5, (5, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kept_theta, kept_x = drop_invalid(theta, x, owner="NLE")
    assert kept_x.is_floating_point() and kept_theta.shape == (5, 2)


@pytest.mark.parametrize(
    "theta, x, message",
    [
        (torch.randn(5, 2), torch.randn(4, 2), "same number of rows"),
        (torch.randn(5), torch.randn(5, 2), r"reshape\(-1, 1\)"),
        (torch.randn(5, 2, 1), torch.randn(5, 2), "shape"),
        (torch.full((3, 2), math.nan), torch.randn(3, 2), "no valid simulations"),
        (torch.zeros(0, 2), torch.zeros(0, 2), "no simulations: theta and x have 0 rows"),
    ],
)
def test_drop_invalid_errors(theta, x, message):
    with pytest.raises(ValueError, match=message):
        drop_invalid(theta, x, owner="NPE")
