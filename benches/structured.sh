#!/usr/bin/env bash
# Structured files read from the store (heroctl get, query, log --key) against the obvious loops
# over git (git show | tomlq, a git archive parsed by Python, git log -p parsed by Python) on the
# same history, in the same run. Prints a Markdown table.
# Usage: benches/structured.sh [WORKDIR]   (COMMITS=10000 FILES=10000 by default)
#        CORPUS=DIR benches/structured.sh    also on a real-shaped history: the bare git
#        repository benches/corpus.sh builds (real Cargo.toml files, branches, tags, merges)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p heroctl
H=$PWD/target/release/heroctl
WORK=${1:-$(mktemp -d)}
COMMITS=${COMMITS:-10000}
FILES=${FILES:-10000}
mkdir -p "$WORK"
command -v tomlq >/dev/null || { echo "needs tomlq (apt-get install yq)" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "needs hyperfine" >&2; exit 1; }
export HERO_AUTHOR_NAME=bench HERO_AUTHOR_EMAIL=bench@example.com

# A git history: FILES small TOML files under fleet/ in the first commit, then COMMITS commits
# that each change etc/app.toml (its counter every time, server.port every 100th commit).
G=$WORK/src.git
rm -rf "$G" "$WORK/s.hero"
git init -q --bare "$G"
python3 - "$COMMITS" "$FILES" <<'PY' | git -C "$G" fast-import --quiet
import sys
commits, files = int(sys.argv[1]), int(sys.argv[2])
out = sys.stdout
def blob(data):
    b = data.encode()
    out.write(f"data {len(b)}\n"); out.write(data); out.write("\n")
t = 1_700_000_000
for i in range(commits + 1):
    out.write("commit refs/heads/main\n")
    out.write(f"committer bench <bench@example.com> {t + i} +0000\n")
    msg = "fleet" if i == 0 else f"change {i}"
    out.write(f"data {len(msg)}\n{msg}\n")
    if i == 0:
        for k in range(files):
            out.write(f"M 100644 inline fleet/node{k:05d}.toml\n")
            blob(f'name = "node{k}"\nport = {8000 + k % 100}\nenabled = {"true" if k % 7 else "false"}\n')
    port = 8000 + i // 100
    out.write("M 100644 inline etc/app.toml\n")
    blob(f'[server]\nport = {port}\nhost = "app"\n\n[stats]\ncounter = {i}\n')
PY
$H -R "$WORK/s.hero" init >/dev/null
$H -R "$WORK/s.hero" import git "$G" >/dev/null

mean() { python3 -c 'import json,sys; print("%.4f" % json.load(open(sys.argv[1]))["results"][0]["mean"])' "$1"; }
bench() { # name runs command...
    local name=$1 runs=$2; shift 2
    hyperfine -N --warmup 1 --runs "$runs" --export-json "$WORK/$name.json" "$@" >/dev/null 2>&1 ||
        hyperfine --warmup 1 --runs "$runs" --export-json "$WORK/$name.json" "$@" >/dev/null
    mean "$WORK/$name.json"
}
ratio() { echo "scale=2; $1 / $2" | bc; }
row() { printf '| %s | %s | %s | %s |\n' "$1" "$2" "$3" "$4"; }

# The answers must agree before anything is timed.
want=$(git -C "$G" show main:etc/app.toml | tomlq -r .server.port)
got=$($H -R "$WORK/s.hero" get main:etc/app.toml server.port)
[ "$want" = "$got" ] || { echo "get disagrees: $got, git: $want" >&2; exit 1; }

cat > "$WORK/archive_query.py" <<'PY'
import sys, tarfile, tomllib
n = 0
with tarfile.open(fileobj=sys.stdin.buffer, mode="r|") as t:
    for m in t:
        if m.isfile() and m.name.endswith(".toml"):
            v = tomllib.loads(t.extractfile(m).read().decode())
            for k in sys.argv[1].split("."):
                v = v.get(k) if isinstance(v, dict) else None
            if v is not None:
                print(f"{m.name}\t{v}"); n += 1
print(n, file=sys.stderr)
PY
cat > "$WORK/logp_key.py" <<'PY'
import sys, subprocess, tomllib
# Every version of the file along main's first parents (the history `log --key` walks), oldest
# first, each parsed, as a script would (a patch shows lines, not values).
g, path, key = sys.argv[1], sys.argv[2], sys.argv[3]
revs = subprocess.run(["git", "-C", g, "log", "--format=%H", "--first-parent", "main", "--", path],
                      capture_output=True, text=True, check=True).stdout.split()
prev = None
for c in reversed(revs):
    text = subprocess.run(["git", "-C", g, "show", f"{c}:{path}"],
                          capture_output=True, text=True).stdout
    try:
        v = tomllib.loads(text)
        for k in key.split("."):
            v = v.get(k) if isinstance(v, dict) else None
    except tomllib.TOMLDecodeError:
        v = None
    if v != prev:
        print(c, prev, "->", v)
    prev = v
