"""Tamper evidence: has a student cell altered the machinery the hidden tests rely on?

A test cell runs in the kernel the student's cells ran in. Four lines of a student cell can make
every later test pass: an IPython input or AST transformer that wraps each cell in
``try/except``, a compiler that strips ``assert`` statements, a ``pre_run_cell`` hook, a custom
exception handler (``set_custom_exc``), a trace function, a patched ``builtins`` (``isinstance``,
``AssertionError``), a patched ``torch.allclose`` or ``Tensor.__eq__``, a tensor subclass whose
``__torch_function__`` lies, or a rebound ``assert_own_implementation``.

:data:`BASELINE` runs silently in the fresh kernel before the notebook's first cell: it imports
the modules the tests use and records the identity of everything above. :data:`CHECK` runs
silently before every test cell and lists what differs; the grader then does not run that test
cell and gives it zero, and flags the submission (see :mod:`tools.grading.execute`). Both are
sent with ``silent=True`` (no ``pre_run_cell`` hooks, no history) and their answer comes back in
the execute reply's ``user_expressions``, not through the output stream a hook could forge.

This is evidence, not proof against a student who studies this file: code that runs in the same
process can also disguise itself from the check. The sandbox (:mod:`tools.grading.sandbox`)
bounds the damage such a student can do to the score of their own submission.
"""

from __future__ import annotations

import ast
import json

__all__ = ["BASELINE", "CHECK", "RESULT", "parse"]

RESULT = "_sbi_grading_tamper_report"

BASELINE = r"""
def _sbi_grading_baseline():
    import builtins, importlib, math, sys
    watched = ["builtins", "math", "torch", "torch.testing", "torch.nn.functional", "numpy",
               "numpy.testing", "scipy.stats", "sbi_course.grading"]
    modules = {}
    for name in watched:
        try:
            modules[name] = importlib.import_module(name)
        except Exception:
            pass
    ip = get_ipython()
    def ids(obj):
        return {k: id(v) for k, v in list(vars(obj).items())}
    state = {
        "modules": {name: (module, ids(module)) for name, module in modules.items()},
        "classes": {},
        "shell_dict": set(vars(ip)),
        "shell_class": {k: id(v) for k, v in vars(type(ip)).items()},
        "compile": (id(ip.compile), type(ip.compile), ip.compile.flags),
        "transformers": [len(ip.input_transformers_cleanup),
                         len(ip.input_transformers_post), len(ip.ast_transformers),
                         len(getattr(ip.input_transformer_manager, "cleanup_transforms", [])),
                         len(getattr(ip.input_transformer_manager, "line_transforms", [])),
                         len(getattr(ip.input_transformer_manager, "token_transformers", []))],
        "events": {id(f) for v in ip.events.callbacks.values() for f in v},
        "excepthook": id(sys.excepthook),
    }
    for name in ("torch", "numpy"):
        if name in modules:
            cls = modules[name].Tensor if name == "torch" else modules[name].ndarray
            state["classes"][name] = (cls, ids(cls))
    sys.modules["_sbi_grading_state"] = type(sys)("_sbi_grading_state")
    sys.modules["_sbi_grading_state"].state = state
_sbi_grading_baseline()
del _sbi_grading_baseline
"""

