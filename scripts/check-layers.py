#!/usr/bin/env python3
"""The folder-level dependency graph of a Swift module, and its loops.

Each folder under the module's directory is a room. A file in room A that names a type declared
at the top level of a file in room B is an arrow A -> B. Swift imports modules, not folders, so
this reads the names: comments and string literals are left out, identifiers are matched whole.
Exits 1, printing each loop with the file and type behind every arrow, when the graph has one.

Usage: scripts/check-layers.py [Sources/Wiregate] [--graph]
"""
import os
import re
import sys

DECLARATION = re.compile(
    r"^(?:@\w+(?:\([^)]*\))?\s+)*(?:(?:public|package|internal|private|fileprivate|final|open|nonisolated|indirect)\s+)*"
    r"(?:class|struct|enum|actor|protocol|typealias)\s+([A-Za-z_]\w*)",
    re.MULTILINE,
)
IDENTIFIER = re.compile(r"\b[A-Z]\w*\b")


# One pass, leftmost first: a `/*` inside a string is not a comment, a `"` inside a comment not a string.
LEXEMES = re.compile(r'"""(?:.|\n)*?"""|"(?:\\.|[^"\\\n])*"|/\*(?:.|\n)*?\*/|//[^\n]*')


def strip(source: str) -> str:
    """The source without comments and string literals (multi-line ones included). Names inside
    a string's interpolation go with it: a type used only there is not seen."""
    return LEXEMES.sub(lambda lexeme: '""' if lexeme.group(0).startswith('"') else " ", source)


def rooms(root: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for directory, _, files in os.walk(root):
        room = os.path.relpath(directory, root).split(os.sep)[0]
        if room == ".":
            room = "(top)"
        for name in files:
            if name.endswith(".swift"):
                found.setdefault(room, []).append(os.path.join(directory, name))
    return found


def main() -> int:
    arguments = [a for a in sys.argv[1:] if not a.startswith("--")]
    root = arguments[0] if arguments else "Sources/Wiregate"
    sources = {path: strip(open(path, encoding="utf-8").read()) for files in rooms(root).values() for path in files}
    room_of = {path: room for room, files in rooms(root).items() for path in files}
    declared: dict[str, str] = {}
    for path, text in sources.items():
        for name in DECLARATION.findall(text):
            declared.setdefault(name, room_of[path])
    edges: dict[tuple[str, str], tuple[str, str]] = {}
    for path, text in sources.items():
        here = room_of[path]
        for name in set(IDENTIFIER.findall(text)):
            there = declared.get(name)
            if there and there != here:
                edges.setdefault((here, there), (os.path.relpath(path, root), name))
    if "--graph" in sys.argv:
        for (a, b), (path, name) in sorted(edges.items()):
            print(f"{a} -> {b}    ({path}: {name})")
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
    loops: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for successor in sorted(graph.get(node, ())):
            if state.get(successor) == 1:
                loops.append(stack[stack.index(successor):] + [successor])
            elif successor not in state:
                visit(successor)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    for loop in loops:
        print("loop: " + " -> ".join(loop), file=sys.stderr)
        for a, b in zip(loop, loop[1:]):
            path, name = edges[(a, b)]
            print(f"  {a} -> {b}: {path} names {name}", file=sys.stderr)
    if not loops:
        print(f"{root}: {len(edges)} arrows between {len(set(room_of.values()))} folders, no loop")
    return 1 if loops else 0


if __name__ == "__main__":
    sys.exit(main())
