"""A sandbox for the kernel that runs one student's notebook: bubblewrap, limits, no network.

Grading executes untrusted code. nbgrader on its own starts the kernel with the grader's rights
in the course folder, next to the notebook with the hidden tests restored; the student's code can
then read ``solutions/`` and ``gradebook.db``, write anywhere the instructor can, and leave
processes behind. :class:`SandboxedKernelManager` starts the kernel instead inside bubblewrap
(``bwrap``, Debian package ``bubblewrap``; https://github.com/containers/bubblewrap), with

* a file system made of read-only binds of the system folders (``/usr``, ``/etc``, ...), the
  Python installation and the ``sbi_course`` package, a fresh ``/tmp`` (tmpfs) and one writable
  scratch folder holding copies of the submission's data files (never a notebook): the course
  folder, the source release, the gradebook and the other submissions are not there at all;
* new user, pid, network, IPC, UTS and cgroup namespaces (``--unshare-all``): no network (only a
  loopback device), an unprivileged user id, no view of the host's processes; ``--die-with-parent``
  and the pid namespace kill every process the notebook started when the kernel goes;
* ``RLIMIT_AS`` (address space) and ``RLIMIT_FSIZE`` (largest file) set with ``prlimit``, and a
  wall-clock limit for the whole notebook (``timeout -s KILL``) on top of nbgrader's per-cell one.

The grading process talks to the kernel over ZeroMQ ``ipc`` sockets (Unix sockets in a private
folder bound into the sandbox), so the kernel needs no network at all. The cells, hidden tests
included, reach the kernel one by one, when they run: no file in the sandbox holds them.

Where bubblewrap is missing (macOS, Windows, a container without user namespaces)
:func:`sandbox_support` says so, and grading falls back to an *unsandboxed* kernel in a scratch
folder outside the course: the hidden tests are still never on disk next to it and the gradebook
is still written only by the grading process, but the student's code runs with the grader's
rights and can read and write whatever the grader can. ``docs/INSTRUCTORS.md`` says what this
means.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from traitlets import Integer, Unicode

__all__ = ["Limits", "SandboxedKernelManager", "sandbox_command", "sandbox_support"]

SYSTEM_FOLDERS = ("/usr", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin")
SCRATCH = "/submission"  # the kernel's working folder inside the sandbox
LIBRARY = "/library"  # where the sbi_course package is bound (read-only)


@dataclass(frozen=True)
class Limits:
    """Resource limits of one notebook's kernel.

    Attributes:
        memory_bytes: address-space limit (``RLIMIT_AS``); torch needs well over 1 GiB of it.
        file_bytes: the largest file the notebook may write.
        seconds: wall-clock limit for the whole notebook, kernel start included.
    """

    memory_bytes: int = 6 * 2**30
    file_bytes: int = 2**30
    seconds: int = 600


def sandbox_support() -> str | None:
    """``None`` when bubblewrap can start a sandbox here, else why not (a sentence)."""
    if not sys.platform.startswith("linux"):
        return f"bubblewrap needs Linux, this is {sys.platform}"
    for tool in ("bwrap", "prlimit", "timeout"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed (Debian: apt-get install bubblewrap util-linux)"
    probe = subprocess.run(
        ["bwrap", *_binds(), "--unshare-all", "--die-with-parent", "true"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        return f"bwrap cannot start a sandbox here: {probe.stderr.strip()}"
    return None


def _python_folders() -> list[str]:
    """The folders the kernel's Python needs: the installation and the virtual environment."""
    folders = {os.path.realpath(p) for p in (sys.base_prefix, sys.prefix, sys.exec_prefix)}
    folders.add(os.path.dirname(os.path.realpath(sys.executable)))
    inside = SYSTEM_FOLDERS + tuple(folders)
    return sorted(f for f in folders if not any(f.startswith(s + "/") for s in inside))


def kernel_python() -> str:
    """The Python of the grading environment, by a path that exists inside the sandbox."""
    venv = os.path.join(os.path.realpath(sys.prefix), "bin", os.path.basename(sys.executable))
    return venv if os.path.exists(venv) else os.path.realpath(sys.executable)


def _library_folder() -> str:
    import sbi_course

    return os.path.dirname(os.path.realpath(sbi_course.__file__))