CHECK = r"""
_SBI_GRADING_VOLATILE = ("display", "get_ipython", "input", "raw_input", "getpass", "exit",
                         "quit", "help", "copyright", "credits", "license", "_", "__", "___",
                         "__IPYTHON__")

def _sbi_grading_check():
    import json, sys
    state = sys.modules["_sbi_grading_state"].state
    ip = get_ipython()
    found = []
    for name, (module, before) in state["modules"].items():
        now = {k: id(v) for k, v in list(vars(module).items())}
        volatile = _SBI_GRADING_VOLATILE if name == "builtins" else ()
        changed = sorted(k for k in before if now.get(k) != before[k]
                         and not k.startswith("__") and k not in volatile)
        changed += sorted(k for k in now if k not in before and name == "builtins"
                          and k not in volatile and not k.startswith("_"))
        if changed:
            found.append(f"{name}: {', '.join(changed[:8])} changed")
        if sys.modules.get(name) is not module:
            found.append(f"sys.modules[{name!r}] replaced")
    for name, (cls, before) in state["classes"].items():
        now = {k: id(v) for k, v in list(vars(cls).items())}
        changed = sorted(k for k in set(before) | set(now) if now.get(k) != before.get(k))
        if changed:
            found.append(f"{cls.__module__}.{cls.__name__}: {', '.join(changed[:8])} changed")
    extra = sorted(k for k in set(vars(ip)) - state["shell_dict"]
                   if callable(getattr(type(ip), k, None))
                   and not isinstance(getattr(type(ip), k), type))
    if extra:
        found.append(f"IPython shell attributes set: {', '.join(extra[:8])}")
    shell_class = {k: id(v) for k, v in vars(type(ip)).items()}
    if shell_class != state["shell_class"]:
        found.append("IPython shell class patched")
    if (id(ip.compile), type(ip.compile), ip.compile.flags) != state["compile"]:
        found.append("IPython compiler replaced or its flags changed")
    transformers = [len(ip.input_transformers_cleanup), len(ip.input_transformers_post),
                    len(ip.ast_transformers),
                    len(getattr(ip.input_transformer_manager, "cleanup_transforms", [])),
                    len(getattr(ip.input_transformer_manager, "line_transforms", [])),
                    len(getattr(ip.input_transformer_manager, "token_transformers", []))]
    if transformers != state["transformers"]:
        found.append("IPython input or AST transformers added")
    trusted = ("matplotlib", "matplotlib_inline", "ipykernel", "IPython")
    for event, callbacks in ip.events.callbacks.items():
        for f in callbacks:
            module = str(getattr(f, "__module__", "") or "")
            if id(f) not in state["events"] and not module.startswith(trusted):
                found.append(f"an IPython {event} callback was registered")
    if ip.custom_exceptions:
        found.append("custom exception handler (set_custom_exc)")
    if sys.gettrace() is not None or sys.getprofile() is not None:
        found.append("a trace or profile function is set")
    main = sys.modules["__main__"].__dict__
    import sbi_course.grading as own
    if "assert_own_implementation" in main and (
        main["assert_own_implementation"] is not own.assert_own_implementation
    ):
        found.append("assert_own_implementation rebound")
    lying = ("__eq__", "__ne__", "__bool__", "__torch_function__", "__array_function__",
             "__array_ufunc__", "__float__", "__index__", "__instancecheck__")
    bases = tuple(cls for cls, _ in state["classes"].values())
    seen, pending = set(), [object]
    while pending:
        cls = pending.pop()
        try:
            subclasses = type.__subclasses__(cls)
        except TypeError:
            continue
        for sub in subclasses:
            if id(sub) in seen:
                continue
            seen.add(id(sub))
            pending.append(sub)
            if sub.__module__ != "__main__":
                continue
            if bases and issubclass(sub, bases + (int, float, complex, str, bool)):
                found.append(f"class {sub.__name__} subclasses a tensor, array or number type")
            elif type(sub) is not type and type(sub).__module__ == "__main__":
                found.append(f"class {sub.__name__} has a custom metaclass")
            elif any(k in vars(sub) for k in lying) and not hasattr(sub, "__dataclass_fields__"):
                found.append(f"class {sub.__name__} defines comparison or dispatch methods")
    return json.dumps(found)
"""

CHECK_EXPRESSION = "_sbi_grading_check()"


def parse(reply: dict) -> list[str]:
    """The list of findings from an execute reply of :data:`CHECK` (a failure is a finding)."""
    content = reply.get("content", {})
    if content.get("status") != "ok":
        return [f"the tamper check could not run: {content.get('ename', 'error')}"]
    result = content.get("user_expressions", {}).get(RESULT, {})
    if result.get("status") != "ok":
        return [f"the tamper check failed: {result.get('ename', 'error')} {result.get('evalue')}"]
    try:
        found = json.loads(ast.literal_eval(result["data"]["text/plain"]))
    except (KeyError, ValueError, TypeError):
        return ["the tamper check's answer was unreadable"]
    if not isinstance(found, list) or not all(isinstance(f, str) for f in found):
        return ["the tamper check's answer was malformed"]
    return found
