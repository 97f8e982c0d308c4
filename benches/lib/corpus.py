#!/usr/bin/env python3
"""Writes the realistic benchmark corpus into a bare git repository; driven by benches/corpus.sh.

The repository is a vendored Rust workspace whose files are the sources of pinned crate
versions from the local cargo registry. Its history is simulated commit by commit:

- main gets direct commits, merges of feature branches (merge commits, some conflicted and
  resolved), release commits (CHANGELOG.md, version bump) and annotated tags;
- feature branches fork from main, get a few to a few dozen commits, sometimes merge main back
  in, and are then merged (their ref deleted or kept), abandoned (stale, kept), or deleted;
  some names are deleted and recreated later on a new history;
- upgrade branches move a vendored crate from one real version to the next, a few hunks of
  the real upstream diff per commit;
- two long-lived release branches get cherry-picks (`-x` style messages) of main's fixes,
  their own fixes and patch tags;
- edits are made to the real text: lines changed (literals, local renames, doc wording,
  `unwrap` -> `expect`, attributes), functions inserted (copied from other real files), moved
  and deleted, `use` blocks sorted, identifiers renamed across a crate, files and directories
  added, renamed (with their `mod` lines) and deleted, crates moved into groups.

Everything is drawn from random.Random(seed) and sorted inputs, and the commit, author and tag
times come from the simulation, so the same seed, commit count and inputs give the same
object ids. The inputs are pinned (CRATES below); a missing one is an error.
"""
import argparse
import difflib
import hashlib
import os
import random
import re
import subprocess
import sys

# ---------------------------------------------------------------- pinned inputs
# Crates vendored at the start (old versions), the versions they are upgraded to later, and
# crates added along the way. All are in the workspace's Cargo.lock of 2026-12-02, so a build
# of the workspace (or `benches/corpus.sh --fetch`) puts them in ~/.cargo/registry/src.
UPGRADES = [
    ("bitflags", "1.3.2", "2.13.2"),
    ("base64", "0.22.1", "0.23.1"),
    ("hashbrown", "0.16.1", "0.17.1"),
    ("getrandom", "0.2.17", "0.4.3"),
    ("digest", "0.10.7", "0.11.3"),
    ("block-buffer", "0.10.4", "0.12.1"),
    ("crypto-common", "0.1.7", "0.2.2"),
    ("cpufeatures", "0.2.17", "0.3.1"),
    ("embedded-io", "0.4.0", "0.6.1"),
    ("netlink-sys", "0.8.8", "0.9.0"),
    ("netlink-packet-core", "0.8.2", "0.9.0"),
    ("netlink-packet-route", "0.31.0", "0.33.0"),
    ("defmt", "0.3.101", "1.2.0"),
    ("syn", "2.0.119", "3.0.10"),
]
LATER = [
    "semver-1.0.28", "itoa-1.0.19", "ryu-1.0.23", "log-0.4.35", "anyhow-1.0.104",
    "thiserror-2.0.21", "once_cell-1.21.4", "smallvec-1.16.6", "arrayvec-0.7.8", "slab-0.4.12",
    "bytes-1.12.2", "walkdir-2.5.0", "strsim-0.11.1", "heck-0.5.0", "memchr-2.8.3",
    "indexmap-2.14.2", "url-2.5.8", "similar-2.7.0", "tempfile-3.27.0", "fastrand-2.5.0",
    "crc32fast-1.5.5", "byteorder-1.5.0", "bstr-1.14.0", "globset-0.4.21", "same-file-1.0.6",
    "scopeguard-1.2.0", "lock_api-0.4.14", "parking_lot-0.12.5", "futures-core-0.3.34",
    "futures-channel-0.3.34", "httparse-1.10.1", "percent-encoding-2.3.2", "unicase-2.10.0",
    "mime-0.3.18", "fixedbitset-0.5.9", "crossbeam-utils-0.8.23",
]
KEEP_EXT = (".rs", ".md", ".toml")
MAX_FILE = 160 * 1024

AUTHORS = [
    ("Alice Moreau", "alice@example.com", "+0100"),
    ("Bogdan Ionescu", "bogdan@example.com", "+0200"),
    ("Chen Wei", "chen.wei@example.com", "+0800"),
    ("Dana Whitfield", "dana@example.com", "-0500"),
    ("Emeka Obi", "emeka@example.com", "+0100"),
    ("Freya Lindqvist", "freya@example.com", "+0100"),
    ("Gustavo Pereira", "gustavo@example.com", "-0300"),
    ("Hana Kobayashi", "hana@example.com", "+0900"),
    ("Ines Duarte", "ines@example.com", "+0000"),
    ("Jonas Keller", "jonas@example.com", "+0100"),
    ("Kavya Rao", "kavya@example.com", "+0530"),
    ("Liam O'Connor", "liam@example.com", "+0000"),
    ("Mateo Ruiz", "mateo@example.com", "-0600"),
    ("Nadia Haddad", "nadia@example.com", "+0200"),
]
MAINTAINERS = AUTHORS[:4]
BOT = ("ci-bot", "ci@example.com", "+0000")
PREFIXES = ["feature", "feature", "feature", "fix", "fix", "refactor", "perf", "docs", "chore",
            "test", "ci", "experiment", "wip"]
TOPICS = ["api", "parser", "errors", "docs", "tests", "bench", "cleanup", "alloc", "iter",
          "simd", "no-std", "msrv", "serde", "async", "io", "config", "unsafe", "lints", "fmt",
          "ffi", "build", "cache", "encoding", "decoding", "layout", "buffer", "timeout",
          "retry", "logging", "metrics", "spans", "const-fn", "inline", "panics", "overflow",
          "endian", "lifetimes", "generics", "traits", "features", "windows", "wasm"]
RECURRING = ["fix/ci", "deps/bump", "docs/readme", "wip/benchmarks", "release-prep",
             "chore/clippy", "fix/flaky-tests", "perf/hot-path"]
GROUPS = ["net", "crypto", "util"]
START = 1641200400  # 2022-01-03 09:00 UTC
SPAN = 3 * 365 * 86400


def die(msg):
    print("corpus: " + msg, file=sys.stderr)
    sys.exit(2)


# ---------------------------------------------------------------- reading the inputs
def find_crate(registries, name_ver):
    for r in registries:
        d = os.path.join(r, name_ver)
        if os.path.isdir(d):
            return d
    return None


def read_crate(d):
    """rel path -> text for the kept files of one crate (Cargo.toml.orig as Cargo.toml)."""
    files = {}
    for root, dirs, names in os.walk(d):
        dirs.sort()
        for n in sorted(names):
            full = os.path.join(root, n)
            rel = os.path.relpath(full, d)
            if rel == "Cargo.toml":
                continue
            if rel == "Cargo.toml.orig":
                rel = "Cargo.toml"
            elif not n.endswith(KEEP_EXT) or n == "Cargo.lock":
                continue
            if os.path.getsize(full) > MAX_FILE:
                continue
            try:
                with open(full, encoding="utf-8") as f:
                    text = f.read()
            except UnicodeDecodeError:
                continue
            if "\r" in text:
                text = text.replace("\r\n", "\n")
            files[rel] = text
    if "Cargo.toml" not in files and os.path.exists(os.path.join(d, "Cargo.toml")):
        with open(os.path.join(d, "Cargo.toml"), encoding="utf-8") as f:
            files["Cargo.toml"] = f.read()
    return files


