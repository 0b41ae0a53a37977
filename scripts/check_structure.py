#!/usr/bin/env python3
"""The code's shape, checked: what the README promises about `src/` and nothing else.

1. Layers: no file imports from a module that sits above its own in the README's
   "### Layers" table (a module may use its own layer and the ones below it).
2. No import cycles between the files (modules) of one directory.
3. No function longer than MAX_FN_LINES lines, and no file with more than MAX_FILE_CODE
   lines of code (non-blank, non-comment), test modules and test files excluded.

Run from the repository root (CI does): `python3 scripts/check_structure.py`. Prints every
breach and exits 1 if there is one; `--stats` also prints the largest files and functions.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

MAX_FN_LINES = 80
MAX_FILE_CODE = 400

FN_RE = re.compile(
    r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:default\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?"
    r"(?:extern\s+\"[^\"]*\"\s+)?fn\s+(\w+)"
)
CFG_TEST_RE = re.compile(r"^\s*#\[cfg\((?:all\()?test")
MOD_DECL_RE = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;")
PATH_RE = re.compile(r"\b(crate|super|self)((?:::\w+)*)(::\{)?")


def strip_code(text: str) -> list[str]:
    """The file's lines with comments removed and string/char literals blanked, so braces,
    paths and lengths are read from code only. Line count is preserved."""
    out: list[str] = []
    cur: list[str] = []
    i, n = 0, len(text)
    block = 0
    while i < n:
        c = text[i]
        if c == "\n":
            out.append("".join(cur))
            cur = []
            i += 1
            continue
        if block:
            if text.startswith("*/", i):
                block -= 1
                i += 2
            elif text.startswith("/*", i):
                block += 1
                i += 2
            else:
                i += 1
            continue
        if text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
            continue
        if text.startswith("/*", i):
            block = 1
            i += 2
            continue
        m = re.match(r'b?r(#*)"', text[i:i + 10])
        if m and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            end = '"' + m.group(1)
            j = text.find(end, i + len(m.group(0)))
            j = n if j < 0 else j + len(end)
            cur.append('""')
            out.extend([""] * text.count("\n", i, j))
            i = j
            continue
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            cur.append('""')
            out.extend([""] * text.count("\n", i, j))
            i = j + 1
            continue
        if c == "'":
            m = re.match(r"'(\\(x..|u\{[0-9a-fA-F]+\}|.)|[^\\'])'", text[i:i + 12])
            if m:
                cur.append("' '")
                i += len(m.group(0))
                continue
        cur.append(c)
        i += 1
    out.append("".join(cur))
    return out


def block_end(lines: list[str], start: int) -> int | None:
    """Index of the line closing the first `{` at or after `start`; None when a `;` comes
    first (a declaration without a body)."""
    depth = 0
    opened = False
    for k in range(start, len(lines)):
        for ch in lines[k]:
            if ch == "{":
                depth += 1
                opened = True
            elif ch == "}":
                depth -= 1
                if opened and depth == 0:
                    return k
            elif ch == ";" and not opened:
                return None
    return None


class Source:
    def __init__(self, root: Path, path: Path):
        self.path = path
        self.rel = path.relative_to(root).as_posix()
        self.lines = strip_code(path.read_text(encoding="utf-8"))
        self.test_lines: set[int] = set()
        self.test_children: set[str] = set()
        self._mark_tests()

    def _mark_tests(self) -> None:
        k = 0
        while k < len(self.lines):
            if CFG_TEST_RE.match(self.lines[k]):
                item = k + 1
                while item < len(self.lines) and (
                    not self.lines[item].strip() or self.lines[item].strip().startswith("#[")
                ):
                    item += 1
                decl = MOD_DECL_RE.match(self.lines[item]) if item < len(self.lines) else None
                if decl:
                    self.test_children.add(decl.group(1))
                    end = item
                else:
                    end = block_end(self.lines, item)
                    end = item if end is None else end
                self.test_lines.update(range(k, end + 1))
                k = end + 1
                continue
            k += 1

    def code_lines(self) -> list[tuple[int, str]]:
        return [(k, ln) for k, ln in enumerate(self.lines) if k not in self.test_lines]

    def loc(self) -> int:
        return sum(1 for _, ln in self.code_lines() if ln.strip())

    def functions(self) -> list[tuple[str, int, int]]:
        found = []
        for k, ln in self.code_lines():
            m = FN_RE.match(ln)
            if not m:
                continue
            end = block_end(self.lines, k)
            if end is not None:
                found.append((m.group(1), k + 1, end - k + 1))
        return found


def module_path(rel: str) -> list[str]:
    parts = rel[len("src/"):-len(".rs")].split("/")
    if parts[-1] == "mod":
        parts.pop()
    if parts in (["lib"], ["main"]):
        return [] if parts == ["lib"] else ["main"]
    return parts


def references(src: Source, here: list[str], is_dir_module: bool) -> set[tuple[str, ...]]:
    """Absolute module paths this file's code names (`crate::`, `super::`, `self::`)."""
    refs: set[tuple[str, ...]] = set()
    own = here if is_dir_module else here
    for _, ln in src.code_lines():
        for m in PATH_RE.finditer(ln):
            head, tail, brace = m.group(1), m.group(2), m.group(3)
            segs = [s for s in tail.split("::") if s]
            if head == "crate":
                base: list[str] = []
            elif head == "self":
                base = list(own)
            else:
                base = list(own[:-1])
                while segs and segs[0] == "super":
                    segs.pop(0)
                    base = base[:-1]
            prefix = base + segs
            if brace:
                for first in brace_items(ln[m.end():]):
                    refs.add(tuple(prefix + [first]))
            elif prefix:
                refs.add(tuple(prefix))
    return refs


