"""Is NLE's failure on SIR the likelihood or the MCMC? Compare learned and true log-likelihoods.

Trains the course's NLE on the benchmark's 10^3 SIR simulations (optionally with the
contractive MAF layer of :mod:`benchmarks.experiments.count_data`) and prints, at sbibm's
observation 1, the mean learned log-likelihood ``log q(x_o | theta)`` and the exact one
(:func:`sbi_course.simulators.sir.log_likelihood`) over 300 reference posterior samples, 300 of
our MCMC samples and 300 prior samples. A good estimator ranks the three like the exact one.

    python -m benchmarks.experiments.count_data_diagnose [baseline|contractive]
"""

from __future__ import annotations

import sys

import torch

from benchmarks.algorithms import seed_for
from benchmarks.experiments import count_data
from sbi_course import tasks
from sbi_course.inference import NLE
from sbi_course.simulators import sir


def main(variant: str = "baseline") -> None:
    torch.set_num_threads(1)
    if variant == "contractive":
        count_data._contractive_maf()
    task = tasks.get("sir")
    obs = tasks.load_sbibm(count_data.SBIBM_DIR, "sir", 1)
    g = torch.Generator().manual_seed(seed_for(0, "sir", 1000, "data"))
    theta, x = task.sample_joint(1000, generator=g)
    nle = NLE(task.prior)
    nle.train(theta, x, generator=torch.Generator().manual_seed(1), show_progress=False)
    x_o = obs.x_o.reshape(1, -1).to(x.dtype)
    draws = {
        "reference": obs.reference_samples[:300].to(x.dtype),
        "ours": nle.posterior(x_o.reshape(-1)).sample((300,), generator=g).to(x.dtype),
        "prior": task.prior.sample((300,), generator=g).to(x.dtype),
    }
    estimator = nle.estimator
    with torch.no_grad():
        for name, th in draws.items():
            learned = estimator.log_prob(
                x_o.expand(len(th), -1).to(estimator.dtype), th.to(estimator.dtype)
            )
            exact = sir.log_likelihood(th.double(), x_o.double())
            exact = exact[torch.isfinite(exact)]
            print(
                f"{variant} {name}: learned {learned.mean().item():.2f}, exact "
                f"{exact.mean().item():.2f}, mean theta {th.mean(0).tolist()}"
            )


if __name__ == "__main__":
    main(*sys.argv[1:])
