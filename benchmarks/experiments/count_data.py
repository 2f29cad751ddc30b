"""NLE and NRE on count data (SIR, bernoulli_glm): small experiments with candidate fixes.

Each variant trains the course's NLE or NRE on 10^3 simulations of a task (one thread, the
benchmark's data seed), samples the posterior of sbibm's observation 1 with the package's
default MCMC and scores it with the fast C2ST against sbibm's reference samples. Every run
appends one JSON line to ``benchmarks/results/count_data_experiments.jsonl``; ``--table``
prints the Markdown table of all runs so far.

    python -m benchmarks.experiments.count_data --task sir --method nle --variant dequantise

Variants (nothing in ``sbi_course`` is edited; the estimator-level ones patch it in this
process only):

* ``baseline``: the package's defaults.
* ``dequantise``: uniform dequantisation (Uria et al. 2013; Theis et al. 2016) of the
  integer-valued data columns: train on ``x + u``, ``u ~ U(-1/2, 1/2)`` drawn afresh each
  epoch is approximated by one draw per simulation and ``--copies`` copies; the likelihood of
  the counts ``x_o`` is then the density integrated over the unit cell, approximated at its
  centre ``x_o``. The model of ``x + u`` has a density bounded by one count per unit, so no
  spike can form on a point mass.
* ``scale_bound1``: the MAF's per-layer log-scale bounded softly by +-1 instead of +-3.
* ``contractive``: each MAF layer can only contract ``x`` towards ``z`` (``sbi``/nflows:
  ``z = x * s + m``, ``s = sigmoid(a + 2) + 1e-3``), so the density never exceeds the base
  density times the z-scoring's Jacobian.
* ``patience50``: early stopping after 50 epochs without a better validation loss (20).
* ``log1p``: the estimator sees ``log1p`` of the counts (NRE; for NLE this was ruled out).
* ``tanh``: tanh hidden units in the MADE, as sbi's MAF (the package: ReLU).
* ``batch50``: sbi's training settings, batches of 50 at learning rate 5e-4 (256 and 1e-3).
* combinations joined by ``+``, e.g. ``dequantise+contractive``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import torch

from benchmarks.algorithms import seed_for
from sbi_course import tasks

REPO = Path(__file__).resolve().parents[2]
LOG = REPO / "benchmarks" / "results" / "count_data_experiments.jsonl"
SBIBM_DIR = Path(os.environ.get("SBIBM_DIR", REPO.parent / "shared" / "sbibm"))
VARIANTS = (
    "baseline",
    "dequantise",
    "scale_bound1",
    "contractive",
    "patience50",
    "log1p",
    "batch50",
    "tanh",
)


def _contractive_maf() -> None:
    """Patch the MAF layer so that each layer only contracts (nflows' affine MADE layer)."""
    from sbi_course.density.flows import maf

    def shift_and_log_scale(self, x, context):
        params = self.made(x, context)
        scale = torch.sigmoid(params[:, 1] + 2.0) + 1e-3  # z = (x - shift) * scale
        return params[:, 0], -torch.log(scale)

    maf.MaskedAffineAutoregressive._shift_and_log_scale = shift_and_log_scale


def _tanh_made() -> None:
    """Patch the MAF's MADE to tanh hidden units (sbi's MAF; the package uses ReLU)."""
    from sbi_course.density.flows import maf

    def forward(self, x, context):
        h = torch.tanh(self.hidden_layers[0](x) + self.context_layer(context))
        for layer in self.hidden_layers[1:]:
            h = torch.tanh(layer(h))
        return self.output_layer(h).reshape(x.shape[0], self.params_per_feature, self.features)

    maf.MADE.forward = forward


def run(
    task_name: str, method: str, variant: str, budget: int, num_samples: int, copies: int, seed: int
) -> dict:
    from sbi_course.diagnostics import c2st
    from sbi_course.inference import NLE, NRE

    parts = variant.split("+")
    unknown = [p for p in parts if p not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; choose from {VARIANTS}")
    torch.set_num_threads(1)
    task = tasks.get(task_name)
    obs = tasks.load_sbibm(SBIBM_DIR, task_name, 1)
    g = torch.Generator().manual_seed(seed_for(0, task_name, budget, "data"))
    theta, x = task.sample_joint(budget, generator=g)
    x_o = obs.x_o.reshape(1, -1).to(x.dtype)
    integer = (x == x.round()).all(0)
    if "dequantise" in parts:
        gn = torch.Generator().manual_seed(seed + 7)
        theta = theta.repeat(copies, 1)
        x = x.repeat(copies, 1)
        x = x + integer * (torch.rand(x.shape, generator=gn, dtype=x.dtype) - 0.5)
    if "log1p" in parts:
        x = torch.where(integer, torch.log1p(x.clamp_min(0)), x)
        x_o = torch.where(integer, torch.log1p(x_o.clamp_min(0)), x_o)
    if "contractive" in parts:
        _contractive_maf()
    if "tanh" in parts:
        _tanh_made()
    kwargs = {"scale_bound": 1.0} if "scale_bound1" in parts else {}
    settings = {"stop_after_epochs": 50} if "patience50" in parts else {}
    if "batch50" in parts:
        settings.update(batch_size=50, learning_rate=5e-4)  # sbi's training defaults
    estimator = NLE(task.prior, **kwargs) if method == "nle" else NRE(task.prior)
    g = torch.Generator().manual_seed(seed_for(0, task_name, budget, method))
    start = time.process_time()
    history = estimator.train(theta, x, generator=g, show_progress=False, **settings)
    train_cpu = time.process_time() - start
    g = torch.Generator().manual_seed(seed_for(0, task_name, budget, method) + 1)
    start = time.process_time()
    samples = estimator.posterior(x_o.reshape(-1)).sample((num_samples,), generator=g).float()
    sample_cpu = time.process_time() - start
    value = c2st(obs.reference_samples[:num_samples], samples, mode="fast")
    valid = list(history.validation_loss)
    return {
        "task": task_name,
        "method": method,
        "variant": variant,
        "budget": budget,
        "copies": copies if "dequantise" in parts else 1,
        "observation": 1,
        "c2st_fast": round(float(value), 4),
        "epochs": history.epochs,
        "best_validation_loss": round(min(valid), 3) if valid else None,
        "last_validation_loss": round(valid[-1], 3) if valid else None,
        "train_cpu_s": round(train_cpu, 1),
        "sample_cpu_s": round(sample_cpu, 1),
        "num_samples": num_samples,
    }


def table(path: Path = LOG) -> str:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    lines = [
        "| task | method | budget | variant | copies | C2ST (fast, obs 1) | epochs | best / last "
        "validation loss | train + sample CPU s |",
        "|---|---|---:|---|---:|---:|---:|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['task']} | {r['method']} | {r['budget']} | {r['variant']} | {r['copies']} | "
            f"{r['c2st_fast']:.3f} | {r['epochs']} | {r['best_validation_loss']} / "
            f"{r['last_validation_loss']} | {r['train_cpu_s']} + {r['sample_cpu_s']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="sir", choices=list(tasks.SBIBM_TASKS))
    parser.add_argument("--method", default="nle", choices=["nle", "nre"])
    parser.add_argument("--variant", default="baseline")
    parser.add_argument("--budget", type=int, default=1000)
    parser.add_argument("--num-samples", type=int, default=10_000)
    parser.add_argument("--copies", type=int, default=1, help="dequantised copies of each x")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--table", action="store_true", help="print the table of all runs")
    args = parser.parse_args(argv)
    if args.table:
        print(table())
        return
    result = run(
        args.task, args.method, args.variant, args.budget, args.num_samples, args.copies, args.seed
    )
    if not math.isfinite(result["c2st_fast"]):
        raise RuntimeError(f"non-finite C2ST: {result}")
    LOG.parent.mkdir(parents=True, exist_ok=True)
    with open(LOG, "a") as handle:
        handle.write(json.dumps(result) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
