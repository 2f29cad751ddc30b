"""Run the benchmark: accuracy against sbibm's reference posteriors, speed, throughput.

``make bench`` runs ``python -m benchmarks.run $(BENCH_ARGS)`` from the repository root. For
every task, simulation budget and observation it runs each algorithm (the course's REJ-ABC,
SMC-ABC, NPE, NLE, NRE and the ``sbi`` library's NPE, NLE, NRE; see
:mod:`benchmarks.algorithms`), draws 10,000 posterior samples and scores them against
sbibm's 10,000 reference samples with a C2ST: the package's fast one for every row and
sbibm's recipe as well on a stated subset (``--sbibm-observations``, ``--sbibm-algorithms``),
or sbibm's recipe everywhere with ``--full``. It also times every simulator
(:mod:`benchmarks.throughput`) and writes

* ``<out>/accuracy.csv``: one row per task, budget, observation, algorithm and C2ST mode,
  appended as soon as it is finished, so a run that is cut off keeps its results; a new run
  with the same ``--out`` skips the rows that are done (``--fresh`` starts over);
* ``<out>/throughput.csv`` and ``<out>/meta.json`` (date, machine, versions, command);
* the report (:mod:`benchmarks.report`), by default ``benchmarks/RESULTS.md``.

Examples (from the repository root)::

    make bench                                    # the default configuration (see README)
    make bench BENCH_ARGS="--quick"               # a smoke test of a few minutes
    make bench BENCH_ARGS="--tasks two_moons --budgets 1000 --observations 1 --c2st fast"
    make bench BENCH_ARGS="--full"                # the default's cells, all in sbibm mode
    make bench BENCH_ARGS="--full --budgets 1000 10000 100000 --algorithms all"  # paper-sized
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import sys
import time
from concurrent.futures import Future, ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import torch

from benchmarks import report
from benchmarks.algorithms import ALGORITHMS, Setup, Timer, resolve_algorithms, seed_for
from benchmarks.throughput import measure_throughput
from sbi_course import tasks

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "benchmarks" / "results"
DEFAULT_REPORT = REPO / "benchmarks" / "RESULTS.md"
QUICK_OUT = REPO / "benchmarks" / "out" / "quick"

#: The default configuration: all seven tasks and sbibm's ten observations; the course's NPE, NLE
#: and NRE and the sbi library's default NPE at 10^3 and 10^4 simulations; rejection and
#: SMC-ABC and the sbi library's NPE with a spline flow, NLE and NRE at 10^3 only. Every cell is
#: scored on all ten observations with the fast C2ST (2 to 5 CPU seconds), and a stated subset
#: (observation 1 of the course's NPE, NLE, NRE and sbi's default NPE) also with sbibm's recipe
#: (2 to 150 CPU seconds), so that the report can say how the two modes agree. ``--full`` scores
#: everything in sbibm mode. See benchmarks/README.md for the cost of each configuration.
DEFAULTS = {
    "tasks": list(tasks.SBIBM_TASKS),
    "budgets": [1000, 10_000],
    "observations": list(range(1, 11)),
    "algorithms": [
        "npe",
        "nle",
        "nre",
        "sbi_npe",
        "rej_abc@1000",
        "smc_abc@1000",
        "sbi_npe_nsf@1000",
        "sbi_nle@1000",
        "sbi_nre@1000",
    ],
    "c2st": "fast",
    "sbibm_observations": [1],
    "sbibm_algorithms": ["npe", "nle", "nre", "sbi_npe"],
    "throughput_scale": 1.0,
    "jobs": 2,
}
#: ``--full``: the default's cells, every C2ST in sbibm mode (no subset needed).
FULL = {**DEFAULTS, "c2st": "sbibm", "sbibm_observations": [], "sbibm_algorithms": []}
#: ``--quick``: a smoke test of every algorithm, a few minutes on two cores.
QUICK = {
    "tasks": ["two_moons"],
    "budgets": [1000],
    "observations": [1],
    "algorithms": ["all"],
    "c2st": "fast",
    "sbibm_observations": [],
    "sbibm_algorithms": [],
    "throughput_scale": 0.05,
    "jobs": 1,
}

FIELDS = [
    "task",
    "num_simulations",
    "num_observation",
    "algorithm",
    "library",
    "paper_algorithm",
    "c2st",
    "c2st_mode",
    "num_samples",
    "seed",
    "simulate_cpu_s",
    "train_cpu_s",
    "train_wall_s",
    "sample_cpu_s",
    "sample_wall_s",
    "c2st_cpu_s",
    "info",
    "error",
    "finished",
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="Benchmark sbi_course's and the sbi library's algorithms on sbibm's tasks.",
    )
    parser.add_argument(
        "--tasks", nargs="+", help=f"default: all of {', '.join(DEFAULTS['tasks'])}"
    )
    parser.add_argument("--budgets", nargs="+", type=int, help="simulation budgets (1000 10000)")
    parser.add_argument(
        "--observations", nargs="+", type=int, help="sbibm observations 1..10 (all ten)"
    )
    parser.add_argument(
        "--algorithms",
        nargs="+",
        help="names or groups (all, ours, sbi, abc, neural), NAME@BUDGET[,BUDGET] to run a "
        f"method only at some budgets; names: {', '.join(ALGORITHMS)}",
    )
    parser.add_argument("--sbibm-dir", type=Path, help="sbibm reference data (../shared/sbibm)")
    parser.add_argument(
        "--paper-results", type=Path, help="sbibm's main_paper.csv (<sbibm-dir>/_results/...)"
    )
    parser.add_argument("--out", type=Path, help=f"folder for the CSVs ({DEFAULT_OUT})")
    parser.add_argument("--report", type=Path, help="the report (benchmarks/RESULTS.md)")
    parser.add_argument("--quick", action="store_true", help="a few-minute smoke test")
    parser.add_argument(
        "--full", action="store_true", help="the default's cells, every C2ST in sbibm mode"
    )
    parser.add_argument("--c2st", choices=["sbibm", "fast"], help="C2ST recipe (fast)")
    parser.add_argument(
        "--sbibm-observations",
        nargs="*",
        type=int,
        help="with --c2st fast: observations also scored in sbibm mode, to compare the modes (1)",
    )
    parser.add_argument(
        "--sbibm-algorithms",
        nargs="*",
        help="the algorithms those extra sbibm-mode scores are for (npe nle nre sbi_npe)",
    )
    parser.add_argument("--num-samples", type=int, default=10_000, help="posterior samples")
    parser.add_argument("--max-epochs", type=int, help="cap training epochs (tests, smoke runs)")
    parser.add_argument("--seed", type=int, default=0, help="base seed")
    parser.add_argument("--jobs", type=int, help="C2ST worker processes (default 2; 1: none)")
    parser.add_argument("--threads", type=int, default=1, help="torch/BLAS threads per process")
    parser.add_argument("--throughput-scale", type=float, help="scale of the throughput sizes")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--fresh", action="store_true", help="discard earlier rows in --out")
    args = parser.parse_args(argv)

    if args.quick and args.full:
        parser.error("choose one of --quick and --full")
    preset = QUICK if args.quick else FULL if args.full else DEFAULTS
    for key, value in preset.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.out is None:
        args.out = QUICK_OUT if args.quick else DEFAULT_OUT
    if args.report is None:
        args.report = (
            DEFAULT_REPORT if args.out.resolve() == DEFAULT_OUT else args.out / "RESULTS.md"
        )
    if args.sbibm_dir is None:
        candidate = REPO.parent / "shared" / "sbibm"
        if not candidate.is_dir():
            parser.error(f"--sbibm-dir is required ({candidate} does not exist)")
        args.sbibm_dir = candidate
    if args.paper_results is None:
        args.paper_results = args.sbibm_dir / "_results" / "main_paper.csv"
    for name in args.tasks:
        if name not in tasks.SBIBM_TASKS:
            parser.error(f"unknown task {name!r}; choose from {', '.join(tasks.SBIBM_TASKS)}")
    for n in [*args.observations, *args.sbibm_observations]:
        if not 1 <= n <= 10:
            parser.error(f"observations are numbered 1 to 10, got {n}")
    if any(b < 2 for b in args.budgets) or args.num_samples < 10 or args.jobs < 1:
        parser.error("budgets must be >= 2, --num-samples >= 10 and --jobs >= 1")
    try:
        args.plan = plan_algorithms(args.algorithms, args.budgets)
        args.sbibm_algorithms = resolve_algorithms(args.sbibm_algorithms)
    except ValueError as error:
        parser.error(str(error))
    return args


def plan_algorithms(specs: list[str], budgets: list[int]) -> dict[str, list[int]]:
    """Map each algorithm to the budgets it runs at, from names like ``sbi_nle@1000``."""
    plan: dict[str, set[int]] = {}
    for spec in specs:
        name, _, at = spec.partition("@")
        chosen = [int(b) for b in at.split(",")] if at else budgets
        for algorithm in resolve_algorithms([name]):
            plan.setdefault(algorithm, set()).update(b for b in chosen if b in budgets)
    return {name: sorted(plan[name]) for name in ALGORITHMS if plan.get(name)}


def c2st_modes(args: argparse.Namespace, algorithm: str, observation: int) -> list[str]:
    """The C2ST modes one row is scored in: ``--c2st``, and sbibm's too on the stated subset."""
    modes = [args.c2st]
    if (
        args.c2st != "sbibm"
        and observation in args.sbibm_observations
        and algorithm in args.sbibm_algorithms
    ):
        modes.append("sbibm")
    return modes


