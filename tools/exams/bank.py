"""The question bank and the exams drawn from it.

Each week's items live in ``bank_week<k>.py``; :data:`EXAMS` says which items make each exam.
A 30-minute exam has nine items: four multiple choice (1 point each), four numeric (2 points)
and one short derivation or explanation graded by hand (3 points): 15 points, 12 of them
autograded. The mini-test of the first day has eight week-1 items with no written answer, so that
a student sees at once which answers were right.
"""

from __future__ import annotations

from dataclasses import dataclass

from tools.exams import bank_week1, bank_week2, bank_week3
from tools.exams.items import Item

__all__ = ["EXAMS", "ITEMS", "Exam", "exam", "item", "items_of_week"]

ITEMS: dict[str, Item] = {
    it.id: it for module in (bank_week1, bank_week2, bank_week3) for it in module.ITEMS
}


@dataclass(frozen=True)
class Exam:
    """An exam: its name (the nbgrader assignment), title, items, and whether it is graded."""

    name: str
    title: str
    item_ids: tuple[str, ...]
    graded: bool = True
    minutes: int = 30

    @property
    def items(self) -> list[Item]:
        """The exam's items in order."""
        return [ITEMS[i] for i in self.item_ids]

    @property
    def points(self) -> int:
        """Total points."""
        return sum(it.points for it in self.items)


EXAMS: dict[str, Exam] = {
    e.name: e
    for e in [
        Exam(
            "exam_week1",
            "Exam, week 1: simulators, Bayes, ABC, conditional density estimation",
            (
                "w1_eps_large",
                "w1_gauss_mean",
                "w1_smc_weights",
                "w1_abc_ball",
                "w1_amortised",
                "w1_regadj",
                "w1_curse",
                "w1_mixture",
                "w1_explain_eps",
            ),
        ),
        Exam(
            "exam_week2",
            "Exam, week 2: density estimation and flows, NPE, NLE, NRE",
            (
                "w2_invertible",
                "w2_affine_density",
                "w2_maf_cost",
                "w2_coupling_inverse",
                "w2_npe_loss",
                "w2_nre_logratio",
                "w2_nle_sampling",
                "w2_nre_posterior",
                "w2_derive_cov",
            ),
        ),
        Exam(
            "exam_week3",
            "Exam, week 3: diagnostics, applications, flow matching and diffusion, "
            "misspecification",
            (
                "w3_sbc_shape",
                "w3_sbc_rank",
                "w3_local",
                "w3_coverage",
                "w3_misspec",
                "w3_c2st",
                "w3_fm_loss",
                "w3_euler",
                "w3_explain_sbc",
            ),
        ),
        Exam(
            "minitest",
            "Mini-test of the first day (anonymous, not graded)",
            (
                "w1_intractable",
                "w1_beta_mean",
                "w1_sufficient",
                "w1_gauss_sd",
                "w1_gauss_nll",
                "w1_abc_cube",
                "w1_mle_sd",
                "w1_grid",
            ),
            graded=False,
        ),
    ]
}

GRADED_EXAMS = [e for e in EXAMS.values() if e.graded]


def item(item_id: str) -> Item:
    """The item called ``item_id``."""
    if item_id not in ITEMS:
        raise KeyError(f"item: no item {item_id!r} in the bank")
    return ITEMS[item_id]


def exam(name: str) -> Exam:
    """The exam called ``name`` (``exam_week1``, ``exam_week2``, ``exam_week3``, ``minitest``)."""
    if name not in EXAMS:
        raise ValueError(f"exam: name must be one of {sorted(EXAMS)}, got {name!r}")
    return EXAMS[name]


def items_of_week(week: int) -> list[Item]:
    """All items of the bank for ``week``."""
    return [it for it in ITEMS.values() if it.week == week]
