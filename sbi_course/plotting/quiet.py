"""A training tracker for the ``sbi`` library that records nothing.

``sbi``'s trainers (``sbi.inference.NPE`` and friends, version 0.25 and later) accept a
``tracker`` object and, without one, write TensorBoard event files to ``./sbi-logs`` on every
training run. In a lecture or a test that is clutter in the working directory. ``sbi`` calls
five methods on its tracker (``log_metric``, ``log_metrics``, ``log_params``, ``add_figure``,
``flush``) and reads ``log_dir``; :class:`NoTracking` provides them all and discards
everything.

Example:
    >>> from sbi_course.plotting.quiet import NoTracking
    >>> tracker = NoTracking()
    >>> tracker.log_metric("loss", 1.0, step=0) is None
    True
"""

from __future__ import annotations

from typing import Any

__all__ = ["NoTracking"]


class NoTracking:
    """A tracker for ``sbi`` that discards its training logs (pass ``tracker=NoTracking()``)."""

    log_dir = None

    def log_metric(self, name: str, value: float, step: int | None = None) -> None:
        """Discard one metric."""

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        """Discard several metrics."""

    def log_params(self, params: dict[str, Any]) -> None:
        """Discard hyperparameters."""

    def add_figure(self, name: str, figure: Any, step: int | None = None) -> None:
        """Discard a figure."""

    def flush(self) -> None:
        """Nothing to write."""
