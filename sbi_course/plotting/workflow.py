"""Box-and-arrow diagrams of the simulation-based inference workflow.

Lectures 1 and 7 draw the workflow as rounded boxes joined by arrows. The drawing code is
plain matplotlib (text boxes, and ``annotate`` arrows clipped at the box outlines through
``patchA``/``patchB``) and not what a reader of the lecture should have to read, so it lives
here. :func:`box_diagram` draws any such diagram; :data:`INFERENCE_WORKFLOW` (lecture 1) and
:data:`CHECKED_WORKFLOW` (lecture 7, with the checks and the loop back) are the course's two.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from sbi_course.plotting._style import PALETTE, style

__all__ = ["box_diagram", "INFERENCE_WORKFLOW", "CHECKED_WORKFLOW"]

# name -> (x, y, text, colour); arrows: (start, end, line style)
INFERENCE_WORKFLOW = {
    "boxes": {
        "prior": (0.9, 2.3, "prior\n$p(\\theta)$", PALETTE[0]),
        "simulator": (3.1, 2.3, "simulator\n$x \\sim p(x \\mid \\theta)$", PALETTE[0]),
        "pairs": (5.5, 2.3, "simulations\n$(\\theta_i, x_i)$", PALETTE[0]),
        "inference": (8.0, 2.3, "inference\nABC · NPE · NLE · NRE\n(lectures 2-5)", PALETTE[0]),
        "posterior": (10.7, 2.3, "posterior\n$p(\\theta \\mid x_o)$", PALETTE[0]),
        "data": (8.0, 0.6, "observation $x_o$", PALETTE[5]),
        "checks": (10.7, 0.6, "diagnostics\n(lecture 6)", PALETTE[0]),
    },
    "arrows": [
        ("prior", "simulator", "-"),
        ("simulator", "pairs", "-"),
        ("pairs", "inference", "-"),
        ("inference", "posterior", "-"),
        ("data", "inference", "-"),
        ("posterior", "checks", "-"),
    ],
    "limits": ((0, 12), (0.05, 2.95)),
    "notes": [],
}

CHECKED_WORKFLOW = {
    "boxes": {
        "prior": (0.9, 2.5, "prior $p(\\theta)$\n(§2)", PALETTE[0]),
        "prior check": (3.2, 2.5, "prior predictive\ncheck (§2)", PALETTE[0]),
        "simulate": (5.6, 2.5, "simulate\n$(\\theta_i, x_i)$, train\nNPE (§3)", PALETTE[0]),
        "posterior": (8.2, 2.5, "posterior\n$q(\\theta \\mid x_o)$ (§3)", PALETTE[0]),
        "posterior check": (10.8, 2.5, "posterior predictive\ncheck (§4)", PALETTE[0]),
        "calibration": (8.2, 0.7, "calibration:\nSBC, coverage (§5)", PALETTE[0]),
        "revise": (3.2, 0.7, "revise prior, summaries,\nbudget or network", "0.5"),
    },
    "arrows": [
        ("prior", "prior check", "-"),
        ("prior check", "simulate", "-"),
        ("simulate", "posterior", "-"),
        ("posterior", "posterior check", "-"),
        ("simulate", "calibration", "-"),
        ("calibration", "revise", "--"),
        ("posterior check", "revise", "--"),
        ("revise", "prior", "--"),
    ],
    "limits": ((0, 12), (0, 3.3)),
    "notes": [(6.0, 1.55, "a check fails")],
}


def box_diagram(
    boxes: Mapping[str, tuple[float, float, str, str]],
    arrows: Sequence[tuple[str, str, str]],
    *,
    limits: tuple[tuple[float, float], tuple[float, float]] = ((0, 12), (0, 3)),
    notes: Sequence[tuple[float, float, str]] = (),
    title: str | None = None,
    ax: Axes | None = None,
    figsize: tuple[float, float] = (12, 3.2),
) -> Axes:
    """Rounded text boxes joined by arrows.

    Args:
        boxes: name -> ``(x, y, text, edge colour)``, in data coordinates.
        arrows: ``(start name, end name, line style)``; solid arrows are dark, others grey.
        limits: ``((x_min, x_max), (y_min, y_max))`` of the axes.
        notes: ``(x, y, text)`` annotations in grey italics.
        title: axes title.
        ax: axes to draw on; default a new figure of size ``figsize``.
        figsize: size of the new figure.

    Returns:
        The axes.

    Raises:
        ValueError: if an arrow names a box that does not exist.
    """
    unknown = {name for a in arrows for name in a[:2]} - set(boxes)
    if unknown:
        raise ValueError(f"box_diagram: arrows name unknown boxes {sorted(unknown)}")
    with style():
        if ax is None:
            _, ax = plt.subplots(figsize=figsize, layout="constrained")
        ax.set(xlim=limits[0], ylim=limits[1])
        if title:
            ax.set_title(title)
        ax.axis("off")
        labels = {}
        for name, (x, y, text, color) in boxes.items():
            labels[name] = ax.text(
                x,
                y,
                text,
                ha="center",
                va="center",
                fontsize=10,
                bbox={"boxstyle": "round,pad=0.5", "facecolor": "white", "edgecolor": color},
            )
            labels[name].get_bbox_patch().set_linewidth(1.5)
        for start, end, line in arrows:
            ax.annotate(
                "",
                xy=boxes[end][:2],
                xytext=boxes[start][:2],
                arrowprops={
                    "arrowstyle": "-|>",
                    "lw": 1.5,
                    "ls": line,
                    "color": "0.3" if line == "-" else "0.6",
                    "shrinkA": 3,
                    "shrinkB": 3,
                    "patchA": labels[start].get_bbox_patch(),
                    "patchB": labels[end].get_bbox_patch(),
                },
            )
        for x, y, text in notes:
            ax.text(x, y, text, color="0.45", style="italic", fontsize=9, ha="center")
    return ax
