"""For test cells: check that an answer is the student's own code, not the reference's.

A homework that asks for rejection ABC is pointless when the answer is one call to
``sbi_course.abc.rejection_abc``. :func:`assert_own_implementation` inspects the names a function's
code uses and fails when one of them leads into a forbidden module.
"""

from __future__ import annotations

import types
from collections.abc import Callable

__all__ = ["assert_own_implementation"]


def assert_own_implementation(function: Callable, *forbidden: str) -> None:
    """Fail (``AssertionError``) when ``function`` uses a module it should re-implement.

    Looks at the names the function's code uses (nested functions and the notebook's own
    helper functions included) and fails when one of them is, or comes from, a module named
    in ``forbidden`` or a submodule of it, e.g. ``"sbi_course.abc"``. This stops the obvious
    shortcut of calling the course's reference implementation; it is no sandbox.

    Args:
        function: the student's function.
        forbidden: module names, e.g. ``"sbi_course.abc", "sbi"``.
    """
    if not callable(function) or not hasattr(function, "__code__"):
        raise AssertionError(f"expected a function, got {type(function).__name__}")
    found = sorted(_forbidden_references(function, forbidden))
    if found:
        raise AssertionError(
            f"{function.__name__} uses {', '.join(found)}: this exercise asks you to write the "
            f"algorithm yourself, without {' or '.join(forbidden)}"
        )


def _in_module(name: str, modules: tuple[str, ...]) -> bool:
    return any(name == m or name.startswith(m + ".") for m in modules)


def _forbidden_references(function: Callable, modules: tuple[str, ...]) -> set[str]:
    found: set[str] = set()
    pending, seen = [function], set()
    while pending:
        func = pending.pop()
        if id(func.__code__) in seen:
            continue
        seen.add(id(func.__code__))
        namespace = getattr(func, "__globals__", {})
        closure = dict(
            zip(
                func.__code__.co_freevars,
                (c.cell_contents for c in func.__closure__ or ()),
                strict=False,
            )
        )
        codes = [func.__code__]
        while codes:
            code = codes.pop()
            codes.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
            for name in code.co_names + code.co_freevars:
                if _in_module(name, modules):  # `import sbi_course.abc` inside the function
                    found.add(name)
                value = closure[name] if name in closure else namespace.get(name)
                if isinstance(value, types.ModuleType):
                    module = value.__name__
                    # `sbi_course.abc.smc_abc(...)` through the parent package
                    for target in modules:
                        rest = target[len(module) + 1 :].split(".")
                        if target.startswith(module + ".") and set(rest) <= set(code.co_names):
                            found.add(target)
                else:
                    module = getattr(value, "__module__", None)
                    module = module if isinstance(module, str) else ""
                if _in_module(module, modules):
                    found.add(f"{module}.{name}" if module != name else module)
                # follow the functions it calls that are defined in the same notebook
                if isinstance(value, types.FunctionType) and value.__globals__ is namespace:
                    pending.append(value)
    return found
