# Shared by the benchmark scripts: a generated git history.
#
# generate_history DIR N: a bare git repository at DIR with N commits on main, each changing
# one line of one of 400 files in 40 directories, and a tag every 1,000 commits.
generate_history() {
    local dir=$1 n=$2
    git init -q --bare "$dir"
    python3 - "$n" <<'PY' | git -C "$dir" fast-import --quiet
import sys
n = int(sys.argv[1])
out = sys.stdout.buffer
files = {}
for i in range(n):
    d = i % 40
    f = (i * 7) % 400
    path = f"src/mod{d}/file{f}.txt"
    body = files.get(path, b"") + f"line {i}: {'x' * (i % 50)}\n".encode()
    if len(body) > 8000:
        body = body[-4000:]
    files[path] = body
    msg = f"commit {i}\n".encode()
    out.write(b"commit refs/heads/main\n")
    out.write(f"committer Bench <bench@example.com> {1600000000 + i * 60} +0000\n".encode())
    out.write(b"data %d\n" % len(msg) + msg)
    out.write(f"M 644 inline {path}\n".encode())
    out.write(b"data %d\n" % len(body) + body + b"\n")
    if i % 1000 == 999:
        out.write(f"reset refs/tags/v{i // 1000}\nfrom refs/heads/main\n\n".encode())
PY
}
