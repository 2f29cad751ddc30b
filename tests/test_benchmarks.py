"""The benchmark code (benchmarks/), on configurations small enough for a test run."""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

import pytest
import torch

from sbi_course.priors import BoxUniform
from sbi_course.simulators import lotka_volterra, sir

# benchmarks/ is a folder of the repository, not an installed package: make it importable
# also when pytest is started as `pytest` rather than `python -m pytest`.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import report, run  # noqa: E402
from benchmarks.algorithms import ALGORITHMS, resolve_algorithms, seed_for  # noqa: E402
from benchmarks.kde import fit_kde  # noqa: E402
from benchmarks.throughput import (  # noqa: E402
    lotka_volterra_loop,
    measure_throughput,
    sir_loop,
)


def test_kde_recovers_a_gaussian_and_respects_the_prior(generator):
    # Correlated Gaussian with very different scales per dimension.
    scale = torch.tensor([[1.0, 0.0], [0.8, 0.05]])
    samples = torch.randn(400, 2, generator=generator) @ scale.T
    kde = fit_kde(samples)
    draws = kde.sample(20_000, generator=generator)
    # The KDE adds bandwidth^2 * covariance: its covariance is (1 + h^2) times the sample's.
    expected = torch.cov(samples.T) * (1 + kde.bandwidth**2)
    assert torch.allclose(torch.cov(draws.T), expected, rtol=0.1, atol=1e-3)
    assert 0.05 < kde.bandwidth < 1.0

    prior = BoxUniform(torch.tensor([-0.5, -1.0]), torch.tensor([1.0, 1.0]))
    inside = kde.sample(5_000, generator=generator, prior=prior)
    assert inside.shape == (5_000, 2)
    assert (inside[:, 0] >= -0.5).all() and (inside[:, 0] <= 1.0).all()


