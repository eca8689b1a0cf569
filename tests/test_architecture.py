"""The shape of the package: no import cycles, short modules, engines only in fnx.runtime, torch-free entry points."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "fnx"
MAX_LINES = 300
MAX_FUNCTION_LINES = 80
# Engine calls outside the runtime and the targets' engines that only inspect a graph (op types, intermediate tensors):
INSPECTION_ONLY = {"fnx/targets/onnx/int8.py", "fnx/targets/tflite/graph.py"}


def _modules() -> dict[str, Path]:
    mods = {}
    for p in PKG.rglob("*.py"):
        rel = p.relative_to(PKG.parent).with_suffix("")
        mods[".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)] = p
    return mods


def import_graph() -> dict[str, set[str]]:
    """Return module -> fnx modules it imports (module-level and function-level imports alike)."""
    mods = _modules()
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for m, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            for t in targets:
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t and t != m and t != "fnx" and not m.startswith(t + "."):
                    edges[m].add(t)
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """Return one import cycle as a list of modules, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(v: str) -> list[str] | None:
        state[v] = 1
        stack.append(v)
        for w in sorted(edges[v]):
            if state.get(w) == 1:
                return stack[stack.index(w):] + [w]
            if w not in state and (found := visit(w)):
                return found
        state[v] = 2
        stack.pop()
        return None

    for v in sorted(edges):
        if v not in state and (found := visit(v)):
            return found
    return None


def test_no_import_cycles_inside_fnx():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_calibration_imports_nothing_from_the_exporter():
    edges = import_graph()
    bad = {m: sorted(t for t in ts if t.startswith("fnx.exporter")) for m, ts in edges.items() if m.startswith("fnx.calibration")}
    assert not {m: t for m, t in bad.items() if t}, bad


def test_the_ranking_sits_above_exporter_runtime_and_evaluation():
    """fnx.ranking drives the exporter and times with the runtime; nothing but the CLI imports it, and the exporter
    reaches the runtime only to check its own artifacts (no engine internals, no evaluation)."""
    edges = import_graph()
    users = sorted(m for m, ts in edges.items() if any(t.startswith("fnx.ranking") for t in ts)
                   and not m.startswith(("fnx.ranking", "fnx.cli")))
    assert not users, users
    upward = {m: sorted(t for t in ts if t.startswith(("fnx.evaluation", "fnx.runtime.engines", "fnx.devices", "fnx.cli")))
              for m, ts in edges.items() if m.startswith("fnx.exporter")}
    assert not {m: t for m, t in upward.items() if t}, upward


def test_modules_are_short():
    long = {str(p.relative_to(PKG.parent)): n for p in PKG.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_functions_are_short():
    long = {f"{p.relative_to(PKG.parent)}:{n.name}": n.end_lineno - n.lineno + 1 for p in PKG.rglob("*.py")
            for n in ast.walk(ast.parse(p.read_text())) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            and n.end_lineno - n.lineno + 1 > MAX_FUNCTION_LINES}
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def _is_engine_module(rel: str) -> bool:
    return rel.startswith("fnx/runtime/") or (rel.startswith("fnx/targets/") and rel.endswith("/engine.py"))


def test_engines_are_called_only_in_the_runtime_and_the_targets_engines():
    """(A target's in_toolkit.py runs in its toolchain's own Python, never imported by fnx: imx500 runs MCT's
    quantized ONNX there.)"""
    calls = ("InferenceSession(", "Interpreter(", "tf.lite.")
    outside = [rel for p in PKG.rglob("*.py") if not _is_engine_module(rel := p.relative_to(PKG.parent).as_posix())
               and rel not in INSPECTION_ONLY and not rel.endswith("/in_toolkit.py")
               and any(c in p.read_text() for c in calls)]
    assert not outside, f"engine calls outside fnx/runtime and fnx/targets/*/engine.py: {outside}"


def test_the_runtime_and_the_targets_engines_never_import_the_exporter_or_torch_at_module_level():
    """What runs on the device: fnx.runtime and every target's engine module (and what they import) stay torch-free."""
    edges = import_graph()
    device_side = [m for m in edges if m.startswith("fnx.runtime") or (m.startswith("fnx.targets.") and m.endswith(".engine"))]
    bad = {m: sorted(t for t in edges[m] if t.startswith(("fnx.exporter", "fnx.calibration", "fnx.training", "fnx.models")))
           for m in device_side}
    assert not {m: t for m, t in bad.items() if t}, bad


@pytest.mark.parametrize("module", ["fnx.runtime", "fnx.cli", "fnx.manifest", "fnx.exporter", "fnx.exporter.quantize",
                                    "fnx.exporter.formats", "fnx.targets.tflite.export", "fnx.targets.onnx.export",
                                    "fnx.targets.ethos_u.export", "fnx.targets.executorch.export",
                                    "fnx.targets.rknn.export", "fnx.targets.imx500.export", "fnx.targets.executorch.engine",
                                    "fnx.serve.app", "fnx.serve.server", "fnx.serve.images", "fnx.serve.connections"])
def test_entry_points_import_without_torch(module):
    code = f"import sys, {module}; print(sorted(m for m in ('torch', 'tensorflow') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


# A target's own package may name it; generic code dispatches through the registries instead (formats' members, the
# engines' `kernels`). The demo names the artifacts it made (data, not dispatch).
TARGET_MODULES = ("fnx/targets/", "fnx/demo/")


def test_generic_code_never_branches_on_a_format_name():
    import re

    from fnx.formats import file_formats

    names = "|".join(file_formats())
    suffixes = "|".join(re.escape(f.suffix) for f in file_formats().values())
    branch = re.compile(rf"""(==|!=|\bin)\s*\(?["']({names})["']|["']({names})["']\s*(==|!=|\bin\b)|"""
                        rf"""suffix\s*(==|!=)\s*["']({suffixes})["']""")
    found = []
    for p in PKG.rglob("*.py"):
        rel = p.relative_to(PKG.parent).as_posix()
        if rel.startswith(TARGET_MODULES):
            continue
        found += [f"{rel}:{n}: {line.strip()}" for n, line in enumerate(p.read_text().splitlines(), 1)
                  if branch.search(line)]
    assert not found, "generic code branching on a format (give the format a member instead):\n" + "\n".join(found)
