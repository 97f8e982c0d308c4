"""One process of the drive's stress run (fuse/benches/metadata.sh, fuse/benches/memory.sh).

    python3 stress.py DIR OPS EVERY

Works in DIR (created): per 10 operations it creates and writes four 4 KiB files, stats one,
renames one, unlinks one, makes a directory, appends a line to a log and reads one file back;
every EVERY-th write is fsync'ed.
"""
import os, sys
d, ops, every = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(d)
block = b"x" * 4096
live = []
log = os.path.join(d, "log.txt")
for i in range(ops):
    r = i % 10
    if r < 4:
        p = os.path.join(d, "f%d" % i)
        fd = os.open(p, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
        os.write(fd, block)
        if i % every == 0:
            os.fsync(fd)
        os.close(fd)
        live.append(p)
    elif r == 4:
        os.stat(live[-1])
    elif r == 5:
        p = live.pop(0)
        q = p + ".moved"
        os.rename(p, q)
        live.append(q)
    elif r == 6:
        os.unlink(live.pop(0))
    elif r == 7:
        os.mkdir(os.path.join(d, "d%d" % i))
    elif r == 8:
        fd = os.open(log, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o644)
        os.write(fd, b"line %d\n" % i)
        os.close(fd)
    else:
        with open(live[-1], "rb") as f:
            f.read()