PY
cat > "$WORK/logp_parse.py" <<'PY'
import sys, re
# git log -p parsed as text: the port lines a patch adds (fast, but it reads lines, not TOML).
port = re.compile(r"^\+port = (\d+)")
commit = None
for line in sys.stdin:
    if line.startswith("commit "):
        commit = line.split()[1]
    else:
        m = port.match(line)
        if m:
            print(commit, m.group(1))
PY

echo "| benchmark ($COMMITS commits, $FILES files) | hero | git loop | ratio (git loop / hero) |"
echo "|---|---|---|---|"
th=$(bench get 20 "$H -R $WORK/s.hero get main:etc/app.toml server.port")
tg=$(bench get-git 10 "bash -c 'git -C $G show main:etc/app.toml | tomlq -r .server.port'")
row "get one key at a revision (s)" "$th" "$tg" "$(ratio "$tg" "$th")x"
th=$(bench query 5 "$H -R $WORK/s.hero query main fleet port")
tg=$(bench query-git 3 "bash -c 'git -C $G archive main fleet | python3 $WORK/archive_query.py port'")
row "query one key over $FILES files (s)" "$th" "$tg" "$(ratio "$tg" "$th")x"
SAMPLE=200
tl=$(bench query-loop 1 "bash -c 'git -C $G ls-tree -r --name-only main fleet | head -$SAMPLE | while read f; do git -C $G show main:\$f | tomlq .port; done'")
tl_all=$(echo "scale=1; $tl * $FILES / $SAMPLE" | bc)
row "query, git show | tomlq per file, $SAMPLE files timed, scaled to $FILES (s)" "$th" "$tl_all" "$(ratio "$tl_all" "$th")x"
th=$(bench logkey 3 "$H -R $WORK/s.hero log --key etc/app.toml:server.port")
tg=$(bench logkey-git 1 "python3 $WORK/logp_key.py $G etc/app.toml server.port")
row "log --key over $COMMITS commits (s)" "$th" "$tg" "$(ratio "$tg" "$th")x"
tp=$(bench logp 3 "bash -c 'git -C $G log -p main -- etc/app.toml | python3 $WORK/logp_parse.py'")
row "log --key vs git log -p read as lines (s)" "$th" "$tp" "$(ratio "$tp" "$th")x"
echo
echo "changes found: hero $($H -R "$WORK/s.hero" log --key etc/app.toml:server.port | wc -l), git $(python3 "$WORK/logp_key.py" "$G" etc/app.toml server.port | wc -l)"

[ -n "${CORPUS:-}" ] || exit 0
# The same commands on a real-shaped history (benches/corpus.sh): real Cargo.toml files of
# vendored crates, 4,962 commits with merges, 129 branches, 401 tags.
C=$CORPUS
rm -f "$WORK/c.hero"
$H -R "$WORK/c.hero" init >/dev/null
$H -R "$WORK/c.hero" import git "$C" >/dev/null
toml=$(git -C "$C" ls-tree -r --name-only main | grep -c '\.toml$')
commits=$(git -C "$C" rev-list --count main)
want=$(git -C "$C" show main:crates/base64/Cargo.toml | tomlq -r .package.version)
got=$($H -R "$WORK/c.hero" get main:crates/base64/Cargo.toml package.version)
[ "$want" = "$got" ] || { echo "get disagrees on the corpus: $got, git: $want" >&2; exit 1; }
echo
echo "| real-shaped corpus ($commits commits on main, $toml TOML files) | hero | git loop | ratio (git loop / hero) |"
echo "|---|---|---|---|"
th=$(bench cget 20 "$H -R $WORK/c.hero get main:crates/base64/Cargo.toml package.version")
tg=$(bench cget-git 10 "bash -c 'git -C $C show main:crates/base64/Cargo.toml | tomlq -r .package.version'")
row "get package.version of one crate (s)" "$th" "$tg" "$(ratio "$tg" "$th")x"
th=$(bench cquery 5 "$H -R $WORK/c.hero query main package.version")
tg=$(bench cquery-git 3 "bash -c 'git -C $C archive main | python3 $WORK/archive_query.py package.version'")
row "query package.version over the tree (s)" "$th" "$tg" "$(ratio "$tg" "$th")x"
th=$(bench clogkey 3 "$H -R $WORK/c.hero log --key Cargo.toml:workspace.members")
tg=$(bench clogkey-git 1 "python3 $WORK/logp_key.py $C Cargo.toml workspace.members")
row "log --key Cargo.toml:workspace.members (s)" "$th" "$tg" "$(ratio "$tg" "$th")x"
echo
echo "changes found on the corpus: hero $($H -R "$WORK/c.hero" log --key Cargo.toml:workspace.members | wc -l), git $(python3 "$WORK/logp_key.py" "$C" Cargo.toml workspace.members | wc -l)"