def brace_items(rest: str) -> list[str]:
    """First path segments of a `{a, b::c, d}` list (the text after its `{`), one line."""
    items, depth, token, fresh = [], 1, "", True
    for ch in rest:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                break
        elif depth == 1 and ch == ",":
            fresh = True
            continue
        if depth == 1 and fresh:
            if ch.isalnum() or ch == "_":
                token += ch
                continue
            if token:
                items.append(token)
                token, fresh = "", False
    if token and fresh:
        items.append(token)
    return [t for t in items if t not in ("self", "super", "crate")]


def read_layers(readme: Path) -> dict[str, int]:
    text = readme.read_text(encoding="utf-8")
    m = re.search(r"^### Layers\n(.*?)(?=^#)", text, re.S | re.M)
    if not m:
        sys.exit("README.md has no '### Layers' section")
    layers = {}
    for row in re.finditer(r"^\|\s*(\d+)\s*\|([^|]*)\|", m.group(1), re.M):
        for name in re.findall(r"`([\w/]+)`", row.group(2)):
            layers[name.rstrip("/")] = int(row.group(1))
    return layers


def sccs(graph: dict[str, set[str]]) -> list[list[str]]:
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=".", type=Path)
    ap.add_argument("--stats", action="store_true", help="also list the largest files and functions")
    args = ap.parse_args()
    root = args.root.resolve()
    readme = root / "README.md"
    if "### Layers" not in readme.read_text(encoding="utf-8"):
        # A branch older than the table: the script's own checkout knows the layers.
        readme = Path(__file__).resolve().parent.parent / "README.md"
    layers = read_layers(readme)
    sources = [Source(root, p) for p in sorted((root / "src").rglob("*.rs"))]
    by_mod = {tuple(module_path(s.rel)): s for s in sources}
    test_files = set()
    for s in sources:
        for child in s.test_children:
            here = module_path(s.rel)
            test_files.add(tuple(here + [child]))
    problems: list[str] = []
    fn_sizes, file_sizes = [], []
    dir_graphs: dict[tuple[str, ...], dict[str, set[str]]] = {}
    for s in sources:
        here = module_path(s.rel)
        if tuple(here) in test_files or s.path.name.endswith("tests.rs"):
            continue
        top = here[0] if here else "lib"
        loc = s.loc()
        file_sizes.append((loc, s.rel))
        if loc > MAX_FILE_CODE:
            problems.append(f"{s.rel}: {loc} lines of code (limit {MAX_FILE_CODE})")
        for name, line, length in s.functions():
            fn_sizes.append((length, f"{s.rel}:{line} {name}"))
            if length > MAX_FN_LINES:
                problems.append(f"{s.rel}:{line}: fn {name} is {length} lines (limit {MAX_FN_LINES})")
        if top != "lib" and top not in layers:
            problems.append(f"{s.rel}: module `{top}` is not in README's Layers table")
        for ref in references(s, here, s.path.name == "mod.rs"):
            if not ref:
                continue
            if top != "lib" and ref[0] in layers and top in layers and layers[ref[0]] < layers[top]:
                problems.append(
                    f"{s.rel}: uses crate::{'::'.join(ref)} (layer {layers[ref[0]]}) "
                    f"from `{top}` (layer {layers[top]})"
                )
            common = 0
            while common < min(len(here), len(ref)) and here[common] == ref[common]:
                common += 1
            if common < len(here) and common < len(ref):
                target = tuple(ref[: common + 1])
                if target in by_mod or any(k[: common + 1] == target for k in by_mod):
                    g = dir_graphs.setdefault(tuple(here[:common]), {})
                    g.setdefault(here[common], set()).add(ref[common])
    for d, g in sorted(dir_graphs.items()):
        for comp in sccs(g):
            where = "src/" + "/".join(d) if d else "src"
            problems.append(f"{where}: import cycle between {', '.join(comp)}")
    if args.stats:
        print("largest files (lines of code):")
        for loc, rel in sorted(file_sizes, reverse=True)[:10]:
            print(f"  {loc:5} {rel}")
        print("longest functions (lines):")
        for length, where in sorted(fn_sizes, reverse=True)[:10]:
            print(f"  {length:5} {where}")
    for p in problems:
        print(p)
    print(f"check_structure: {len(sources)} files, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
