#!/usr/bin/env python3
"""Checks that WaveJam's modules depend on each other one way (no cycle between the top-level
modules of `src/`), reading the `crate::` paths in the code (comments and test modules aside).

Run by scripts/test.sh: `python3 tools/layout/check.py [src]`. Prints the dependency graph and
exits 1 on a cycle, naming it and where each of its edges comes from.
"""

import re
import sys
from pathlib import Path

SRC = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parents[2] / "src")
# Test modules may reach across (a conductor test runs the real generator): they are left out.
TEST_MODULE = re.compile(r"^#\[cfg\(test\)\]\s*\n(#\[path[^\n]*\n)?\s*(pub(\(crate\))?\s+)?mod \w+", re.M)
USE_GROUP = re.compile(r"crate::\{([^}]*)\}")
PATH = re.compile(r"crate::([a-z_][a-z0-9_]*)")


def top_module(path):
    """The top-level module a file of src/ belongs to (None for the crate root and binaries)."""
    parts = path.relative_to(SRC).parts
    if parts[0] in ("lib.rs", "bin"):
        return None
    return parts[0].removesuffix(".rs")


def code_of(text):
    """The file without comments, string literals and its test modules."""
    match = TEST_MODULE.search(text)
    if match:
        text = text[: match.start()]
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r'"(\\.|[^"\\])*"', '""', text)


def dependencies():
    """{module: {module it uses: first file that does}}."""
    graph = {}
    for path in sorted(SRC.rglob("*.rs")):
        module = top_module(path)
        if module is None or path.name.endswith("tests.rs") or module == "test_kit":
            continue
        code = code_of(path.read_text())
        used = set(PATH.findall(code))
        for group in USE_GROUP.findall(code):
            used.update(re.findall(r"(?:^|,)\s*([a-z_][a-z0-9_]*)", group))
        edges = graph.setdefault(module, {})
        for target in used - {module, "self", "super"}:
            edges.setdefault(target, str(path))
    return graph


def find_cycle(graph):
    """A cycle as a list of modules, or None."""
    state = {}
    stack = []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, {})):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def main():
    graph = dependencies()
    for module in sorted(graph):
        print(f"{module} -> {', '.join(sorted(graph[module])) or '(nothing)'}")
    cycle = find_cycle(graph)
    if cycle:
        print("dependency cycle: " + " -> ".join(cycle), file=sys.stderr)
        for a, b in zip(cycle, cycle[1:]):
            print(f"  {a} -> {b}: {graph[a][b]}", file=sys.stderr)
        sys.exit(1)
    print("no dependency cycle between the modules of src/")


if __name__ == "__main__":
    main()
