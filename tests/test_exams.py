"""The exams: the question bank's answers, the nbgrader round trip, paper copies, final grades.

The bank's ``solve`` functions are checked against ``sbi_course`` and ``torch`` where they
compute the same quantity (ABC acceptance rates, regression adjustment, SBC ranks, coverage,
predictive p-values, densities and log-determinants). The round trip autogrades, in one
throw-away course, four students per exam: ``alice`` with the answer key of her id, ``bob`` who
submits alice's notebook, ``blank`` (the release untouched) and ``solution`` (the nbgrader
source). The same folder serves the staleness check of the committed ``exams/`` and the final
grade.
"""

from __future__ import annotations

import io
import math
import os
import re
import shutil
import subprocess
from contextlib import redirect_stdout
from pathlib import Path

import nbformat
import pytest
import torch

from tools.exams.bank import EXAMS, GRADED_EXAMS, ITEMS, items_of_week
from tools.exams.course import EXAM_RELEASE, EXAM_SOURCE, autograde, fill_answers, stale_exams
from tools.exams.notebook import MINITEST_VARIANT

pytestmark = [
    pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning"),
    pytest.mark.filterwarnings("ignore::nbformat.warnings.MissingIDFieldWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

ROOT = Path(__file__).resolve().parents[1]
IDS = [f"s{i:03d}" for i in range(30)] + ["alice", "bob", "variant-1"]


# --------------------------------------------------------------------------------------------
# The bank
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("week", [1, 2, 3])
def test_each_week_has_fifteen_items_of_every_kind(week):
    items = items_of_week(week)
    assert len(items) >= 15
    assert {it.kind for it in items} == {"mc", "num", "text"}


def test_exams_are_thirty_minutes_from_their_week():
    for week, exam in enumerate(GRADED_EXAMS, start=1):
        assert exam.minutes == 30 and exam.points == 15
        assert {it.week for it in exam.items} == {week}
        assert {it.kind for it in exam.items} == {"mc", "num", "text"}
    assert not EXAMS["minitest"].graded
    assert all(it.kind != "text" for it in EXAMS["minitest"].items)


@pytest.mark.parametrize("item", ITEMS.values(), ids=lambda it: it.id)
def test_every_variant_is_solvable_and_neighbours_differ(item):
    answers, texts = set(), set()
    for sid in IDS:
        p = item.variant("exam", sid)
        assert item.variant("exam", sid) == p  # deterministic
        text = item.text(p)
        assert "<<" not in text
        texts.add(text)
        answer = item.answer("exam", sid)
        if item.kind == "num":
            assert math.isfinite(answer)
            assert item.is_right(answer, "exam", sid)
            assert not item.is_right(
                answer + 10 * (item.tol + item.rtol * abs(answer)) + 1e-9, "exam", sid
            )
        if item.kind == "mc":
            assert answer in "ABCD"[: len(item.choices)]
            assert len(set(item.choices)) == len(item.choices)
        answers.add(answer)
    # a neighbour's variant differs: several versions of each autograded question (its numbers or
    # the order of its choices) and several right answers; written items are the same for all
    if item.kind != "text":
        assert len(texts) > 3 and len(answers) > 1


def test_math_of_every_item_renders():
    from tools.exams.paper import math_svg

    for item in ITEMS.values():
        text = item.text(item.variant("exam", "alice")) + item.model_answer
        for tex in re.findall(r"\$([^$]+)\$", text):
            assert math_svg(tex).startswith("<svg")


def _values(item, n=12):
    return [(item.variant("exam", sid), item.answer("exam", sid)) for sid in IDS[:n]]


def test_bayes_answers_match_a_grid_posterior():
    grid = torch.linspace(-12, 12, 200_001, dtype=torch.float64)
    for p, answer in _values(ITEMS["w1_gauss_mean"]):
        log_post = torch.distributions.Normal(0.0, p["s0"]).log_prob(grid)
        log_post += torch.distributions.Normal(grid, p["s"]).log_prob(torch.tensor(p["x"]))
        w = torch.softmax(log_post, 0)
        mean = (w * grid).sum()
        assert answer == pytest.approx(mean.item(), abs=1e-6)
        sd = ((w * (grid - mean) ** 2).sum()).sqrt()
        assert ITEMS["w1_gauss_sd"].solve(p) == pytest.approx(sd.item(), abs=1e-5)
    unit = torch.linspace(1e-6, 1 - 1e-6, 100_001, dtype=torch.float64)
    for p, answer in _values(ITEMS["w1_beta_mean"]):
        log_post = torch.distributions.Beta(float(p["a"]), float(p["b"])).log_prob(unit)
        log_post += p["k"] * unit.log() + (p["n"] - p["k"]) * (1 - unit).log()
        assert answer == pytest.approx((torch.softmax(log_post, 0) * unit).sum().item(), abs=1e-5)
    for p, answer in _values(ITEMS["w1_grid"]):
        thetas = torch.tensor([0.2, 0.5, 0.8], dtype=torch.float64)
        like = torch.distributions.Binomial(p["n"], thetas).log_prob(torch.tensor(p["k"] * 1.0))
        assert answer == pytest.approx(torch.softmax(like, 0)[1].item(), abs=1e-9)


def test_abc_acceptance_rates_match_rejection_abc():
    from sbi_course.abc import rejection_abc
    from sbi_course.priors import BoxUniform

    g = torch.Generator().manual_seed(0)
    n = 200_000
    for name, distance in (("w1_abc_ball", "euclidean"), ("w1_abc_cube", "chebyshev")):
        item = ITEMS[name]
        for p, answer in _values(item, 3):
            dim = p.get("D", 2)
            prior = BoxUniform(torch.zeros(dim), torch.full((dim,), float(p["L"])))
            x_o = torch.full((dim,), p["L"] / 2)
            result = rejection_abc(
                prior,
                lambda theta, generator=None: theta,
                x_o,
                n,
                epsilon=p["eps"],
                distance=distance,
                generator=g,
            )
            sd = math.sqrt(answer * (1 - answer) / n)
            assert result.acceptance_rate == pytest.approx(answer, abs=5 * sd + 2 / n)


def test_regression_adjustment_matches_the_package():
    from sbi_course.abc import regression_adjustment

    for p, answer in _values(ITEMS["w1_regadj"]):
        s = torch.tensor([p["s"], p["s"] - 0.3, p["s"] + 0.2, p["s"] + 0.5, p["s"] - 0.7])
        theta = p["theta"] + p["beta"] * (s - p["s"])  # exactly linear: the fit is beta
        result = regression_adjustment(
            theta[:, None].double(),
            s[:, None].double(),
            torch.tensor([p["so"]]).double(),
            bandwidth=100.0,
        )
        assert result.samples[0, 0].item() == pytest.approx(answer, abs=1e-6)


def test_density_answers_match_torch():
    from torch.distributions import (
        AffineTransform,
        Categorical,
        LogNormal,
        MixtureSameFamily,
        Normal,
        TransformedDistribution,
    )

    std = Normal(torch.tensor(0.0, dtype=torch.float64), 1.0)
    for p, answer in _values(ITEMS["w1_gauss_nll"]):
        assert answer == pytest.approx(
            -Normal(p["mu"], p["sigma"]).log_prob(torch.tensor(p["y"], dtype=torch.float64)).item(),
            abs=1e-5,
        )
    for p, answer in _values(ITEMS["w1_mixture"]):
        mix = MixtureSameFamily(
            Categorical(torch.tensor([p["w"], p["v"]])),
            Normal(torch.tensor([p["m1"], p["m2"]]), torch.tensor([p["s1"], p["s2"]])),
        )
        assert answer == pytest.approx(
            mix.log_prob(torch.tensor(p["y"], dtype=torch.float64)).exp().item(), abs=1e-6
        )
    for p, answer in _values(ITEMS["w1_mle_sd"]):
        ys = torch.tensor([p[f"y{i}"] for i in range(1, 6)], dtype=torch.float64)
        assert answer == pytest.approx(ys.std(correction=0).item(), abs=1e-9)
    for p, answer in _values(ITEMS["w2_affine_density"]):
        flow = TransformedDistribution(std, [AffineTransform(p["b"], p["a"])])
        assert answer == pytest.approx(
            flow.log_prob(torch.tensor(p["y"], dtype=torch.float64)).exp().item(), abs=1e-9
        )
    for p, answer in _values(ITEMS["w2_exp_density"]):
        assert answer == pytest.approx(
            LogNormal(0.0, 1.0).log_prob(torch.tensor(p["y"], dtype=torch.float64)).exp().item(),
            abs=1e-6,
        )
    for p, answer in _values(ITEMS["w2_flow_logprob"]):
        flow = TransformedDistribution(std, [AffineTransform(p["t"], math.exp(p["s"]))])
        assert answer == pytest.approx(
            flow.log_prob(torch.tensor(p["y"], dtype=torch.float64)).item(), abs=1e-9
        )
    for p, answer in _values(ITEMS["w2_nre_logratio"]):
        assert answer == pytest.approx(torch.logit(torch.tensor(p["dval"])).item(), abs=1e-6)


def test_jacobian_answers_match_autograd():
    for p, answer in _values(ITEMS["w2_logdet"]):
        jac = torch.tensor([[p["d1"], 0.0], [p["c"], p["d2"]]], dtype=torch.float64)
        assert answer == pytest.approx(torch.linalg.slogdet(jac).logabsdet.item(), abs=1e-9)

    def coupling(x, p):
        return torch.stack([x[0], x[1] * torch.exp(p["alpha"] * x[0]) + p["beta"] * x[0]])

    for p, answer in _values(ITEMS["w2_coupling_inverse"]):
        x = torch.tensor([p["y1"], answer], dtype=torch.float64)
        assert coupling(x, p).tolist() == pytest.approx([p["y1"], p["y2"]], abs=1e-9)
        jac = torch.autograd.functional.jacobian(lambda z, p=p: coupling(z, p), x)
        logdet = torch.linalg.slogdet(jac).logabsdet.item()
        assert ITEMS["w2_coupling_logdet"].solve(p) == pytest.approx(logdet, abs=1e-9)
    for p, answer in _values(ITEMS["w3_dsm"]):
        xt = torch.tensor(p["xt"], dtype=torch.float64, requires_grad=True)
        torch.distributions.Normal(p["x0"], p["sigma"]).log_prob(xt).backward()
        assert answer == pytest.approx(xt.grad.item(), abs=1e-9)
    for p, answer in _values(ITEMS["w3_fm_path"]):
        lerp = torch.lerp(torch.tensor(p["a"]), torch.tensor(p["b"]), p["t"])
        assert answer == pytest.approx(lerp.item(), abs=1e-6)


def test_diagnostic_answers_match_the_package():
    from sbi_course.diagnostics import coverage_from_levels, predictive_quantile, sbc_ranks

    for p, answer in _values(ITEMS["w3_sbc_rank"]):
        samples = torch.tensor([[p[f"s{i}"]] for i in range(8)])
        ranks = sbc_ranks(
            lambda x, n, g, s=samples: s,
            torch.tensor([[p["theta"]]]),
            torch.zeros(1, 1),
            num_posterior_samples=8,
        )
        assert answer == ranks.item()
    for p, answer in _values(ITEMS["w3_coverage"]):
        levels = [p[f"l{i}"] for i in range(10)]
        assert answer == pytest.approx(coverage_from_levels(levels, [p["alpha"]])[0])
    for p, answer in _values(ITEMS["w3_ppc"]):
        x_rep = torch.tensor([[p[f"t{i}"]] for i in range(10)])
        q = predictive_quantile(x_rep, torch.tensor([p["obs"]])).item()
        assert answer == pytest.approx(1 - q)
    for p, answer in _values(ITEMS["w3_coverage_error"]):
        binomial = torch.distributions.Binomial(p["N"], torch.tensor(p["alpha"]))
        assert answer == pytest.approx(binomial.stddev.item() / p["N"], rel=1e-6)
    for p, answer in _values(ITEMS["w3_sbc_bins"]):
        assert (p["L"] + 1) % p["B"] == 0 and answer * p["B"] == p["N"]
    g = torch.Generator().manual_seed(1)
    for p, answer in _values(ITEMS["w3_c2st"], 4):
        # the Bayes classifier of N(0, 1) against N(mu, 1) thresholds at mu / 2
        a = torch.randn(100_000, generator=g)
        b = torch.randn(100_000, generator=g) + p["mu"]
        accuracy = 0.5 * ((a < p["mu"] / 2).double().mean() + (b > p["mu"] / 2).double().mean())
        assert answer == pytest.approx(accuracy.item(), abs=0.006)
    for p, answer in _values(ITEMS["w3_euler"]):
        x = torch.tensor(p["x0"], dtype=torch.float64)
        for _ in range(2):
            x = x + p["h"] * (p["a"] * x + p["b"])
        assert answer == pytest.approx(x.item(), abs=1e-12)


# --------------------------------------------------------------------------------------------
# The notebooks: what they show and hide
# --------------------------------------------------------------------------------------------


def _release(name):
    folder = "minitest" if name == "minitest" else name
    return nbformat.read(ROOT / EXAM_RELEASE / folder / f"{name}.ipynb", as_version=4)


def _setup_namespace(nb, student_id):
    namespace = {"STUDENT_ID": student_id}
    setup = next(c for c in nb.cells if "_exam_variant" in c.source and "def " in c.source)
    exec(compile(setup.source, "setup", "exec"), namespace)  # noqa: S102 (our own cell)
    return namespace


@pytest.mark.parametrize("name", sorted(EXAMS))
def test_release_shows_the_variant_of_the_bank(name):
    exam = EXAMS[name]
    nb = _release(name)
    for sid in ("alice", "bob", MINITEST_VARIANT):
        ns = _setup_namespace(nb, sid)
        for it in exam.items:
            p = ns["_exam_variant"](it.id, sid)
            assert p == it.variant(name, sid)
            shown = ns["render_question"](ns["_QUESTIONS"][it.id], ns["_CHOICES"].get(it.id, []), p)
            assert shown == it.text(p)


@pytest.mark.parametrize("name", sorted(EXAMS))
def test_release_contains_no_answer(name):
    exam = EXAMS[name]
    text = (ROOT / EXAM_RELEASE / name / f"{name}.ipynb").read_text()
    for marker in ("HIDDEN", "BEGIN SOLUTION", "_solve", "Model answer", "Rubric"):
        assert marker not in text
    for it in exam.items:
        if it.kind == "text":
            assert it.model_answer[:40] not in text
    ns = _setup_namespace(_release(name), "alice")
    for choices in ns["_CHOICES"].values():
        assert choices == sorted(choices)  # the right one is not marked by its place
    if name == "minitest":
        # no plain answers either: only salted hashes and grids that say nothing of the answer
        for it in exam.items:
            if it.kind == "num":
                assert f"{it.answer(name, MINITEST_VARIANT):.4f}" not in text
    else:
        source = (ROOT / EXAM_SOURCE / name / f"{name}.ipynb").read_text()
        assert source.count("BEGIN HIDDEN TESTS") == sum(it.kind != "text" for it in exam.items)


def test_minitest_says_at_once_which_answers_are_right():
    exam = EXAMS["minitest"]
    ns = _setup_namespace(_release("minitest"), MINITEST_VARIANT)
    for it in exam.items:
        right = it.answer("minitest", MINITEST_VARIANT)
        if it.kind == "mc":
            wrong = next(x for x in "ABCD" if x != right)
        else:
            wrong = right + 5 * (it.tol + it.rtol * abs(right)) + 0.01
            near = right + 0.5 * (it.tol + it.rtol * abs(right))
        for answer, verdict in [(right, "Right!"), (wrong, "Not right")] + (
            [(near, "Right!")] if it.kind == "num" else []
        ):
            out = io.StringIO()
            with redirect_stdout(out):
                ns["_check"](it.id, answer)
            assert out.getvalue().startswith(verdict), (it.id, answer, out.getvalue())


def test_key_command_prints_the_answers(capsys):
    from tools.exams.__main__ import main

    assert main(["key", "exam_week3", "--student", "alice"]) == 0
    out = capsys.readouterr().out
    for it in EXAMS["exam_week3"].items:
        if it.kind == "mc":
            assert f"[{it.id}] {it.answer('exam_week3', 'alice')}" in out


def test_nbgrader_and_formgrader_see_the_exams_with_the_environment_switch(monkeypatch):
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    from tools.exams.course import exam_config
    from tools.grading import load_config

    def api():
        config = load_config(ROOT)
        return NbGraderAPI(coursedir=CourseDirectory(config=config), config=config), config

    assert "exam_week1" not in api()[0].get_source_assignments()
    monkeypatch.setenv("SBI_COURSE_NBGRADER", "exams")
    nbgrader, config = api()  # what nbgrader's commands and Formgrader load
    assert nbgrader.get_source_assignments() == {e.name for e in GRADED_EXAMS}
    ours = exam_config(ROOT)
    for section, trait in [
        ("CourseDirectory", "source_directory"),
        ("CourseDirectory", "release_directory"),
        ("ClearSolutions", "code_stub"),
    ]:
        assert config[section][trait] == ours[section][trait]
    pattern = config.FileNameCollectorPlugin.named_regexp
    found = re.match(pattern, "downloaded/exam_week2/extracted/a_b_exam_week2.ipynb")
    assert found.group("student_id") == "a_b" and found.group("file_id") == "exam_week2.ipynb"


# --------------------------------------------------------------------------------------------
# Paper copies
# --------------------------------------------------------------------------------------------


def _need(tool):
    if shutil.which(tool) is None:
        reason = f"{tool} is not installed (apt-get install chromium poppler-utils)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.mark.slow
def test_pdf_has_the_questions_and_the_key_of_the_id(tmp_path):
    from tools.exams.paper import exam_html, render_pdf

    _need("chromium")
    _need("pdftotext")
    exam = EXAMS["exam_week3"]
    pdf = render_pdf(exam_html(exam, "alice", key=True), tmp_path / "key.pdf")
    # Kept for a person to look at: test-artifacts/exams/exam_week3_alice_key.pdf
    artifacts = Path(__file__).resolve().parents[1] / "test-artifacts" / "exams"
    artifacts.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(pdf, artifacts / "exam_week3_alice_key.pdf")
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout
    text = " ".join(text.split())
    assert "alice" in text and "Answer key" in text
    for it in exam.items:
        assert " ".join(it.question.split()[:4]) in text  # the opening words of each question
    answers = [it.answer(exam.name, "alice") for it in exam.items if it.kind != "text"]
    for answer in answers:
        assert (
            f"Answer: {answer:.6g}" if isinstance(answer, float) else f"Answer: {answer}"
        ) in text


# --------------------------------------------------------------------------------------------
# The round trip through nbgrader, and the final grade
# --------------------------------------------------------------------------------------------


def _key(exam, sid):
    return {k: it.answer(exam.name, sid) for k, it in enumerate(exam.items, 1) if it.kind != "text"}


def _texts(exam):
    return {k: it.model_answer for k, it in enumerate(exam.items, 1) if it.kind == "text"}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = tmp_path_factory.mktemp("exams")
    subs: dict = {"alice": {}, "bob": {}, "blank": {}, "solution": {}}
    for exam in GRADED_EXAMS:
        release = _release(exam.name)
        alice = fill_answers(release, "alice", _key(exam, "alice"), _texts(exam))
        subs["alice"][exam.name] = alice
        subs["bob"][exam.name] = alice  # bob hands in alice's notebook
        subs["blank"][exam.name] = release
        source = ROOT / EXAM_SOURCE / exam.name / f"{exam.name}.ipynb"
        subs["solution"][exam.name] = nbformat.read(source, as_version=4)
    # mallory hands in alice's answers and redirects the set-up's functions to alice's variant
    exam = EXAMS["exam_week2"]
    mallory = fill_answers(_release(exam.name), "alice", _key(exam, "alice"))
    cell = next(c for c in mallory.cells if c.source.startswith("answer_1 ="))
    cell.source = (
        "def _exam_graded_id():\n    return 'alice'\n\n\n"
        "_exam_variant = lambda item, sid, f=_exam_variant: f(item, 'alice')\n" + cell.source
    )
    subs["mallory"] = {exam.name: mallory}
    scores = autograde(ROOT, course, subs)
    return course, scores


def _auto(scores, student, exam):
    return sum(s for s, _, manual in scores[student][exam].values() if not manual)


@pytest.mark.slow
def test_committed_exams_are_what_the_bank_builds(graded):
    course, _ = graded
    assert stale_exams(ROOT, fresh=course) == [], "run `python -m tools.exams build` and commit"


@pytest.mark.slow
@pytest.mark.parametrize("exam", GRADED_EXAMS, ids=lambda e: e.name)
def test_key_and_solution_score_every_autograded_point(graded, exam):
    _, scores = graded
    autograded = sum(it.points for it in exam.items if it.kind != "text")
    for student in ("alice", "solution"):
        grades = scores[student][exam.name]
        assert {g: s for g, (s, _, m) in grades.items() if not m} == {
            f"q{k}_test": float(it.points)
            for k, it in enumerate(exam.items, 1)
            if it.kind != "text"
        }
        assert _auto(scores, student, exam.name) == autograded == 12
        manual = [g for g, (_, _, m) in grades.items() if m]
        assert manual == [f"q{k}_answer" for k, it in enumerate(exam.items, 1) if it.kind == "text"]


@pytest.mark.slow
@pytest.mark.parametrize("exam", GRADED_EXAMS, ids=lambda e: e.name)
def test_blank_scores_zero_and_needs_no_manual_grading(graded, exam):
    _, scores = graded
    grades = scores["blank"][exam.name]
    assert all(s == 0 and not m for s, _, m in grades.values()), grades


@pytest.mark.slow
@pytest.mark.parametrize("exam", GRADED_EXAMS, ids=lambda e: e.name)
def test_neighbours_answers_score_only_where_they_coincide(graded, exam):
    _, scores = graded
    alice = _key(exam, "alice")
    want = {
        f"q{k}_test": float(it.points) * it.is_right(alice[k], exam.name, "bob")
        for k, it in enumerate(exam.items, 1)
        if it.kind != "text"
    }
    got = {g: s for g, (s, _, m) in scores["bob"][exam.name].items() if not m}
    assert got == want
    assert sum(want.values()) < 12 / 2  # copying mostly fails


@pytest.mark.slow
def test_redefining_the_setup_functions_does_not_change_the_graded_variant(graded):
    _, scores = graded
    exam = EXAMS["exam_week2"]
    alice = _key(exam, "alice")
    want = sum(
        it.points * it.is_right(alice[k], exam.name, "mallory")
        for k, it in enumerate(exam.items, 1)
        if it.kind != "text"
    )
    assert _auto(scores, "mallory", exam.name) == want < 12


@pytest.mark.slow
def test_final_grade_averages_the_exams_with_homework_beside(graded, tmp_path):
    from nbgrader.api import Gradebook

    from tools.exams.__main__ import main
    from tools.exams.grades import final_grades

    course, scores = graded
    db = course / "gradebook.db"
    url = f"sqlite:///{db}"
    with Gradebook(url, "sbi-course") as gb:
        for exam in GRADED_EXAMS:  # the instructor grades alice's written answers: 2 of 3
            for k, it in enumerate(exam.items, 1):
                if it.kind == "text":
                    grade = gb.find_grade(f"q{k}_answer", exam.name, exam.name, "alice")
                    grade.manual_score = 2
                    grade.needs_manual_grade = False  # what formgrader does on saving
        gb.add_assignment("01_homework")
        gb.add_notebook("01_homework", "01_homework")
        gb.add_grade_cell("q1", "01_homework", "01_homework", max_score=10, cell_type="code")
        gb.add_submission("01_homework", "alice")
        gb.find_grade("q1", "01_homework", "01_homework", "alice").manual_score = 7
        gb.db.commit()
    rows = {row["student_id"]: row for row in final_grades(url)}
    assert set(rows) == {"alice", "bob", "blank", "solution", "mallory"}
    assert rows["alice"]["exam_week1"] == pytest.approx(100 * 14 / 15, abs=0.01)
    assert rows["alice"]["course_grade"] == pytest.approx(100 * 14 / 15, abs=0.01)
    assert rows["alice"]["ungraded"] == 0 and rows["alice"]["01_homework"] == 70.0
    assert rows["blank"]["course_grade"] == 0 and rows["blank"]["ungraded"] == 0
    assert rows["solution"]["ungraded"] == 3  # its written answers still wait for a grader
    bob = [100 * _auto(scores, "bob", e.name) / 15 for e in GRADED_EXAMS]
    assert rows["bob"]["course_grade"] == pytest.approx(sum(bob) / 3, abs=0.01)
    assert rows["bob"]["01_homework"] == 0.0  # no submission
    out = tmp_path / "grades.csv"
    assert main(["final-grade", str(out), "--db", str(db)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0].split(",")[:6] == [
        "student_id",
        "exam_week1",
        "exam_week2",
        "exam_week3",
        "course_grade",
        "ungraded",
    ]
    assert lines[0].endswith("01_homework,homework_mean") and len(lines) == 6


@pytest.mark.slow
def test_validate_checks_the_format_not_the_answers(tmp_path):
    from nbgrader.validator import Validator

    exam = EXAMS["exam_week1"]
    wrong = {k: "A" if it.kind == "mc" else 123.0 for k, it in enumerate(exam.items, 1)}
    wrong = {k: v for k, v in wrong.items() if exam.items[k - 1].kind != "text"}
    texts = {k: "An answer." for k, it in enumerate(exam.items, 1) if it.kind == "text"}
    path = tmp_path / "exam_week1.ipynb"
    nbformat.write(fill_answers(_release(exam.name), "alice", wrong, texts), path)
    assert Validator().validate(str(path)) == {}  # well-formed, mostly wrong: nothing to report
    malformed = {**wrong, 1: "right one", 2: "0.5"}
    nbformat.write(fill_answers(_release(exam.name), "alice", malformed, texts), path)
    failed = Validator().validate(str(path))["failed"]
    assert len(failed) == 2 and "capital letter" in failed[0]["error"]
