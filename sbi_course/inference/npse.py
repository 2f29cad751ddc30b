r"""Neural posterior score estimation (NPSE): diffusion models as posterior estimators.

**Noising.** A variance-preserving (VP) stochastic differential equation turns a posterior
draw :math:`\theta_0` into noise (Song et al. 2021):

.. math::
    d\theta_t = -\tfrac12 \beta(t)\,\theta_t\,dt + \sqrt{\beta(t)}\,dW_t,
    \qquad \beta(t) = \beta_{\min} + t(\beta_{\max} - \beta_{\min}),\quad t \in [0, 1].

It is linear, so :math:`\theta_t \mid \theta_0` is Gaussian:
:math:`\theta_t = \alpha_t\theta_0 + \sigma_t z`, :math:`z \sim \mathcal N(0, I)`, with
:math:`\alpha_t = \exp(-\tfrac12\int_0^t\beta)` and :math:`\sigma_t^2 = 1 - \alpha_t^2`. With
:math:`\beta_{\max} = 20` the end point is :math:`\mathcal N(0, I)` to three decimals.

**Denoising score matching.** Running the SDE backwards needs the score
:math:`\nabla\log p_t(\theta_t \mid x)` of the noised posterior, unknown. As in flow matching,
regress on a conditional target instead: the score of :math:`\theta_t \mid \theta_0` is
:math:`-z/\sigma_t`, and (Vincent 2011)

.. math::
    \mathbb E\,\|s_\phi(\theta_t, t, x) + z/\sigma_t\|^2
    = \mathbb E\,\|s_\phi - \nabla\log p_t(\theta_t \mid x)\|^2 + \text{const},

by the same expansion around the conditional mean as in :mod:`~sbi_course.inference.fmpe`,
since :math:`\mathbb E[-z/\sigma_t \mid \theta_t, x] = \nabla \log p_t(\theta_t \mid x)`. We
weight time :math:`t` by :math:`\sigma_t^2` and write the network as a noise predictor,
:math:`s_\phi = -\epsilon_\phi/\sigma_t` (Ho et al. 2020), which gives the loss

.. math::
    \mathcal L(\phi) = \mathbb E_{t \sim U(t_{\min}, 1)}\,\mathbb E_{(\theta, x)}\,
    \mathbb E_{z}\,\big\|\epsilon_\phi(\alpha_t\theta + \sigma_t z, t, x) - z\big\|^2 .

**Sampling, two ways.** The reverse-time SDE (Anderson 1982)

.. math::
    d\theta = \big[-\tfrac12\beta(t)\theta - \beta(t)\,s_\phi(\theta, t, x)\big]dt
    + \sqrt{\beta(t)}\,d\bar W_t ,

solved from :math:`t = 1` down to :math:`t_{\min}` by Euler-Maruyama (``sampler="sde"``), and the
**probability-flow ODE**, which has the same marginals :math:`p_t` at every time but no noise,

.. math::
    \frac{d\theta}{dt} = -\tfrac12\beta(t)\big[\theta + s_\phi(\theta, t, x)\big],

(``sampler="ode"``, the default). The ODE is a continuous flow: it is what links diffusion to
flow matching, gives densities by the instantaneous change of variables
(:mod:`~sbi_course.inference.continuous_flow`) and can be solved adaptively. Both stop at
:math:`t_{\min} = 10^{-3}`, where the noised posterior is the posterior up to a scale
:math:`\sigma_{t_{\min}} \approx 0.01` of noise (in z-scored units).

Example:
    >>> import torch
    >>> from sbi_course import tasks
    >>> task = tasks.get("two_moons")
    >>> g = torch.Generator().manual_seed(0)
    >>> theta, x = task.sample_joint(500, generator=g)
    >>> npse = NPSE(task.prior, hidden_features=32, num_blocks=1)
    >>> history = npse.train(theta, x, generator=g, max_num_epochs=3, show_progress=False)
    >>> npse.posterior(x[0]).sample((100,), generator=g).shape
    torch.Size([100, 2])

References:
    Song, Sohl-Dickstein, Kingma, Kumar, Ermon & Poole (2021), Score-based generative modeling
    through stochastic differential equations, ICLR.
    Vincent (2011), A connection between score matching and denoising autoencoders, Neural
    Computation.
    Ho, Jain & Abbeel (2020), Denoising diffusion probabilistic models, NeurIPS.
    Anderson (1982), Reverse-time diffusion equation models, Stochastic Processes and their
    Applications.
    Geffner, Papamakarios & Mnih (2023), Compositional score modeling for simulation-based
    inference, ICML.
    Sharrock, Simons, Liu & Beaumont (2024), Sequential neural score estimation:
    likelihood-free inference with conditional score based diffusion models, ICML.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.distributions import Distribution

from sbi_course._validation import check_generator
from sbi_course.inference.continuous_flow import ContinuousFlowPosterior
from sbi_course.inference.fmpe import FMPE, TRAINING_DEFAULTS, auto_batch_size, noisy_loss
from sbi_course.inference.training import TrainingHistory, train

__all__ = ["VPSDE", "NPSE", "NPSEPosterior", "denoising_score_matching_loss"]


class VPSDE:
    r"""The variance-preserving SDE with a linear :math:`\beta(t)`.

    Args:
        beta_min, beta_max: :math:`\beta(0)` and :math:`\beta(1)`.
        t_min: the smallest time used in training and where sampling stops.
    """

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0, t_min: float = 1e-3):
        if not 0 < beta_min < beta_max:
            raise ValueError(f"VPSDE needs 0 < beta_min < beta_max, got {beta_min}, {beta_max}")
        if not 0 < t_min < 1:
            raise ValueError(f"VPSDE needs t_min in (0, 1), got {t_min}")
        self.beta_min, self.beta_max, self.t_min = float(beta_min), float(beta_max), float(t_min)

    def beta(self, t: Tensor) -> Tensor:
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def alpha(self, t: Tensor) -> Tensor:
        r""":math:`\alpha_t = \exp(-\frac12\int_0^t \beta)`."""
        return torch.exp(-0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min)

    def sigma(self, t: Tensor) -> Tensor:
        r""":math:`\sigma_t = \sqrt{1 - \alpha_t^2}` (computed without cancellation)."""
        log_alpha = -0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min
        return torch.sqrt(-torch.expm1(2 * log_alpha))

    def time(self, s: Tensor) -> Tensor:
        """Diffusion time of flow time ``s`` (0: noise at t = 1; 1: data at ``t_min``)."""
        return 1.0 - s * (1.0 - self.t_min)


def denoising_score_matching_loss(
    net, sde: VPSDE, theta: Tensor, x: Tensor, t: Tensor, z: Tensor
) -> Tensor:
    r"""The noise-prediction loss :math:`\frac1N\sum_i\|\epsilon(\alpha_t\theta_i + \sigma_t z_i,
    t_i, x_i) - z_i\|^2` on one batch.

    Args:
        net: ``net(theta_t, t, x)`` predicts the noise, shape (N, D).
        sde: the noising SDE.
        theta: (z-scored) parameters, shape (N, D).
        x: observations, shape (N, L).
        t: times in [t_min, 1], shape (N,).
        z: standard normal noise, shape (N, D).
    """
    theta_t = sde.alpha(t)[:, None] * theta + sde.sigma(t)[:, None] * z
    return (net(theta_t, t, x) - z).square().sum(dim=1).mean()


class NPSE(FMPE):
    """Neural posterior score estimation with a VP SDE.

    Args:
        prior: the prior (event shape (D,)).
        beta_min, beta_max, t_min: the :class:`VPSDE`.
        hidden_features, num_blocks, num_frequencies, z_score, embedding_net: the network, as
            for :class:`~sbi_course.inference.fmpe.FMPE`.

    The network, training loop, z-scoring, NaN policy and seeding are FMPE's; only the loss,
    the time range and the sampler differ.
    """

    name = "NPSE"

    def __init__(
        self,
        prior: Distribution,
        *,
        beta_min: float = 0.1,
        beta_max: float = 20.0,
        t_min: float = 1e-3,
        hidden_features: int = 128,
        num_blocks: int = 3,
        num_frequencies: int = 8,
        z_score: bool = True,
        embedding_net=None,
    ):
        super().__init__(
            prior,
            hidden_features=hidden_features,
            num_blocks=num_blocks,
            num_frequencies=num_frequencies,
            z_score=z_score,
            embedding_net=embedding_net,
        )
        self.sde = VPSDE(beta_min, beta_max, t_min)

    def loss(self, theta: Tensor, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The denoising score-matching loss of a batch of (not z-scored) pairs."""
        u = self.net.theta_standardize(theta)
        t_min = self.sde.t_min
        t = t_min + (1 - t_min) * torch.rand(u.shape[0], generator=generator, dtype=u.dtype)
        z = torch.randn(u.shape, generator=generator, dtype=u.dtype)
        return denoising_score_matching_loss(self.net, self.sde, u, x, t, z)

    def train(
        self, theta: Tensor, x: Tensor, generator: torch.Generator | None = None, **training_kwargs
    ) -> TrainingHistory:
        """Fit the score network to simulated pairs ``(theta, x)`` (arguments as
        :meth:`FMPE.train <sbi_course.inference.fmpe.FMPE.train>`)."""
        theta, x = self._prepare(theta, x, generator)

        def loss(theta_batch: Tensor, x_batch: Tensor) -> Tensor:
            return noisy_loss(self.loss, self.net, theta_batch, x_batch, generator)

        settings = {**TRAINING_DEFAULTS, "description": self.name, **training_kwargs}
        if settings["batch_size"] == "auto":
            settings["batch_size"] = auto_batch_size(len(theta))
        self.history = train(self.net, loss, (theta, x), generator=generator, **settings)
        return self.history

    def score(self, u: Tensor, t: Tensor, context: Tensor) -> Tensor:
        r"""The learned score :math:`s = -\epsilon_\phi/\sigma_t` of the noised posterior, on
        z-scored parameters ``u`` (n, D), diffusion times ``t`` (n,), embedded contexts (n, C)."""
        return -self.net(u, t, context, embedded=True) / self.sde.sigma(t)[:, None]

    def velocity(self, u: Tensor, s: Tensor, context: Tensor) -> Tensor:
        r"""The probability-flow ODE in flow time ``s`` (noise at 0, posterior at 1):
        :math:`du/ds = (1 - t_{\min})\,\frac12\beta(t)\,[u + s_\phi(u, t)]` with
        :math:`t = 1 - s(1 - t_{\min})`."""
        t = self.sde.time(s)
        drift = -0.5 * self.sde.beta(t)[:, None] * (u + self.score(u, t, context))
        return -(1.0 - self.sde.t_min) * drift

    def posterior(self, x_o: Tensor, sampler: str = "ode", **kwargs) -> NPSEPosterior:
        """The posterior at ``x_o`` (L,) or at each row of (M, L).

        Args:
            x_o: the observation(s).
            sampler: ``"ode"`` (probability-flow ODE) or ``"sde"`` (reverse SDE,
                Euler-Maruyama with ``num_steps`` steps, default 500).
            **kwargs: solver settings of
                :class:`~sbi_course.inference.continuous_flow.ContinuousFlowPosterior`.
        """
        if self.net is None:
            raise RuntimeError(f"{self.name}.posterior needs a trained network: call train first")
        return NPSEPosterior(self, x_o, sampler=sampler, **kwargs)