def planned_rows(args: argparse.Namespace) -> list[tuple]:
    """Every (task, budget, observation, algorithm, mode) the configuration scores."""
    return [
        (task, budget, n, name, mode)
        for task in args.tasks
        for budget in args.budgets
        for name, budgets in args.plan.items()
        if budget in budgets
        for n in args.observations
        for mode in c2st_modes(args, name, n)
    ]


# --- C2ST, in this process or in worker processes -----------------------------------------


def _limit_threads(threads: int) -> None:
    torch.set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)  # numpy's BLAS, used by scikit-learn's MLP in the C2ST
    except ImportError:  # pragma: no cover
        pass


def score(reference: torch.Tensor, samples: torch.Tensor, mode: str) -> tuple[float, float]:
    """C2ST of ``samples`` against ``reference`` and the CPU seconds it took."""
    from sbi_course.diagnostics import c2st

    # quick_sklearn: the same numbers as plain scikit-learn (tested), about a quarter quicker.
    with Timer() as timer:
        value = c2st(reference, samples, mode=mode, quick_sklearn=mode == "sbibm")
    return value, timer.cpu


class Scorer:
    """Computes C2STs now (``jobs == 1``) or in ``jobs`` worker processes while this process
    goes on with the next algorithm; rows are written as their C2ST finishes."""

    def __init__(self, jobs: int, threads: int, writer):
        self.writer = writer
        self.pending: list[tuple[Future, dict]] = []
        self.pool = None
        if jobs > 1:
            import multiprocessing

            self.pool = ProcessPoolExecutor(
                jobs,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_limit_threads,
                initargs=(threads,),
            )

    def submit(self, reference, samples, mode: str, row: dict) -> None:
        if self.pool is None:
            self._finish(row, *score(reference, samples, mode))
        else:
            self.pending.append((self.pool.submit(score, reference, samples, mode), row))
            self.collect()

    def _finish(self, row: dict, value: float, cpu: float) -> None:
        row.update(c2st=round(value, 5), c2st_cpu_s=round(cpu, 2))
        self.writer(row)

    def collect(self, wait: bool = False) -> None:
        still = []
        for future, row in self.pending:
            if wait or future.done():
                try:
                    self._finish(row, *future.result())
                except Exception as error:  # noqa: BLE001 - a failed C2ST is recorded, not fatal
                    row["error"] = f"C2ST failed: {error!r}"
                    self.writer(row)
            else:
                still.append((future, row))
        self.pending = still

    def close(self, cancel: bool = False) -> None:
        """Wait for the pending C2STs, or with ``cancel`` drop them (after Ctrl-C)."""
        if cancel and self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
            return
        self.collect(wait=True)
        if self.pool is not None:
            self.pool.shutdown()


