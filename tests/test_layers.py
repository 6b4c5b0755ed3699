"""The import layering of docs/architecture.md: no module imports one of a layer above it, and
no import cycles — every import counted, those inside functions and under TYPE_CHECKING too."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "energy_hpc"

# bottom to top; a module belongs to the first layer whose prefix it matches (longest wins)
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("energy_hpc", "energy_hpc.errors", "energy_hpc.interrupts", "energy_hpc.safe_paths",
                    "energy_hpc.records_cache", "energy_hpc.columns")),
    ("meters and kinds", ("energy_hpc.energy", "energy_hpc.kinds", "energy_hpc.provenance",
                          "energy_hpc.classifiers.llm.prompt", "energy_hpc.classifiers.llm.parsing")),
    ("config and data", ("energy_hpc.config", "energy_hpc.site_configs", "energy_hpc.paper_setup",
                         "energy_hpc.data", "energy_hpc.results")),
    ("what a cell is built from", ("energy_hpc.cluster", "energy_hpc.classifiers",
                                   "energy_hpc.estimate.values")),
    ("the cell", ("energy_hpc.cell",)),
    ("estimating, measuring and reading cells", ("energy_hpc.estimate", "energy_hpc.runner",
                                                 "energy_hpc.analysis")),
    ("planning and launching", ("energy_hpc.launch",)),
    ("entry points", ("energy_hpc.cli", "energy_hpc.__main__", "energy_hpc.report",
                      "energy_hpc.status", "energy_hpc.estimate.__main__")),
]


def module_name(path: Path) -> str:
    name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return name.removesuffix(".__init__")


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def layer_of(module: str) -> int:
    best, level = -1, None
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, level = len(prefix), i
    assert level is not None, f"{module} is in no layer of tests/test_layers.py"
    return level


def imports_of(module: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            while name not in MODULES and "." in name:
                name = name.rsplit(".", 1)[0]
            if name in MODULES and name != module and name.startswith("energy_hpc"):
                found.add(name)
    return found


GRAPH = {m: imports_of(m) for m in MODULES}


def test_every_module_has_a_layer_and_imports_none_above_it():
    upward = [f"{m} ({LAYERS[layer_of(m)][0]}) imports {d} ({LAYERS[layer_of(d)][0]})"
              for m, deps in GRAPH.items() for d in sorted(deps)
              if layer_of(d) > layer_of(m) and not (m == "energy_hpc" or d == "energy_hpc")]
    assert not upward, "\n".join(upward)


def test_no_import_cycles():
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in GRAPH:
        if module not in index:
            visit(module)
    assert not cycles, cycles


def test_the_checker_sees_an_upward_import_and_a_cycle(tmp_path):
    """The two checks above can fail: a made-up graph with both faults is caught."""
    assert layer_of("energy_hpc.cell") > layer_of("energy_hpc.cluster.placement")
    assert layer_of("energy_hpc.launch.slurm") > layer_of("energy_hpc.cell") \
        > layer_of("energy_hpc.cluster.placement")
    assert layer_of("energy_hpc.estimate.values") < layer_of("energy_hpc.cell") \
        < layer_of("energy_hpc.estimate.cost")
    fake = tmp_path / "m.py"
    fake.write_text("def f():\n    from energy_hpc.cli import main\n")
    MODULES["energy_hpc.fake"] = fake
    try:
        assert imports_of("energy_hpc.fake") == {"energy_hpc.cli"}  # inside a function: counted
    finally:
        del MODULES["energy_hpc.fake"]


LAYOUT_NAMES = {"cells", "meta.json", "records.jsonl", "sweeps", ".locks", "raw", "ray", "slurm"}


def test_only_results_builds_the_layout_on_disk():
    """``results.py`` owns the paths of records, meta, raw answers, Ray folders, locks and sweep
    manifests: no other module joins those names onto a path."""
    offenders = []
    for module, path in MODULES.items():
        if module == "energy_hpc.results" or module.startswith("energy_hpc.results."):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
                for side in (node.left, node.right):
                    if isinstance(side, ast.Constant) and side.value in LAYOUT_NAMES:
                        offenders.append(f"{module}:{node.lineno} joins {side.value!r}")
                    if isinstance(side, ast.JoinedStr) and any(
                            isinstance(v, ast.Constant) and str(v.value).startswith(
                                ("split", "records", "meta")) for v in side.values):
                        offenders.append(f"{module}:{node.lineno} builds a file name of the layout")
    assert not offenders, "\n".join(offenders)