def test_kde_uses_weights_and_is_reproducible():
    samples = torch.tensor([[0.0], [10.0]]).repeat(50, 1) + torch.linspace(0, 1, 100)[:, None]
    weights = torch.where(samples[:, 0] < 5, 1.0, 0.0) + 1e-6
    kde = fit_kde(samples, weights)
    draws = kde.sample(1000, generator=torch.Generator().manual_seed(0))
    assert (draws < 5).float().mean() > 0.99
    again = kde.sample(1000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(draws, again)
    with pytest.raises(ValueError, match="at least 2"):
        fit_kde(torch.zeros(1, 2))


def test_algorithm_names_groups_and_budgets():
    assert resolve_algorithms(["ours"]) == ["rej_abc", "smc_abc", "npe", "nle", "nre"]
    assert resolve_algorithms(["sbi_nre", "npe"]) == ["npe", "sbi_nre"]
    assert set(resolve_algorithms(["all"])) == set(ALGORITHMS)
    with pytest.raises(ValueError, match="unknown algorithm 'npx'"):
        resolve_algorithms(["npx"])
    plan = run.plan_algorithms(["ours", "sbi_nle@1000", "sbi_npe"], [1000, 10_000])
    assert plan["npe"] == [1000, 10_000] and plan["sbi_nle"] == [1000]
    assert "sbi_nre" not in plan
    # Seeds do not depend on the order of a run, so that a resumed run repeats its rows.
    assert seed_for(0, "two_moons", 1000, "npe") == seed_for(0, "two_moons", 1000, "npe")
    assert seed_for(0, "two_moons", 1000, "npe") != seed_for(0, "two_moons", 1000, "nle")


def test_cli_rejects_bad_options(sbibm_dir, capsys):
    for bad in (["--tasks", "hodgkin_huxley"], ["--observations", "11"], ["--algorithms", "x"]):
        with pytest.raises(SystemExit):
            run.parse_args([*bad, "--sbibm-dir", str(sbibm_dir)])
    assert "unknown" in capsys.readouterr().err


def test_paper_numbers_match_the_published_table(sbibm_dir):
    paper = report.load_paper(sbibm_dir / "_results" / "main_paper.csv")
    mean = sum(paper["two_moons", "NPE", 1000, n] for n in range(1, 11)) / 10
    assert mean == pytest.approx(0.725, abs=5e-4)  # the paper's table: .725
    mean = sum(paper["slcp", "NLE", 10_000, n] for n in range(1, 11)) / 10
    assert mean == pytest.approx(0.771, abs=5e-4)


def test_loop_baselines_agree_with_the_batched_simulators(generator):
    theta = lotka_volterra.prior().sample((3,), generator=generator).double()
    x, u = lotka_volterra_loop(theta, generator=generator)
    assert x.shape == (3, 20) and torch.isfinite(x).all()
    torch.testing.assert_close(u, lotka_volterra.solve(theta)[:, ::21], rtol=1e-5, atol=1e-8)
    theta = sir.prior().sample((3,), generator=generator).double()
    x, infected = sir_loop(theta, generator=generator)
    assert x.shape == (3, 10) and ((x >= 0) & (x <= 1000)).all()
    batched = sir.solve(theta)[:, ::17, 1] / sir.population
    torch.testing.assert_close(infected, batched, rtol=1e-5, atol=1e-9)


def test_throughput_rows():
    rows = measure_throughput(scale=0.002, log=lambda _: None)
    names = {r["simulator"] for r in rows}
    assert {"two_moons", "sir", "lotka_volterra", "hodgkin_huxley", "gravitational_wave"} <= names
    loops = [r for r in rows if r["implementation"].startswith("loop")]
    assert {r["simulator"] for r in loops} == {"sir", "lotka_volterra", "hodgkin_huxley"}
    assert all(r["simulations_per_cpu_s"] > 0 for r in rows)
    batched_with_loop = [r for r in rows if r["speedup_vs_loop"] != ""]
    assert len(batched_with_loop) == 3


def _read(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_tiny_benchmark_writes_resumable_results(sbibm_dir, tmp_path, capsys):
    out = tmp_path / "bench"
    argv = [
        "--tasks", "two_moons",
        "--budgets", "1000",
        "--observations", "1",
        "--algorithms", "ours", "sbi_npe",
        "--c2st", "fast",
        "--sbibm-observations",  # none: no sbibm-mode subset (tens of CPU seconds each)
        "--num-samples", "300",
        "--max-epochs", "2",
        "--jobs", "1",
        "--skip-throughput",
        "--sbibm-dir", str(sbibm_dir),
        "--out", str(out),
    ]  # fmt: skip
    assert run.main(argv) == 0
    rows = _read(out / "accuracy.csv")
    assert [r["algorithm"] for r in rows] == ["rej_abc", "smc_abc", "npe", "nle", "nre", "sbi_npe"]
    for row in rows:
        assert row["error"] == ""
        assert 0.3 <= float(row["c2st"]) <= 1.0
        assert row["c2st_mode"] == "fast" and row["num_samples"] == "300"
        assert float(row["sample_cpu_s"]) >= 0 and math.isfinite(float(row["train_cpu_s"]))
    npe = next(r for r in rows if r["algorithm"] == "npe")
    assert json.loads(npe["info"])["epochs"] <= 2

    text = (out / "RESULTS.md").read_text()
    assert "### two_moons" in text and "| NPE (NSF) |" in text
    # Beside our NPE: the paper's NPE on observation 1, and its mean over all 10 in brackets.
    paper = report.load_paper(sbibm_dir / "_results" / "main_paper.csv")
    assert f"| {paper['two_moons', 'NPE', 1000, 1]:.3f} (0.725) |" in text
    assert "Speed: course NPE" in text and "| two_moons | 10³ |" in text
    meta = json.loads((out / "meta.json").read_text())
    assert meta["runs"][0]["config"]["algorithms"]["npe"] == [1000]
    assert meta["runs"][0]["machine"]["cores"] >= 1

    # A second run finds every row done and adds none.
    capsys.readouterr()
    assert run.main(argv) == 0
    assert len(_read(out / "accuracy.csv")) == len(rows)
    assert len(json.loads((out / "meta.json").read_text())["runs"]) == 2


def test_a_failing_algorithm_is_recorded_and_retried(sbibm_dir, tmp_path, monkeypatch):
    import dataclasses

    def broken(task, setup, observations):
        raise RuntimeError("simulator exploded")
        yield  # a generator, like every runner

    failing = dataclasses.replace(ALGORITHMS["rej_abc"], run=broken)
    monkeypatch.setitem(ALGORITHMS, "rej_abc", failing)
    out = tmp_path / "bench"
    argv = [
        "--tasks", "two_moons", "--budgets", "200", "--observations", "1", "2",
        "--algorithms", "rej_abc", "--c2st", "fast", "--num-samples", "100", "--jobs", "1",
        "--skip-throughput", "--sbibm-dir", str(sbibm_dir), "--out", str(out),
    ]  # fmt: skip
    assert run.main(argv) == 0
    rows = _read(out / "accuracy.csv")
    assert [r["num_observation"] for r in rows] == ["1", "2"]
    assert all(r["c2st"] == "" and "simulator exploded" in r["error"] for r in rows)
    # Rows with an error are not done: the next run tries them again.
    monkeypatch.setitem(ALGORITHMS, "rej_abc", dataclasses.replace(failing, run=_fixed_samples))
    assert run.main(argv) == 0
    rows = _read(out / "accuracy.csv")
    assert len(rows) == 4 and all(r["c2st"] != "" for r in rows[2:])
    assert "### two_moons" in (out / "RESULTS.md").read_text()


def _fixed_samples(task, setup, observations):
    from benchmarks.algorithms import ObservationResult

    for i, _ in enumerate(observations):
        g = torch.Generator().manual_seed(i)
        yield ObservationResult(task.prior.sample((setup.num_samples,), generator=g))


@pytest.mark.parametrize("name", ["sbi_nle", "sbi_nre"])
def test_sbi_mcmc_methods_are_reproducible(name):
    """sbi's slice sampler draws from numpy's global generator; the runner seeds it too."""
    from benchmarks.algorithms import Setup
    from sbi_course import tasks

    task = tasks.get("two_moons")
    theta, x = task.sample_joint(200, generator=torch.Generator().manual_seed(0))
    setup = Setup(num_simulations=200, theta=theta, x=x, num_samples=20, seed=5, max_num_epochs=1)
    x_o = [task.simulate(theta[:1]).reshape(-1)]

    def samples():
        (result,) = ALGORITHMS[name].run(task, setup, x_o)
        return result.samples

    first = samples()
    torch.manual_seed(123)  # whatever the global state was before ...
    assert torch.equal(first, samples())  # ... the same samples


# --- ten observations, the two C2ST modes and the report (mocked algorithms and C2ST) -----


def test_default_full_and_quick_configurations(sbibm_dir):
    base = ["--sbibm-dir", str(sbibm_dir)]
    default = run.parse_args(base)
    assert default.observations == list(range(1, 11)) and default.c2st == "fast"
    # The subset scored in both modes: observation 1 of the course's neural methods and sbi's NPE.
    assert run.c2st_modes(default, "npe", 1) == ["fast", "sbibm"]
    assert run.c2st_modes(default, "npe", 2) == ["fast"]
    assert run.c2st_modes(default, "rej_abc", 1) == ["fast"]
    planned = run.planned_rows(default)
    assert len(planned) == len(set(planned))
    sbibm_rows = [key for key in planned if key[4] == "sbibm"]
    assert len(sbibm_rows) == 7 * 2 * 4  # tasks x budgets x (npe, nle, nre, sbi_npe)
    assert {key[2] for key in sbibm_rows} == {1}

    full = run.parse_args([*base, "--full"])
    assert full.c2st == "sbibm" and full.observations == list(range(1, 11))
    assert all(key[4] == "sbibm" for key in run.planned_rows(full))
    assert len(run.planned_rows(full)) == len(planned) - len(sbibm_rows)

    quick = run.parse_args([*base, "--quick"])
    assert quick.observations == [1] and run.c2st_modes(quick, "npe", 1) == ["fast"]
    for bad in (["--quick", "--full"], ["--sbibm-observations", "0"]):
        with pytest.raises(SystemExit):
            run.parse_args([*base, *bad])


def _counting_runner(calls):
    """A stand-in amortised method: 'trains' once per call, then samples the prior."""
    from benchmarks.algorithms import ObservationResult

    def runner(task, setup, observations):
        calls.append(len(observations))
        for i, _ in enumerate(observations):
            g = torch.Generator().manual_seed(setup.seed + i)
            samples = task.prior.sample((setup.num_samples,), generator=g)
            yield ObservationResult(samples, train_cpu=2.0, sample_cpu=0.5)

    return runner


def _mock_score(reference, samples, mode):
    """A stand-in C2ST: 0.6 in fast mode, 0.55 in sbibm mode (CPU 0)."""
    return (0.6 if mode == "fast" else 0.55), 0.0


def test_observations_are_scored_in_both_modes_and_resumed(sbibm_dir, tmp_path, monkeypatch):
    import dataclasses

    calls = []
    fake = dataclasses.replace(ALGORITHMS["npe"], run=_counting_runner(calls))
    monkeypatch.setitem(ALGORITHMS, "npe", fake)
    monkeypatch.setattr(run, "score", _mock_score)
    out = tmp_path / "bench"
    argv = [
        "--tasks", "two_moons", "--budgets", "200", "--observations", "1", "2", "3",
        "--algorithms", "npe", "--sbibm-observations", "2", "--sbibm-algorithms", "npe",
        "--num-samples", "50", "--jobs", "1", "--skip-throughput",
        "--sbibm-dir", str(sbibm_dir), "--out", str(out),
    ]  # fmt: skip
    assert run.main(argv) == 0
    assert calls == [3]  # trained once, sampled for three observations
    rows = _read(out / "accuracy.csv")
    keys = sorted((r["num_observation"], r["c2st_mode"], r["c2st"]) for r in rows)
    assert keys == [("1", "fast", "0.6"), ("2", "fast", "0.6"), ("2", "sbibm", "0.55"),
                    ("3", "fast", "0.6")]  # fmt: skip

    # Only the missing (observation, mode) is redone: drop the sbibm row and run again.
    with open(out / "accuracy.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=run.FIELDS)
        writer.writeheader()
        writer.writerows([r for r in rows if r["c2st_mode"] == "fast"])
    assert run.main(argv) == 0
    assert calls == [3, 1]
    assert len(_read(out / "accuracy.csv")) == 4

    text = (out / "RESULTS.md").read_text()
    assert "- C2ST: fast mode" in text  # the mode with the most rows fills the tables
    paper = report.load_paper(sbibm_dir / "_results" / "main_paper.csv")
    assert "| NPE (NSF) | 0.600 ± 0.000 [3] |" in text
    assert "## How the fast C2ST agrees with sbibm's recipe" in text
    assert "| 2 | two_moons | 1 | +0.050 | 0.050 |" in text
    assert (out / report.FIGURE_NAME).stat().st_size > 10_000
    assert f"![C2ST against simulation budget]({report.FIGURE_NAME})" in text
    assert paper  # (the paper has no 200-simulation cell: nothing is judged)
    assert "## Summary" not in text


def _row(task, budget, n, algorithm, c2st, mode="fast", library="sbi_course", paper="NPE"):
    return {
        "task": task, "num_simulations": budget, "num_observation": n, "algorithm": algorithm,
        "library": library, "paper_algorithm": paper, "c2st": c2st, "c2st_mode": mode,
        "train_cpu_s": 1.0, "sample_cpu_s": 0.0, "error": "",
    }  # fmt: skip


def test_report_summary_means_and_agreement(tmp_path):
    paper_csv = tmp_path / "main_paper.csv"
    with open(paper_csv, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["task", "num_simulations", "num_observation", "algorithm", "C2ST"])
        for n, value in ((1, 0.70), (2, 0.80), (3, 0.90)):
            writer.writerow(["two_moons", "10³", n, "NPE", value])
            writer.writerow(["gaussian_linear", "10³", n, "NPE", 0.60])
    rows = []
    for n, ours, theirs in ((1, 0.70, 0.95), (2, 0.75, 0.90), (3, 0.80, 0.85)):
        rows.append(_row("two_moons", 1000, n, "npe", ours))  # mean 0.75 <= paper's 0.80: met
        rows.append(_row("gaussian_linear", 1000, n, "npe", 0.65))  # 0.65 > 0.60: missed
        rows.append(_row("two_moons", 1000, n, "sbi_npe", theirs, library="sbi"))
    rows.append(_row("two_moons", 1000, 1, "npe", 0.68, mode="sbibm"))  # fast - sbibm = +0.02
    rows.append(_row("gaussian_linear", 1000, 1, "npe", 0.55, mode="sbibm"))  # +0.10
    out = tmp_path / "results"
    out.mkdir()
    for row in rows:
        run.append_row(out / "accuracy.csv", row, run.FIELDS)

    found = report.agreement(out / "accuracy.csv")
    assert found[2]["pairs"] == 1 and found[2]["mean"] == pytest.approx(0.02)
    assert found[10]["largest"] == pytest.approx(0.10) and found[10]["tasks"] == ["gaussian_linear"]

    text = report.write_report(out, out / "RESULTS.md", paper_csv)
    # Ours and the paper's, mean ± sd over the same three observations (sd of 0.7, 0.75, 0.8).
    assert "| **0.750 ± 0.050** [3] | 0.800 ± 0.100 (0.800) |" in text
    assert "| 0.650 ± 0.000 [3] | 0.600 ± 0.000 (0.600) |" in text
    summary = text[text.index("## Summary") : text.index("## Accuracy")]
    assert "| accuracy (at most the paper's C2ST) | NPE (NSF) | 1 | 2 |  |" in summary
    assert "| speed (3x sbi's NPE at equal C2ST) | NPE (NSF) | 0 | 1 |  |" in summary
    assert "| 10 | gaussian_linear | 1 | +0.100 | 0.100 |" in text
    assert text.index("## Summary") < text.index("## Accuracy") < text.index("agrees with sbibm")
    assert (out / report.FIGURE_NAME).is_file()
