#!/usr/bin/env python3
"""Prints the module cycles inside each crate of the workspace.

A module is one source file under a crate's src/ (`foo.rs`, `foo/mod.rs`, `foo/bar.rs`). Module A
depends on module B when A names B through a path: `use crate::b::...`, `crate::b::item` in an
expression, `super::...` or `self::...`. References to the crate root (lib.rs, main.rs) are left
out: the root declares every module, so counting them would join everything into one circle.
A child module named without `self::` (`delta::encode` in `pack.rs`) counts too; paths inside an
inline `mod name { ... }` resolve from that module, and inline test modules (`#[cfg(test)]`)
are left out.
A circle is a strongly connected group of two or more modules; the script prints each circle
with its members and the count per crate, then the total.

Usage: python3 scripts/circles.py [crate-dir ...]   (default: every crate with a src/ folder)
"""

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PATH_RE = re.compile(r"\b(crate|super|self)((?:\s*::\s*(?:\{[^;]*?\}|[A-Za-z_][A-Za-z0-9_]*|\*))+)")

def strip(text):
    """The text without comments, string and character literals (so paths in them do not count)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif c == "r" and re.match(r'r#*"', text[i:]) and not (i and (text[i - 1].isalnum() or text[i - 1] == "_")):
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            end = text.find('"' + hashes, i + len(hashes) + 2)
            i = n if end < 0 else end + 1 + len(hashes)
            out.append('""')
        elif c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
            out.append('""')
        elif c == "'" and re.match(r"'(\\.[^']*|[^\\'])'", text[i:]):
            i += re.match(r"'(\\.[^']*|[^\\'])'", text[i:]).end()
            out.append("' '")
        else:
            out.append(c)
            i += 1
    return "".join(out)



def modules(src):
    """Maps module paths (tuples of names) to files."""
    found = {}
    for dirpath, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, f), src)
            parts = rel[:-3].split(os.sep)
            if parts[0] == "bin":
                continue
            if parts[-1] == "mod":
                parts = parts[:-1]
            if parts in (["lib"], ["main"]):
                parts = []
            found[tuple(parts)] = os.path.join(dirpath, f)
    return found


def split_group(text):
    """Splits `a::{b, c::d}` into its leaf paths (as lists of names)."""
    text = text.replace(" ", "").replace("\n", "")
    out = []

    def walk(prefix, s):
        if not s:
            return
        if s.startswith("{") and s.endswith("}"):
            depth, start = 0, 1
            for i, ch in enumerate(s):
                if ch == "{":
                    depth += 1
                elif ch == "}":
                    depth -= 1
                if (ch == "," and depth == 1) or (depth == 0 and i == len(s) - 1):
                    walk(prefix, s[start:i])
                    start = i + 1
            return
        head, sep, rest = s.partition("::")
        if not sep:
            out.append(prefix + [head])
        elif rest.startswith("{"):
            walk(prefix + [head], rest)
        else:
            walk(prefix + [head], rest)

    walk([], text)
    return out


def resolve(mods, names):
    """The longest prefix of `names` that is a known module (the root excluded)."""
    for n in range(len(names), 0, -1):
        if tuple(names[:n]) in mods:
            return tuple(names[:n])
    return None


INLINE_MOD_RE = re.compile(r"(#\[cfg\(test\)\]\s*)?\b(?:pub(?:\([^)]*\))?\s+)?mod\s+([A-Za-z_][A-Za-z0-9_]*)\s*\{")


def scopes(text, ctx):
    """Splits `text` into (piece, module path) pairs: the body of an inline `mod name { ... }`
    is in `ctx + (name,)`; inline test modules (`#[cfg(test)]`) are left out."""
    out, pos = [], 0
    while True:
        m = INLINE_MOD_RE.search(text, pos)
        if not m:
            out.append((text[pos:], ctx))
            return out
        out.append((text[pos : m.start()], ctx))
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if not m.group(1):
            out.extend(scopes(text[m.end() : i - 1], ctx + (m.group(2),)))
        pos = i


def edges_of(mods, me, text):
    text = strip(text)
    deps = set()
    for piece, ctx in scopes(text, me):
        for m in PATH_RE.finditer(piece):
            kind, rest = m.group(1), m.group(2).strip()
            rest = re.sub(r"^::\s*", "", rest)
            if kind == "crate":
                base = []
            elif kind == "self":
                base = list(ctx)
            else:
                base = list(ctx[:-1])
                # `super::super::x`
                while rest.startswith("super"):
                    rest = re.sub(r"^super\s*::\s*", "", rest)
                    base = base[:-1]
            for leaf in split_group(rest):
                names = base + [x for x in leaf if x not in ("self", "*")]
                target = resolve(mods, names)
                if target is not None and target != me:
                    deps.add(target)
    # A child module named without `self::` (`delta::encode`, `use parse::ARGS_KEY`).
    children = [m[-1] for m in mods if len(m) == len(me) + 1 and m[: len(me)] == me]
    code = "".join(piece for piece, _ in scopes(text, me))
    for child in children:
        if re.search(r"(?<![\w:])" + child + r"\s*::", code):
            deps.add(me + (child,))
    return deps


def cycles(graph):
    """Strongly connected components of two or more nodes (Tarjan)."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
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
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def crate_cycles(crate):
    src = os.path.join(ROOT, crate, "src")
    mods = modules(src)
    graph = {}
    for me, path in mods.items():
        with open(path, encoding="utf-8") as f:
            graph[me] = edges_of(mods, me, f.read()) if me else set()
    return cycles(graph)


def main():
    crates = sys.argv[1:] or sorted(
        d for d in os.listdir(ROOT) if os.path.isdir(os.path.join(ROOT, d, "src"))
    )
    total = 0
    for crate in crates:
        found = crate_cycles(crate)
        total += len(found)
        print(f"{crate}: {len(found)}")
        for comp in found:
            print("  " + " <-> ".join("::".join(m) for m in comp))
    print(f"total: {total}")


if __name__ == "__main__":
    main()
