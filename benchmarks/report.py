"""Turn the benchmark's CSV files into ``RESULTS.md``, with the sbibm paper's numbers beside ours.

The paper's numbers come from sbibm's results table ``_results/main_paper.csv`` (one row per
task, budget, observation and algorithm). For ``gaussian_mixture`` the table of the rerun
after sbibm fixed that simulator (``gaussian_mixture_rerun.csv``, next to it) replaces the
original rows when it exists, because the reference posteriors belong to the fixed simulator.

Every cell is the mean +- standard deviation of the C2ST over the observations run (sbibm's
observations 1 to 10 by default) next to the paper's mean +- standard deviation over the same
observations. The rows of one C2ST mode fill the tables (sbibm's recipe when it covers all
rows, else the fast mode); rows scored in both modes give the agreement table (mean and
largest difference, per task dimension). A summary of the targets comes first, and a figure
of C2ST against simulation budget per task is saved beside the report
(:data:`FIGURE_NAME`).

Regenerate the report from existing results without running anything::

    python -m benchmarks.report --out benchmarks/results --report benchmarks/RESULTS.md \\
        --paper-results ../shared/sbibm/_results/main_paper.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
from collections import defaultdict
from pathlib import Path

__all__ = [
    "PAPER_BUDGETS",
    "agreement",
    "load_paper",
    "load_results",
    "plot_c2st",
    "summarise",
    "write_report",
]

PAPER_BUDGETS = {"10³": 1000, "10⁴": 10_000, "10⁵": 100_000}
#: Two C2STs closer than this count as "equal" in the speed target (the C2ST of two
#: independent 10,000-sample sets from the same distribution scatters by about 0.005).
C2ST_TOLERANCE = 0.01
SPEED_TARGET = 3.0
#: The figure's file name, beside the report.
FIGURE_NAME = "c2st_vs_budget.png"


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


def _latest_by_mode(path: Path) -> dict[str, dict[tuple, dict]]:
    """Finished rows (with a C2ST), the last one of each key, by C2ST mode."""
    by_mode: dict[str, dict[tuple, dict]] = defaultdict(dict)
    if not Path(path).is_file():
        return by_mode
    for row in csv.DictReader(open(path, newline="")):
        if not row.get("c2st"):
            continue
        key = (
            row["task"],
            int(row["num_simulations"]),
            int(row["num_observation"]),
            row["algorithm"],
        )
        by_mode[row["c2st_mode"]][key] = row
    return by_mode


def load_results(path: Path) -> tuple[list[dict], str | None]:
    """Finished accuracy rows (the last one of each key) in one C2ST mode, and that mode.

    The mode is the one with the most rows (a ten-observation run in fast mode with an
    sbibm-mode subset reports the fast rows); on a tie, sbibm's recipe.
    """
    by_mode = _latest_by_mode(path)
    if not by_mode:
        return [], None
    mode = max(by_mode, key=lambda m: (len(by_mode[m]), m == "sbibm"))
    return list(by_mode[mode].values()), mode


def agreement(path: Path, dims: dict[str, int] | None = None) -> dict[int, dict]:
    """How the fast C2ST agrees with sbibm's on the rows scored in both modes.

    Returns, per parameter dimension of the task: the number of pairs, the mean difference
    (fast minus sbibm), the largest absolute difference and the tasks.
    """
    by_mode = _latest_by_mode(path)
    fast, sbibm = by_mode.get("fast", {}), by_mode.get("sbibm", {})
    if dims is None:
        from sbi_course.tasks import get

        dims = {name: get(name).theta_dim for name in {key[0] for key in fast.keys() & sbibm}}
    pairs = defaultdict(list)
    for key in fast.keys() & sbibm.keys():
        diff = float(fast[key]["c2st"]) - float(sbibm[key]["c2st"])
        pairs[dims[key[0]]].append((key[0], diff))
    return {
        dim: {
            "pairs": len(found),
            "mean": statistics.fmean(d for _, d in found),
            "largest": max(abs(d) for _, d in found),
            "tasks": sorted({t for t, _ in found}),
        }
        for dim, found in sorted(pairs.items())
    }


def _mean(values):
    return statistics.fmean(values) if values else None


def _sd(values):
    return statistics.stdev(values) if len(values) > 1 else None


def summarise(rows: list[dict], paper: dict) -> dict[tuple[str, int, str], dict]:
    """Per (task, budget, algorithm): mean and sd of the C2ST, times and the paper's numbers.

    ``paper_same`` and ``paper_sd`` are the paper's mean and standard deviation over the same
    observations (``None`` unless the paper has every one), ``paper_all`` its mean over all.
    """
    groups = defaultdict(list)
    for row in rows:
        groups[row["task"], int(row["num_simulations"]), row["algorithm"]].append(row)
    summary = {}
    for (task, budget, algorithm), group in groups.items():
        group = sorted(group, key=lambda r: int(r["num_observation"]))
        observations = [int(r["num_observation"]) for r in group]
        values = [float(r["c2st"]) for r in group]
        paper_name = group[0]["paper_algorithm"]
        same = [paper.get((task, paper_name, budget, n)) for n in observations]
        complete = bool(same) and None not in same
        every = [v for (t, a, b, _), v in paper.items() if (t, a, b) == (task, paper_name, budget)]
        summary[task, budget, algorithm] = {
            "c2st": _mean(values),
            "sd": _sd(values),
            "observations": observations,
            "train_cpu": _mean([float(r["train_cpu_s"] or 0) for r in group]),
            "sample_cpu": _mean([float(r["sample_cpu_s"] or 0) for r in group]),
            "library": group[0]["library"],
            "paper_algorithm": paper_name,
            "paper_same": _mean(same) if complete else None,
            "paper_sd": _sd(same) if complete else None,
            "paper_all": _mean(every),
        }
    return summary


def _fmt(value, digits=3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _pm(mean, sd) -> str:
    """``0.612 ± 0.031``, or the mean alone for one observation."""
    return _fmt(mean) if sd is None else f"{_fmt(mean)} ± {_fmt(sd)}"


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
                if n == 10:
                    paper = _pm(s["paper_same"], s["paper_sd"])
                else:
                    paper = f"{_pm(s['paper_same'], s['paper_sd'])} ({_fmt(s['paper_all'])})"
                c2st = _pm(s["c2st"], s["sd"])
                if (
                    s["library"] == "sbi_course"
                    and s["paper_same"] is not None
                    and s["c2st"] <= s["paper_same"]
                ):
                    c2st = f"**{c2st}**"
                cells += [
                    f"{c2st} [{n}]",
                    paper,
                    f"{_seconds(s['train_cpu'])} + {_seconds(s['sample_cpu'])}",
                ]
            lines.append(f"| {labels[algorithm]} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def _speed(ours: dict, theirs: dict) -> tuple[float, bool]:
    """Speed-up of our NPE over sbi's (CPU s of training and one observation's sampling), and
    whether the speed target is met (fast enough at an equal or better C2ST)."""
    ours_time = ours["train_cpu"] + ours["sample_cpu"]
    theirs_time = theirs["train_cpu"] + theirs["sample_cpu"]
    speedup = theirs_time / max(ours_time, 1e-9)
    return speedup, speedup >= SPEED_TARGET and ours["c2st"] <= theirs["c2st"] + C2ST_TOLERANCE


def target_counts(summary, budgets, tasks) -> list[tuple[str, str, int, int]]:
    """Cells met and judged, per target and course method: ``(target, method, met, total)``.

    Accuracy: a course estimator's mean C2ST at most the paper's mean over the same
    observations (cells without paper numbers are not judged). Speed: our NPE at least
    :data:`SPEED_TARGET` times faster than sbi's default NPE at an equal or better C2ST.
    """
    labels, order = _labels()
    counts: dict[str, list[int]] = {}
    for algorithm in order:
        for task in tasks:
            for budget in budgets:
                s = summary.get((task, budget, algorithm))
                if s is None or s["library"] != "sbi_course" or s["paper_same"] is None:
                    continue
                cell = counts.setdefault(labels[algorithm], [0, 0])
                cell[0] += s["c2st"] <= s["paper_same"]
                cell[1] += 1
    rows = [("accuracy (at most the paper's C2ST)", m, met, n) for m, (met, n) in counts.items()]
    if counts:
        met = sum(c[0] for c in counts.values())
        rows.append(
            ("accuracy (at most the paper's C2ST)", "all", met, sum(c[1] for c in counts.values()))
        )
    speed = [0, 0]
    for task in tasks:
        for budget in budgets:
            ours, theirs = (
                summary.get((task, budget, "npe")),
                summary.get((task, budget, "sbi_npe")),
            )
            if ours is not None and theirs is not None:
                speed[0] += _speed(ours, theirs)[1]
                speed[1] += 1
    if speed[1]:
        rows.append((f"speed ({SPEED_TARGET:g}x sbi's NPE at equal C2ST)", labels["npe"], *speed))
    return rows


def _summary_lines(summary, budgets, tasks, mode, observations) -> list[str]:
    rows = target_counts(summary, budgets, tasks)
    if not rows:
        return []
    lines = [
        "## Summary",
        "",
        f"Cells (task x budget) that meet each target, on the mean over observations "
        f"{_ranges(observations)} ({mode} C2ST); the sections below give every number.",
        "",
        "| target | method | met | cells | |",
        "|---|---|---:|---:|---|",
    ]
    for target, method, met, total in rows:
        lines.append(f"| {target} | {method} | {met} | {total} | {'met' if met == total else ''} |")
    return lines + [""]


def _ranges(numbers) -> str:
    """``1-10`` or ``1, 3``."""
    numbers = sorted(set(numbers))
    if not numbers:
        return "-"
    if numbers == list(range(numbers[0], numbers[-1] + 1)) and len(numbers) > 2:
        return f"{numbers[0]}-{numbers[-1]}"
    return ", ".join(map(str, numbers))


def _agreement_lines(found: dict[int, dict], mode: str | None) -> list[str]:
    if not found:
        return []
    lines = [
        "## How the fast C2ST agrees with sbibm's recipe",
        "",
        f"The tables use the {mode} mode; these rows were scored in both modes (the same "
        "samples). Difference: fast minus sbibm.",
        "",
        "| parameters | tasks | pairs | mean difference | largest difference |",
        "|---:|---|---:|---:|---:|",
    ]
    for dim, a in found.items():
        lines.append(
            f"| {dim} | {', '.join(a['tasks'])} | {a['pairs']} | {a['mean']:+.3f} | "
            f"{a['largest']:.3f} |"
        )
    return lines + [""]


def plot_c2st(summary: dict, paper: dict, tasks, path: Path) -> Path | None:
    """C2ST against simulation budget per task: our estimators, sbi's and the paper's.

    Points are means over the observations run, error bars one standard deviation; the
    paper's algorithms (crosses, dotted, the colour of the course's method of the same kind)
    are drawn at the budgets we ran, over the same observations. Filled circles: the course;
    open squares (diamonds: spline flow): the sbi library.
    """
    if not summary:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, order = _labels()
    colours = {"NPE": "C0", "NLE": "C3", "NRE": "C2", "REJ-ABC": "C1", "SMC-ABC": "C4"}
    columns = min(4, len(tasks) + 1)
    rows = math.ceil((len(tasks) + 1) / columns)  # one more panel for the legend
    fig, axes = plt.subplots(
        rows, columns, figsize=(3.4 * columns, 2.9 * rows), squeeze=False, sharey=True
    )
    handles: dict[str, object] = {}
    for ax, task in zip(axes.flat, tasks, strict=False):
        drawn_paper = set()
        for algorithm in order:
            cells = sorted(
                (b, s) for (t, b, a), s in summary.items() if (t, a) == (task, algorithm)
            )
            if not cells:
                continue
            first = cells[0][1]
            name = first["paper_algorithm"]
            colour = colours.get(name, "C7")
            ours = first["library"] == "sbi_course"
            handles[labels[algorithm]] = ax.errorbar(
                [b for b, _ in cells],
                [s["c2st"] for _, s in cells],
                yerr=[s["sd"] or 0.0 for _, s in cells],
                marker="o" if ours else ("D" if algorithm.endswith("nsf") else "s"),
                markerfacecolor=colour if ours else "none",
                linestyle="-" if ours else "--",
                color=colour,
                capsize=3,
            )
            if name and name not in drawn_paper:
                drawn_paper.add(name)
                points = []
                for budget, s in cells:
                    values = [paper.get((task, name, budget, n)) for n in s["observations"]]
                    if values and None not in values:
                        points.append((budget, _mean(values), _sd(values) or 0.0))
                if points:
                    handles[f"paper {name}"] = ax.errorbar(
                        [b * 1.08 for b, _, _ in points],  # a little to the right
                        [m for _, m, _ in points],
                        yerr=[d for _, _, d in points],
                        marker="x",
                        linestyle=":",
                        color=colour,
                        alpha=0.6,
                        capsize=3,
                    )
        ax.set_xscale("log")
        ax.set_title(task)
        ax.set_xlabel("simulations")
        ax.axhline(0.5, color="black", linewidth=0.5)
    legend_ax = axes.flat[len(tasks)]
    legend_ax.axis("off")
    legend_ax.legend(handles.values(), handles.keys(), loc="center", fontsize=7, frameon=False)
    for ax in axes.flat[len(tasks) + 1 :]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("C2ST (0.5 is perfect)")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


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
            speedup, ok = _speed(ours, theirs)
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
            else " (the package's fast batched C2ST; the agreement table below shows how it "
            "compares with sbibm's recipe where both were run)"
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
    observations = sorted({n for s in summary.values() for n in s["observations"]})
    report_path = Path(report_path)
    figure = plot_c2st(summary, paper, tasks, report_path.parent / FIGURE_NAME)
    lines = _header_lines(meta, mode)
    if summary:
        lines += [
            *_summary_lines(summary, budgets, tasks, mode, observations),
            "## Accuracy (C2ST against sbibm's reference posteriors; 0.5 is perfect)",
            "",
            "Each cell: our mean ± standard deviation of the C2ST over the observations run "
            "[their number]; the paper's mean ± standard deviation over the same observations "
            "(over all 10 in brackets, when fewer were run); CPU seconds of training (once, "
            "amortised methods) + sampling or running per observation (mean). **Bold**: a "
            "course estimator at or below the paper's mean.",
            "",
            f"![C2ST against simulation budget]({figure.name})" if figure else "",
            "",
            *_accuracy_tables(summary, budgets, tasks),
            *_agreement_lines(agreement(out / "accuracy.csv"), mode),
            "## Targets",
            "",
            *_target_lines(summary, budgets, tasks),
        ]
    lines += _throughput_lines(out / "throughput.csv")
    lines += _settings_lines()
    text = "\n".join(lines).rstrip() + "\n"
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
