"""Week 2 items: density estimation and normalizing flows; neural posterior, likelihood and ratio
estimation.

The answers follow from the change-of-variables formula
$p_Y(y) = p_X(f^{-1}(y)) |\\det J_{f^{-1}}(y)|$ (Papamakarios et al., 2021, *Normalizing flows
for probabilistic modeling and inference*), the affine coupling layer (Dinh et al., 2017,
RealNVP), and the Bayes-optimal classifier of NRE, $d^* = r / (1 + r)$ with
$r = p(x \\mid \\theta) / p(x)$ (Hermans et al., 2020).
"""

from __future__ import annotations

import math

from tools.exams.items import Item


def w2_affine_params(d):
    return {
        "a": d.choice([0.5, 2.0, 3.0, -2.0, -0.5]),
        "b": d.choice([-1.0, 0.0, 1.0, 2.0]),
        "y": d.choice([-1.0, 0.5, 1.5, 3.0]),
    }


def w2_affine_solve(p):
    z = (p["y"] - p["b"]) / p["a"]
    return math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi) / abs(p["a"])


def w2_exp_params(d):
    return {"y": d.choice([0.5, 0.8, 1.5, 2.0, 3.0])}


def w2_exp_solve(p):
    z = math.log(p["y"])
    return math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi) / p["y"]


def w2_logdet_params(d):
    return {
        "d1": d.choice([0.5, 2.0, 3.0, -4.0]),
        "d2": d.choice([0.25, 1.5, -2.0, 5.0]),
        "c": d.choice([-3.0, 1.0, 7.0]),
    }


def w2_logdet_solve(p):
    return math.log(abs(p["d1"] * p["d2"]))


def w2_coupling_params(d):
    return {
        "alpha": d.choice([0.5, 1.0, -0.5]),
        "beta": d.choice([1.0, 2.0, -1.0]),
        "y1": d.choice([0.4, 1.0, -0.6]),
        "y2": d.choice([2.0, -1.0, 3.5]),
    }


def w2_coupling_solve(p):
    return (p["y2"] - p["beta"] * p["y1"]) * math.exp(-p["alpha"] * p["y1"])


def w2_coupling_logdet_solve(p):
    # the forward map's log |det J| at x1 = y1
    return p["alpha"] * p["y1"]


def w2_flow_density_params(d):
    return {"s": d.choice([0.5, -0.3, 1.2]), "t": d.choice([0.0, 1.0, -2.0]), "y": 1.0}


def w2_flow_density_solve(p):
    # y = exp(s) x + t with x ~ N(0, 1): log p(y) = log N((y - t) e^{-s}) - s
    z = (p["y"] - p["t"]) * math.exp(-p["s"])
    return -0.5 * z * z - 0.5 * math.log(2 * math.pi) - p["s"]


def w2_nre_params(d):
    return {"dval": d.choice([0.6, 0.7, 0.8, 0.9, 0.95, 0.25])}


def w2_nre_solve(p):
    return math.log(p["dval"] / (1 - p["dval"]))


def w2_nre_post_params(d):
    return {"L": d.choice([2, 4, 5, 10]), "logr": d.choice([-1.0, 0.5, 1.2, 2.0])}


def w2_nre_post_solve(p):
    return math.exp(p["logr"]) / p["L"]


def w2_zscore_params(d):
    return {
        "m": d.choice([10.0, 20.0, 50.0]),
        "sd": d.choice([2.0, 4.0, 5.0]),
        "x": d.choice([12.0, 25.0, 43.0, 8.0]),
    }


def w2_zscore_solve(p):
    return (p["x"] - p["m"]) / p["sd"]