# --- results files ------------------------------------------------------------------------


def read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def append_row(path: Path, row: dict, fields: list[str]) -> None:
    """Append one row (with a header if the file is new) and close the file at once."""
    new = not path.is_file() or path.stat().st_size == 0
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow(row)


def done_keys(rows: list[dict]) -> set[tuple]:
    """Keys of rows that have a C2ST (rows with an error are run again)."""
    return {
        (
            r["task"],
            int(r["num_simulations"]),
            int(r["num_observation"]),
            r["algorithm"],
            r["c2st_mode"],
        )
        for r in rows
        if r.get("c2st") not in (None, "")
    }


def machine_info() -> dict:
    """CPU model, cores, OS and package versions, for the report."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for package in ("sbi_course", "torch", "numpy", "scipy", "sklearn", "sbi"):
        try:
            module = __import__(package)
            versions[package] = getattr(module, "__version__", "?")
        except Exception:  # noqa: BLE001
            versions[package] = "not installed"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
    }


# --- the accuracy benchmark ---------------------------------------------------------------


def run_accuracy(args: argparse.Namespace, log) -> None:
    path = args.out / "accuracy.csv"
    done = done_keys(read_rows(path))
    references: dict[tuple[str, int], tasks.SbibmObservation] = {}
    planned = planned_rows(args)
    progress = {"done": sum(key in done for key in planned), "total": len(planned)}
    started = time.perf_counter()
    log(f"{progress['done']} of {progress['total']} rows already done in {path}")

    def write(row: dict) -> None:
        row["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
        append_row(path, row, FIELDS)
        progress["done"] += 1
        c2st = row.get("c2st") if row.get("c2st") != "" else "-"
        error = f" {row['error']}" if row["error"] else ""
        log(
            f"  [{progress['done']}/{progress['total']}, "
            f"{(time.perf_counter() - started) / 60:.0f} min] "
            f"{row['task']} {row['num_simulations']} obs {row['num_observation']} "
            f"{row['algorithm']}: C2ST {c2st} ({row['c2st_mode']}; train "
            f"{row['train_cpu_s']} s, sample {row['sample_cpu_s']} s CPU){error}"
        )

    scorer = Scorer(args.jobs, args.threads, write)
    try:
        for task_name in args.tasks:
            task = tasks.get(task_name)
            for budget in args.budgets:
                # For each algorithm: the observations still to do and their missing modes.
                todo = {}
                for name, budgets in args.plan.items():
                    if budget not in budgets:
                        continue
                    missing = {
                        n: [
                            mode
                            for mode in c2st_modes(args, name, n)
                            if (task_name, budget, n, name, mode) not in done
                        ]
                        for n in args.observations
                    }
                    missing = {n: modes for n, modes in missing.items() if modes}
                    if missing:
                        todo[name] = missing
                if not todo:
                    continue
                log(f"{task_name}, {budget} simulations: {', '.join(todo)}")
                for n in {n for missing in todo.values() for n in missing}:
                    if (task_name, n) not in references:
                        references[task_name, n] = tasks.load_sbibm(args.sbibm_dir, task_name, n)
                g = torch.Generator().manual_seed(seed_for(args.seed, task_name, budget, "data"))
                with Timer() as sim_timer:
                    theta, x = task.sample_joint(budget, generator=g)
                for name, missing in todo.items():
                    _run_one(
                        args,
                        task,
                        budget,
                        name,
                        missing,
                        theta,
                        x,
                        sim_timer,
                        references,
                        scorer,
                    )
                scorer.collect()
    except BaseException:
        scorer.close(cancel=True)
        raise
    scorer.close()


def _run_one(args, task, budget, name, missing, theta, x, sim_timer, references, scorer):
    """Run one algorithm on one task and budget for the observations still to do.

    ``missing`` maps each observation to the C2ST modes its row still lacks; the samples of an
    observation are scored in each of them (seeds do not depend on which, so a resumed run
    scores the same samples).
    """
    algorithm = ALGORITHMS[name]
    observations = sorted(missing)
    setup = Setup(
        num_simulations=budget,
        theta=theta,
        x=x,
        num_samples=args.num_samples,
        seed=seed_for(args.seed, task.name, budget, name),
        max_num_epochs=args.max_epochs,
    )
    x_os = [references[task.name, n].x_o for n in observations]
    amortised = algorithm.paper not in ("REJ-ABC", "SMC-ABC")
    base = {
        "task": task.name,
        "num_simulations": budget,
        "algorithm": name,
        "library": algorithm.library,
        "paper_algorithm": algorithm.paper or "",
        "num_samples": args.num_samples,
        "seed": setup.seed,
        "simulate_cpu_s": round(sim_timer.cpu, 3) if amortised else "",
        "c2st": "",
        "c2st_cpu_s": "",
        "error": "",
    }
    results = algorithm.run(task, setup, x_os)
    for position, n in enumerate(observations):
        rows = [{**base, "num_observation": n, "c2st_mode": mode} for mode in missing[n]]
        try:
            result = next(results)
        except Exception as error:  # noqa: BLE001 - one failing method must not stop the run
            # The algorithm's generator is finished: record this and the later observations.
            message = f"{type(error).__name__}: {error}"[:300]
            for m in observations[position:]:
                for mode in missing[m]:
                    scorer.writer(
                        {
                            **base,
                            "num_observation": m,
                            "c2st_mode": mode,
                            "error": message,
                            **_NO_TIMES,
                        }
                    )
            return
        samples = result.samples
        if samples.shape != (args.num_samples, task.theta_dim) or not torch.isfinite(samples).all():
            message = f"bad samples: shape {tuple(samples.shape)} or non-finite values"
            for row in rows:
                scorer.writer({**row, "error": message, **_NO_TIMES})
            continue
        # sbibm compares equally many samples; below 10,000 (tests) use the first reference rows.
        reference = references[task.name, n].reference_samples[: args.num_samples]
        for row in rows:
            row.update(
                train_cpu_s=round(result.train_cpu, 3),
                train_wall_s=round(result.train_wall, 3),
                sample_cpu_s=round(result.sample_cpu, 3),
                sample_wall_s=round(result.sample_wall, 3),
                info=json.dumps({k: _plain(v) for k, v in result.info.items()}),
            )
            scorer.submit(reference, samples, row["c2st_mode"], row)


_NO_TIMES = {
    "train_cpu_s": "",
    "train_wall_s": "",
    "sample_cpu_s": "",
    "sample_wall_s": "",
    "info": "",
}


def _plain(value):
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else str(value)
    return value


# --- entry point --------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _limit_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.fresh:
        for file in ("accuracy.csv", "throughput.csv"):
            (args.out / file).unlink(missing_ok=True)

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)

    started = time.perf_counter()
    meta_path = args.out / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() and not args.fresh else {}
    meta.setdefault("runs", [])
    run = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m benchmarks.run " + " ".join(sys.argv[1:] if argv is None else argv),
        "config": {
            "tasks": args.tasks,
            "budgets": args.budgets,
            "observations": args.observations,
            "algorithms": args.plan,
            "c2st": args.c2st,
            "sbibm_subset": {
                "observations": args.sbibm_observations,
                "algorithms": args.sbibm_algorithms,
            },
            "num_samples": args.num_samples,
            "max_epochs": args.max_epochs,
            "seed": args.seed,
            "jobs": args.jobs,
            "threads": args.threads,
        },
        "machine": machine_info(),
    }
    meta["runs"].append(run)
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")  # again at the end, with the time

    if not args.skip_throughput:
        path = args.out / "throughput.csv"
        if read_rows(path):
            log(f"throughput: kept the rows in {path} (use --fresh to measure again)")
        else:
            for row in measure_throughput(args.throughput_scale, args.seed, log):
                append_row(path, row, list(row))
    if not args.skip_accuracy:
        run_accuracy(args, log)

    run["wall_s"] = round(time.perf_counter() - started, 1)
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    report.write_report(args.out, args.report, args.paper_results)
    log(f"results in {args.out}, report {args.report} ({run['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
