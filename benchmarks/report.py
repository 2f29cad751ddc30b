"""Turn the benchmark's CSV files into ``RESULTS.md``, with the sbibm paper's numbers beside ours.

The paper's numbers come from sbibm's results table ``_results/main_paper.csv`` (one row per
task, budget, observation and algorithm). For ``gaussian_mixture`` the table of the rerun
after sbibm fixed that simulator (``gaussian_mixture_rerun.csv``, next to it) replaces the
original rows when it exists, because the reference posteriors belong to the fixed simulator.

Regenerate the report from existing results without running anything::

    python -m benchmarks.report --out benchmarks/results --report benchmarks/RESULTS.md \\
        --paper-results ../shared/sbibm/_results/main_paper.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from collections import defaultdict
from pathlib import Path

__all__ = ["load_paper", "load_results", "write_report", "summarise", "PAPER_BUDGETS"]

PAPER_BUDGETS = {"10³": 1000, "10⁴": 10_000, "10⁵": 100_000}
#: Two C2STs closer than this count as "equal" in the speed target (the C2ST of two
#: independent 10,000-sample sets from the same distribution scatters by about 0.005).
C2ST_TOLERANCE = 0.01
SPEED_TARGET = 3.0


def _budget_label(budget: int) -> str:
    for label, value in PAPER_BUDGETS.items():
        if value == budget:
            return label
    return f"{budget:,}"


def load_paper(path: Path) -> dict[tuple[str, str, int, int], float]:
    """The paper's C2ST by (task, algorithm, budget, observation); empty if ``path`` is missing."""
    if not path or not Path(path).is_file():
        return {}
    path = Path(path)
    rows = list(csv.DictReader(open(path, newline="")))
    rerun = path.parent / "gaussian_mixture_rerun.csv"
    if rerun.is_file() and rerun != path:
        rows = [r for r in rows if r["task"] != "gaussian_mixture"]
        rows += list(csv.DictReader(open(rerun, newline="")))
    paper = {}
    for row in rows:
        budget = PAPER_BUDGETS.get(row["num_simulations"])
        if budget is None or not row["C2ST"]:
            continue
        key = (row["task"], row["algorithm"], budget, int(row["num_observation"]))
        paper[key] = float(row["C2ST"])
    return paper


def load_results(path: Path) -> tuple[list[dict], str | None]:
    """Finished accuracy rows (the last one of each key), and the C2ST mode they use.

    Rows scored in sbibm mode are preferred; only without any are fast-mode rows reported.
    """
    if not Path(path).is_file():
        return [], None
    rows = [r for r in csv.DictReader(open(path, newline="")) if r.get("c2st")]
    modes = {r["c2st_mode"] for r in rows}
    mode = "sbibm" if "sbibm" in modes else ("fast" if rows else None)
    latest = {}
    for row in rows:
        if row["c2st_mode"] == mode:
            key = (
                row["task"],
                int(row["num_simulations"]),
                int(row["num_observation"]),
                row["algorithm"],
            )
            latest[key] = row
    return list(latest.values()), mode


def _mean(values):
    return statistics.fmean(values) if values else None


def summarise(rows: list[dict], paper: dict) -> dict[tuple[str, int, str], dict]:
    """Per (task, budget, algorithm): mean C2ST, observations, times and the paper's means."""
    groups = defaultdict(list)
    for row in rows:
        groups[row["task"], int(row["num_simulations"]), row["algorithm"]].append(row)
    summary = {}
    for (task, budget, algorithm), group in groups.items():
        observations = sorted(int(r["num_observation"]) for r in group)
        paper_name = group[0]["paper_algorithm"]
        same = [paper.get((task, paper_name, budget, n)) for n in observations]
        every = [v for (t, a, b, _), v in paper.items() if (t, a, b) == (task, paper_name, budget)]
        summary[task, budget, algorithm] = {
            "c2st": _mean([float(r["c2st"]) for r in group]),
            "observations": observations,
            "train_cpu": _mean([float(r["train_cpu_s"] or 0) for r in group]),
            "sample_cpu": _mean([float(r["sample_cpu_s"] or 0) for r in group]),
            "library": group[0]["library"],
            "paper_algorithm": paper_name,
            "paper_same": _mean(same) if same and None not in same else None,
            "paper_all": _mean(every),
        }
    return summary


def _fmt(value, digits=3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _seconds(value) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}" if value >= 1 else f"{value:.2f}"


def _labels():
    from benchmarks.algorithms import ALGORITHMS

    return {name: a.label for name, a in ALGORITHMS.items()}, list(ALGORITHMS)


