"""Local diagnostics: the full failure x diagnostic matrix, and agreement with ``sbi``.

    python -m benchmarks.local_diagnostics                # everything (about 10 CPU minutes)
    python -m benchmarks.local_diagnostics --part matrix --repeats 50

Part ``matrix``: :func:`sbi_course.diagnostics.failure_matrix` with many seeds; the power of
each diagnostic against each failure (the false-alarm rate in the row ``correct``).

Part ``sbi``: the same inputs through ``sbi`` 0.27 and through the course's functions, on the
analytic model theta ~ N(0, I_2), x ~ N(theta, I_2), posterior N(x / 2, I / 2), for posteriors
that are right, over-confident (std x 0.5), under-confident (x 2), biased (+0.5) and the prior:

* TARP: ``sbi``'s ``run_tarp`` internals (``_run_tarp``) and ``check_tarp`` on the same
  samples and reference points against :func:`~sbi_course.diagnostics.tarp`;
* L-C2ST: ``sbi``'s ``LC2ST`` (scikit-learn MLP, permutation null) and ``LC2ST_NF`` (flow
  trick) against :class:`~sbi_course.diagnostics.LocalC2ST`, same training data, same x_o:
  the statistics and p-values;
* MMD: ``calc_misspecification_mmd`` (x-space) against
  :func:`~sbi_course.diagnostics.misspecification_mmd`, for x_o from the model and shifted.

Writes ``benchmarks/results/local_diagnostics.md``.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch

from sbi_course.diagnostics import LocalC2ST, failure_matrix, misspecification_mmd, tarp

RESULTS = Path(__file__).resolve().parent / "results" / "local_diagnostics.md"
STD = math.sqrt(0.5)
CASES = {"right": (1.0, 0.0), "over-confident": (0.5, 0.0), "under-confident": (2.0, 0.0)}
CASES |= {"biased": (1.0, 0.5), "prior": (None, 0.0)}


def _mean_std(case, x):
    scale, shift = CASES[case]
    if scale is None:
        return torch.zeros_like(x), torch.ones_like(x)
    return x / 2 + shift, torch.full_like(x, scale * STD)


def matrix_part(repeats: int) -> list[str]:
    start = time.process_time()
    m = failure_matrix(num_repeats=repeats, generator=torch.Generator().manual_seed(2024))
    seconds = time.process_time() - start
    lines = [
        f"## Failure x diagnostic matrix ({repeats} seeds, {m.num_simulations} simulations, "
        f"level {m.alpha}; {seconds:.0f} CPU s)",
        "",
        "Share of seeds in which the diagnostic rejects (row `correct`: false alarms).",
        "",
        "| failure | " + " | ".join(m.diagnostics) + " |",
        "|---|" + "---|" * len(m.diagnostics),
    ]
    for failure, row in zip(m.failures, m.power, strict=True):
        lines.append(f"| {failure} | " + " | ".join(f"{float(v):.2f}" for v in row) + " |")
    return lines


def sbi_part() -> list[str]:
    from sbi.diagnostics.lc2st import LC2ST, LC2ST_NF
    from sbi.diagnostics.misspecification import calc_misspecification_mmd
    from sbi.diagnostics.tarp import _run_tarp, check_tarp

    g = torch.Generator().manual_seed(7)
    torch.manual_seed(7)  # sbi draws from the global generator
    lines = ["## Agreement with sbi 0.27 on the same inputs", ""]
    # TARP
    theta = torch.randn(1000, 2, generator=g)
    x = theta + torch.randn(1000, 2, generator=g)
    lines += ["| posterior | TARP ATC (sbi) | ATC (ours) | max abs ECP difference |"]
    lines += ["|---|---|---|---|"]
    for case in CASES:
        mean, std = _mean_std(case, x)
        draws = mean + std * torch.randn(500, *x.shape, generator=g)
        ours = tarp(draws, theta, x, generator=g)
        ecp, alpha = _run_tarp(
            draws.float(), theta.float(), ours.references.float(), z_score_theta=True
        )
        atc, _ = check_tarp(ecp, alpha)
        strict = (ours.credibility.float()[None] < alpha[1:-1, None]).double().mean(1)
        diff = float((strict - ecp.double()[1:-1]).abs().max())
        lines.append(f"| {case} | {atc:+.4f} | {float(ours.atc):+.4f} | {diff:.1e} |")
    # L-C2ST
    x_o = torch.tensor([1.0, -0.5])
    num = 1000
    theta, x = theta[:num], x[:num]
    lines += [
        "",
        "| posterior | L-C2ST T (sbi) | p (sbi) | T (ours) | p (ours) "
        "| NF: T (sbi) | p (sbi) | T (ours) | p (ours) | CPU s sbi / ours |",
        "|---" * 10 + "|",
    ]
    for case in CASES:
        mean, std = _mean_std(case, x)
        samples = mean + std * torch.randn(x.shape, generator=g)
        mean_o, std_o = _mean_std(case, x_o.expand(2000, 2))
        samples_o = mean_o + std_o * torch.randn(2000, 2, generator=g)

        def inverse(theta_, x_, case=case):
            m, s = _mean_std(case, x_)
            return (theta_ - m) / s

        t0 = time.process_time()
        theirs = LC2ST(theta, x, samples, num_trials_null=20, seed=7)
        theirs.train_under_null_hypothesis()
        theirs.train_on_observed_data()
        t_sbi = float(theirs.get_statistic_on_observed_data(samples_o, x_o))
        p_sbi = float(theirs.p_value(samples_o, x_o))
        base = torch.distributions.MultivariateNormal(torch.zeros(2), torch.eye(2))
        theirs_nf = LC2ST_NF(
            theta,
            x,
            samples,
            flow_inverse_transform=inverse,
            flow_base_dist=base,
            num_trials_null=20,
            num_eval=2000,
            seed=7,
        )
        theirs_nf.train_under_null_hypothesis()
        theirs_nf.train_on_observed_data()
        tnf_sbi = float(theirs_nf.get_statistic_on_observed_data(x_o))
        pnf_sbi = float(theirs_nf.p_value(x_o))
        t1 = time.process_time()
        ours = LocalC2ST(theta, x, samples, num_null=20, generator=g).test(x_o, samples_o)
        ours_nf = LocalC2ST(
            theta, x, None, null="flow", inverse_transform=inverse, num_null=50, generator=g
        ).test(x_o, num_samples=2000, generator=g)
        t2 = time.process_time()
        lines.append(
            f"| {case} | {t_sbi:.4f} | {p_sbi:.2f} | {float(ours.statistic):.4f} | "
            f"{float(ours.pvalue):.2f} | {tnf_sbi:.4f} | {pnf_sbi:.2f} | "
            f"{float(ours_nf.statistic):.4f} | {float(ours_nf.pvalue):.2f} | "
            f"{t1 - t0:.0f} / {t2 - t1:.0f} |"
        )
    # MMD
    lines += ["", "| x_o (5 observations) | MMD p (sbi) | MMD p (ours) |", "|---|---|---|"]
    sims = torch.cat([theta, theta], 1)[:1000] + torch.randn(1000, 4, generator=g)
    for offset in (0.0, 1.0, 2.0, 4.0):
        for rep in range(3):
            th = torch.randn(5, 2, generator=g)
            obs = torch.cat([th, th], 1) + torch.randn(5, 4, generator=g)
            obs[:, 2:] += offset
            p_sbi, _ = calc_misspecification_mmd(obs, sims, mode="x_space", n_shuffle=500)
            p_ours = float(misspecification_mmd(obs, sims, generator=g).pvalue)
            lines.append(f"| offset {offset:g}, draw {rep} | {p_sbi:.3f} | {p_ours:.3f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("matrix", "sbi", "all"), default="all")
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(1)
    lines = ["# Local diagnostics: results", ""]
    if args.part in ("sbi", "all"):
        lines += sbi_part() + [""]
    if args.part in ("matrix", "all"):
        lines += matrix_part(args.repeats) + [""]
    text = "\n".join(lines)
    print(text)
    if args.part == "all":
        RESULTS.write_text(text)


if __name__ == "__main__":
    main()
