"""For the homework's test cells: check that an answer is the student's own code.

A homework that asks for rejection ABC is pointless when the answer is one call to
``sbi_course.abc.rejection_abc``. :func:`assert_own_implementation` inspects the code of the
student's function (and of the notebook functions, classes and default arguments it reaches) and
fails when a name leads into a forbidden module, or when the code reaches for modules by a name
computed at run time (``__import__``, ``importlib``, ``sys.modules``, ``eval``/``exec``), which a
static check cannot follow.

This is the only grading code inside the library, because the students' notebooks import it.
The instructor's tooling (release, autograding in a sandbox, tamper checks) is ``tools.grading``,
which also checks at grading time that this function was not rebound or patched by a student cell.
"""

from __future__ import annotations

import types
from collections.abc import Callable

__all__ = ["assert_own_implementation"]

# Names that fetch a module or an attribute by a name computed at run time.
DYNAMIC_LOOKUPS = frozenset(
    {
        "__import__",
        "import_module",
        "importlib",
        "__builtins__",
        "__globals__",
        "__subclasses__",
        "eval",
        "exec",
        "compile",
        "globals",
        "vars",
        "modules",  # sys.modules
        "find_spec",
        "load_module",
        "exec_module",
    }
)


def assert_own_implementation(function: Callable, *forbidden: str) -> None:
    """Fail (``AssertionError``) when ``function`` uses a module it should re-implement.

    Looks at the names the function's code uses (nested functions, default arguments, the
    notebook's own helper functions and classes included) and fails when one of them is, or
    comes from, a module named in ``forbidden`` or a submodule of it, e.g. ``"sbi_course.abc"``,
    or when the code looks a module up by a computed name (``__import__``, ``importlib``,
    ``sys.modules``, ``eval``, ``exec``). It stops the shortcut of calling the course's reference
    implementation; it is no sandbox (the autograder is).

    Args:
        function: the student's function (a plain Python function).
        forbidden: module names, e.g. ``"sbi_course.abc", "sbi"``.
    """
    if not isinstance(function, types.FunctionType):
        raise AssertionError(
            f"assert_own_implementation: expected a function defined with `def`, got "
            f"{type(function).__name__}"
        )
    found, dynamic = _forbidden_references(function, tuple(forbidden))
    name = getattr(function, "__name__", "the function")
    if found:
        raise AssertionError(
            f"{name} uses {', '.join(sorted(found))}: this exercise asks you to write the "
            f"algorithm yourself, without {' or '.join(forbidden)}"
        )
    if dynamic:
        raise AssertionError(
            f"{name} looks up modules or names at run time ({', '.join(sorted(dynamic))}): "
            "write the algorithm yourself, with ordinary imports"
        )


def _in_module(name: str, modules: tuple[str, ...]) -> bool:
    return any(name == m or name.startswith(m + ".") for m in modules)


def _module_of(value) -> str:
    if isinstance(value, types.ModuleType):
        return value.__name__
    module = getattr(type(value) if _is_instance(value) else value, "__module__", None)
    return module if isinstance(module, str) else ""


def _is_instance(value) -> bool:
    return not isinstance(
        value, (type, types.FunctionType, types.BuiltinFunctionType, types.MethodType)
    )


def _functions_of(value, namespace: dict) -> list[types.FunctionType]:
    """Plain functions reachable from a notebook object: itself, a bound method, a partial,
    or the methods of a class (or an instance's class) defined in the same notebook."""
    if isinstance(value, types.FunctionType):
        return [value]
    if isinstance(value, types.MethodType):
        return _functions_of(value.__func__, namespace)
    inner = getattr(value, "func", None)  # functools.partial
    if inner is not None and callable(inner):
        return _functions_of(inner, namespace) + [
            f for arg in getattr(value, "args", ()) for f in _functions_of(arg, namespace)
        ]
    cls = value if isinstance(value, type) else type(value)
    if getattr(cls, "__module__", None) == namespace.get("__name__"):
        out = []
        for klass in cls.__mro__[:-1]:
            for attr in vars(klass).values():
                attr = getattr(attr, "__func__", attr)  # staticmethod / classmethod
                if isinstance(attr, types.FunctionType):
                    out.append(attr)
        return out
    return []


def _forbidden_references(
    function: types.FunctionType, modules: tuple[str, ...]
) -> tuple[set[str], set[str]]:
    found: set[str] = set()
    dynamic: set[str] = set()
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
        extra = list(func.__defaults__ or ()) + list((func.__kwdefaults__ or {}).values())
        for value in extra:  # `def f(x, _ref=rejection_abc)`
            module = _module_of(value)
            if _in_module(module, modules):
                found.add(module)
            pending.extend(_functions_of(value, namespace))
        codes = [func.__code__]
        while codes:
            code = codes.pop()
            codes.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
            dynamic |= DYNAMIC_LOOKUPS & set(code.co_names)
            for name in code.co_names + code.co_freevars:
                if _in_module(name, modules):  # `import sbi_course.abc` inside the function
                    found.add(name)
                if name in closure:
                    value = closure[name]
                elif name in namespace:
                    value = namespace[name]
                else:
                    continue
                module = _module_of(value)
                if isinstance(value, types.ModuleType):
                    # `sbi_course.abc.smc_abc(...)` through the parent package
                    for target in modules:
                        rest = target[len(module) + 1 :].split(".")
                        if target.startswith(module + ".") and set(rest) <= set(code.co_names):
                            found.add(target)
                if _in_module(module, modules):
                    found.add(f"{module}.{name}" if module != name else module)
                # follow the functions and classes it uses that are defined in the same notebook
                if _module_of(value) == namespace.get("__name__") or isinstance(
                    value, types.FunctionType
                ):
                    pending.extend(
                        f for f in _functions_of(value, namespace) if f.__globals__ is namespace
                    )
    return found, dynamic