def load_inputs(registries):
    wanted = []
    for name, old, new in UPGRADES:
        wanted += [f"{name}-{old}", f"{name}-{new}"]
    wanted += LATER
    missing = [w for w in wanted if find_crate(registries, w) is None]
    if missing:
        die("missing crate sources in %s:\n  %s\nBuild the workspace (cargo build) or run "
            "`benches/corpus.sh --fetch` once (needs crates.io), then rerun."
            % (", ".join(registries), "\n  ".join(missing)))
    crates = {w: read_crate(find_crate(registries, w)) for w in wanted}
    h = hashlib.sha256()
    for w in wanted:
        for rel in sorted(crates[w]):
            h.update(f"{w}/{rel}\0".encode())
            h.update(crates[w][rel].encode())
    return crates, h.hexdigest()


# ---------------------------------------------------------------- text edits
FN_RE = re.compile(r'^(\s*)(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?'
                   r'(?:extern\s+"[^"]*"\s+)?fn\s+([A-Za-z_][A-Za-z0-9_]*)')
LET_RE = re.compile(r'^\s*let\s+(?:mut\s+)?([a-z_][a-z0-9_]*)\b')
NUM_RE = re.compile(r'(?<![\w.])(\d+)(?![\w.])')
USE_RE = re.compile(r'^(\s*)(pub(?:\([^)]*\))?\s+)?use\s')
MOD_RE = re.compile(r'^(\s*)(?:pub(?:\([^)]*\))?\s+)?mod\s+([a-z_][a-z0-9_]*)\s*;')
SYNONYMS = [("returns", "yields"), ("Returns", "Gives back"), ("the given", "the provided"),
            ("value", "item"), ("buffer", "buf"), ("error", "failure"), ("Creates", "Builds"),
            ("creates", "builds"), ("length", "size"), ("This", "The"), ("may", "might"),
            ("must", "has to"), ("checks", "verifies"), ("Note", "NB"), ("e.g.", "for example"),
            ("panics", "aborts"), ("input", "source"), ("output", "result"),
            ("iterator", "iter"), ("empty", "blank"), ("fast", "quick")]
LOCAL_RENAMES = {"len": "length", "buf": "buffer", "idx": "index", "i": "idx", "n": "count",
                 "res": "result", "val": "value", "s": "text", "v": "values", "c": "ch",
                 "b": "byte", "out": "output", "ret": "result", "tmp": "scratch",
                 "input": "src", "bytes": "raw", "data": "payload", "err": "error",
                 "e": "err", "x": "item", "k": "key", "p": "ptr", "f": "func"}
TODO_NOTES = ["TODO: handle the empty case without allocating",
              "NOTE: keep in sync with the parser", "TODO: avoid this clone",
              "FIXME: overflow on 32-bit targets?", "SAFETY: checked above",
              "TODO: benchmark against the old version", "NOTE: see the module docs",
              "XXX: revisit once the MSRV allows let-else", "TODO: better error message"]


def fn_blocks(lines):
    """(start, end, name, indent) of each fn with a body that closes on `indent}`."""
    out = []
    n = len(lines)
    i = 0
    while i < n:
        m = FN_RE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, name = m.group(1), m.group(2)
        close = indent + "}"
        seen = False
        end = None
        for j in range(i, min(n, i + 250)):
            s = lines[j].rstrip()
            if not seen:
                if "{" in s:
                    seen = True
                elif s.endswith(";"):
                    break
            if seen and (s == close or (j == i and s.endswith("}") and s.count("{") == s.count("}"))):
                end = j + 1
                break
        if end is None:
            i += 1
            continue
        start = i
        while start > 0 and lines[start - 1].startswith(indent) and \
                lines[start - 1].strip().startswith(("///", "#[")):
            start -= 1
        out.append((start, end, name, indent))
        i = end
    return out


def split(text):
    return text.splitlines(keepends=True)


def sub_word(rng, line, pairs):
    cands = [(a, b) for a, b in pairs if a in line] + [(b, a) for a, b in pairs if b in line]
    if not cands:
        return None
    a, b = rng.choice(cands)
    return line.replace(a, b, 1)


STMT_RE = re.compile(r"^\s+[a-z_][\w.:()&*, \[\]]*;\s*$")
LINE_KINDS_RS = [("number", 14), ("local", 12), ("doc", 12), ("unwrap", 5), ("inline", 4),
                 ("note", 5), ("dropnote", 5), ("string", 10), ("vis", 4), ("swap", 6),
                 ("dropstmt", 4), ("trace", 5), ("ref", 6)]
LINE_KINDS_TEXT = [("mdword", 6), ("mdline", 3), ("number", 2)]


