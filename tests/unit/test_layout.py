"""The package's layering, read from its imports: what a structural review would check.

- no import cycle between videodub's modules;
- built-in implementations import shared helpers, never each other, nor the runner, the
  library API, the command line or the test tools;
- the core (everything but ``builtin/``, ``providers/`` and ``testing/``) never names a
  provider: no import of a provider module, no "openai" in its code;
- nothing imports ``videodub.testing`` except the demo (which uses its sample talk);
- no module grows past 400 lines, except the ones listed with the reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "videodub"
MAX_LINES = 400
# A file whose single purpose justifies its length.
LONG_BY_DESIGN: dict[str, str] = {}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """videodub modules imported by ``path`` at run time (``if TYPE_CHECKING:`` blocks excluded)."""
    found: set[str] = set()

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            if isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
                for child in node.orelse:
                    self.visit(child)
                return
            self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            found.update(a.name for a in node.names if a.name.split(".")[0] == "videodub")

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            if not node.module or node.module.split(".")[0] != "videodub":
                return
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                as_path = PACKAGE.parent / sub.replace(".", "/")
                found.add(sub if as_path.with_suffix(".py").exists() or as_path.is_dir()
                          else node.module)

    Visitor().visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


GRAPH = {module_name(p): imports(p) - {module_name(p)} for p in PACKAGE.rglob("*.py")}


def in_package(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_the_graph_is_read():
    assert "videodub.run.runner" in GRAPH and "videodub.builtin.tts_espeak" in GRAPH
    assert "videodub.run.stages" in GRAPH["videodub.run.runner"]


def test_no_import_cycle():
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(GRAPH.get(node, ())):
            if dep not in GRAPH:
                continue
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(GRAPH):
        if node not in state:
            visit(node, [])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_builtins_stand_alone():
    forbidden = ("videodub.builtin", "videodub.run", "videodub.api", "videodub.cli",
                 "videodub.testing")
    bad = {mod: sorted(d for d in deps if any(in_package(d, f) for f in forbidden))
           for mod, deps in GRAPH.items() if in_package(mod, "videodub.builtin")}
    assert not {m: d for m, d in bad.items() if d}


def core_modules() -> list[str]:
    return [m for m in GRAPH if not any(in_package(m, p) for p in (
        "videodub.builtin", "videodub.providers", "videodub.testing"))]


def test_the_core_names_no_provider():
    provider_modules = [m for m in GRAPH if in_package(m, "videodub.providers")
                        and m.rpartition(".")[2] not in ("aio", "limits", "usage", "secrets")]
    assert provider_modules, "expected provider modules under videodub/providers"
    for mod in core_modules():
        named = GRAPH[mod] & set(provider_modules)
        assert not named, f"{mod} imports {named}"
        path = PACKAGE.parent / (mod.replace(".", "/") + ".py")
        if not path.exists():
            path = PACKAGE.parent / mod.replace(".", "/") / "__init__.py"
        assert "openai" not in path.read_text(encoding="utf-8").lower(), f"{mod} names a provider"


def test_the_core_does_not_reach_up():
    """Lower layers never import the runner, the library API or the command line."""
    # videodub.perf reads runs from above (history, plans, the CI suite): an upper layer.
    upper = ("videodub.run", "videodub.api", "videodub.cli", "videodub.demo", "videodub.perf")
    lower = [m for m in core_modules() if not any(in_package(m, u) for u in upper)
             and m not in ("videodub.__main__",)]
    for mod in lower:
        up = sorted(d for d in GRAPH[mod] if any(in_package(d, u) for u in upper))
        assert not up, f"{mod} imports {up}"
    # The command line builds on the library API, never the reverse.
    assert "videodub.cli" not in GRAPH["videodub.api"]


def test_test_tools_stay_out_of_the_product():
    users = {m for m, deps in GRAPH.items() if not in_package(m, "videodub.testing")
             and any(in_package(d, "videodub.testing") for d in deps)}
    # The CI suite (perf check) generates its talk and starts a loopback server, like the demo.
    assert users <= {"videodub.demo", "videodub.perf.check"}, users


def test_modules_stay_small():
    long = {}
    for path in PACKAGE.rglob("*.py"):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        rel = str(path.relative_to(PACKAGE.parent))
        if lines > MAX_LINES and rel not in LONG_BY_DESIGN:
            long[rel] = lines
    assert not long, f"modules over {MAX_LINES} lines: {long}"