class NPSEPosterior(ContinuousFlowPosterior):
    """The NPSE posterior. ``log_prob`` always uses the probability-flow ODE (exact divergence
    up to 10 dimensions, Hutchinson above); ``sample`` uses the ODE or the reverse SDE.

    Args:
        npse: the trained :class:`NPSE`.
        x_o: the observation(s).
        sampler: ``"ode"`` or ``"sde"``.
        **kwargs: see :class:`~sbi_course.inference.continuous_flow.ContinuousFlowPosterior`.
    """

    def __init__(self, npse: NPSE, x_o: Tensor, sampler: str = "ode", **kwargs):
        if sampler not in ("ode", "sde"):
            raise ValueError(f"sampler for NPSEPosterior must be 'ode' or 'sde', got {sampler!r}")
        if sampler == "sde":
            kwargs.setdefault("num_steps", 500)
        super().__init__(npse.net, npse.velocity, npse.prior, x_o, **kwargs)
        self.npse, self.sampler = npse, sampler

    def _draw(self, num: int, context: Tensor, generator: torch.Generator | None) -> Tensor:
        if self.sampler == "ode":
            return super()._draw(num, context, generator)
        check_generator(generator, "NPSEPosterior.sample")
        return reverse_sde(self.npse, context.expand(num, -1), self.num_steps, generator)


def reverse_sde(
    npse: NPSE, context: Tensor, num_steps: int, generator: torch.Generator | None = None
) -> Tensor:
    r"""Euler-Maruyama for the reverse-time VP SDE from :math:`t = 1` to :math:`t_{\min}`.

    Args:
        npse: the trained estimator.
        context: embedded contexts, one per draw, shape (n, C).
        num_steps: equal time steps.
        generator: draws the initial noise and the Brownian increments.

    Returns:
        Draws in z-scored coordinates, shape (n, D).
    """
    sde, n = npse.sde, context.shape[0]
    dtype = npse.net.dtype
    u = torch.randn(n, npse.theta_dim, generator=generator, dtype=dtype)
    h = (1.0 - sde.t_min) / num_steps
    with torch.no_grad():
        for k in range(num_steps):
            t = torch.full((n,), 1.0 - k * h, dtype=dtype)
            beta = sde.beta(t)[:, None]
            drift = -0.5 * beta * u - beta * npse.score(u, t, context)
            noise = torch.randn(u.shape, generator=generator, dtype=dtype)
            u = u - h * drift + math.sqrt(h) * beta.sqrt() * noise
    return u