def _binds() -> list[str]:
    args = []
    for folder in SYSTEM_FOLDERS:
        if os.path.islink(folder):
            args += ["--symlink", os.readlink(folder), folder]
        elif os.path.isdir(folder):
            args += ["--ro-bind", folder, folder]
    for folder in _python_folders():
        args += ["--ro-bind", folder, folder]
    return args


def sandbox_command(
    argv: list[str], scratch: str | Path, sockets: str | Path, limits: Limits
) -> list[str]:
    """``argv`` wrapped in limits and a bubblewrap sandbox (see the module's docstring).

    Args:
        argv: the command to run inside, e.g. the kernel's.
        scratch: the host folder mounted writable as the working folder ``/submission``.
        sockets: a host folder mounted writable at the same path (connection file, sockets).
        limits: the resource limits.
    """
    env = {
        "PATH": os.pathsep.join([os.path.dirname(kernel_python()), "/usr/local/bin", "/usr/bin"]),
        "HOME": "/tmp",
        "TMPDIR": "/tmp",
        "PYTHONPATH": LIBRARY,
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": "/tmp/matplotlib",
        "LANG": "C.UTF-8",
    }
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "VIRTUAL_ENV"):
        if name in os.environ:
            env[name] = os.environ[name]
    bwrap = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--clearenv"]
    bwrap += ["--uid", "65534", "--gid", "65534", "--hostname", "grading"]
    # /tmp first: the environment itself may live under /tmp (a CI clone), and a later tmpfs
    # would hide it.
    bwrap += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    bwrap += _binds()
    bwrap += ["--ro-bind", _library_folder(), f"{LIBRARY}/sbi_course"]
    bwrap += ["--bind", str(scratch), SCRATCH, "--bind", str(sockets), str(sockets)]
    bwrap += ["--chdir", SCRATCH]
    for key, value in env.items():
        bwrap += ["--setenv", key, value]
    limit = ["prlimit", f"--as={limits.memory_bytes}", f"--fsize={limits.file_bytes}", "--"]
    return limit + ["timeout", "-s", "KILL", str(limits.seconds)] + bwrap + ["--", *argv]


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager that starts the kernel in :func:`sandbox_command` over ``ipc`` sockets.

    ``scratch`` is the host folder that becomes the kernel's working folder; with an empty
    ``scratch`` a fresh temporary folder is used. With ``sandbox`` false (no bubblewrap) the
    kernel runs unsandboxed, but still in the scratch folder and under the time limit.
    """

    scratch = Unicode("", help="host folder mounted as the kernel's working folder").tag(
        config=True
    )
    memory_bytes = Integer(Limits.memory_bytes).tag(config=True)
    file_bytes = Integer(Limits.file_bytes).tag(config=True)
    seconds = Integer(Limits.seconds).tag(config=True)
    sandbox = Unicode("bwrap", help="'bwrap' or 'none' (weaker, see the docs)").tag(config=True)

    def __init__(self, **kwargs):
        self._sockets = tempfile.mkdtemp(prefix="sbi-grading-kernel-")
        os.chmod(self._sockets, 0o700)
        kwargs.setdefault("transport", "ipc")
        kwargs.setdefault("ip", os.path.join(self._sockets, "kernel"))
        super().__init__(**kwargs)
        self.connection_file = os.path.join(self._sockets, "connection.json")

    @property
    def kernel_spec(self):
        """The kernel spec, interrupted by a message: a signal would hit ``timeout``, not the
        kernel inside the sandbox."""
        spec = super().kernel_spec
        if spec is not None:
            spec.interrupt_mode = "message"
        return spec

    @property
    def limits(self) -> Limits:
        return Limits(self.memory_bytes, self.file_bytes, self.seconds)

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        argv = [kernel_python(), "-m", "ipykernel_launcher", "-f", self.connection_file]
        argv += list(extra_arguments or [])
        scratch = self.scratch or tempfile.mkdtemp(prefix="sbi-grading-scratch-")
        if self.sandbox == "bwrap":
            return sandbox_command(argv, scratch, self._sockets, self.limits)
        return ["timeout", "-s", "KILL", str(self.seconds), *argv]

    async def _async_pre_start_kernel(self, **kw):
        if self.sandbox != "bwrap" and self.scratch:
            kw["cwd"] = self.scratch
        return await super()._async_pre_start_kernel(**kw)

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if not restart:
            shutil.rmtree(self._sockets, ignore_errors=True)
