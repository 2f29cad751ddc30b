"""The workflow diagrams of sbi_course.plotting.workflow."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from sbi_course.plotting.workflow import (  # noqa: E402
    CHECKED_WORKFLOW,
    INFERENCE_WORKFLOW,
    box_diagram,
)


@pytest.mark.parametrize("diagram", [INFERENCE_WORKFLOW, CHECKED_WORKFLOW])
def test_every_box_and_arrow_is_drawn(diagram):
    ax = box_diagram(**diagram, title="workflow")
    texts = [t.get_text() for t in ax.texts]
    for _, _, text, _ in diagram["boxes"].values():
        assert text in texts
    arrows = [t for t in ax.texts if t.get_text() == "" and t.arrow_patch is not None]
    assert len(arrows) == len(diagram["arrows"])
    assert ax.get_title() == "workflow"
    plt.close("all")


def test_unknown_box_is_a_clear_error():
    with pytest.raises(ValueError, match="box_diagram.*nowhere"):
        box_diagram({"a": (0, 0, "a", "k")}, [("a", "nowhere", "-")])