def edit_line_kind(rng, kind, lines, i, path):
    """The edit of this kind at line i, as (new lines, description), or None."""
    n = len(lines)
    line = lines[i]
    code = not line.lstrip().startswith(("//", "#", "*", "/*"))
    if kind == "number":
        ms = list(NUM_RE.finditer(line))
        if not ms or (path.endswith(".rs") and not code):
            return None
        m = rng.choice(ms)
        v = int(m.group(1))
        nv = rng.choice([v + 1, max(0, v - 1), v * 2, v + 8, max(1, v // 2)])
        if nv == v:
            return None
        new = line[:m.start(1)] + str(nv) + line[m.end(1):]
        return lines[:i] + [new] + lines[i + 1:], "adjust a constant"
    if kind == "local":
        m = LET_RE.match(line)
        if not m:
            return None
        old = m.group(1)
        new_name = LOCAL_RENAMES.get(old) or old + "_" + rng.choice(["val", "ref", "new", "tmp", "inner", "out"])
        # the enclosing block: up to the next line indented less than this one
        ind = len(line) - len(line.lstrip())
        j = i + 1
        while j < n and (not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) >= ind):
            j += 1
        pat = re.compile(r"\b%s\b" % re.escape(old))
        return lines[:i] + [pat.sub(new_name, l) for l in lines[i:j]] + lines[j:], \
            "rename local `%s` to `%s`" % (old, new_name)
    if kind in ("doc", "mdword"):
        if kind == "doc" and not line.lstrip().startswith("//"):
            return None
        new = sub_word(rng, line, SYNONYMS)
        if new is None:
            return None
        return lines[:i] + [new] + lines[i + 1:], "doc wording" if kind == "doc" else "wording"
    if kind == "unwrap":
        if ".unwrap()" not in line:
            return None
        what = rng.choice(["invalid state", "checked above", "value must be present",
                           "lock poisoned", "length fits in usize"])
        return lines[:i] + [line.replace(".unwrap()", '.expect("%s")' % what, 1)] + lines[i + 1:], \
            "use expect instead of unwrap"
    if kind == "inline":
        m = FN_RE.match(line)
        if not m or (i > 0 and lines[i - 1].strip().startswith("#[")):
            return None
        attr = m.group(1) + rng.choice(["#[inline]", "#[must_use]", "#[inline]", "#[cold]"]) + "\n"
        return lines[:i] + [attr] + lines[i:], "annotate `%s`" % m.group(2)
    if kind == "note":
        if not STMT_RE.match(line) and not LET_RE.match(line):
            return None
        ind = line[:len(line) - len(line.lstrip())]
        return lines[:i] + [ind + "// " + rng.choice(TODO_NOTES) + "\n"] + lines[i:], "add a note"
    if kind == "dropnote":
        st = line.strip()
        if not st.startswith("// ") or st.startswith("///"):
            return None
        return lines[:i] + lines[i + 1:], "drop a stale comment"
    if kind == "string":
        m = re.search(r'"([A-Za-z][^"\\]{3,})"', line)
        if not m or not code:
            return None
        words = m.group(1).split(" ")
        k = rng.randrange(len(words))
        words[k] = words[k].capitalize() if words[k].islower() else words[k].lower()
        if k == 0 and len(words) > 1:
            words.insert(1, rng.choice(["the", "an", "invalid", "unexpected"]))
        new = line[:m.start(1)] + " ".join(words) + line[m.end(1):]
        if new == line:
            return None
        return lines[:i] + [new] + lines[i + 1:], "reword a message"
    if kind == "vis":
        if "pub fn " in line:
            new = line.replace("pub fn ", "pub(crate) fn ", 1)
        elif "pub(crate) fn " in line:
            new = line.replace("pub(crate) fn ", "pub fn ", 1)
        else:
            return None
        return lines[:i] + [new] + lines[i + 1:], "change visibility"
    if kind == "swap":
        if i + 1 >= n or not STMT_RE.match(line) or not STMT_RE.match(lines[i + 1]) or line == lines[i + 1]:
            return None
        return lines[:i] + [lines[i + 1], line] + lines[i + 2:], "reorder statements"
    if kind == "dropstmt":
        if not STMT_RE.match(line) or "return" in line:
            return None
        return lines[:i] + lines[i + 1:], "drop a redundant statement"
    if kind == "trace":
        m = LET_RE.match(line)
        if not m or not line.rstrip().endswith(";"):
            return None
        ind = line[:len(line) - len(line.lstrip())]
        var = m.group(1)
        mac = rng.choice(["log::trace!", "log::debug!", "debug_assert!"])
        if mac == "debug_assert!":
            stmt = '%sdebug_assert!(!%s.is_empty(), "%s is empty");\n' % (ind, var, var)
        else:
            stmt = '%s%s("%s = {:?}", %s);\n' % (ind, mac, var, var)
        return lines[:i + 1] + [stmt] + lines[i + 1:], "trace `%s`" % var
    if kind == "ref":
        m = re.search(r"\.clone\(\)", line)
        if m and code:
            return lines[:i] + [line[:m.start()] + line[m.end():]] + lines[i + 1:], "avoid a clone"
        m = re.search(r"&mut self\b|&self\b", line)
        if not m or not FN_RE.match(line):
            return None
        new = line.replace(m.group(0), "&self" if m.group(0) == "&mut self" else "&mut self", 1)
        return lines[:i] + [new] + lines[i + 1:], "change a receiver"
    if kind == "mdline":
        if not line.strip() or line.startswith(("#", "```", "|")):
            return None
        j = rng.randrange(n)
        if not lines[j].strip() or lines[j].startswith(("#", "```", "|")) or j == i:
            return None
        return lines[:i + 1] + [lines[j]] + lines[i + 1:], "expand a paragraph"
    return None


def edit_lines(rng, lines, path):
    """One edit of a kind drawn first, at the first line (from a random one) it fits."""
    n = len(lines)
    if n == 0:
        return None
    kinds = LINE_KINDS_RS if path.endswith(".rs") else LINE_KINDS_TEXT
    names = [k for k, _ in kinds]
    weights = [w for _, w in kinds]
    for _ in range(4):
        kind = rng.choices(names, weights=weights)[0]
        start = rng.randrange(n)
        for d in range(min(n, 4000)):
            res = edit_line_kind(rng, kind, lines, (start + d) % n, path)
            if res:
                return res
    return None


def sort_uses(rng, lines):
    n = len(lines)
    runs = []
    i = 0
    while i < n:
        if USE_RE.match(lines[i]) and lines[i].rstrip().endswith(";"):
            j = i
            while j < n and USE_RE.match(lines[j]) and lines[j].rstrip().endswith(";"):
                j += 1
            if j - i >= 3 and lines[i:j] != sorted(lines[i:j]):
                runs.append((i, j))
            i = j
        else:
            i += 1
    if not runs:
        return None
    i, j = rng.choice(runs)
    return lines[:i] + sorted(lines[i:j]) + lines[j:], "sort imports"


def reindent(block, old, new):
    out = []
    for l in block:
        if l.startswith(old):
            out.append(new + l[len(old):])
        elif not l.strip():
            out.append(l)
        else:
            out.append(new + l.lstrip())
    return out


def insert_fn(rng, lines, donor_lines):
    blocks = fn_blocks(lines)
    dblocks = [b for b in fn_blocks(donor_lines) if 3 <= b[1] - b[0] <= 60 and b[2] not in ("main", "new")]
    if not dblocks:
        return None
    ds, de, dname, dind = rng.choice(dblocks)
    block = donor_lines[ds:de]
    if blocks:
        s, e, name, ind = rng.choice(blocks)
        at = e
    else:
        at, ind = len(lines), ""
    existing = {b[2] for b in blocks}
    new_name = dname if dname not in existing else dname + "_" + rng.choice(["v2", "alt", "fast", "checked"])
    block = reindent(block, dind, ind)
    block = [re.sub(r"\bfn %s\b" % re.escape(dname), "fn " + new_name, l, count=1) for l in block]
    if block and not block[-1].endswith("\n"):
        block[-1] += "\n"
    return lines[:at] + ["\n"] + block + lines[at:], "add `%s`" % new_name


def move_fn(rng, lines):
    blocks = [b for b in fn_blocks(lines) if b[1] - b[0] <= 120]
    if len(blocks) < 3:
        return None
    s, e, name, ind = rng.choice(blocks)
    others = [b for b in blocks if b[3] == ind and b[0] != s]
    if not others:
        return None
    t = rng.choice(others)
    block = lines[s:e]
    rest = lines[:s] + lines[e:]
    # drop one blank line left behind
    if s < len(rest) and s > 0 and not rest[s].strip() and not rest[s - 1].strip():
        del rest[s]
    at = t[1] if t[1] <= s else t[1] - (e - s)
    at = min(at, len(rest))
    return rest[:at] + ["\n"] + block + rest[at:], "move `%s` next to `%s`" % (name, t[2])


def delete_fn(rng, lines):
    blocks = [b for b in fn_blocks(lines) if b[1] - b[0] <= 60]
    if len(blocks) < 4:
        return None
    s, e, name, ind = rng.choice(blocks)
    if s > 0 and not lines[s - 1].strip():
        s -= 1
    return lines[:s] + lines[e:], "remove unused `%s`" % name


# ---------------------------------------------------------------- three-way merge of lines
def opcodes(a, b):
    """Non-equal opcodes (i1, i2, j1, j2) from a to b; common prefix/suffix skipped first."""
    n, m = len(a), len(b)
    p = 0
    while p < n and p < m and a[p] == b[p]:
        p += 1
    s = 0
    while s < n - p and s < m - p and a[n - 1 - s] == b[m - 1 - s]:
        s += 1
    if p == n - s and p == m - s:
        return []
    sm = difflib.SequenceMatcher(None, a[p:n - s], b[p:m - s])
    return [(i1 + p, i2 + p, j1 + p, j2 + p) for tag, i1, i2, j1, j2 in sm.get_opcodes() if tag != "equal"]


def merge3(base, ours, theirs):
    """Line-level three-way merge of texts; None on overlapping different changes."""
    if ours == base or ours == theirs:
        return theirs
    if theirs == base:
        return ours
    b, o, t = split(base), split(ours), split(theirs)
    ho = [(i1, i2, o[j1:j2]) for i1, i2, j1, j2 in opcodes(b, o)]
    ht = [(i1, i2, t[j1:j2]) for i1, i2, j1, j2 in opcodes(b, t)]
    hunks = sorted(ho + ht, key=lambda h: (h[0], h[1]))
    merged = []
    for h in hunks:
        if merged:
            p = merged[-1]
            if h[0] < p[1] or (h[0] == p[1] and (h[0] == h[1] or p[0] == p[1])) or h[0] == p[0]:
                if h == p:
                    continue  # the same change on both sides
                return None
        merged.append(h)
    out = list(b)
    for i1, i2, new in reversed(merged):
        out[i1:i2] = new
    return "".join(out)


def merge_trees(base, ours, theirs, prefer_theirs=True):
    """(merged tree, conflicted paths)."""
    result = dict(ours)
    conflicts = []
    for p in sorted(set(base) | set(theirs)):
        b, t = base.get(p), theirs.get(p)
        if b is t or b == t:
            continue
        o = ours.get(p)
        if o == b:
            new = t
        elif o == t:
            continue
        else:
            new = merge3(b, o, t) if (b is not None and o is not None and t is not None) else None
            if new is None:
                conflicts.append(p)
                new = t if prefer_theirs else o
        if new is None:
            result.pop(p, None)
        else:
            result[p] = new
    return result, conflicts


# ---------------------------------------------------------------- the git side
class FastImport:
    def __init__(self, git_dir):
        r, w = os.pipe()
        self.proc = subprocess.Popen(
            ["git", "-C", git_dir, "fast-import", "--quiet", "--cat-blob-fd=%d" % w,
             "--done"], stdin=subprocess.PIPE, pass_fds=(w,))
        os.close(w)
        self.back = os.fdopen(r, "rb")
        self.out = self.proc.stdin
        self.mark = 0
        self.blobs = {}
        self.shas = {}

    def next_mark(self):
        self.mark += 1
        return self.mark

    def blob(self, text):
        data = text.encode()
        key = hashlib.sha1(data).digest()
        m = self.blobs.get(key)
        if m is None:
            m = self.next_mark()
            self.blobs[key] = m
            self.out.write(b"blob\nmark :%d\ndata %d\n" % (m, len(data)) + data + b"\n")
        return m

    def sha(self, mark):
        if mark not in self.shas:
            self.out.write(b"get-mark :%d\n" % mark)
            self.out.flush()
            self.shas[mark] = self.back.readline().decode().strip()
        return self.shas[mark]

    def finish(self):
        self.out.write(b"done\n")
        self.out.close()
        if self.proc.wait() != 0:
            die("git fast-import failed")


def sig(who, t):
    return "%s <%s> %d %s" % (who[0], who[1], t, who[2])


class Branch:
    def __init__(self, name, kind, tip, tree, base_tree, author, born):
        self.name, self.kind, self.tip, self.tree = name, kind, tip, tree
        self.base_tree = base_tree      # tree of the last main commit this branch contains
        self.author = author
        self.born = born
        self.commits = 0
        self.target = 0
        self.fate = "merge"
        self.focus = None               # crate root this branch works on
        self.upgrade = None             # (name, todo list) for upgrade branches
        self.alive = True
        self.fixes = []                 # main only: cherry-pick candidates
        self.picked = set()
        self.fork_count = 0


class Corpus:
    def __init__(self, args, crates):
        self.rng = random.Random(args.seed)
        self.n = args.commits
        self.crates = crates
        self.fi = FastImport(args.git_dir)
        self.count = 0
        self.now = START
        self.gap = SPAN / max(self.n, 1)
        self.branches = {}
        self.open = []              # open feature branches (Branch)
        self.deleted = set()        # names whose last incarnation is deleted
        self.dead_refs = set()
        self.pr = 100
        self.stats = {"merges": 0, "conflicts": 0, "cherry_picks": 0, "renames": 0,
                      "dir_renames": 0, "deletes": 0, "new_files": 0, "recreated": 0,
                      "abandoned": 0, "upgrade_steps": 0, "annotated": 0, "lightweight": 0}
        self.hot = {}
        self.version = [0, 1, 0]
        self.main_since_release = []
        self.next_nightly = START + 86400 * 4
        self.last_nightly_tip = None
        self.later = list(LATER)
        self.rng.shuffle(self.later)
        self.upgrades_todo = list(UPGRADES)
        self.releases = []

    # ------------------------------------------------ time, authors
    def tick(self):
        self.now += int(min(max(self.rng.expovariate(1.0 / self.gap), 30), self.gap * 6))
        return self.now

    def author(self):
        return self.rng.choice(AUTHORS)

    # ------------------------------------------------ commits and tags
    def commit(self, br, new_tree, msg, who=None, merge=None, author_time=None):
        """Commits new_tree on br (only the changed paths are sent)."""
        old = br.tree
        changed = []
        for p in set(old) | set(new_tree):
            o, n = old.get(p), new_tree.get(p)
            if o is not n and o != n:
                changed.append(p)
        if not changed and merge is None:
            return None
        changed.sort()
        ops = []
        for p in changed:
            n = new_tree.get(p)
            if n is None:
                ops.append(b"D %s\n" % p.encode())
            else:
                ops.append(b"M 100644 :%d %s\n" % (self.fi.blob(n), p.encode()))
        who = who or br.author
        t = self.tick()
        mark = self.fi.next_mark()
        data = msg.encode()
        out = self.fi.out
        out.write(b"commit refs/heads/%s\nmark :%d\n" % (br.name.encode(), mark))
        out.write(("author %s\ncommitter %s\n" % (sig(who, author_time or t), sig(who, t))).encode())
        out.write(b"data %d\n" % len(data) + data + b"\n")
        if br.tip is not None:
            out.write(b"from :%d\n" % br.tip)
        if merge is not None:
            out.write(b"merge :%d\n" % merge)
        out.write(b"".join(ops) + b"\n")
        br.tip = mark
        br.tree = new_tree
        br.commits += 1
        self.count += 1
        return mark

    def tag(self, name, mark, msg, who):
        data = msg.encode()
        self.fi.out.write(b"tag %s\nfrom :%d\ntagger %s\ndata %d\n" % (
            name.encode(), mark, sig(who, self.now).encode(), len(data)) + data + b"\n")
        self.stats["annotated"] += 1

    def light(self, name, mark):
        self.fi.out.write(b"reset refs/tags/%s\nfrom :%d\n\n" % (name.encode(), mark))
        self.stats["lightweight"] += 1

    # ------------------------------------------------ the tree
    @staticmethod
    def crate_roots(tree):
        roots = []
        for r in sorted(p[:-len("/Cargo.toml")] for p in tree
                        if p.endswith("/Cargo.toml") and p.startswith("crates/")):
            if not roots or not r.startswith(roots[-1] + "/"):
                roots.append(r)
        return roots

    def root_files(self, tree):
        roots = self.crate_roots(tree)
        members = "".join('    "%s",\n' % r for r in roots)
        ver = "%d.%d.%d" % tuple(self.version)
        cargo = ('[workspace]\nresolver = "2"\nmembers = [\n%s]\n\n[workspace.package]\n'
                 'version = "%s"\nedition = "2021"\nlicense = "MIT OR Apache-2.0"\n'
                 'repository = "https://example.com/corpus"\n' % (members, ver))
        return cargo

    def pick_file(self, tree, prefix=None, rs_only=False):
        cands = [p for p in sorted(tree) if (prefix is None or p.startswith(prefix + "/"))
                 and p.endswith((".rs",) if rs_only else (".rs", ".md"))]
        if not cands:
            return None
        w = []
        for p in cands:
            h = self.hot.get(p)
            if h is None:
                h = self.hot[p] = min(self.rng.paretovariate(1.1), 60.0)
            w.append(h)
        return self.rng.choices(cands, weights=w)[0]

    def subject(self, path, what, fix=False):
        scope = None
        parts = path.split("/")
        if parts[0] == "crates":
            # crates/<name>/... or crates/<group>/<name>/...
            scope = parts[2] if len(parts) > 3 and parts[1] in GROUPS else parts[1]
        if fix:
            return "fix(%s): %s" % (scope, what) if scope else "fix: " + what
        return "%s: %s" % (scope, what) if scope else what

    def body_from(self, text):
        """A paragraph from the doc comments of the edited file, sometimes."""
        if self.rng.random() < 0.6:
            return ""
        docs = [l.strip()[3:].strip() for l in split(text) if l.strip().startswith("///")]
        docs = [d for d in docs if len(d) > 20 and not d.startswith(("```", "#"))]
        if not docs:
            return ""
        i = self.rng.randrange(len(docs))
        para = " ".join(docs[i:i + self.rng.randint(1, 4)])
        words, lines, cur = para.split(), [], ""
        for w in words:
            if len(cur) + len(w) + 1 > 72:
                lines.append(cur)
                cur = w
            else:
                cur = (cur + " " + w).strip()
        lines.append(cur)
        return "\n\n" + "\n".join(lines)

    # ------------------------------------------------ one ordinary change
    def change(self, br, prefix=None, fix=False):
        """An ordinary edit on br (in prefix if given); returns (new tree, message) or None."""
        tree = br.tree
        r = self.rng.random() if br.kind != "release" else 1.0
        if r < 0.02 and br.kind == "main":
            return self.rename_dir(br, prefix)
        if r < 0.05:
            return self.rename_file(br, prefix)
        if r < 0.07:
            return self.delete_file(br, prefix)
        if r < 0.10:
            return self.new_file(br, prefix)
        if r < 0.12:
            return self.rename_ident(br, prefix)
        path = self.pick_file(tree, prefix)
        if path is None:
            return None
        lines = split(tree[path])
        what = None
        r = self.rng.random()
        if path.endswith(".rs") and r < 0.12:
            donor = self.donor_text(path)
            res = insert_fn(self.rng, lines, split(donor)) if donor else None
        elif path.endswith(".rs") and r < 0.18:
            res = move_fn(self.rng, lines)
        elif path.endswith(".rs") and r < 0.21:
            res = delete_fn(self.rng, lines)
        elif path.endswith(".rs") and r < 0.24:
            res = sort_uses(self.rng, lines)
        else:
            res = edit_lines(self.rng, lines, path)
            # a few related edits in one commit
            while res and self.rng.random() < 0.35:
                more = edit_lines(self.rng, res[0], path)
                if not more:
                    break
                res = (more[0], res[1])
        if not res:
            return None
        new_lines, what = res
        new = dict(tree)
        new[path] = "".join(new_lines)
        # often more files change with it, mostly in the same crate
        extra = 0
        while extra < 6 and self.rng.random() < 0.55:
            extra += 1
            near = prefix or "/".join(path.split("/")[:2])
            other = self.pick_file(tree, near if self.rng.random() < 0.75 else None)
            if other and new.get(other) is tree.get(other):
                more = edit_lines(self.rng, split(tree[other]), other)
                if more:
                    new[other] = "".join(more[0])
        name = os.path.basename(path)
        msg = self.subject(path, "%s in %s" % (what, name), fix) + self.body_from(tree[path]) + "\n"
        return new, msg

    def donor_text(self, path):
        keys = sorted(self.crates)
        k = self.rng.choice(keys)
        files = [v for p, v in sorted(self.crates[k].items()) if p.endswith(".rs")]
        return self.rng.choice(files) if files else None

    def locked_roots(self):
        return {b.focus for b in self.open if b.focus}

    def rename_file(self, br, prefix):
        path = self.pick_file(br.tree, prefix, rs_only=True)
        if not path:
            return None
        d, f = os.path.split(path)
        stem = f[:-3]
        if stem in ("lib", "main", "mod", "build") or not re.match(r"^[a-z_][a-z0-9_]*$", stem):
            return None
        new_stem = rng_name(self.rng, stem)
        newp = os.path.join(d, new_stem + ".rs")
        if newp in br.tree:
            return None
        new = dict(br.tree)
        new[newp] = new.pop(path)
        pat = re.compile(r"\bmod %s\b" % re.escape(stem))
        for sib in ("lib.rs", "mod.rs", "main.rs"):
            sp = os.path.join(d, sib)
            if sp in new and pat.search(new[sp]):
                new[sp] = pat.sub("mod " + new_stem, new[sp])
                new[sp] = re.sub(r"\b%s::" % re.escape(stem), new_stem + "::", new[sp])
        self.stats["renames"] += 1
        return new, self.subject(path, "rename %s to %s" % (f, new_stem + ".rs")) + "\n"

    def rename_dir(self, br, prefix):
        roots = [r for r in self.crate_roots(br.tree) if r not in self.locked_roots()
                 and (prefix is None or r == prefix)]
        if not roots:
            return None
        root = self.rng.choice(roots)
        new = dict(br.tree)
        if self.rng.random() < 0.3 and br.kind == "main" and root.count("/") == 1:
            # move a crate into a group
            group = self.rng.choice(GROUPS)
            dst = "crates/%s/%s" % (group, root.split("/")[1])
            if any(p.startswith(dst + "/") for p in new):
                return None
            for p in [p for p in sorted(new) if p.startswith(root + "/")]:
                new[dst + p[len(root):]] = new.pop(p)
            new["Cargo.toml"] = self.root_files(new)
            self.stats["dir_renames"] += 1
            return new, "move %s/ to %s/\n\nGroup the vendored crates by what they do.\n" % (root, dst)
        # rename a module directory inside a crate
        dirs = sorted({os.path.dirname(p) for p in new if p.startswith(root + "/src/")
                       and p.endswith(".rs") and os.path.dirname(p) != root + "/src"})
        if not dirs:
            return None
        d = self.rng.choice(dirs)
        parent, base = os.path.split(d)
        if not re.match(r"^[a-z_][a-z0-9_]*$", base):
            return None
        nb = rng_name(self.rng, base)
        nd = os.path.join(parent, nb)
        if any(p.startswith(nd + "/") for p in new) or nd + ".rs" in new:
            return None
        for p in [p for p in sorted(new) if p.startswith(d + "/")]:
            new[nd + p[len(d):]] = new.pop(p)
        pat = re.compile(r"\bmod %s\b" % re.escape(base))
        for p in sorted(new):
            if p.startswith(root + "/") and p.endswith(".rs") and (pat.search(new[p]) or (base + "::") in new[p]):
                t = pat.sub("mod " + nb, new[p])
                new[p] = re.sub(r"\b%s::" % re.escape(base), nb + "::", t)
        self.stats["dir_renames"] += 1
        return new, self.subject(d, "rename module %s to %s" % (base, nb)) + "\n"

    def delete_file(self, br, prefix):
        path = self.pick_file(br.tree, prefix, rs_only=True)
        if not path:
            return None
        d, f = os.path.split(path)
        stem = f[:-3]
        if stem in ("lib", "main", "mod"):
            return None
        new = dict(br.tree)
        del new[path]
        pat = re.compile(r"^.*\bmod %s\s*;.*\n" % re.escape(stem), re.M)
        for sib in ("lib.rs", "mod.rs", "main.rs"):
            sp = os.path.join(d, sib)
            if sp in new:
                new[sp] = pat.sub("", new[sp])
        self.stats["deletes"] += 1
        return new, self.subject(path, "remove %s" % f) + "\n"

    def new_file(self, br, prefix):
        """A new module: a real file from another crate, added to a crate with its mod line."""
        roots = [r for r in self.crate_roots(br.tree) if prefix is None or r == prefix]
        if not roots:
            return None
        root = self.rng.choice(roots)
        donor = self.donor_text(root + "/src/x.rs")
        if not donor:
            return None
        stem = self.rng.choice(TOPICS).replace("-", "_")
        dst = root + "/src/" + stem + ".rs"
        if dst in br.tree or os.path.isdir(dst[:-3]):
            return None
        new = dict(br.tree)
        new[dst] = donor
        lib = root + "/src/lib.rs"
        if lib in new:
            lines = split(new[lib])
            at = next((i for i, l in enumerate(lines) if MOD_RE.match(l)), len(lines))
            new[lib] = "".join(lines[:at] + ["mod %s;\n" % stem] + lines[at:])
        self.stats["new_files"] += 1
        return new, self.subject(dst, "add the %s module" % stem) + "\n"

    def rename_ident(self, br, prefix):
        """Renames a function across the files of one crate."""
        path = self.pick_file(br.tree, prefix, rs_only=True)
        if not path:
            return None
        blocks = fn_blocks(split(br.tree[path]))
        names = sorted({b[2] for b in blocks if len(b[2]) > 3 and not b[2].startswith("test")})
        if not names:
            return None
        old = self.rng.choice(names)
        nn = rng_name(self.rng, old)
        parts = path.split("/")
        root = "/".join(parts[:2]) if parts[0] == "crates" else os.path.dirname(path)
        pat = re.compile(r"\b%s\b" % re.escape(old))
        new = dict(br.tree)
        touched = 0
        for p in sorted(new):
            if p.startswith(root + "/") and p.endswith(".rs") and pat.search(new[p]):
                new[p] = pat.sub(nn, new[p])
                touched += 1
                if touched > 30:
                    return None
        return new, self.subject(path, "rename %s to %s" % (old, nn)) + \
            "\n\nThe old name no longer said what it does.\n"

    # ------------------------------------------------ branches
    def new_name(self, who):
        for _ in range(100):
            r = self.rng.random()
            if r < 0.08:
                name = self.rng.choice(RECURRING)
            elif r < 0.25:
                name = "%s/%s" % (who[1].split("@")[0].split(".")[0], self.rng.choice(TOPICS))
            else:
                name = "%s/%s-%s" % ((self.rng.choice(PREFIXES),) + tuple(self.rng.sample(TOPICS, 2)))
            if name in self.branches:
                if self.branches[name].alive:
                    continue
                self.stats["recreated"] += 1
            return name
        die("no free branch name")

    def fork(self, name, src, kind, who):
        br = Branch(name, kind, src.tip, src.tree, src.tree, who, self.count)
        self.branches[name] = br
        self.deleted.discard(name)
        self.dead_refs.discard(name)
        return br

    def open_feature(self, main):
        who = self.author()
        br = self.fork(self.new_name(who), main, "feature", who)
        br.target = max(1, min(int(self.rng.expovariate(1 / 7.0)) + 1, 45))
        r = self.rng.random()
        br.fate = "merge" if r < 0.85 else ("abandon" if r < 0.97 else "delete")
        roots = [x for x in self.crate_roots(main.tree) if x not in self.locked_roots()]
        if roots and self.rng.random() < 0.8:
            br.focus = self.rng.choice(roots)
        self.open.append(br)
        return br

    def open_upgrade(self, main, up):
        name, old, new = up
        roots = [r for r in self.crate_roots(main.tree) if r.split("/")[-1] == name]
        if not roots or roots[0] in self.locked_roots():
            return None
        root = roots[0]
        who = self.author()
        br = self.fork("deps/%s-%s" % (name, new), main, "upgrade", who)
        br.focus = root
        target = self.crates["%s-%s" % (name, new)]
        todo = []
        cur = {p[len(root) + 1:]: v for p, v in main.tree.items() if p.startswith(root + "/")}
        for rel in sorted(set(cur) | set(target)):
            if cur.get(rel) != target.get(rel):
                todo.append(rel)
        self.rng.shuffle(todo)
        br.upgrade = (name, old, new, root, target, todo, len(todo))
        br.target = 10 ** 9
        self.open.append(br)
        return br

    def upgrade_step(self, br):
        name, old, new, root, target, todo, total = br.upgrade
        if not todo:
            return None
        tree = dict(br.tree)
        done = []
        # about three commits per ten changed files, at least one file per commit
        k = max(1, int(self.rng.triangular(1, 6, 2)))
        for rel in todo[:k]:
            p = root + "/" + rel
            cur, tgt = tree.get(p), target.get(rel)
            if cur is not None and tgt is not None and self.rng.random() < 0.5:
                # a part of this file's real diff now, the rest later
                a, b = split(cur), split(tgt)
                hs = opcodes(a, b)
                if len(hs) > 3:
                    take = max(1, len(hs) // self.rng.randint(2, 4))
                    start = self.rng.randrange(len(hs) - take + 1)
                    out = list(a)
                    for i1, i2, j1, j2 in reversed(hs[start:start + take]):
                        out[i1:i2] = b[j1:j2]
                    tree[p] = "".join(out)
                    done.append((rel, False))
                    continue
            if tgt is None:
                tree.pop(p, None)
            else:
                tree[p] = tgt
            done.append((rel, True))
        for rel, full in done:
            if full:
                todo.remove(rel)
        self.stats["upgrade_steps"] += 1
        step = total - len(todo)
        files = ", ".join(r for r, _ in done)
        msg = "%s: port to %s (%d/%d files)\n\nUpstream changes from %s to %s in %s.\n" % (
            name, new, step, total, old, new, files)
        return tree, msg

    def merge_into_main(self, main, br):
        merged, conflicts = merge_trees(br.base_tree, main.tree, br.tree)
        self.pr += self.rng.randint(1, 4)
        if self.rng.random() < 0.6:
            msg = "Merge pull request #%d from %s\n\n%s\n" % (
                self.pr, br.name, br.name.split("/")[-1].replace("-", " "))
        else:
            msg = "Merge branch '%s'\n" % br.name
        if conflicts:
            self.stats["conflicts"] += 1
            msg += "\nConflicts:\n" + "".join("\t%s\n" % p for p in conflicts[:10])
        who = self.rng.choice(MAINTAINERS)
        self.commit(main, merged, msg, who=who, merge=br.tip)
        self.stats["merges"] += 1
        self.main_since_release.append(br.name)

    def merge_main_into(self, main, br):
        merged, conflicts = merge_trees(br.base_tree, br.tree, main.tree, prefer_theirs=False)
        msg = "Merge branch 'main' into %s\n" % br.name
        if conflicts:
            msg += "\nConflicts:\n" + "".join("\t%s\n" % p for p in conflicts[:10])
        if self.commit(br, merged, msg, merge=main.tip) is not None:
            br.base_tree = main.tree
            self.stats["merges"] += 1

    def close(self, br, main):
        self.open.remove(br)
        if br.fate == "merge":
            self.merge_into_main(main, br)
            if self.rng.random() < 0.75:
                self.kill(br)
        elif br.fate == "abandon":
            self.stats["abandoned"] += 1
        else:
            if self.rng.random() < 0.5:
                self.light("archive/%s" % br.name.replace("/", "-"), br.tip)
            self.kill(br)

    def kill(self, br):
        br.alive = False
        self.deleted.add(br.name)
        self.dead_refs.add(br.name)

    # ------------------------------------------------ releases
    def release_commit(self, br, ver, notes):
        tree = dict(br.tree)
        head = "## %s (%s)\n\n" % (ver, date_of(self.now))
        items = "".join("- %s\n" % n for n in notes[-25:]) or "- Maintenance release.\n"
        old = tree.get("CHANGELOG.md", "# Changelog\n\n")
        first, _, rest = old.partition("\n\n")
        tree["CHANGELOG.md"] = first + "\n\n" + head + items + "\n" + rest
        cargo = tree.get("Cargo.toml", "")
        tree["Cargo.toml"] = re.sub(r'version = "[^"]*"', 'version = "%s"' % ver[1:], cargo, count=1)
        who = self.rng.choice(MAINTAINERS)
        mark = self.commit(br, tree, "Release %s\n" % ver, who=who)
        self.tag(ver, mark, "%s\n\n%s" % (ver, items), who)
        return mark

    def main_release(self, main, major_bump=False):
        if major_bump:
            self.version = [self.version[0] + 1, 0, 0]
        elif self.version[0] > 0 or self.rng.random() < 0.3:
            # from 1.0 on, patch versions belong to the release branches
            self.version = [self.version[0], self.version[1] + 1, 0]
        else:
            self.version[2] += 1
        ver = "v%d.%d.%d" % tuple(self.version)
        self.release_commit(main, ver, self.main_since_release)
        self.main_since_release = []
        return ver

    def release_work(self, rel, main):
        # cherry-pick a fix from main when one applies, else a fix of its own
        cands = [f for f in main.fixes if f[0] > rel.fork_count and f[1] not in rel.picked]
        if cands and self.rng.random() < 0.7:
            for f in cands[:6]:
                _, mark, changes, msg, who, when = f
                rel.picked.add(mark)
                tree = dict(rel.tree)
                ok = True
                for p, (before, after) in changes.items():
                    cur = tree.get(p)
                    if after is None and cur is not None and cur == before:
                        del tree[p]
                        continue
                    m = merge3(before, cur, after) if (cur is not None and before is not None and after is not None) else None
                    if m is None:
                        ok = False
                        break
                    tree[p] = m
                if ok:
                    full = msg.rstrip("\n") + "\n\n(cherry picked from commit %s)\n" % self.fi.sha(mark)
                    if self.commit(rel, tree, full, who=who, author_time=when) is not None:
                        self.stats["cherry_picks"] += 1
                        rel.notes.append(msg.split("\n")[0])
                        return
        res = self.change(rel, fix=True)
        if res:
            self.commit(rel, res[0], res[1], who=self.author())
            rel.notes.append(res[1].split("\n")[0])

    # ------------------------------------------------ the run
    def run(self):
        rng = self.rng
        main = Branch("main", "main", None, {}, {}, MAINTAINERS[0], 0)
        self.branches["main"] = main
        # the first commits: the workspace, then one commit per vendored crate
        tree = {"README.md": README, "CHANGELOG.md": "# Changelog\n\nAll notable changes.\n",
                "rustfmt.toml": 'edition = "2021"\nmax_width = 100\n',
                ".github/workflows/ci.yml": CI_YML}
        tree["Cargo.toml"] = self.root_files(tree)
        self.commit(main, tree, "Initial commit\n")
        for name, old, new in UPGRADES:
            tree = dict(main.tree)
            for rel, text in self.crates["%s-%s" % (name, old)].items():
                tree["crates/%s/%s" % (name, rel)] = text
            tree["Cargo.toml"] = self.root_files(tree)
            self.commit(main, tree, "vendor %s %s\n" % (name, old))
        self.main_release(main)
        ups = list(UPGRADES)
        rng.shuffle(ups)
        # when each upgrade and each later crate comes in (fractions of the history)
        up_at = sorted(rng.uniform(0.05, 0.9) for _ in ups)
        add_at = sorted(rng.uniform(0.02, 0.95) for _ in self.later)
        rel_at = [0.3, 0.68]
        releases = []
        next_tag = rng.randint(20, 60)
        main_commits = 0
        next_build = 100
        while self.count < self.n:
            phase = self.count / self.n
            if main_commits >= next_tag:
                self.main_release(main)
                next_tag = main_commits + rng.randint(15, 45)
            if self.now >= self.next_nightly:
                if main.tip != self.last_nightly_tip:
                    d = date_of(self.now)
                    self.tag("nightly-%s" % d, main.tip, "Nightly build %s\n" % d, BOT)
                    self.last_nightly_tip = main.tip
                self.next_nightly = self.now + 86400 * 4
            if self.count >= next_build:
                self.light("build-%d" % self.count, main.tip)
                next_build += 100
            if rel_at and phase >= rel_at[0]:
                rel_at.pop(0)
                ver = self.main_release(main, major_bump=True)
                rel = self.fork("release/%d.x" % self.version[0], main, "release", MAINTAINERS[1])
                rel.fork_count = self.count
                rel.notes = []
                rel.version = list(self.version)
                releases.append(rel)
                continue
            if ups and phase >= up_at[0] and len(self.open) < 16:
                if self.open_upgrade(main, ups[0]):
                    ups.pop(0)
                    up_at.pop(0)
                    continue
                up_at[0] += 0.01
            if self.later and phase >= add_at[0]:
                add_at.pop(0)
                nv = self.later.pop(0)
                cname = nv.rsplit("-", 1)[0]
                who = self.author()
                via = main if rng.random() < 0.4 else self.fork(
                    "feature/vendor-%s" % cname, main, "feature", who)
                tree = dict(via.tree)
                for rel_, text in self.crates[nv].items():
                    tree["crates/%s/%s" % (cname, rel_)] = text
                tree["Cargo.toml"] = self.root_files(tree)
                self.commit(via, tree, "vendor %s\n\n%s\n" % (nv, "Needed by the new code."), who=who)
                if via is not main:
                    via.target = rng.randint(1, 6)
                    via.focus = "crates/" + cname
                    self.open.append(via)
                else:
                    main_commits += 1
                continue
            r = rng.random()
            if r < 0.06 and len(self.open) < 14 or not self.open:
                self.open_feature(main)
                continue
            if r < 0.30:
                fix = rng.random() < 0.35
                res = self.change(main, fix=fix)
                if res:
                    before = main.tree
                    who = self.author()
                    mark = self.commit(main, res[0], res[1], who=who)
                    if mark is not None:
                        main_commits += 1
                        self.main_since_release.append(res[1].split("\n")[0])
                        if fix:
                            changes = {p: (before.get(p), res[0].get(p))
                                       for p in sorted(set(before) | set(res[0]))
                                       if before.get(p) is not res[0].get(p)}
                            main.fixes.append((self.count, mark, changes, res[1], who, self.now))
                continue
            if r < 0.36 and releases:
                rel = releases[-1] if rng.random() < 0.75 or len(releases) == 1 else releases[-2]
                self.release_work(rel, main)
                if len(rel.notes) >= rng.randint(3, 8):
                    rel.version[2] += 1
                    self.release_commit(rel, "v%d.%d.%d" % tuple(rel.version), rel.notes)
                    rel.notes = []
                continue
            # feature work
            br = self.open[min(int(rng.expovariate(0.25)), len(self.open) - 1)]
            if br.kind == "upgrade":
                res = self.upgrade_step(br)
                if res is None:
                    self.close(br, main)
                    continue
                self.commit(br, res[0], res[1])
                continue
            if br.commits >= br.target:
                self.close(br, main)
                continue
            if br.commits > 3 and rng.random() < 0.05:
                self.merge_main_into(main, br)
                continue
            prefix = br.focus if br.focus and rng.random() < 0.8 and \
                any(p.startswith(br.focus + "/") for p in br.tree) else None
            res = self.change(br, prefix)
            if res:
                self.commit(br, res[0], res[1], who=br.author if rng.random() < 0.9 else self.author())
        # a release branch's fixes flow back into main once (git-flow style)
        for rel in releases[:1]:
            merged, conflicts = merge_trees(rel.base_tree, main.tree, rel.tree, prefer_theirs=False)
            self.commit(main, merged, "Merge branch '%s'\n" % rel.name, who=MAINTAINERS[0], merge=rel.tip)
            self.stats["merges"] += 1
        self.fi.finish()
        return self.dead_refs, {b for b in self.branches if self.branches[b].alive}


def rng_name(rng, stem):
    table = {"util": "utils", "utils": "util", "helpers": "support", "error": "errors",
             "errors": "error", "impls": "impl_", "parse": "parser", "parser": "parse",
             "buf": "buffer", "iter": "iters", "types": "ty", "ty": "types"}
    if stem in table:
        return table[stem]
    return stem + "_" + rng.choice(["impl", "core", "ext", "ops", "v2", "inner", "types"])


def date_of(t):
    import time
    return time.strftime("%Y-%m-%d", time.gmtime(t))


README = """# corpus

A vendored Rust workspace used as a benchmark corpus: the crates under `crates/` are copies of
published crates, edited along the way.

## Layout

- `crates/`: one directory per vendored crate
- `CHANGELOG.md`: what changed in each release

## Building

Run `cargo build --workspace`. The minimum supported Rust version is the one of the
newest crate in the workspace.
"""

CI_YML = """name: CI
on:
  push:
    branches: [main, 'release/**']
  pull_request:
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: cargo test --workspace
      - run: cargo clippy --workspace -- -D warnings
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--commits", type=int, default=5000)
    ap.add_argument("--registry", action="append", required=True)
    ap.add_argument("--git-dir", required=True)
    ap.add_argument("--fingerprint-only", action="store_true")
    ap.add_argument("--list-inputs", action="store_true")
    args = ap.parse_args()
    if args.list_inputs:
        for name, old, new in UPGRADES:
            print("%s %s\n%s %s" % (name, old, name, new))
        for w in LATER:
            print(" ".join(w.rsplit("-", 1)))
        return
    crates, fp = load_inputs(args.registry)
    print("inputs: %d crate versions, %d files, sha256 %s" % (
        len(crates), sum(len(v) for v in crates.values()), fp), file=sys.stderr)
    if args.fingerprint_only:
        return
    c = Corpus(args, crates)
    dead, alive = c.run()
    refs = "".join("delete refs/heads/%s\n" % n for n in sorted(dead - alive))
    subprocess.run(["git", "-C", args.git_dir, "update-ref", "--stdin"], input=refs.encode(), check=True)
    print("history: " + ", ".join("%s %d" % kv for kv in sorted(c.stats.items())), file=sys.stderr)


if __name__ == "__main__":
    main()
