"""Week 3 items: diagnostics, applications, flow matching and diffusion, misspecification.

Simulation-based calibration ranks (Talts et al., 2018), expected coverage from HPD levels
(Hermans et al., 2022), the C2ST accuracy of two Gaussians (the Bayes classifier of
$\\mathcal{N}(0, 1)$ against $\\mathcal{N}(\\mu, 1)$ is right with probability
$\\Phi(|\\mu| / 2)$; Lopez-Paz & Oquab, 2017), the linear path of flow matching (Lipman et al.,
2023) and the denoising score (Vincent, 2011; Song et al., 2021).
"""

from __future__ import annotations

import math

from tools.exams.items import Item


def w3_rank_params(d):
    p = {
        f"s{i}": d.choice([-1.9, -1.2, -0.7, -0.3, 0.1, 0.4, 0.8, 1.3, 1.7, 2.2]) for i in range(8)
    }
    p["theta"] = d.choice([-1.0, -0.5, 0.0, 0.6, 1.0, 1.5])
    return p


def w3_rank_solve(p):
    return float(sum(p[f"s{i}"] < p["theta"] for i in range(8)))


def w3_bins_params(d):
    bins = d.choice([5, 10, 20])
    return {"L": bins * d.choice([5, 10]) - 1, "B": bins, "N": bins * d.choice([20, 50, 100])}


def w3_bins_solve(p):
    return p["N"] / p["B"]


def w3_levels_params(d):
    p = {
        f"l{i}": d.choice([0.05, 0.15, 0.35, 0.55, 0.62, 0.78, 0.85, 0.93, 0.97]) for i in range(10)
    }
    p["alpha"] = d.choice([0.5, 0.7, 0.8, 0.9])
    return p


def w3_levels_solve(p):
    return sum(p[f"l{i}"] < p["alpha"] for i in range(10)) / 10


def w3_mc_error_params(d):
    return {"alpha": d.choice([0.5, 0.8, 0.9, 0.95]), "N": d.choice([100, 200, 400, 1000])}


def w3_mc_error_solve(p):
    return math.sqrt(p["alpha"] * (1 - p["alpha"]) / p["N"])


def w3_c2st_params(d):
    return {"mu": d.choice([0.5, 1.0, 1.5, 2.0, 3.0])}


def w3_c2st_solve(p):
    return 0.5 * (1 + math.erf(abs(p["mu"]) / 2 / math.sqrt(2)))


def w3_ppc_params(d):
    p = {f"t{i}": d.choice([3.1, 4.0, 4.6, 5.2, 5.9, 6.3, 7.5]) for i in range(10)}
    p["obs"] = d.choice([4.3, 5.5, 6.8])
    return p


def w3_ppc_solve(p):
    return sum(p[f"t{i}"] >= p["obs"] for i in range(10)) / 10


def w3_fm_params(d):
    return {
        "a": d.choice([-1.0, 0.5, 2.0]),
        "b": d.choice([1.0, 3.0, -2.0]),
        "t": d.choice([0.25, 0.4, 0.75]),
    }


def w3_fm_solve(p):
    return (1 - p["t"]) * p["a"] + p["t"] * p["b"]


def w3_euler_params(d):
    return {
        "a": d.choice([-1.0, -0.5, 0.5]),
        "b": d.choice([0.0, 1.0, 2.0]),
        "x0": d.choice([1.0, -2.0, 0.5]),
        "h": d.choice([0.1, 0.25, 0.5]),
    }


def w3_euler_solve(p):
    x = p["x0"]
    for _ in range(2):
        x = x + p["h"] * (p["a"] * x + p["b"])
    return x


def w3_score_params(d):
    return {
        "x0": d.choice([0.5, 1.0, -1.0]),
        "xt": d.choice([1.3, -0.4, 2.0]),
        "sigma": d.choice([0.5, 1.0, 2.0]),
    }


def w3_score_solve(p):
    return -(p["xt"] - p["x0"]) / p["sigma"] ** 2


