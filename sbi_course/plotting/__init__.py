"""Plots for simulation-based inference; each function returns a matplotlib Figure.

* :func:`pairplot`: corner plot of one or several posterior sample sets;
* :func:`sbc_rank_plot`: SBC rank histograms or ECDF differences with uniformity bands;
* :func:`coverage_plot`: expected coverage against credibility level;
* :func:`loss_plot`: training and validation loss with the best epoch;
* :func:`trace_plot`: simulator traces (voltages, populations, waveforms) against time;
* :func:`abc_epsilon_plot`: the tolerance schedule of SMC-ABC;
* :func:`tarp_plot`, :func:`lc2st_plot`, :func:`null_test_plot`, :func:`failure_matrix_plot`:
  TARP curves, L-C2ST and misspecification tests, the failure x diagnostic matrix.

Nothing here calls ``plt.show()``: a script saves the figure (``fig.savefig(...)``) and
closes it (``plt.close(fig)``); a notebook shows it when the cell ends (assign the result,
``fig = pairplot(...)``, so that it is not shown twice). The course's look (a colour-blind
friendly palette, no top and right spines) applies only inside these functions; your global
matplotlib settings are left alone, unless you call :func:`use_style` to make the course's
look the default for your own figures too.

Example:
    >>> import matplotlib.pyplot as plt
    >>> import torch
    >>> from sbi_course.plotting import pairplot
    >>> samples = torch.randn(1000, 3, generator=torch.Generator().manual_seed(0))
    >>> fig = pairplot(samples, true_theta=torch.zeros(3))
    >>> len(fig.axes)
    6
    >>> plt.close(fig)
"""

from sbi_course.plotting._style import PALETTE, use_style
from sbi_course.plotting.calibration import coverage_plot, rank_ecdf_band, sbc_rank_plot
from sbi_course.plotting.local import failure_matrix_plot, lc2st_plot, null_test_plot, tarp_plot
from sbi_course.plotting.pairplot import pairplot
from sbi_course.plotting.progress import abc_epsilon_plot, loss_plot
from sbi_course.plotting.traces import trace_plot

__all__ = [
    "PALETTE",
    "use_style",
    "pairplot",
    "sbc_rank_plot",
    "coverage_plot",
    "rank_ecdf_band",
    "loss_plot",
    "trace_plot",
    "abc_epsilon_plot",
    "tarp_plot",
    "null_test_plot",
    "lc2st_plot",
    "failure_matrix_plot",
]
