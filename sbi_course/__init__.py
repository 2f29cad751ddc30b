"""sbi_course: the helper package of the sbi-course lectures and homework.

Simulators, priors and benchmark tasks, reference estimators (ABC, neural posterior,
likelihood and ratio estimation), diagnostics and plots, written to be read.

Conventions used everywhere:

* torch tensors in and out; parameters ``theta`` have shape ``(N, D)``, data ``x`` ``(N, L)``;
* randomness comes in as an explicit ``generator: torch.Generator | None``;
* a simulation that fails gives a row of NaN; estimators drop such rows and say how many.

Importing the package changes no global state, with one exception: on a machine where this
process may use fewer CPUs than torch would start threads for (a JupyterHub's or a
container's CPU quota, an affinity mask), torch's thread count is lowered to the available CPUs
and one log line says so; ``SBI_COURSE_NUM_THREADS=n`` or :func:`set_num_threads` override it
(see :mod:`sbi_course._threads`). No random draw depends on it.
"""

from sbi_course._threads import apply_policy as _apply_thread_policy
from sbi_course._threads import available_cpus, set_num_threads

__version__ = "0.1.0"

__all__ = ["__version__", "available_cpus", "set_num_threads"]

_apply_thread_policy()
