"""sbi_course: the helper package of the sbi-course lectures and homework.

Simulators, priors and benchmark tasks, reference estimators (ABC, neural posterior,
likelihood and ratio estimation), diagnostics and plots, written to be read.

Conventions used everywhere:

* torch tensors in and out; parameters ``theta`` have shape ``(N, D)``, data ``x`` ``(N, L)``;
* randomness comes in as an explicit ``generator: torch.Generator | None``;
* a simulation that fails gives a row of NaN; estimators drop such rows and say how many.

Importing the package changes no global state.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