def _accuracy_tables(summary, budgets, tasks) -> list[str]:
    labels, order = _labels()
    lines = []
    for task in tasks:
        algorithms = [a for a in order if any((task, b, a) in summary for b in budgets)]
        if not algorithms:
            continue
        header = "| algorithm | " + " | ".join(
            f"C2ST {_budget_label(b)} | paper {_budget_label(b)} | CPU s {_budget_label(b)}"
            for b in budgets
        )
        lines += [f"### {task}", "", header + " |", "|---" + "|---:" * (3 * len(budgets)) + "|"]
        for algorithm in algorithms:
            cells = []
            for budget in budgets:
                s = summary.get((task, budget, algorithm))
                if s is None:
                    cells += ["", "", ""]
                    continue
                n = len(s["observations"])
                paper = f"{_fmt(s['paper_same'])} ({_fmt(s['paper_all'])})"
                if s["library"] == "sbi_course" and s["paper_same"] is not None:
                    if s["c2st"] <= s["paper_same"]:
                        c2st = f"**{_fmt(s['c2st'])}**"
                    else:
                        c2st = _fmt(s["c2st"])
                else:
                    c2st = _fmt(s["c2st"])
                cells += [
                    f"{c2st} [{n}]",
                    paper,
                    f"{_seconds(s['train_cpu'])} + {_seconds(s['sample_cpu'])}",
                ]
            lines.append(f"| {labels[algorithm]} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def _target_lines(summary, budgets, tasks) -> list[str]:
    labels, order = _labels()
    met, missed, untested = [], [], []
    for task in tasks:
        for budget in budgets:
            for algorithm in order:
                s = summary.get((task, budget, algorithm))
                if s is None or s["library"] != "sbi_course":
                    continue
                if s["paper_same"] is None:
                    untested.append(f"{task} {_budget_label(budget)} {labels[algorithm]}")
                elif s["c2st"] <= s["paper_same"]:
                    met.append(s)
                else:
                    missed.append(
                        f"| {task} | {_budget_label(budget)} | {labels[algorithm]} | "
                        f"{_fmt(s['c2st'])} | {_fmt(s['paper_same'])} | "
                        f"+{s['c2st'] - s['paper_same']:.3f} |"
                    )
    lines = [
        "### Accuracy: every course estimator at most the paper's mean C2ST",
        "",
        f"Met in {len(met)} of {len(met) + len(missed)} task/budget/algorithm cells "
        "(paper's mean over the same observations)."
        + (" **Target missed** in:" if missed else " Target met everywhere it was measured."),
        "",
    ]
    if missed:
        lines += [
            "| task | budget | algorithm | ours | paper | difference |",
            "|---|---|---|---:|---:|---:|",
            *missed,
            "",
        ]
    if untested:
        lines += ["No paper numbers for: " + "; ".join(untested) + ".", ""]
    from benchmarks.algorithms import ALGORITHMS

    ours = [a for a in order if ALGORITHMS[a].library == "sbi_course"]
    not_run = [
        f"{labels[a]} at {_budget_label(b)}"
        for a in ours
        for b in budgets
        if any(summary.get((t, b2, a)) for t in tasks for b2 in budgets)
        and not any(summary.get((t, b, a)) for t in tasks)
    ]
    if not_run:
        lines += [
            "Not run in this configuration (so not judged): " + "; ".join(not_run) + ".",
            "",
        ]

    lines += [
        f"### Speed: course NPE at least {SPEED_TARGET:g}x faster than the sbi library's "
        "default NPE at equal or better C2ST",
        "",
        'CPU seconds of training plus sampling 10,000 draws for one observation; "equal" '
        f"means within {C2ST_TOLERANCE} (the C2ST's own scatter).",
        "",
        "| task | budget | course NPE CPU s | sbi NPE CPU s | speed-up | course C2ST | sbi C2ST "
        "| target |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    hits = total = 0
    for task in tasks:
        for budget in budgets:
            ours, theirs = (
                summary.get((task, budget, "npe")),
                summary.get((task, budget, "sbi_npe")),
            )
            if ours is None or theirs is None:
                continue
            ours_time = ours["train_cpu"] + ours["sample_cpu"]
            theirs_time = theirs["train_cpu"] + theirs["sample_cpu"]
            speedup = theirs_time / max(ours_time, 1e-9)
            ok = speedup >= SPEED_TARGET and ours["c2st"] <= theirs["c2st"] + C2ST_TOLERANCE
            hits, total = hits + ok, total + 1
            lines.append(
                f"| {task} | {_budget_label(budget)} | {_seconds(ours_time)} | "
                f"{_seconds(theirs_time)} | {speedup:.1f}x | {_fmt(ours['c2st'])} | "
                f"{_fmt(theirs['c2st'])} | {'met' if ok else '**missed**'} |"
            )
    lines += ["", f"Met in {hits} of {total} cells.", ""]
    return lines


def _throughput_lines(path: Path) -> list[str]:
    if not path.is_file():
        return []
    rows = list(csv.DictReader(open(path, newline="")))
    lines = [
        "## Simulator throughput",
        "",
        "The batched simulator on a batch of prior draws (fast ones called repeatedly, so that "
        "the time is measurable), against a loop of one simulation at a time where one exists; "
        "CPU time of one thread. Speed-up: batched over loop simulations per CPU second; it "
        "grows with the batch size.",
        "",
        "| simulator | implementation | batch | simulations | CPU s | simulations / CPU s | "
        "speed-up | check |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        speedup = f"{float(r['speedup_vs_loop']):.0f}x" if r.get("speedup_vs_loop") else ""
        lines.append(
            f"| {r['simulator']} | {r['implementation']} | {r.get('batch_size', '')} | "
            f"{r['num_simulations']} | "
            f"{float(r['cpu_s']):.2f} | {float(r['simulations_per_cpu_s']):,.0f} | {speedup} | "
            f"{r.get('check', '')} |"
        )
    return lines + [""]


def _settings_lines() -> list[str]:
    from benchmarks.algorithms import ALGORITHMS

    lines = [
        "## Settings",
        "",
        "All amortised methods train once per task and budget on the same simulations and then "
        "sample for each observation; ABC runs per observation with its own simulations. One "
        "torch and BLAS thread per process.",
        "",
    ]
    lines += [f"- {a.label} (`{a.name}`): {a.description}." for a in ALGORITHMS.values()]
    return lines + [""]


def _header_lines(meta: dict, mode: str | None) -> list[str]:
    runs = meta.get("runs", [])
    last = runs[-1] if runs else {}
    machine = last.get("machine", {})
    versions = ", ".join(f"{k} {v}" for k, v in machine.get("versions", {}).items())
    lines = [
        "# Benchmark results",
        "",
        "Written by `python -m benchmarks.run` (see `benchmarks/README.md`); the raw numbers are "
        "in the CSV files beside this report.",
        "",
        f"- Date: {last.get('started', '?')} (last run)",
        f"- Machine: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, "
        f"{machine.get('platform', '?')}, Python {machine.get('python', '?')}",
        f"- Packages: {versions}",
        f"- C2ST: {mode or '-'} mode"
        + (
            " (sbibm's recipe: 10,000 posterior against 10,000 reference samples)"
            if mode == "sbibm"
            else " (the fast batched approximation: not comparable in the last digit)"
        ),
        "- Commands: " + "; ".join(f"`{r['command']}` ({r.get('wall_s', '?')} s)" for r in runs),
        "",
    ]
    return lines


def write_report(out: Path, report_path: Path, paper_path: Path | None) -> str:
    """Write the Markdown report from ``out``'s CSV files and return its text."""
    out = Path(out)
    meta_path = out / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    rows, mode = load_results(out / "accuracy.csv")
    paper = load_paper(paper_path) if paper_path else {}
    summary = summarise(rows, paper)
    budgets = sorted({b for _, b, _ in summary})
    from sbi_course.tasks import SBIBM_TASKS

    tasks = [t for t in SBIBM_TASKS if any(k[0] == t for k in summary)]
    lines = _header_lines(meta, mode)
    if summary:
        lines += [
            "## Accuracy (C2ST against sbibm's reference posteriors; 0.5 is perfect)",
            "",
            "Each cell: our mean C2ST [number of observations]; the paper's mean over the same "
            "observations (over all 10 in brackets); CPU seconds of training (once, amortised "
            "methods) + sampling or running per observation. **Bold**: a course estimator at "
            "or below the paper's number.",
            "",
            *_accuracy_tables(summary, budgets, tasks),
            "## Targets",
            "",
            *_target_lines(summary, budgets, tasks),
        ]
    lines += _throughput_lines(out / "throughput.csv")
    lines += _settings_lines()
    text = "\n".join(lines).rstrip() + "\n"
    report_path = Path(report_path)
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(text)
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write RESULTS.md from benchmark CSV files.")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--report", type=Path, default=Path(__file__).parent / "RESULTS.md")
    parser.add_argument(
        "--paper-results",
        type=Path,
        default=Path(__file__).resolve().parent.parent.parent
        / "shared"
        / "sbibm"
        / "_results"
        / "main_paper.csv",
    )
    args = parser.parse_args(argv)
    write_report(args.out, args.report, args.paper_results)
    print(f"wrote {args.report}")


if __name__ == "__main__":
    main()
