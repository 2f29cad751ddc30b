r"""Local classifier two-sample test (L-C2ST; Linhart, Gramfort & Rodrigues, 2023).

C2ST needs reference posterior samples at :math:`x_o`, which we rarely have; SBC, coverage
and TARP need none but only say whether the posterior is right *on average over* :math:`x`
(the prior itself passes them). L-C2ST asks whether :math:`q(\theta \mid x_o) = p(\theta
\mid x_o)` at one observation, and needs only simulations.

Train **once**, on the joint: a classifier :math:`d(\theta, x)` between

* class 0: :math:`(\theta'_i, x_i)` with :math:`\theta'_i \sim q(\theta \mid x_i)`, the
  estimator's joint :math:`q(\theta \mid x)\,p(x)`;
* class 1: :math:`(\theta_i, x_i)` from the prior and the simulator, the true joint
  :math:`p(\theta \mid x)\,p(x)`.

The Bayes-optimal classifier's probability of class 0 is
:math:`d^*(\theta, x) = q(\theta \mid x) / (q(\theta \mid x) + p(\theta \mid x))`, which is
:math:`\tfrac12` for every :math:`\theta` exactly when :math:`q(\cdot \mid x) = p(\cdot \mid x)`.
So at any :math:`x_o`, *without retraining*, evaluate the classifier on
:math:`\theta'_j \sim q(\theta \mid x_o)` and use

.. math::
    T(x_o) = \frac1n \sum_{j=1}^n \big(d(\theta'_j, x_o) - \tfrac12\big)^2

(the MSE statistic of the paper; its mean accuracy is also reported). Its null distribution
comes from classifiers trained when the null holds:

* **permutation**: shuffle the class labels of the pooled training set and retrain
  (``num_null`` times);
* **normalizing-flow trick**: a flow posterior is :math:`q(\theta \mid x) = T_x(z)` with
  :math:`z \sim \mathcal N(0, I)`. Map everything through :math:`T_x^{-1}`: class 0 becomes
  base samples :math:`z \sim \mathcal N(0, I)` (independent of :math:`x`), class 1
  :math:`T_{x_i}^{-1}(\theta_i)`, which is also :math:`\mathcal N(0, I)` iff :math:`q` is right.
  Null classifiers then learn base samples against base samples: they depend neither on the
  estimator nor on :math:`x_o`, and can be trained once and reused. At :math:`x_o` the
  classifier is evaluated on base samples.

All classifiers (the one of the test and the null ones) are small multi-layer perceptrons
trained *together*, as one batched ensemble in torch, so a null of 50 classifiers costs about
as much as a few single ones. The p-value is
:math:`(1 + \#\{T_b \ge T\}) / (1 + B)`.

Example:
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> theta = torch.randn(1000, 1, generator=g)
    >>> x = theta + torch.randn(1000, 1, generator=g)
    >>> def exact(x, n=None, generator=None):  # draws from N(x/2, 1/2), one per row of x
    ...     return x / 2 + 0.5**0.5 * torch.randn(x.shape, generator=generator)
    >>> lc2st = LocalC2ST(theta, x, exact(x, generator=g), num_null=10, generator=g)
    >>> result = lc2st.test(torch.tensor([0.5]), exact(torch.full((500, 1), 0.5), generator=g))
    >>> bool(result.pvalue > 0.01)
    True

References:
    Linhart, Gramfort & Rodrigues (2023), L-C2ST: local diagnostics for posterior approximations
    in simulation-based inference, NeurIPS (arXiv:2306.03580).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from sbi_course._validation import as_batch, check_generator

__all__ = ["LocalC2ST", "LC2STResult", "local_c2st"]


class LC2STResult(NamedTuple):
    """What :meth:`LocalC2ST.test` returns (tensors).

    Attributes:
        statistic: :math:`T(x_o)`, the mean squared distance of the class-0 probability from
            1/2, scalar; 0 for a perfect posterior.
        pvalue: the p-value against the null classifiers, scalar.
        null: the statistic of each null classifier, shape (B,).
        accuracy: the share of evaluation samples classified as the estimator's (class 0),
            scalar; 1/2 for a perfect posterior.
        probabilities: the class-0 probability of each evaluation sample, shape (n,).
    """

    statistic: Tensor
    pvalue: Tensor
    null: Tensor
    accuracy: Tensor
    probabilities: Tensor


class _BatchedMLP:
    """K independent ReLU networks (inputs -> hidden -> hidden -> 1 logit), trained as one."""

    def __init__(self, num_nets: int, num_inputs: int, hidden: int, generator: torch.Generator):
        sizes = (num_inputs, hidden, hidden, 1)
        self.layers = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
            bound = 1.0 / math.sqrt(fan_in)
            weight = (2 * torch.rand(num_nets, fan_in, fan_out, generator=generator) - 1) * bound
            bias = (2 * torch.rand(num_nets, 1, fan_out, generator=generator) - 1) * bound
            self.layers.append((weight.requires_grad_(), bias.requires_grad_()))

    def parameters(self) -> list[Tensor]:
        return [p for layer in self.layers for p in layer]

    def logits(self, inputs: Tensor) -> Tensor:
        """Inputs (K, n, F) -> logits (K, n)."""
        hidden = inputs
        for i, (weight, bias) in enumerate(self.layers):
            hidden = torch.baddbmm(bias, hidden, weight)
            if i < len(self.layers) - 1:
                hidden = torch.relu(hidden)
        return hidden.squeeze(-1)

    def fit(
        self,
        inputs: Tensor,
        labels: Tensor,
        num_epochs: int,
        batch_size: int,
        learning_rate: float,
        generator: torch.Generator,
    ) -> None:
        """Minimise the binary cross-entropy of each net on its own data (K, n, F), (K, n)."""
        num = inputs.shape[1]
        steps_per_epoch = max(1, math.ceil(num / batch_size))
        optimizer = torch.optim.Adam(self.parameters(), lr=learning_rate)
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=learning_rate, total_steps=num_epochs * steps_per_epoch
        )
        for _ in range(num_epochs):
            order = torch.randperm(num, generator=generator)
            for start in range(0, num, batch_size):
                index = order[start : start + batch_size]
                loss = torch.nn.functional.binary_cross_entropy_with_logits(
                    self.logits(inputs[:, index]), labels[:, index]
                )
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()


def _statistic(probabilities: Tensor) -> Tensor:
    return ((probabilities - 0.5) ** 2).mean(dim=-1)


class LocalC2ST:
    r"""L-C2ST: train the classifiers once on simulations, then test the posterior at any ``x_o``.

    Args:
        theta: parameters from the prior, shape (N, D).
        x: data simulated from them, shape (N, L).
        posterior_samples: one draw :math:`\theta'_i \sim q(\theta \mid x_i)` per row, shape
            (N, D). With ``null="flow"``: ignored (pass ``None``).
        null: ``"permutation"`` (retrain on shuffled labels) or ``"flow"`` (the normalizing
            flow trick; needs ``inverse_transform``).
        inverse_transform: with ``null="flow"``, the flow's map :math:`(\theta, x) \mapsto z`
            to its standard normal base space, (N, D), (N, L) -> (N, D).
        num_null: B, the number of null classifiers.
        hidden: width of the two hidden layers (default ``10 * (D + L)``, at least 32).
        num_epochs: training epochs of every classifier.
        batch_size: mini-batch size.
        learning_rate: peak Adam learning rate (one-cycle schedule).
        z_score: standardise :math:`\theta` and :math:`x` with the simulations' mean and std.
        null_from: with ``null="flow"``, another flow-trick ``LocalC2ST`` on the same ``x`` whose
            null classifiers are reused (they depend neither on the estimator nor on ``x_o``).
        generator: random generator for labels, initialisation, mini-batches, base samples.
    """

    def __init__(
        self,
        theta: Tensor,
        x: Tensor,
        posterior_samples: Tensor | None,
        *,
        null: str = "permutation",
        inverse_transform: Callable[[Tensor, Tensor], Tensor] | None = None,
        num_null: int = 50,
        hidden: int | None = None,
        num_epochs: int = 60,
        batch_size: int = 256,
        learning_rate: float = 1e-2,
        z_score: bool = True,
        null_from: LocalC2ST | None = None,
        generator: torch.Generator | None = None,
    ):
        check_generator(generator, "LocalC2ST")
        if null not in ("permutation", "flow"):
            raise ValueError(f"LocalC2ST: null must be 'permutation' or 'flow', got {null!r}")
        if null == "flow" and inverse_transform is None:
            raise ValueError("LocalC2ST: null='flow' needs inverse_transform(theta, x) -> z")
        if int(num_null) < 1:
            raise ValueError(f"LocalC2ST: num_null must be a positive integer, got {num_null}")
        generator = generator if generator is not None else torch.Generator().manual_seed(0)
        theta = torch.as_tensor(theta)
        theta, _ = as_batch(theta, theta.shape[-1], name="theta", owner="LocalC2ST")
        x = torch.as_tensor(x)
        x, _ = as_batch(x, x.shape[-1], name="x", owner="LocalC2ST")
        num, dim = theta.shape
        if x.shape[0] != num:
            raise ValueError(
                f"LocalC2ST: theta and x need as many rows, got {num} and {x.shape[0]}"
            )
        self.null, self.dim, self.inverse_transform = null, dim, inverse_transform
        self.num_null = int(num_null)
        if null == "flow":
            with torch.no_grad():
                class1 = torch.as_tensor(inverse_transform(theta, x)).reshape(num, dim)
            class0 = torch.randn(num, dim, generator=generator)
        else:
            if posterior_samples is None:
                raise ValueError("LocalC2ST: null='permutation' needs posterior_samples (N, D)")
            class0, _ = as_batch(
                torch.as_tensor(posterior_samples), dim, name="posterior_samples", owner="LocalC2ST"
            )
            if class0.shape[0] != num:
                raise ValueError(
                    f"LocalC2ST: posterior_samples must have shape ({num}, {dim}), "
                    f"got {tuple(class0.shape)}"
                )
            class1 = theta
        if z_score and null == "permutation":
            self._theta_mean, self._theta_std = class1.mean(0), class1.std(0).clamp_min(1e-8)
            self._x_mean, self._x_std = x.mean(0), x.std(0).clamp_min(1e-8)
        elif z_score:  # the flow's base space is standard normal already
            self._theta_mean, self._theta_std = torch.zeros(dim), torch.ones(dim)
            self._x_mean, self._x_std = x.mean(0), x.std(0).clamp_min(1e-8)
        else:
            self._theta_mean, self._theta_std = torch.zeros(dim), torch.ones(dim)
            self._x_mean, self._x_std = torch.zeros(x.shape[1]), torch.ones(x.shape[1])
        features = torch.cat([torch.cat([class0, x], 1), torch.cat([class1, x], 1)])
        labels = torch.cat([torch.zeros(num), torch.ones(num)])
        features = self._standardise(features[:, :dim], features[:, dim:])
        if hidden is None:
            hidden = max(32, 10 * (dim + x.shape[1]))
        fit = (num_epochs, batch_size, learning_rate, generator)
        self.net = _BatchedMLP(1, features.shape[1], hidden, generator)
        self.net.fit(features[None], labels[None], *fit)
        if null_from is not None:
            # the flow trick's null classifiers depend on neither the estimator nor x_o
            same_x = torch.equal(null_from._x_mean, self._x_mean)
            if null != "flow" or null_from.null != "flow" or null_from.dim != dim or not same_x:
                raise ValueError(
                    "LocalC2ST: null_from needs null='flow' on both, trained on the same x"
                )
            self.null_net, self.num_null = null_from.null_net, null_from.num_null
            return
        if null == "permutation":
            null_labels = torch.stack(
                [labels[torch.randperm(2 * num, generator=generator)] for _ in range(num_null)]
            )
            null_features = features.expand(num_null, *features.shape)
        else:
            # base samples against base samples: the null holds by construction
            base = torch.randn(num_null, 2 * num, dim, generator=generator)
            null_features = torch.cat([base, features[:, dim:].expand(num_null, -1, -1)], -1)
            null_labels = labels.expand(num_null, -1)
        self.null_net = _BatchedMLP(num_null, features.shape[1], hidden, generator)
        self.null_net.fit(null_features, null_labels, *fit)

    def _standardise(self, theta: Tensor, x: Tensor) -> Tensor:
        return torch.cat(
            [(theta - self._theta_mean) / self._theta_std, (x - self._x_mean) / self._x_std], -1
        )

    def probabilities(self, x_o: Tensor, theta: Tensor) -> Tensor:
        """Class-0 probability of every classifier at ``(theta_j, x_o)``.

        Args:
            x_o: the observation, shape (L,).
            theta: evaluation points, shape (n, D): posterior samples at ``x_o``, or base
                samples with ``null="flow"``.

        Returns:
            Probabilities of shape (1 + B, n): row 0 the test's classifier, then the null ones.
        """
        x_o = torch.as_tensor(x_o, dtype=torch.get_default_dtype()).reshape(1, -1)
        theta, _ = as_batch(torch.as_tensor(theta), self.dim, name="theta", owner="LocalC2ST")
        features = self._standardise(theta, x_o.expand(theta.shape[0], -1))
        with torch.no_grad():
            logits = torch.cat(
                [
                    self.net.logits(features[None]),
                    self.null_net.logits(features.expand(self.num_null, *features.shape)),
                ]
            )
        return torch.sigmoid(-logits)  # the nets model P(class 1)

    def test(
        self,
        x_o: Tensor,
        posterior_samples: Tensor | None = None,
        *,
        num_samples: int = 1000,
        generator: torch.Generator | None = None,
    ) -> LC2STResult:
        """Test the posterior at ``x_o``.

        Args:
            x_o: the observation, shape (L,).
            posterior_samples: draws of :math:`q(\\theta \\mid x_o)`, shape (n, D) (for
                ``null="flow"`` leave ``None``: base samples are used).
            num_samples: number of base samples with ``null="flow"``.
            generator: random generator for the base samples.

        Returns:
            An :class:`LC2STResult`.
        """
        check_generator(generator, "LocalC2ST.test")
        if self.null == "flow":
            theta = torch.randn(int(num_samples), self.dim, generator=generator)
            # in base space the evaluation points are standardised like the training points
        else:
            if posterior_samples is None:
                raise ValueError(
                    "LocalC2ST.test: null='permutation' needs posterior_samples (n, D)"
                )
            theta = posterior_samples
        probabilities = self.probabilities(x_o, theta)
        statistics = _statistic(probabilities)
        statistic, null = statistics[0], statistics[1:]
        pvalue = (1.0 + (null >= statistic).sum()) / (1.0 + null.shape[0])
        accuracy = (probabilities[0] > 0.5).double().mean()
        return LC2STResult(statistic, pvalue, null, accuracy, probabilities[0])


def local_c2st(
    x_o: Tensor,
    posterior_samples_o: Tensor,
    theta: Tensor,
    x: Tensor,
    posterior_samples: Tensor,
    *,
    num_null: int = 50,
    generator: torch.Generator | None = None,
    **kwargs,
) -> LC2STResult:
    """One-shot L-C2ST with a permutation null: train on the joint, test at ``x_o``.

    Args:
        x_o: the observation, shape (L,).
        posterior_samples_o: draws of the posterior at ``x_o``, shape (n, D).
        theta: parameters from the prior, shape (N, D).
        x: data simulated from them, shape (N, L).
        posterior_samples: one posterior draw per row of ``x``, shape (N, D).
        num_null: number of null classifiers.
        generator: random generator.
        **kwargs: passed to :class:`LocalC2ST`.

    Returns:
        An :class:`LC2STResult`.
    """
    test = LocalC2ST(theta, x, posterior_samples, num_null=num_null, generator=generator, **kwargs)
    return test.test(x_o, posterior_samples_o)
