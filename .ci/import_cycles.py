#!/usr/bin/env python3
"""Finds import cycles between authwatch's modules, and imports that go up the map in src/lib.rs.

Builds a graph from every `crate::...` and `super::...` path in src/ (use lines and inline paths alike),
resolved to the file-level module that defines it, then reports:
  1. cycles between file modules (a.rs uses b.rs which uses a.rs, directly or through others);
  2. cycles between top-level modules (src/<x>/ or src/<x>.rs), ignoring a folder's use of itself;
  3. a top-level module importing one listed above it in src/lib.rs (the map reads top to bottom).
`#[cfg(test)]` modules and test-only files are skipped: tests may reach anywhere.
Exit status 1 when a cycle or an upward import exists. Usage: .ci/import_cycles.py [--top-only] [--quiet]
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")


def module_of(path):
    rel = os.path.relpath(path, ROOT)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return tuple(rel)


def all_modules():
    mods = {}
    for d, _, files in os.walk(ROOT):
        for f in files:
            if f.endswith(".rs"):
                p = os.path.join(d, f)
                mods[module_of(p)] = p
    return mods


def strip_tests(text):
    """Drops `#[cfg(test)] mod x { ... }` blocks and `#[cfg(test)] mod x;` declarations."""
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*(\{|;)", text):
        if m.start() < i:
            continue
        out.append(text[i : m.start()])
        if m.group(3) == ";":
            i = m.end()
            continue
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def strip_comments(text):
    """Blanks comments, string and char literals (a scanner: regexes trip over `'"'` and raw strings)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif c == "r" and re.match(r'r#*"', text[i:]) and not re.match(r"\w", text[i - 1 : i] or " "):
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            j = text.find('"' + hashes, i + 2 + len(hashes))
            out.append('""')
            i = n if j < 0 else j + 1 + len(hashes)
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""')
            i = j + 1
        elif c == "'" and re.match(r"'(\\.[^']*|[^'\\])'", text[i:]):
            i += len(re.match(r"'(\\.[^']*|[^'\\])'", text[i:]).group(0))
            out.append("' '")
        else:
            out.append(c)
            i += 1
    return "".join(out)


def expand_use(tree):
    """Expands `a::{b, c::{d, e}}` into [a::b, a::c::d, a::c::e]."""
    tree = tree.replace(" ", "").replace("\n", "")
    m = re.match(r"^([^{]*)\{(.*)\}$", tree)
    if not m:
        return [tree]
    prefix, inner = m.group(1), m.group(2)
    parts, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += {"{": 1, "}": -1}.get(ch, 0)
        cur += ch
    if cur:
        parts.append(cur)
    return [x for p in parts if p for x in expand_use(prefix + p)]


def resolve(path_segs, here, mods):
    """Returns the file module a path points into (longest existing prefix), or None."""
    segs = list(path_segs)
    if not segs:
        return None
    if segs[0] == "crate":
        base, segs = [], segs[1:]
    elif segs[0] in ("super", "self"):
        # `self` is the module the file defines (a/b.rs and a/b/mod.rs alike); each `super` goes one up.
        base = list(here)
        while segs and segs[0] in ("super", "self"):
            if segs[0] == "super":
                base = base[:-1]
            segs = segs[1:]
    else:
        return None
    full = base + [s for s in segs if re.match(r"^\w+$", s)]
    for n in range(len(full), 0, -1):
        if tuple(full[:n]) in mods:
            return tuple(full[:n])
    return None


def graph():
    mods = all_modules()
    edges = {m: set() for m in mods}
    for mod, path in mods.items():
        if mod and mod[-1] in ("tests", "fixture"):
            continue
        text = strip_comments(strip_tests(open(path, encoding="utf-8").read()))
        paths = []
        for m in re.finditer(r"\buse\s+((?:crate|super|self)::[^;]*);", text):
            paths += expand_use(m.group(1))
        for m in re.finditer(r"\b((?:crate|super)(?:::\w+)+)", text):
            paths.append(m.group(1))
        for p in paths:
            target = resolve(p.split("::"), mod, mods)
            if target is not None and target != mod and target != ():
                # a parent module re-exporting its own child is not an upward import
                edges[mod].add(target)
    return mods, edges


def cycles(edges):
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
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

    sys.setrecursionlimit(10000)
    for v in list(edges):
        if v not in index:
            visit(v)
    return out


def name(m):
    if isinstance(m, str):
        return m
    return "::".join(m) or "crate"


def show(comps, edges, label):
    for comp in comps:
        members = set(comp)
        print(f"{label} cycle: {', '.join(name(m) for m in comp)}")
        for a in comp:
            for b in sorted(edges[a]):
                if b in members:
                    print(f"    {name(a)} -> {name(b)}")


def main():
    quiet = "--quiet" in sys.argv
    mods, edges = graph()
    found = 0
    if "--top-only" not in sys.argv:
        # Parent folder modules (mod.rs) and their children use each other by design (a folder's own
        # internals); those are reported at the top level, not here.
        file_edges = {
            a: {b for b in bs if not (b == a[: len(b)] or a == b[: len(a)])} for a, bs in edges.items()
        }
        comps = cycles(file_edges)
        found += len(comps)
        show(comps, file_edges, "module")
    top = {}
    for a, bs in edges.items():
        if not a:
            continue
        for b in bs:
            if b and b[0] != a[0]:
                top.setdefault(a[0], set()).add(b[0])
        top.setdefault(a[0], set())
    comps = cycles(top)
    found += len(comps)
    show(comps, top, "top-level")
    lib = open(os.path.join(ROOT, "lib.rs"), encoding="utf-8").read()
    order = {n: i for i, n in enumerate(re.findall(r"^pub mod (\w+);", lib, re.M))}
    for a in sorted(edges):
        for b in sorted(edges[a]):
            if a and b and a[0] != b[0] and order.get(b[0], -1) < order.get(a[0], -1):
                found += 1
                print(f"upward import: {name(a)} -> {name(b)} ({b[0]} is listed above {a[0]} in src/lib.rs)")
    if not quiet:
        print(f"{len(mods)} modules, {sum(len(b) for b in edges.values())} edges, {found} problem(s)")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
