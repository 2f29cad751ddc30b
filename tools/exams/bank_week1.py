"""Week 1 items: simulators, Bayes' rule, approximate Bayesian computation, conditional densities.

The answers are closed forms: conjugate posteriors (Gelman et al., *Bayesian Data Analysis*,
ch. 2), the acceptance probability of rejection ABC with a noise-free simulator and a uniform
prior (the volume of the acceptance ball over the prior's volume; Sisson, Fan & Beaumont,
*Handbook of ABC*, 2018, ch. 1), regression adjustment (Beaumont, Zhang & Balding, 2002) and
Gaussian and mixture log-densities (Bishop, 1994). tests/test_exams.py checks them against
``sbi_course`` and ``torch`` where those compute the same thing.
"""

from __future__ import annotations

import math

from tools.exams.items import Item


def w1_beta_params(d):
    n = d.integer(8, 20)
    return {"a": d.integer(1, 4), "b": d.integer(1, 4), "n": n, "k": d.integer(1, n - 1)}


def w1_beta_solve(p):
    return (p["a"] + p["k"]) / (p["a"] + p["b"] + p["n"])


def w1_gauss_params(d):
    return {
        "s0": d.choice([0.5, 1.0, 1.5, 2.0, 3.0]),
        "s": d.choice([0.5, 1.0, 2.0]),
        "x": d.choice([-2.5, -1.5, -0.8, 0.6, 1.2, 2.4, 3.0]),
    }


def w1_gauss_mean_solve(p):
    return p["x"] * p["s0"] ** 2 / (p["s0"] ** 2 + p["s"] ** 2)


def w1_gauss_sd_solve(p):
    return math.sqrt(1.0 / (1.0 / p["s0"] ** 2 + 1.0 / p["s"] ** 2))


def w1_abc_ball_params(d):
    return {"L": d.choice([2, 4, 5, 10]), "eps": d.choice([0.1, 0.2, 0.25, 0.3, 0.4, 0.5])}


def w1_abc_ball_solve(p):
    return math.pi * p["eps"] ** 2 / p["L"] ** 2


def w1_abc_cube_params(d):
    return {"D": d.integer(2, 6), "eps": d.choice([0.2, 0.25, 0.4, 0.5]), "L": d.choice([2, 4])}


def w1_abc_cube_solve(p):
    return (2 * p["eps"] / p["L"]) ** p["D"]


def w1_regadj_params(d):
    return {
        "theta": d.choice([0.8, 1.3, 2.1, 2.7, 3.4]),
        "beta": d.choice([0.5, 0.8, 1.5, 2.0, -0.6]),
        "s": d.choice([4.2, 5.1, 5.9, 6.3]),
        "so": d.choice([4.8, 5.5, 6.0]),
    }


def w1_regadj_solve(p):
    return p["theta"] - p["beta"] * (p["s"] - p["so"])


def w1_nll_params(d):
    return {
        "mu": d.choice([-1.0, 0.0, 0.5, 2.0]),
        "sigma": d.choice([0.5, 1.0, 2.0, 3.0]),
        "y": d.choice([-1.5, 0.2, 1.0, 2.5, 3.5]),
    }


def w1_nll_solve(p):
    z = (p["y"] - p["mu"]) / p["sigma"]
    return 0.5 * math.log(2 * math.pi * p["sigma"] ** 2) + 0.5 * z**2


def w1_mix_params(d):
    w = d.choice([0.2, 0.3, 0.4, 0.6, 0.7])
    return {
        "w": w,
        "v": round(1 - w, 1),
        "m1": d.choice([-2.0, -1.0, 0.0]),
        "m2": d.choice([1.0, 2.0, 3.0]),
        "s1": d.choice([0.5, 1.0]),
        "s2": d.choice([1.0, 2.0]),
        "y": d.choice([-1.0, 0.0, 0.5, 1.5]),
    }


def w1_mix_solve(p):
    def normal(y, m, s):
        return math.exp(-0.5 * ((y - m) / s) ** 2) / (s * math.sqrt(2 * math.pi))

    return p["w"] * normal(p["y"], p["m1"], p["s1"]) + p["v"] * normal(p["y"], p["m2"], p["s2"])