ITEMS = [
    Item(
        id="w2_affine_density",
        week=2,
        topic="normalizing flows",
        kind="num",
        question=(
            "$x \\sim \\mathcal{N}(0, 1)$ and $y = <<a>>\\,x + <<b>>$. Use the change of "
            "variables formula: what is the density $p_Y(y)$ at $y = <<y>>$? (four decimals)"
        ),
        params=w2_affine_params,
        solve=w2_affine_solve,
        tol=0.0002,
    ),
    Item(
        id="w2_exp_density",
        week=2,
        topic="normalizing flows",
        kind="num",
        question=(
            "$x \\sim \\mathcal{N}(0, 1)$ and $y = \\exp(x)$. What is the density $p_Y(y)$ at "
            "$y = <<y>>$? (four decimals)"
        ),
        params=w2_exp_params,
        solve=w2_exp_solve,
        tol=0.0002,
    ),
    Item(
        id="w2_logdet",
        week=2,
        topic="normalizing flows",
        kind="num",
        question=(
            "An autoregressive layer $f: \\mathbb{R}^2 \\to \\mathbb{R}^2$ has, at some point, the "
            "lower-triangular Jacobian with diagonal $(<<d1>>, <<d2>>)$ and off-diagonal entry "
            "$<<c>>$. What is $\\log |\\det J_f|$ there? (natural log, three decimals)"
        ),
        params=w2_logdet_params,
        solve=w2_logdet_solve,
        tol=0.002,
    ),
    Item(
        id="w2_coupling_inverse",
        week=2,
        topic="normalizing flows",
        kind="num",
        question=(
            "An affine coupling layer maps $(x_1, x_2)$ to $y_1 = x_1$, "
            "$y_2 = x_2 \\exp(<<alpha>>\\,x_1) + <<beta>>\\,x_1$. Invert it: for "
            "$y = (<<y1>>, <<y2>>)$, what is $x_2$? (three decimals)"
        ),
        params=w2_coupling_params,
        solve=w2_coupling_solve,
        tol=0.002,
    ),
    Item(
        id="w2_coupling_logdet",
        week=2,
        topic="normalizing flows",
        kind="num",
        question=(
            "The same kind of coupling layer: $y_1 = x_1$, "
            "$y_2 = x_2 \\exp(<<alpha>>\\,x_1) + <<beta>>\\,x_1$. What is $\\log|\\det J|$ of "
            "the forward map at a point with $x_1 = <<y1>>$ and $x_2 = <<y2>>$? (three decimals)"
        ),
        params=w2_coupling_params,
        solve=w2_coupling_logdet_solve,
        tol=0.002,
    ),
    Item(
        id="w2_flow_logprob",
        week=2,
        topic="normalizing flows",
        kind="num",
        question=(
            "A one-layer flow maps base samples $x \\sim \\mathcal{N}(0, 1)$ to "
            "$y = e^{s} x + t$ with $s = <<s>>$ and $t = <<t>>$. What is $\\log p(y)$ at "
            "$y = <<y>>$? (natural log, three decimals)"
        ),
        params=w2_flow_density_params,
        solve=w2_flow_density_solve,
        tol=0.002,
    ),
    Item(
        id="w2_nre_logratio",
        week=2,
        topic="NRE",
        kind="num",
        question=(
            "An NRE classifier trained with balanced classes to tell joint pairs "
            "$(\\theta, x) \\sim p(\\theta, x)$ from marginal pairs $p(\\theta)p(x)$ outputs "
            "$d(\\theta, x) = <<dval>>$. If it is Bayes-optimal, what is "
            "$\\log r(\\theta, x) = \\log p(x \\mid \\theta) - \\log p(x)$? (three decimals)"
        ),
        params=w2_nre_params,
        solve=w2_nre_solve,
        tol=0.002,
    ),
    Item(
        id="w2_nre_posterior",
        week=2,
        topic="NRE",
        kind="num",
        question=(
            "The prior is $\\mathcal{U}(0, <<L>>)$ and a trained ratio estimator gives "
            "$\\log r(\\theta_0, x_o) = <<logr>>$ at some $\\theta_0$ inside the prior. What "
            "posterior density $p(\\theta_0 \\mid x_o)$ does it imply? (three decimals)"
        ),
        params=w2_nre_post_params,
        solve=w2_nre_post_solve,
        tol=0.002,
    ),
    Item(
        id="w2_zscore",
        week=2,
        topic="NPE",
        kind="num",
        question=(
            "Before training, the data are z-scored with the training set's mean $<<m>>$ and "
            "standard deviation $<<sd>>$. What value does the network see for the observation "
            "$x_o = <<x>>$? (two decimals)"
        ),
        params=w2_zscore_params,
        solve=w2_zscore_solve,
        tol=0.005,
    ),
    Item(
        id="w2_maf_cost",
        week=2,
        topic="normalizing flows",
        kind="mc",
        question="A masked autoregressive flow (MAF) on $D$ dimensions is built so that "
        "$\\log q(\\theta)$ needs one network pass. What does drawing one sample need?",
        choices=(
            "$D$ sequential passes, one per dimension.",
            "One pass, like the density.",
            "An MCMC chain, because the flow is not invertible.",
            "$D^2$ passes, to compute the full Jacobian.",
        ),
    ),
    Item(
        id="w2_invertible",
        week=2,
        topic="normalizing flows",
        kind="mc",
        question="Which map $\\mathbb{R} \\to \\mathbb{R}$ can be a layer of a normalizing flow?",
        choices=(
            "$y = x + 0.5\\,\\tanh(x)$",
            "$y = x^2$",
            "$y = \\max(0, x)$",
            "$y = \\sin(x)$",
        ),
    ),
    Item(
        id="w2_npe_loss",
        week=2,
        topic="NPE",
        kind="mc",
        question="Which loss trains neural posterior estimation (NPE) on simulations "
        "$(\\theta_i, x_i) \\sim p(\\theta) p(x \\mid \\theta)$?",
        choices=(
            "$-\\frac{1}{N} \\sum_i \\log q_\\phi(\\theta_i \\mid x_i)$",
            "$-\\frac{1}{N} \\sum_i \\log q_\\phi(x_i \\mid \\theta_i)$",
            "The binary cross-entropy of a classifier of joint against shuffled pairs",
            "$\\frac{1}{N} \\sum_i \\|\\theta_i - f_\\phi(x_i)\\|^2$",
        ),
    ),
    Item(
        id="w2_nle_sampling",
        week=2,
        topic="NLE",
        kind="mc",
        question="After training neural likelihood estimation (NLE), how are posterior samples "
        "for $x_o$ obtained?",
        choices=(
            "By MCMC on the unnormalised density $q_\\phi(x_o \\mid \\theta)\\, p(\\theta)$.",
            "By sampling $q_\\phi(x \\mid \\theta)$ at $\\theta = x_o$.",
            "By one forward pass of the network at $x_o$.",
            "By rejection ABC with the learned likelihood as the distance.",
        ),
    ),
    Item(
        id="w2_sequential",
        week=2,
        topic="NPE",
        kind="mc",
        question="Sequential NPE draws later rounds of parameters from the current posterior "
        "estimate instead of the prior. What must it then do?",
        choices=(
            "Correct the loss, since maximum likelihood on proposal draws learns the proposal "
            "posterior, not $p(\\theta \\mid x_o)$.",
            "Nothing: the proposal only changes which simulations are run.",
            "Switch to MCMC sampling for the final posterior.",
            "Increase the ABC tolerance each round.",
        ),
    ),
    Item(
        id="w2_embedding",
        week=2,
        topic="NPE",
        kind="mc",
        question="What is an embedding network in NPE for?",
        choices=(
            "It learns summary statistics of high-dimensional $x$, trained jointly with the "
            "density estimator.",
            "It maps $\\theta$ to a space where the prior is Gaussian.",
            "It replaces the simulator by a cheaper surrogate.",
            "It computes the Jacobian determinant of the flow.",
        ),
    ),
    Item(
        id="w2_prior_change",
        week=2,
        topic="NLE",
        kind="mc",
        question="You trained NPE and NLE on the same simulations and now want the posterior "
        "under a different prior. Which is true?",
        choices=(
            "NLE's likelihood can be reused with the new prior; NPE has the old prior built in.",
            "NPE can be reused with the new prior; NLE has the old prior built in.",
            "Both must be retrained from scratch.",
            "Neither depends on the prior.",
        ),
    ),
    Item(
        id="w2_spline",
        week=2,
        topic="normalizing flows",
        kind="mc",
        question="Why are the knots' derivatives of a rational-quadratic spline flow kept "
        "positive?",
        choices=(
            "So that each spline is strictly increasing, hence invertible with a positive "
            "Jacobian.",
            "So that the spline is convex.",
            "So that the density integrates to one without a Jacobian term.",
            "So that the spline is periodic.",
        ),
    ),
    Item(
        id="w2_derive_cov",
        week=2,
        topic="normalizing flows",
        kind="text",
        question="Derive the density of $y = f(x)$ for a strictly increasing differentiable "
        "$f$ and $x \\sim p_X$, and write the log-density of a flow made of $K$ such layers.",
        model_answer=(
            "$P(Y \\leq y) = P(X \\leq f^{-1}(y))$; differentiating, "
            "$p_Y(y) = p_X(f^{-1}(y))\\, (f^{-1})'(y) = p_X(x) / f'(x)$ at $x = f^{-1}(y)$. "
            "For $y = f_K \\circ \\dots \\circ f_1(x)$ with $x_0 = x$, $x_k = f_k(x_{k-1})$: "
            "$\\log p_Y(y) = \\log p_X(x_0) - \\sum_k \\log |f_k'(x_{k-1})|$ (determinants in "
            "several dimensions)."
        ),
        rubric=(
            "1 point: the CDF argument (or conservation of probability mass). "
            "1 point: the derivative of the inverse / division by f'. "
            "1 point: the sum of log-Jacobians over the layers, with the right sign."
        ),
    ),
    Item(
        id="w2_compare",
        week=2,
        topic="NPE/NLE/NRE",
        kind="text",
        question="Compare NPE and NRE for a problem where you will analyse many observations "
        "$x_o$ and want fast posterior samples. Name one advantage of each.",
        model_answer=(
            "NPE is amortised and gives independent posterior samples directly: a forward pass "
            "per $x_o$, no MCMC, fast for many observations. NRE learns a ratio (a classifier), "
            "which is flexible and lets the prior be changed or the ratio be combined over i.i.d. "
            "observations, but needs MCMC (slower, tuning) for samples. So NPE for fast "
            "repeated sampling; NRE for flexibility, with the cost of MCMC."
        ),
        rubric=(
            "1 point: NPE samples directly / amortised. "
            "1 point: NRE needs MCMC to sample. "
            "1 point: a correct advantage of NRE (classifier loss, prior can change, combine "
            "i.i.d. trials)."
        ),
    ),
]

_ = math