ITEMS = [
    Item(
        id="w3_sbc_rank",
        week=3,
        topic="diagnostics",
        kind="num",
        question=(
            "For one SBC round, the true parameter is $\\theta^* = <<theta>>$ and the posterior "
            "gives the $8$ samples $<<s0>>, <<s1>>, <<s2>>, <<s3>>, <<s4>>, <<s5>>, <<s6>>, "
            "<<s7>>$. What is the SBC rank of $\\theta^*$ (the number of samples below it)?"
        ),
        params=w3_rank_params,
        solve=w3_rank_solve,
        tol=0.1,
    ),
    Item(
        id="w3_sbc_bins",
        week=3,
        topic="diagnostics",
        kind="num",
        question=(
            "You run SBC with $N = <<N>>$ simulations and $L = <<L>>$ posterior samples each, "
            "and histogram the ranks in $<<B>>$ bins of equal width. How many ranks do you "
            "expect per bin if the posterior is calibrated?"
        ),
        params=w3_bins_params,
        solve=w3_bins_solve,
        tol=0.1,
    ),
    Item(
        id="w3_coverage",
        week=3,
        topic="diagnostics",
        kind="num",
        question=(
            "Ten test simulations give these HPD levels of the true parameters (the smallest "
            "credibility level whose HPD region contains it): $<<l0>>, <<l1>>, <<l2>>, <<l3>>, "
            "<<l4>>, <<l5>>, <<l6>>, <<l7>>, <<l8>>, <<l9>>$. What is the empirical coverage "
            "at the nominal level $<<alpha>>$?"
        ),
        params=w3_levels_params,
        solve=w3_levels_solve,
        tol=0.01,
    ),
    Item(
        id="w3_coverage_error",
        week=3,
        topic="diagnostics",
        kind="num",
        question=(
            "The empirical coverage at nominal level $<<alpha>>$ is estimated from $N = <<N>>$ "
            "independent test simulations of a calibrated posterior. What is its standard "
            "deviation (the Monte Carlo error)? (four decimals)"
        ),
        params=w3_mc_error_params,
        solve=w3_mc_error_solve,
        tol=0.0002,
    ),
    Item(
        id="w3_c2st",
        week=3,
        topic="diagnostics",
        kind="num",
        question=(
            "An approximate posterior is $\\mathcal{N}(<<mu>>, 1)$ and the true posterior is "
            "$\\mathcal{N}(0, 1)$. With equally many samples of each and a perfect classifier, "
            "what accuracy does the classifier two-sample test (C2ST) reach? (three decimals)"
        ),
        params=w3_c2st_params,
        solve=w3_c2st_solve,
        tol=0.002,
    ),
    Item(
        id="w3_ppc",
        week=3,
        topic="diagnostics",
        kind="num",
        question=(
            "A posterior predictive check: ten data sets simulated from posterior draws have the "
            "statistic values $<<t0>>, <<t1>>, <<t2>>, <<t3>>, <<t4>>, <<t5>>, <<t6>>, <<t7>>, "
            "<<t8>>, <<t9>>$; the observed data have $<<obs>>$. What is the one-sided "
            "predictive p-value, the share of replicated values at least as large as the "
            "observed one?"
        ),
        params=w3_ppc_params,
        solve=w3_ppc_solve,
        tol=0.01,
    ),
    Item(
        id="w3_fm_path",
        week=3,
        topic="flow matching",
        kind="num",
        question=(
            "Flow matching with the linear path from a noise sample $x_0 = <<a>>$ to a data "
            "sample $x_1 = <<b>>$. Where is the point $x_t$ at $t = <<t>>$? (three decimals)"
        ),
        params=w3_fm_params,
        solve=w3_fm_solve,
        tol=0.002,
    ),
    Item(
        id="w3_euler",
        week=3,
        topic="flow matching",
        kind="num",
        question=(
            "Sample a learned flow by Euler's method: the velocity field is "
            "$v(x, t) = <<a>>\\,x + <<b>>$. Starting from $x = <<x0>>$, take two steps of size "
            "$h = <<h>>$. Where do you end? (four decimals)"
        ),
        params=w3_euler_params,
        solve=w3_euler_solve,
        tol=0.0002,
    ),
    Item(
        id="w3_dsm",
        week=3,
        topic="diffusion",
        kind="num",
        question=(
            "Denoising score matching: $x_t = x_0 + <<sigma>>\\,\\epsilon$ with "
            "$\\epsilon \\sim \\mathcal{N}(0, 1)$. For $x_0 = <<x0>>$ and $x_t = <<xt>>$, what "
            "is the regression target $\\nabla_{x_t} \\log p(x_t \\mid x_0)$? (three decimals)"
        ),
        params=w3_score_params,
        solve=w3_score_solve,
        tol=0.002,
    ),
    Item(
        id="w3_sbc_shape",
        week=3,
        topic="diagnostics",
        kind="mc",
        question="An SBC rank histogram is U-shaped (too many ranks near $0$ and near $L$). "
        "What does it say about the approximate posterior?",
        choices=(
            "It is too narrow (overconfident).",
            "It is too wide (underconfident).",
            "It is biased towards larger values.",
            "It is calibrated.",
        ),
    ),
    Item(
        id="w3_coverage_below",
        week=3,
        topic="diagnostics",
        kind="mc",
        question="The expected coverage curve of an estimator lies below the diagonal at every "
        "nominal level. What does it mean?",
        choices=(
            "Credible regions contain the truth less often than claimed: the posterior is "
            "overconfident.",
            "The posterior is conservative (too wide).",
            "The posterior is calibrated but biased.",
            "The prior is too wide.",
        ),
    ),
    Item(
        id="w3_local",
        week=3,
        topic="misspecification",
        kind="mc",
        question="An NPE posterior passes SBC and expected coverage. Why can it still be wrong "
        "at the observation $x_o$ you care about?",
        choices=(
            "Both checks average over data from the prior predictive; calibration on average "
            "does not imply calibration at one $x_o$.",
            "SBC and coverage only test the posterior mean.",
            "SBC needs the exact likelihood, which NPE does not have.",
            "It cannot: passing SBC implies the posterior is exact at every $x_o$.",
        ),
    ),
    Item(
        id="w3_misspec",
        week=3,
        topic="misspecification",
        kind="mc",
        question="Which observation is the clearest sign that the simulator is misspecified for "
        "the observed data $x_o$?",
        choices=(
            "$x_o$ lies far outside the prior predictive distribution of the simulator.",
            "The posterior is narrower than the prior.",
            "The training loss of NPE is still decreasing.",
            "Two runs of NPE with different seeds give slightly different posteriors.",
        ),
    ),
    Item(
        id="w3_ensemble",
        week=3,
        topic="misspecification",
        kind="mc",
        question="What does averaging an ensemble of independently trained NPE posteriors "
        "mainly help with?",
        choices=(
            "Overconfidence from the estimator's own (epistemic) error.",
            "A misspecified simulator.",
            "A prior that puts no mass on the true parameter.",
            "The cost of running the simulator.",
        ),
    ),
    Item(
        id="w3_fm_loss",
        week=3,
        topic="flow matching",
        kind="mc",
        question="With the linear path $x_t = (1 - t) x_0 + t x_1$, what does the "
        "conditional flow-matching loss regress the network $v_\\phi(x_t, t)$ on?",
        choices=(
            "$x_1 - x_0$",
            "$x_1$",
            "$\\nabla_{x_t} \\log p(x_t)$",
            "$\\log |\\det J|$ of the flow",
        ),
    ),
    Item(
        id="w3_summaries_hh",
        week=3,
        topic="applications",
        kind="mc",
        question="For the Hodgkin-Huxley neuron, why does the course's workflow infer from "
        "summary statistics (spike count, resting potential, moments) of the voltage trace?",
        choices=(
            "The raw trace has thousands of correlated time points; a few informative "
            "summaries make estimation feasible with a modest simulation budget.",
            "The simulator cannot output the raw voltage trace.",
            "Summaries make the likelihood tractable in closed form.",
            "The posterior given the summaries always equals the posterior given the trace.",
        ),
    ),
    Item(
        id="w3_explain_sbc",
        week=3,
        topic="diagnostics",
        kind="text",
        question="Describe simulation-based calibration: how the ranks are computed and why "
        "they are uniform when the posterior is exact.",
        model_answer=(
            "Repeat: draw $\\theta^* \\sim p(\\theta)$, simulate $x \\sim p(x \\mid \\theta^*)$, "
            "draw $L$ samples from the approximate posterior at $x$ and count how many are below "
            "$\\theta^*$ (per dimension). If the posterior is exact, $\\theta^*$ and the $L$ "
            "samples are all draws from $p(\\theta \\mid x)$ (the data-averaged posterior is the "
            "prior), so they are exchangeable and $\\theta^*$'s rank is uniform on "
            "$0, \\dots, L$."
        ),
        rubric=(
            "1 point: the loop prior -> simulator -> posterior samples. "
            "1 point: the rank as the count of samples below the true value. "
            "1 point: the exchangeability argument for uniformity."
        ),
    ),
    Item(
        id="w3_explain_misspec",
        week=3,
        topic="misspecification",
        kind="text",
        question="Your NPE posterior for real data looks sharp and confident. Name two checks "
        "that could reveal that the simulator is misspecified, and say what a failure looks "
        "like.",
        model_answer=(
            "(1) Prior predictive check: simulate from the prior and see whether $x_o$ (or its "
            "summaries) lies in the bulk; if it is far outside, the model cannot produce the "
            "data and NPE extrapolates. (2) Posterior predictive check: simulate from posterior "
            "draws and compare with $x_o$; systematic misfit (small predictive p-values) flags "
            "misspecification. A misspecification detector (distance of $x_o$'s embedding to "
            "training embeddings) is also accepted."
        ),
        rubric=(
            "1 point each for two valid checks (prior predictive, posterior predictive, "
            "out-of-distribution test of the embedding). 1 point: what failing looks like."
        ),
    ),
]

_ = math