def w1_mle_params(d):
    return {f"y{i}": d.choice([0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0]) for i in range(1, 6)}


def w1_mle_solve(p):
    ys = [p[f"y{i}"] for i in range(1, 6)]
    mean = sum(ys) / 5
    return math.sqrt(sum((y - mean) ** 2 for y in ys) / 5)


def w1_grid_params(d):
    n = d.integer(4, 8)
    return {"n": n, "k": d.integer(1, n - 1), "q": d.choice([0.2, 0.3, 0.4, 0.5])}


def w1_grid_solve(p):
    # prior 1/3 on each of 0.2, 0.5, 0.8; the answer is P(theta = 0.5 | k of n)
    n, k = p["n"], p["k"]
    like = [t**k * (1 - t) ** (n - k) for t in (0.2, 0.5, 0.8)]
    return like[1] / sum(like)


def w1_sufficient_params(d):
    return {"n": d.integer(10, 50)}


def w1_curse_params(d):
    return {"D": d.choice([20, 50, 100])}


ITEMS = [
    Item(
        id="w1_beta_mean",
        week=1,
        topic="Bayes' rule",
        kind="num",
        question=(
            "A coin has unknown probability $\\theta$ of heads, with prior "
            "$\\theta \\sim \\mathrm{Beta}(<<a>>, <<b>>)$. You flip it $<<n>>$ times and see "
            "$<<k>>$ heads. What is the posterior mean of $\\theta$? (three decimals)"
        ),
        params=w1_beta_params,
        solve=w1_beta_solve,
        tol=0.002,
    ),
    Item(
        id="w1_gauss_mean",
        week=1,
        topic="Bayes' rule",
        kind="num",
        question=(
            "Prior $\\theta \\sim \\mathcal{N}(0, <<s0>>^2)$, simulator "
            "$x \\mid \\theta \\sim \\mathcal{N}(\\theta, <<s>>^2)$, observation $x_o = <<x>>$. "
            "What is the posterior mean $\\mathbb{E}[\\theta \\mid x_o]$? (three decimals)"
        ),
        params=w1_gauss_params,
        solve=w1_gauss_mean_solve,
        tol=0.002,
    ),
    Item(
        id="w1_gauss_sd",
        week=1,
        topic="Bayes' rule",
        kind="num",
        question=(
            "Prior $\\theta \\sim \\mathcal{N}(0, <<s0>>^2)$, simulator "
            "$x \\mid \\theta \\sim \\mathcal{N}(\\theta, <<s>>^2)$, observation $x_o = <<x>>$. "
            "What is the posterior standard deviation of $\\theta$? (three decimals)"
        ),
        params=w1_gauss_params,
        solve=w1_gauss_sd_solve,
        tol=0.002,
    ),
    Item(
        id="w1_abc_ball",
        week=1,
        topic="ABC",
        kind="num",
        question=(
            "Rejection ABC with prior $\\theta \\sim \\mathcal{U}([0, <<L>>]^2)$ and the "
            "noise-free simulator $x = \\theta$. The observation $x_o$ lies at least $1$ away "
            "from the border of the square. A draw is accepted when "
            "$\\|x - x_o\\|_2 \\leq <<eps>>$. What is the probability that one simulation is "
            "accepted? (four significant digits)"
        ),
        params=w1_abc_ball_params,
        solve=w1_abc_ball_solve,
        rtol=0.002,
    ),
    Item(
        id="w1_abc_cube",
        week=1,
        topic="ABC",
        kind="num",
        question=(
            "Rejection ABC in $D = <<D>>$ dimensions: prior $\\mathcal{U}([0, <<L>>]^D)$, "
            "noise-free simulator $x = \\theta$, $x_o$ far from the border, and a draw is "
            "accepted when $\\max_i |x_i - x_{o,i}| \\leq <<eps>>$. What is the acceptance "
            "probability? (give it to three significant digits; scientific notation such as "
            "`1.23e-4` is fine)"
        ),
        params=w1_abc_cube_params,
        solve=w1_abc_cube_solve,
        rtol=0.005,
    ),
    Item(
        id="w1_regadj",
        week=1,
        topic="ABC",
        kind="num",
        question=(
            "Linear regression adjustment of ABC: an accepted draw has $\\theta_i = <<theta>>$ "
            "and summary $s_i = <<s>>$, the observed summary is $s_o = <<so>>$ and the fitted "
            "slope of $\\theta$ on $s$ is $\\hat\\beta = <<beta>>$. What is the adjusted "
            "$\\theta_i$? (two decimals)"
        ),
        params=w1_regadj_params,
        solve=w1_regadj_solve,
        tol=0.005,
    ),
    Item(
        id="w1_gauss_nll",
        week=1,
        topic="conditional density estimation",
        kind="num",
        question=(
            "A conditional Gaussian network outputs mean $\\mu = <<mu>>$ and standard deviation "
            "$\\sigma = <<sigma>>$ for some $x$. What is its loss "
            "$-\\log \\mathcal{N}(y; \\mu, \\sigma^2)$ at the training target $y = <<y>>$? "
            "(natural log, three decimals)"
        ),
        params=w1_nll_params,
        solve=w1_nll_solve,
        tol=0.002,
    ),
    Item(
        id="w1_mixture",
        week=1,
        topic="conditional density estimation",
        kind="num",
        question=(
            "A mixture density network outputs, for some $x$, the mixture "
            "$<<w>>\\,\\mathcal{N}(<<m1>>, <<s1>>^2) + <<v>>\\,\\mathcal{N}(<<m2>>, <<s2>>^2)$ "
            "(standard deviations squared). What is its density at $\\theta = <<y>>$? "
            "(four decimals)"
        ),
        params=w1_mix_params,
        solve=w1_mix_solve,
        tol=0.0002,
    ),
    Item(
        id="w1_mle_sd",
        week=1,
        topic="conditional density estimation",
        kind="num",
        question=(
            "You fit a Gaussian $\\mathcal{N}(\\mu, \\sigma^2)$ by maximum likelihood to the five "
            "numbers $<<y1>>, <<y2>>, <<y3>>, <<y4>>, <<y5>>$. What is the fitted $\\sigma$? "
            "(three decimals)"
        ),
        params=w1_mle_params,
        solve=w1_mle_solve,
        tol=0.002,
    ),
    Item(
        id="w1_grid",
        week=1,
        topic="Bayes' rule",
        kind="num",
        question=(
            "A Bernoulli simulator has success probability $\\theta \\in \\{0.2, 0.5, 0.8\\}$, "
            "each with prior probability $1/3$. Out of $<<n>>$ independent runs, $<<k>>$ succeed. "
            "What is the posterior probability $P(\\theta = 0.5 \\mid \\mathrm{data})$? "
            "(three decimals)"
        ),
        params=w1_grid_params,
        solve=w1_grid_solve,
        tol=0.002,
    ),
    Item(
        id="w1_intractable",
        week=1,
        topic="simulators",
        kind="mc",
        question="Why is the likelihood $p(x \\mid \\theta)$ of a stochastic simulator usually "
        "unavailable?",
        choices=(
            "Evaluating it means integrating over every random path the simulator could take "
            "to produce $x$, and that integral has no closed form.",
            "The simulator is deterministic, so $p(x \\mid \\theta)$ is not defined.",
            "The prior $p(\\theta)$ is unknown, so the likelihood cannot be normalised.",
            "Simulators only produce summary statistics, never the data $x$ itself.",
        ),
    ),
    Item(
        id="w1_eps_large",
        week=1,
        topic="ABC",
        kind="mc",
        question="In rejection ABC, what do the accepted parameters follow as the tolerance "
        "$\\epsilon$ grows without bound?",
        choices=(
            "The prior $p(\\theta)$.",
            "The posterior $p(\\theta \\mid x_o)$.",
            "A point mass at the maximum-likelihood estimate.",
            "The prior predictive distribution of $x$.",
        ),
    ),
    Item(
        id="w1_sufficient",
        week=1,
        topic="ABC",
        kind="mc",
        question="Data $x_1, \\dots, x_{<<n>>}$ are i.i.d. $\\mathcal{N}(\\theta, 1)$. Which "
        "summary statistic loses no information about $\\theta$ in ABC?",
        params=w1_sufficient_params,
        choices=(
            "The sample mean.",
            "The sample variance.",
            "The largest observation.",
            "The number of positive observations.",
        ),
    ),
    Item(
        id="w1_smc_weights",
        week=1,
        topic="ABC",
        kind="mc",
        question="In SMC-ABC, a particle proposed from a perturbation kernel around the previous "
        "population gets the weight $p(\\theta) / \\sum_j w_j K(\\theta \\mid \\theta_j)$. Why?",
        choices=(
            "The particles were not drawn from the prior; the weight corrects for the proposal "
            "so that accepted particles target the ABC posterior.",
            "It makes the weights sum to one without normalising them.",
            "It lowers the tolerance $\\epsilon$ from one population to the next.",
            "It rewards particles whose simulations are closest to $x_o$.",
        ),
    ),
    Item(
        id="w1_amortised",
        week=1,
        topic="conditional density estimation",
        kind="mc",
        question="What does it mean that neural posterior estimation with a conditional density "
        "estimator $q_\\phi(\\theta \\mid x)$ is *amortised*?",
        choices=(
            "After one training on simulations $(\\theta_i, x_i)$, the posterior for a new "
            "observation is a forward pass, with no new simulations or training.",
            "The simulation cost is spread over several GPUs.",
            "The network is trained once per observation $x_o$.",
            "The loss is averaged over mini-batches instead of the whole data set.",
        ),
    ),
    Item(
        id="w1_curse",
        week=1,
        topic="ABC",
        kind="mc",
        question="Rejection ABC is run on raw data with $<<D>>$ dimensions instead of on two "
        "summary statistics, at the same tolerance. What happens?",
        params=w1_curse_params,
        choices=(
            "The acceptance rate collapses, because the volume of the acceptance region shrinks "
            "exponentially with the dimension.",
            "The accepted samples become exact posterior samples.",
            "The acceptance rate rises, because more data carry more information.",
            "Nothing changes: the distance is a single number either way.",
        ),
    ),
    Item(
        id="w1_explain_eps",
        week=1,
        topic="ABC",
        kind="text",
        question="Explain the trade-off in choosing the tolerance $\\epsilon$ of rejection ABC "
        "with a fixed simulation budget. What do the accepted samples approximate as "
        "$\\epsilon \\to 0$, and what is the cost?",
        model_answer=(
            "Accepted samples follow the ABC posterior "
            "$p(\\theta \\mid d(x, x_o) \\leq \\epsilon)$. "
            "A large $\\epsilon$ accepts many draws (low Monte Carlo variance) but the ABC "
            "posterior is wider than the true one (bias towards the prior). As $\\epsilon \\to 0$ "
            "(with sufficient summaries) the ABC posterior tends to $p(\\theta \\mid x_o)$, but "
            "the acceptance probability tends to zero (like $\\epsilon^D$ in $D$ dimensions), so "
            "with a fixed budget few or no samples are accepted: a bias-variance trade-off."
        ),
        rubric=(
            "1 point: bias, a large epsilon widens the posterior towards the prior. "
            "1 point: as epsilon -> 0 the exact posterior is recovered (given sufficient "
            "summaries). 1 point: the acceptance rate falls (like epsilon^D), so the variance "
            "grows at a fixed budget."
        ),
    ),
    Item(
        id="w1_derive_gauss",
        week=1,
        topic="Bayes' rule",
        kind="text",
        question="Derive the posterior of $\\theta$ for the prior $\\mathcal{N}(0, s_0^2)$ and "
        "the likelihood $\\mathcal{N}(x_o; \\theta, s^2)$: show that it is Gaussian and give its "
        "mean and variance.",
        model_answer=(
            "$\\log p(\\theta \\mid x_o) = -\\theta^2 / (2 s_0^2) - (x_o - \\theta)^2 / (2 s^2) + "
            "c$, a quadratic in $\\theta$, so the posterior is Gaussian. Collecting terms: "
            "precision $1/s_0^2 + 1/s^2$, so variance $s_0^2 s^2 / (s_0^2 + s^2)$, and mean "
            "(variance times $x_o / s^2$) $= x_o s_0^2 / (s_0^2 + s^2)$."
        ),
        rubric=(
            "1 point: writes the log posterior as log prior + log likelihood up to a constant. "
            "1 point: completes the square (quadratic in theta => Gaussian). "
            "1 point: correct mean and variance."
        ),
    ),
]

_ = math
