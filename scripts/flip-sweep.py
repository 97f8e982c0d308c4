#!/usr/bin/env python3
"""Damages a repository file one byte at a time and runs read commands on each copy.

Every OFFSET-th byte (each XOR a value that varies with the offset) of REPO is changed in a
copy; `log`, `cat main:a.txt`, `ls main d`, `cat v1:d/big.bin`, `verify` and `log dev` run on
it. Each must print what it prints on the undamaged file, or exit 5 with a hint naming
`heroctl repair`; anything else is printed. The layout is cli/tests/repair.rs's sample (a.txt,
d/big.bin, a tag v1, a branch dev).

usage: scripts/flip-sweep.py HEROCTL REPO STEP
"""
import collections
import os
import subprocess
import sys
import tempfile

heroctl, src, step = sys.argv[1], sys.argv[2], int(sys.argv[3])
env = dict(os.environ, HERO_AUTHOR_NAME="T", HERO_AUTHOR_EMAIL="t@x")
cmds = [["log"], ["cat", "main:a.txt"], ["ls", "main", "d"], ["cat", "v1:d/big.bin"],
        ["verify"], ["log", "dev"]]


def run(repo, c):
    p = subprocess.run([heroctl, "-R", repo] + c, capture_output=True, env=env)
    return p.returncode, p.stdout, p.stderr


base = {tuple(c): run(src, c) for c in cmds}
data = open(src, "rb").read()
res = collections.Counter()
offsets = 0
with tempfile.TemporaryDirectory() as tmp:
    copy = os.path.join(tmp, "sw.hero")
    for off in range(0, len(data), step):
        offsets += 1
        d = bytearray(data)
        d[off] ^= ((off * 37) % 255) + 1
        with open(copy, "wb") as f:
            f.write(d)
        for c in cmds:
            rc, out, err = run(copy, c)
            if rc == 0 and out == base[tuple(c)][1]:
                res["right"] += 1
            elif rc == 5 and b"heroctl repair" in err:
                res["exit 5 with the hint"] += 1
            else:
                res[f"WRONG exit {rc}"] += 1
                print(off, c, rc, (out[:80] if rc == 0 else err[:200]), flush=True)
print("offsets", offsets, "of", len(data), "bytes,", len(cmds), "commands:", dict(res))
