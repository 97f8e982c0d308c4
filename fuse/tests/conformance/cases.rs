//! POSIX conformance of the mount, checked against the kernel's own file systems.
//!
//! Each case runs twice: in a fresh directory of a tmpfs (`/dev/shm`), which gives the
//! expected outcome, and in a fresh directory of a mount with `allow_other` (the kernel then
//! checks permissions on the stored modes and owners, as for services under other accounts).
//! A case's outcome is a list of `what=value` lines (results as errno names, modes in octal,
//! owners, sizes, whether a time moved), never inode numbers or absolute times, so the two
//! runs compare line by line.
//!
//! Run as root: other users are played by switching the thread's file-system ids
//! (`setfsuid`/`setfsgid`, which also drops root's file capabilities while switched).
//!
//! Cases the mount fails today are listed in `expected-failures.txt` beside this file, each
//! with its reason. A listed case that passes fails the test as well, so the list only
//! shrinks.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::time::{Duration, SystemTime};

use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, FallocateFlags, RenameFlags, renameat2};
use nix::sys::stat::{UtimensatFlags, utimensat};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, setfsgid, setfsuid};

use crate::util::*;

/// An unprivileged user with its group.
const ALICE: (u32, u32) = (1001, 1001);
/// Another one.
const BOB: (u32, u32) = (1002, 1002);

type Case = fn(&Path, &Path, &mut Out);

/// What a case observed.
#[derive(Default)]
pub struct Out(Vec<String>);

impl Out {
    fn put(&mut self, what: &str, value: impl std::fmt::Display) {
        self.0.push(format!("{what}={value}"));
    }

    fn res<T>(&mut self, what: &str, r: Result<T, impl Into<Errno>>) {
        match r {
            Ok(_) => self.put(what, "ok"),
            Err(e) => self.put(what, format!("{:?}", e.into())),
        }
    }

    fn io<T>(&mut self, what: &str, r: std::io::Result<T>) {
        match r {
            Ok(_) => self.put(what, "ok"),
            Err(e) => self.put(
                what,
                format!("{:?}", Errno::from_raw(e.raw_os_error().unwrap_or(0))),
            ),
        }
    }

    fn mode(&mut self, what: &str, p: &Path) {
        match fs::symlink_metadata(p) {
            Ok(m) => self.put(what, format!("{:o}", m.mode() & 0o7777)),
            Err(e) => self.put(what, format!("missing({:?})", e.kind())),
        }
    }

    fn owner(&mut self, what: &str, p: &Path) {
        match fs::symlink_metadata(p) {
            Ok(m) => self.put(what, format!("{}:{}", m.uid(), m.gid())),
            Err(e) => self.put(what, format!("missing({:?})", e.kind())),
        }
    }

    fn content(&mut self, what: &str, p: &Path) {
        match fs::read(p) {
            Ok(b) => self.put(what, String::from_utf8_lossy(&b).escape_debug()),
            Err(e) => self.put(what, format!("error({:?})", e.kind())),
        }
    }

    fn exists(&mut self, what: &str, p: &Path) {
        self.put(what, fs::symlink_metadata(p).is_ok());
    }
}

/// Runs `f` with the thread's file-system ids set to `who`.
fn as_user<T>(who: (u32, u32), f: impl FnOnce() -> T) -> T {
    setfsgid(Gid::from_raw(who.1));
    setfsuid(Uid::from_raw(who.0));
    let r = f();
    setfsuid(Uid::from_raw(0));
    setfsgid(Gid::from_raw(0));
    r
}

fn ctime(p: &Path) -> (i64, i64) {
    let m = fs::symlink_metadata(p).unwrap();
    (m.ctime(), m.ctime_nsec())
}

fn mtime(p: &Path) -> (i64, i64) {
    let m = fs::symlink_metadata(p).unwrap();
    (m.mtime(), m.mtime_nsec())
}

/// Waits until the clock is clearly past now, so that a time set by the next change differs
/// from one set before (tmpfs takes coarse clock ticks of a few milliseconds).
fn clock_moves() {
    let start = SystemTime::now();
    while start.elapsed().unwrap_or_default() < Duration::from_millis(15) {
        std::thread::yield_now();
    }
}

fn file(p: &Path, text: &str) {
    fs::write(p, text).unwrap();
}

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

fn chown(p: &Path, who: (u32, u32)) {
    std::os::unix::fs::lchown(p, Some(who.0), Some(who.1)).unwrap();
}

fn rename2(a: &Path, b: &Path, flags: RenameFlags) -> nix::Result<()> {
    renameat2(AT_FDCWD, a, AT_FDCWD, b, flags)
}

// ---- rename ----

fn rename_file_over_file(d: &Path, _: &Path, o: &mut Out) {
    file(&d.join("a"), "a");
    file(&d.join("b"), "b");
    o.io("rename", fs::rename(d.join("a"), d.join("b")));
    o.exists("a", &d.join("a"));
    o.content("b", &d.join("b"));
}

fn rename_dir_over_empty_dir(d: &Path, _: &Path, o: &mut Out) {
    fs::create_dir_all(d.join("a/sub")).unwrap();
    fs::create_dir(d.join("b")).unwrap();
    o.io("rename", fs::rename(d.join("a"), d.join("b")));
    o.exists("a", &d.join("a"));
    o.exists("b/sub", &d.join("b/sub"));
    o.put("nlink.d", fs::metadata(d).unwrap().nlink());
}

fn rename_dir_over_nonempty_dir(d: &Path, _: &Path, o: &mut Out) {
    fs::create_dir(d.join("a")).unwrap();
    fs::create_dir_all(d.join("b/x")).unwrap();
    o.io("rename", fs::rename(d.join("a"), d.join("b")));
    o.exists("b/x", &d.join("b/x"));
}

fn rename_file_over_dir(d: &Path, _: &Path, o: &mut Out) {
    file(&d.join("a"), "a");
    fs::create_dir(d.join("b")).unwrap();
    o.io("rename", fs::rename(d.join("a"), d.join("b")));
}

fn rename_dir_over_file(d: &Path, _: &Path, o: &mut Out) {
    fs::create_dir(d.join("a")).unwrap();
    file(&d.join("b"), "b");
    o.io("rename", fs::rename(d.join("a"), d.join("b")));
}

fn rename_across_dirs(d: &Path, _: &Path, o: &mut Out) {
    fs::create_dir_all(d.join("x/moved")).unwrap();
    fs::create_dir(d.join("y")).unwrap();
    file(&d.join("x/f"), "f");
    o.io("file", fs::rename(d.join("x/f"), d.join("y/g")));
    o.io("dir", fs::rename(d.join("x/moved"), d.join("y/moved")));
    o.content("y/g", &d.join("y/g"));
    o.put("nlink.x", fs::metadata(d.join("x")).unwrap().nlink());
    o.put("nlink.y", fs::metadata(d.join("y")).unwrap().nlink());
    o.put(
        "dotdot",
        fs::metadata(d.join("y/moved/..")).unwrap().ino()
            == fs::metadata(d.join("y")).unwrap().ino(),
    );
}

fn rename_dir_into_itself(d: &Path, _: &Path, o: &mut Out) {
    fs::create_dir_all(d.join("a/b")).unwrap();
    o.io("rename", fs::rename(d.join("a"), d.join("a/b/c")));
}

fn rename_missing_source(d: &Path, _: &Path, o: &mut Out) {
    o.io("rename", fs::rename(d.join("none"), d.join("b")));
}

fn rename_to_itself(d: &Path, _: &Path, o: &mut Out) {
    file(&d.join("a"), "a");
    o.io("rename", fs::rename(d.join("a"), d.join("a")));
    o.content("a", &d.join("a"));
}

fn rename_noreplace_over_existing(d: &Path, _: &Path, o: &mut Out) {
    file(&d.join("a"), "a");
    file(&d.join("b"), "b");
    o.res(
        "rename",
        rename2(&d.join("a"), &d.join("b"), RenameFlags::RENAME_NOREPLACE),
    );
    o.content("a", &d.join("a"));
    o.content("b", &d.join("b"));
}

fn rename_noreplace_to_free_name(d: &Path, _: &Path, o: &mut Out) {
    file(&d.join("a"), "a");
    o.res(
        "rename",
        rename2(&d.join("a"), &d.join("b"), RenameFlags::RENAME_NOREPLACE),
    );
    o.exists("a", &d.join("a"));
    o.content("b", &d.join("b"));
}

fn rename_exchange_files(d: &Path, _: &Path, o: &mut Out) {
    file(&d.join("a"), "a");
    file(&d.join("b"), "b");
    o.res(
        "rename",
        rename2(&d.join("a"), &d.join("b"), RenameFlags::RENAME_EXCHANGE),
    );
    o.content("a", &d.join("a"));
    o.content("b", &d.join("b"));
}

fn rename_exchange_file_and_dir(d: &Path, _: &Path, o: &mut Out) {
    file(&d.join("a"), "a");
    fs::create_dir_all(d.join("b/inner")).unwrap();
    o.res(
        "rename",
        rename2(&d.join("a"), &d.join("b"), RenameFlags::RENAME_EXCHANGE),
    );
    o.content("b", &d.join("b"));
    o.exists("a/inner", &d.join("a/inner"));
}

fn rename_exchange_across_dirs(d: &Path, _: &Path, o: &mut Out) {
    fs::create_dir_all(d.join("x")).unwrap();
    fs::create_dir_all(d.join("y/sub")).unwrap();
    file(&d.join("x/a"), "a");
    o.res(
        "rename",
        rename2(
            &d.join("x/a"),
            &d.join("y/sub"),
            RenameFlags::RENAME_EXCHANGE,
        ),
    );
    o.content("y/sub", &d.join("y/sub"));
    o.put("x/a.is_dir", d.join("x/a").is_dir());
    o.put("nlink.x", fs::metadata(d.join("x")).unwrap().nlink());
    o.put("nlink.y", fs::metadata(d.join("y")).unwrap().nlink());
}

fn rename_exchange_missing_target(d: &Path, _: &Path, o: &mut Out) {
    file(&d.join("a"), "a");
    o.res(
        "rename",
        rename2(&d.join("a"), &d.join("b"), RenameFlags::RENAME_EXCHANGE),
    );
    o.content("a", &d.join("a"));
}

fn rename_exchange_and_noreplace(d: &Path, _: &Path, o: &mut Out) {
    file(&d.join("a"), "a");
    file(&d.join("b"), "b");
    o.res(
        "rename",
        rename2(
            &d.join("a"),
            &d.join("b"),
            RenameFlags::RENAME_EXCHANGE | RenameFlags::RENAME_NOREPLACE,
        ),
    );
}

fn rename_to_another_file_system(d: &Path, other: &Path, o: &mut Out) {
    file(&d.join("a"), "a");
    o.io(
        "rename",
        fs::rename(d.join("a"), other.join("exdev-target")),
    );
    o.exists("a", &d.join("a"));
}

fn rename_changes_ctime_and_dir_times(d: &Path, _: &Path, o: &mut Out) {
    fs::create_dir(d.join("x")).unwrap();
    fs::create_dir(d.join("y")).unwrap();
    file(&d.join("x/a"), "a");
    let (c, mx, my) = (
        ctime(&d.join("x/a")),
        mtime(&d.join("x")),
        mtime(&d.join("y")),
    );
    clock_moves();
    fs::rename(d.join("x/a"), d.join("y/a")).unwrap();
    o.put("ctime.moved", ctime(&d.join("y/a")) > c);
    o.put("mtime.from", mtime(&d.join("x")) > mx);
    o.put("mtime.to", mtime(&d.join("y")) > my);
}

fn rename_over_file_in_sticky_dir_by_other_user(d: &Path, _: &Path, o: &mut Out) {
    chmod(d, 0o1777);
    file(&d.join("bobs"), "b");
    chown(&d.join("bobs"), BOB);
    file(&d.join("alices"), "a");
    chown(&d.join("alices"), ALICE);
    o.io(
        "alice renames over bob's",
        as_user(ALICE, || fs::rename(d.join("alices"), d.join("bobs"))),
    );
    o.io(
        "alice moves bob's",
        as_user(ALICE, || fs::rename(d.join("bobs"), d.join("mine"))),
    );
    o.io(
        "bob moves his",
        as_user(BOB, || fs::rename(d.join("bobs"), d.join("his"))),
    );
}

// ---- unlink, rmdir ----

fn unlink_in_sticky_dir(d: &Path, _: &Path, o: &mut Out) {
    chmod(d, 0o1777);
    for n in ["a", "b", "c"] {
        file(&d.join(n), n);
        chown(&d.join(n), BOB);
    }
    o.io(
        "other user",
        as_user(ALICE, || fs::remove_file(d.join("a"))),
    );
    o.io("owner", as_user(BOB, || fs::remove_file(d.join("b"))));
    chown(d, ALICE);
    o.io("dir owner", as_user(ALICE, || fs::remove_file(d.join("c"))));
    o.exists("a", &d.join("a"));
}

fn unlink_without_write_permission_on_dir(d: &Path, _: &Path, o: &mut Out) {
    fs::create_dir(d.join("ro")).unwrap();
    file(&d.join("ro/f"), "f");
    chown(&d.join("ro"), ALICE);
    chmod(&d.join("ro"), 0o555);
    o.io("unlink", as_user(ALICE, || fs::remove_file(d.join("ro/f"))));
    chmod(&d.join("ro"), 0o755);
    o.io(
        "unlink after chmod",
        as_user(ALICE, || fs::remove_file(d.join("ro/f"))),
    );
}

fn unlink_a_directory(d: &Path, _: &Path, o: &mut Out) {
    fs::create_dir(d.join("x")).unwrap();
    o.io("unlink", fs::remove_file(d.join("x")));
}

fn unlink_changes_dir_times(d: &Path, _: &Path, o: &mut Out) {
    file(&d.join("a"), "a");
    let (m, c) = (mtime(d), ctime(d));
    clock_moves();
    fs::remove_file(d.join("a")).unwrap();
    o.put("mtime", mtime(d) > m);
    o.put("ctime", ctime(d) > c);
}

fn rmdir_errors(d: &Path, _: &Path, o: &mut Out) {
    fs::create_dir_all(d.join("full/x")).unwrap();
    file(&d.join("f"), "f");
    o.io("not empty", fs::remove_dir(d.join("full")));
    o.io("a file", fs::remove_dir(d.join("f")));
    o.io("missing", fs::remove_dir(d.join("none")));
    o.io("dot", fs::remove_dir(d.join("full/x/.")));
    o.io("empty", fs::remove_dir(d.join("full/x")));
    o.put("nlink.full", fs::metadata(d.join("full")).unwrap().nlink());
}

fn mkdir_errors(d: &Path, _: &Path, o: &mut Out) {
    file(&d.join("f"), "f");
    o.io("over a file", fs::create_dir(d.join("f")));
    o.io("under a file", fs::create_dir(d.join("f/x")));
    o.io("missing parent", fs::create_dir(d.join("none/x")));
    fs::create_dir(d.join("x")).unwrap();
    o.io("twice", fs::create_dir(d.join("x")));
}

// ---- chmod ----

fn chmod_by_owner_and_by_others(d: &Path, _: &Path, o: &mut Out) {
    file(&d.join("f"), "f");
    chown(&d.join("f"), ALICE);
    o.io(
        "owner",
        as_user(ALICE, || {
            fs::set_permissions(d.join("f"), fs::Permissions::from_mode(0o600))
        }),
    );
    o.io(
        "other",
        as_user(BOB, || {
            fs::set_permissions(d.join("f"), fs::Permissions::from_mode(0o666))
        }),
    );
    o.mode("mode", &d.join("f"));
}

fn chmod_special_bits_by_root(d: &Path, _: &Path, o: &mut Out) {
    file(&d.join("f"), "f");
    fs::create_dir(d.join("x")).unwrap();
    for (m, name) in [
        (0o4755, "suid"),
        (0o2755, "sgid"),
        (0o1755, "sticky"),
        (0o7777, "all"),
    ] {
        chmod(&d.join("f"), m);
        o.mode(&format!("file.{name}"), &d.join("f"));
        chmod(&d.join("x"), m);
        o.mode(&format!("dir.{name}"), &d.join("x"));
    }
}

fn chmod_setgid_by_non_member_is_dropped(d: &Path, _: &Path, o: &mut Out) {
    file(&d.join("f"), "f");
    chown(&d.join("f"), (ALICE.0, BOB.1));
    o.io(
        "chmod",
        as_user(ALICE, || {
            fs::set_permissions(d.join("f"), fs::Permissions::from_mode(0o2755))
        }),
    );
    o.mode("mode", &d.join("f"));
}

fn chmod_changes_ctime(d: &Path, _: &Path, o: &mut Out) {
    file(&d.join("f"), "f");
    let (c, m) = (ctime(&d.join("f")), mtime(&d.join("f")));
    clock_moves();
    chmod(&d.join("f"), 0o600);
    o.put("ctime", ctime(&d.join("f")) > c);
    o.put("mtime same", mtime(&d.join("f")) == m);
}

// ---- chown ----

fn chown_by_root(d: &Path, _: &Path, o: &mut Out) {
    file(&d.join("f"), "f");
    chown(&d.join("f"), (4242, 4343));
    o.owner("owner", &d.join("f"));
    o.io(
        "uid only",
        std::os::unix::fs::chown(d.join("f"), Some(7), None),
    );
    o.owner("after uid only", &d.join("f"));
    o.io(
        "gid only",
        std::os::unix::fs::chown(d.join("f"), None, Some(8)),
    );
    o.owner("after gid only", &d.join("f"));
}

fn chown_by_non_root(d: &Path, _: &Path, o: &mut Out) {
    file(&d.join("f"), "f");
    chown(&d.join("f"), ALICE);
    o.io(
        "give away",
        as_user(ALICE, || {
            std::os::unix::fs::chown(d.join("f"), Some(BOB.0), None)
        }),
    );
    o.io(
        "to a group not in",
        as_user(ALICE, || {
            std::os::unix::fs::chown(d.join("f"), None, Some(BOB.1))
        }),
    );
    o.io(
        "to own uid and group",
        as_user(ALICE, || {
            std::os::unix::fs::chown(d.join("f"), Some(ALICE.0), Some(ALICE.1))
        }),
    );
    o.io(
        "not the owner",
        as_user(BOB, || {
            std::os::unix::fs::chown(d.join("f"), None, Some(BOB.1))
        }),
    );
    o.owner("owner", &d.join("f"));
}

fn chown_clears_setuid_and_setgid(d: &Path, _: &Path, o: &mut Out) {
    for (name, mode) in [
        ("suid", 0o4755),
        ("sgid-x", 0o2755),
        ("sgid-nox", 0o2745),
        ("both", 0o6755),
    ] {
        let p = d.join(name);
        file(&p, "f");
        chmod(&p, mode);
        chown(&p, ALICE);
        o.mode(&format!("root chown {name}"), &p);
        chmod(&p, mode);
        o.io(
            &format!("owner chgrp {name}"),
            as_user(ALICE, || std::os::unix::fs::chown(&p, None, Some(ALICE.1))),
        );
        o.mode(&format!("owner chgrp {name} mode"), &p);
    }
    fs::create_dir(d.join("dir")).unwrap();
    chmod(&d.join("dir"), 0o6755);
    chown(&d.join("dir"), ALICE);
    o.mode("dir keeps", &d.join("dir"));
}

fn chown_changes_ctime(d: &Path, _: &Path, o: &mut Out) {
    file(&d.join("f"), "f");
    let c = ctime(&d.join("f"));
    clock_moves();
    chown(&d.join("f"), ALICE);
    o.put("ctime", ctime(&d.join("f")) > c);
}

fn write_by_other_clears_setuid(d: &Path, _: &Path, o: &mut Out) {
    let p = d.join("f");
    file(&p, "f");
    chmod(&p, 0o6777);
    o.io(
        "write",
        as_user(ALICE, || {
            fs::OpenOptions::new()
                .append(true)
                .open(&p)
                .and_then(|mut f| f.write_all(b"more"))
        }),
    );
    o.mode("mode", &p);
}

fn truncate_by_other_clears_setuid(d: &Path, _: &Path, o: &mut Out) {
    let p = d.join("f");
    file(&p, "ffff");
    chmod(&p, 0o4777);
    o.res("truncate", as_user(ALICE, || nix::unistd::truncate(&p, 1)));
    o.mode("mode", &p);
}

// ---- names and links ----

fn name_too_long(d: &Path, _: &Path, o: &mut Out) {
    let ok = "n".repeat(255);
    let long = "n".repeat(256);
    o.io("create 255", fs::write(d.join(&ok), "x"));
    o.io("create 256", fs::write(d.join(&long), "x"));
    o.io("mkdir 256", fs::create_dir(d.join(&long)));
    o.io("stat 256", fs::metadata(d.join(&long)));
    o.io("rename to 256", fs::rename(d.join(&ok), d.join(&long)));
    o.io("symlink 256", symlink("t", d.join(&long)));
    let deep = format!("{}/x", vec!["d"; 2100].join("/"));
    o.io("path over PATH_MAX", fs::metadata(d.join(deep)));
}

fn symlink_loops(d: &Path, _: &Path, o: &mut Out) {
    symlink("b", d.join("a")).unwrap();
    symlink("a", d.join("b")).unwrap();
    o.io("open loop", fs::read(d.join("a")));
    o.io("stat loop", fs::metadata(d.join("a/x")));
    file(&d.join("target"), "t");
    let mut prev = "target".to_owned();
    for i in 0..41 {
        let name = format!("l{i}");
        symlink(&prev, d.join(&name)).unwrap();
        prev = name;
    }
    o.io("40 hops", fs::read(d.join("l39")));
    o.io("41 hops", fs::read(d.join("l40")));
    o.io(
        "O_NOFOLLOW",
        std::os::unix::fs::OpenOptionsExt::custom_flags(
            fs::OpenOptions::new().read(true),
            nix::libc::O_NOFOLLOW,
        )
        .open(d.join("l0")),
    );
}

fn symlink_basics(d: &Path, _: &Path, o: &mut Out) {
    o.io("make", symlink("some/where", d.join("l")));
    o.put("target", fs::read_link(d.join("l")).unwrap().display());
    o.io("over existing", symlink("x", d.join("l")));
    o.put("size", fs::symlink_metadata(d.join("l")).unwrap().len());
    o.io("dangling read", fs::read(d.join("l")));
}

fn hard_link(d: &Path, _: &Path, o: &mut Out) {
    file(&d.join("a"), "a");
    o.io("link", fs::hard_link(d.join("a"), d.join("b")));
    o.put("nlink", fs::metadata(d.join("a")).unwrap().nlink());
    o.put(
        "same inode",
        fs::metadata(d.join("a")).unwrap().ino()
            == fs::metadata(d.join("b")).map(|m| m.ino()).unwrap_or(0),
    );
}

fn ino(p: &Path) -> u64 {
    fs::symlink_metadata(p).map(|m| m.ino()).unwrap_or(0)
}

fn nlink(p: &Path) -> String {
    fs::symlink_metadata(p).map_or_else(
        |e| format!("missing({:?})", e.kind()),
        |m| m.nlink().to_string(),
    )
}

fn hard_link_names_share_everything(d: &Path, _: &Path, o: &mut Out) {
    fs::create_dir(d.join("x")).unwrap();
    fs::create_dir(d.join("y")).unwrap();
    file(&d.join("x/a"), "one");
    chmod(&d.join("x/a"), 0o640);
    let c = ctime(&d.join("x/a"));
    clock_moves();
    o.io(
        "link across directories",
        fs::hard_link(d.join("x/a"), d.join("y/b")),
    );
    o.io("third name", fs::hard_link(d.join("y/b"), d.join("c")));
    o.put("ctime moved", ctime(&d.join("x/a")) > c);
    o.put("nlink", nlink(&d.join("x/a")));
    o.put(
        "one inode",
        ino(&d.join("x/a")) == ino(&d.join("y/b")) && ino(&d.join("c")) == ino(&d.join("x/a")),
    );
    // Written through one name, read through the others.
    fs::OpenOptions::new()
        .append(true)
        .open(d.join("y/b"))
        .unwrap()
        .write_all(b" two")
        .unwrap();
    o.content("read through a", &d.join("x/a"));
    o.content("read through c", &d.join("c"));
    chmod(&d.join("c"), 0o600);
    o.mode("chmod shows through", &d.join("x/a"));
    chown(&d.join("x/a"), ALICE);
    o.owner("chown shows through", &d.join("y/b"));
    // Unlinking one name keeps the others.
    o.io("unlink the first", fs::remove_file(d.join("x/a")));
    o.put("nlink after", nlink(&d.join("y/b")));
    o.content("still there", &d.join("y/b"));
    // A rename keeps the group; renaming one name onto another of the same inode does nothing.
    o.io("rename", fs::rename(d.join("y/b"), d.join("x/moved")));
    o.put(
        "same inode after rename",
        ino(&d.join("x/moved")) == ino(&d.join("c")),
    );
    o.io(
        "rename onto itself",
        fs::rename(d.join("x/moved"), d.join("c")),
    );
    o.exists("both names kept", &d.join("x/moved"));
    o.put("nlink at the end", nlink(&d.join("c")));
    // A rename over one name of a group takes only that name.
    file(&d.join("other"), "other");
    o.io(
        "rename over a name",
        fs::rename(d.join("other"), d.join("c")),
    );
    o.put("left", nlink(&d.join("x/moved")));
    o.content("kept", &d.join("x/moved"));
}

fn hard_link_errors(d: &Path, _: &Path, o: &mut Out) {
    file(&d.join("a"), "a");
    file(&d.join("b"), "b");
    fs::create_dir(d.join("dir")).unwrap();
    o.io(
        "onto an existing name",
        fs::hard_link(d.join("a"), d.join("b")),
    );
    o.io("a directory", fs::hard_link(d.join("dir"), d.join("dir2")));
    o.io(
        "missing source",
        fs::hard_link(d.join("none"), d.join("n2")),
    );
    o.io(
        "into a missing directory",
        fs::hard_link(d.join("a"), d.join("none/a")),
    );
    o.io("into a file", fs::hard_link(d.join("a"), d.join("b/a")));
    symlink("a", d.join("s")).unwrap();
    o.io("a symlink itself", fs::hard_link(d.join("s"), d.join("s2")));
    o.put("symlink nlink", nlink(&d.join("s")));
    o.put(
        "s2 is a link",
        fs::symlink_metadata(d.join("s2"))
            .map(|m| m.file_type().is_symlink())
            .unwrap_or(false),
    );
    nix::unistd::mkfifo(
        &d.join("p"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    o.io("a fifo", fs::hard_link(d.join("p"), d.join("p2")));
    o.put("fifo nlink", nlink(&d.join("p2")));
    // Without write permission on the target directory.
    fs::create_dir(d.join("closed")).unwrap();
    chmod(&d.join("closed"), 0o755);
    o.io(
        "into a directory alice may not write",
        as_user(ALICE, || fs::hard_link(d.join("a"), d.join("closed/a"))),
    );
}

fn fifo(d: &Path, _: &Path, o: &mut Out) {
    o.res(
        "mkfifo",
        nix::unistd::mkfifo(
            &d.join("p"),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        ),
    );
    o.put(
        "is fifo",
        std::os::unix::fs::FileTypeExt::is_fifo(
            &fs::symlink_metadata(d.join("p"))
                .map(|m| m.file_type())
                .unwrap_or_else(|_| fs::metadata(d).unwrap().file_type()),
        ),
    );
}

/// What `p` is and its device number, as `ls -l` would tell them apart.
fn kind_of(p: &Path) -> String {
    use std::os::unix::fs::FileTypeExt;
    match fs::symlink_metadata(p) {
        Ok(m) => {
            let t = m.file_type();
            let k = if t.is_fifo() {
                "fifo"
            } else if t.is_socket() {
                "socket"
            } else if t.is_char_device() {
                "chardev"
            } else if t.is_block_device() {
                "blockdev"
            } else if t.is_file() {
                "file"
            } else {
                "other"
            };
            format!("{k} rdev={:x} size={}", m.rdev(), m.len())
        }
        Err(e) => format!("missing({:?})", e.kind()),
    }
}

fn mknod_at(p: &Path, kind: nix::sys::stat::SFlag, mode: u32, dev: u64) -> nix::Result<()> {
    nix::sys::stat::mknod(p, kind, nix::sys::stat::Mode::from_bits_truncate(mode), dev)
}

fn special_kinds(d: &Path, _: &Path, o: &mut Out) {
    use nix::sys::stat::SFlag;
    let dev = nix::sys::stat::makedev;
    for (name, kind, rdev) in [
        ("fifo", SFlag::S_IFIFO, 0),
        ("sock", SFlag::S_IFSOCK, 0),
        ("null", SFlag::S_IFCHR, dev(1, 3)),
        ("loop", SFlag::S_IFBLK, dev(7, 0)),
    ] {
        let p = d.join(name);
        o.res(&format!("mknod {name}"), mknod_at(&p, kind, 0o640, rdev));
        o.put(&format!("{name} is"), kind_of(&p));
        o.mode(&format!("{name} mode"), &p);
        o.owner(&format!("{name} owner"), &p);
        o.put(
            &format!("{name} nlink"),
            fs::symlink_metadata(&p).unwrap().nlink(),
        );
    }
    let mut names: Vec<String> = fs::read_dir(d)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            use std::os::unix::fs::FileTypeExt;
            format!(
                "{}:{}{}",
                e.file_name().to_string_lossy(),
                t.is_fifo(),
                t.is_char_device()
            )
        })
        .collect();
    names.sort();
    o.put("listed", names.join(","));
    o.res("again", mknod_at(&d.join("fifo"), SFlag::S_IFIFO, 0o644, 0));
    o.res(
        "over a file",
        nix::unistd::mkfifo(
            &d.join("null"),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        ),
    );
    o.res(
        "in a missing directory",
        nix::unistd::mkfifo(
            &d.join("none/p"),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        ),
    );
    // A FIFO reads what is written into it: the kernel's, not the store's.
    let p = d.join("fifo");
    let writer = std::thread::spawn({
        let p = p.clone();
        move || fs::write(p, b"through the pipe")
    });
    o.content("read", &p);
    o.io("write", writer.join().unwrap());
    o.put("size after", fs::metadata(&p).unwrap().len());
}

fn special_files_keep_modes_owners_and_times(d: &Path, _: &Path, o: &mut Out) {
    let p = d.join("p");
    nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let c = ctime(&p);
    clock_moves();
    o.io(
        "chmod",
        fs::set_permissions(&p, fs::Permissions::from_mode(0o4600)),
    );
    o.mode("mode", &p);
    o.io(
        "chown",
        std::os::unix::fs::lchown(&p, Some(ALICE.0), Some(ALICE.1)),
    );
    o.owner("owner", &p);
    o.put("ctime moved", ctime(&p) > c);
    o.res(
        "times",
        utimensat(
            AT_FDCWD,
            &p,
            &ts(1_000_000_000, 5),
            &ts(1_200_000_000, 7),
            UtimensatFlags::NoFollowSymlink,
        ),
    );
    let m = fs::symlink_metadata(&p).unwrap();
    o.put("mtime", format!("{}.{}", m.mtime(), m.mtime_nsec()));
    o.put("atime", format!("{}.{}", m.atime(), m.atime_nsec()));
    o.res("truncate", nix::unistd::truncate(&p, 0));
    // In a setgid directory a new special file takes the directory's group.
    fs::create_dir(d.join("g")).unwrap();
    chown(&d.join("g"), (0, BOB.1));
    chmod(&d.join("g"), 0o2777);
    let q = d.join("g/q");
    o.res(
        "mkfifo as alice",
        as_user(ALICE, || {
            nix::unistd::mkfifo(&q, nix::sys::stat::Mode::from_bits_truncate(0o2755))
        }),
    );
    o.owner("setgid dir's group", &q);
    o.mode("its mode", &q);
    // Sticky directory: only the owner removes it.
    chmod(&d.join("g"), 0o1777);
    o.io("bob removes alice's", as_user(BOB, || fs::remove_file(&q)));
    o.io("alice removes hers", as_user(ALICE, || fs::remove_file(&q)));
    o.io("rename", fs::rename(&p, d.join("p2")));
    o.put("renamed is", kind_of(&d.join("p2")));
}

fn utimensat_atime_only(d: &Path, _: &Path, o: &mut Out) {
    let p = d.join("f");
    file(&p, "f");
    let (m0, c) = (mtime(&p), ctime(&p));
    clock_moves();
    o.res(
        "touch -a",
        utimensat(
            AT_FDCWD,
            &p,
            &ts(1_234_567_890, 42),
            &TimeSpec::UTIME_OMIT,
            UtimensatFlags::FollowSymlink,
        ),
    );
    let m = fs::metadata(&p).unwrap();
    o.put("atime", format!("{}.{}", m.atime(), m.atime_nsec()));
    o.put("mtime kept", mtime(&p) == m0);
    o.put("ctime moved", ctime(&p) > c);
    o.res(
        "by another user",
        as_user(ALICE, || {
            utimensat(
                AT_FDCWD,
                &p,
                &ts(1, 0),
                &TimeSpec::UTIME_OMIT,
                UtimensatFlags::FollowSymlink,
            )
        }),
    );
    let d2 = d.join("x");
    fs::create_dir(&d2).unwrap();
    o.res(
        "a directory's",
        utimensat(
            AT_FDCWD,
            &d2,
            &ts(1_111_111_111, 0),
            &TimeSpec::UTIME_OMIT,
            UtimensatFlags::FollowSymlink,
        ),
    );
    o.put("dir atime", fs::metadata(&d2).unwrap().atime());
}

// ---- truncate ----

fn truncate_grow_and_shrink(d: &Path, _: &Path, o: &mut Out) {
    let p = d.join("f");
    file(&p, "abcdef");
    o.res("shrink", nix::unistd::truncate(&p, 2));
    o.res("grow", nix::unistd::truncate(&p, 5));
    o.content("content", &p);
    o.put("size", fs::metadata(&p).unwrap().len());
    o.res("negative", nix::unistd::truncate(&p, -1));
    fs::create_dir(d.join("x")).unwrap();
    o.res("a directory", nix::unistd::truncate(&d.join("x"), 0));
    o.res("missing", nix::unistd::truncate(&d.join("none"), 0));
    let ro = fs::File::open(&p).unwrap();
    o.io("read-only fd", ro.set_len(0));
}

fn truncate_permissions(d: &Path, _: &Path, o: &mut Out) {
    let p = d.join("f");
    file(&p, "abc");
    chmod(&p, 0o644);
    o.res(
        "other user",
        as_user(ALICE, || nix::unistd::truncate(&p, 0)),
    );
    chmod(&p, 0o646);
    o.res(
        "other user, o+w",
        as_user(ALICE, || nix::unistd::truncate(&p, 0)),
    );
    o.put("size", fs::metadata(&p).unwrap().len());
}

fn truncate_changes_times(d: &Path, _: &Path, o: &mut Out) {
    let p = d.join("f");
    file(&p, "abc");
    let (m, c) = (mtime(&p), ctime(&p));
    clock_moves();
    nix::unistd::truncate(&p, 1).unwrap();
    o.put("mtime", mtime(&p) > m);
    o.put("ctime", ctime(&p) > c);
    let (m, c) = (mtime(&p), ctime(&p));
    clock_moves();
    nix::unistd::truncate(&p, 1).unwrap();
    o.put("same size mtime", mtime(&p) > m);
    o.put("same size ctime", ctime(&p) > c);
}

// ---- fallocate ----

fn fallocate(f: &fs::File, flags: FallocateFlags, offset: i64, len: i64) -> nix::Result<()> {
    nix::fcntl::fallocate(f, flags, offset, len)
}

/// A file of 2 MiB of seeded random bytes (large enough for the store to keep holes in it).
fn random_file(p: &Path) -> Vec<u8> {
    let mut data = vec![0u8; 2 << 20];
    fastrand::Rng::with_seed(11).fill(&mut data);
    fs::write(p, &data).unwrap();
    data
}

/// Where bytes of `p` differ from `want`: "same", or the first offset that differs.
fn compare(p: &Path, want: &[u8]) -> String {
    let got = fs::read(p).unwrap();
    if got.len() != want.len() {
        return format!("length {}", got.len());
    }
    match got.iter().zip(want).position(|(a, b)| a != b) {
        None => "same".to_owned(),
        Some(i) => format!("differs at {i}"),
    }
}

fn open_rw(p: &Path) -> fs::File {
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(p)
        .unwrap()
}

/// Mode 0 reserves and grows the file; `FALLOC_FL_KEEP_SIZE` reserves without growing.
fn fallocate_allocate(d: &Path, _: &Path, o: &mut Out) {
    let p = d.join("f");
    file(&p, "abc");
    let f = open_rw(&p);
    o.res("mode 0", fallocate(&f, FallocateFlags::empty(), 0, 8192));
    o.put("size", fs::metadata(&p).unwrap().len());
    let mut want = b"abc".to_vec();
    want.resize(8192, 0);
    o.put("content", compare(&p, &want));
    o.res(
        "keep size past the end",
        fallocate(&f, FallocateFlags::FALLOC_FL_KEEP_SIZE, 8192, 1 << 20),
    );
    o.put("size after keep size", fs::metadata(&p).unwrap().len());
    o.res(
        "mode 0 inside",
        fallocate(&f, FallocateFlags::empty(), 10, 100),
    );
    o.put("content after", compare(&p, &want));
    f.write_all_at(b"xyz", 9000).unwrap();
    want.resize(9003, 0);
    want[9000..].copy_from_slice(b"xyz");
    o.put("written past", compare(&p, &want));
}

/// A punched range reads as zeros and is a hole; the size stays.
fn fallocate_punch_hole(d: &Path, _: &Path, o: &mut Out) {
    use nix::unistd::{Whence, lseek};
    let p = d.join("f");
    let mut want = random_file(&p);
    let f = open_rw(&p);
    let punch = FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE;
    o.res("punch", fallocate(&f, punch, 256 << 10, 128 << 10));
    want[256 << 10..384 << 10].fill(0);
    o.put("size", fs::metadata(&p).unwrap().len());
    o.put("content", compare(&p, &want));
    o.res("hole from 0", lseek(&f, 0, Whence::SeekHole));
    o.put("hole at", lseek(&f, 0, Whence::SeekHole).unwrap());
    o.put(
        "data after",
        lseek(&f, 256 << 10, Whence::SeekData).unwrap(),
    );
    o.res(
        "without keep size",
        fallocate(&f, FallocateFlags::FALLOC_FL_PUNCH_HOLE, 0, 4096),
    );
    o.res("past the end", fallocate(&f, punch, 4 << 20, 4096));
    o.res(
        "across the end",
        fallocate(&f, punch, (2 << 20) - 4096, 1 << 20),
    );
    want[(2 << 20) - 4096..].fill(0);
    o.put("size after", fs::metadata(&p).unwrap().len());
    o.put("content after", compare(&p, &want));
    drop(f);
    o.put("content after close", compare(&p, &want));
}

/// The errors Linux returns: a read-only descriptor, an empty range, a range past the
/// largest offset, modes not supported, a punch with a zeroing.
fn fallocate_errors(d: &Path, _: &Path, o: &mut Out) {
    let p = d.join("f");
    file(&p, "abc");
    let ro = fs::File::open(&p).unwrap();
    o.res(
        "read-only fd",
        fallocate(&ro, FallocateFlags::empty(), 0, 10),
    );
    let f = open_rw(&p);
    o.res("len 0", fallocate(&f, FallocateFlags::empty(), 0, 0));
    o.res(
        "negative offset",
        fallocate(&f, FallocateFlags::empty(), -1, 10),
    );
    o.res(
        "past the largest offset",
        fallocate(&f, FallocateFlags::empty(), i64::MAX - 4095, 8192),
    );
    o.res(
        "collapse range",
        fallocate(&f, FallocateFlags::FALLOC_FL_COLLAPSE_RANGE, 0, 4096),
    );
    o.res(
        "insert range",
        fallocate(&f, FallocateFlags::FALLOC_FL_INSERT_RANGE, 0, 4096),
    );
    o.res(
        "punch and zero",
        fallocate(
            &f,
            FallocateFlags::FALLOC_FL_PUNCH_HOLE
                | FallocateFlags::FALLOC_FL_ZERO_RANGE
                | FallocateFlags::FALLOC_FL_KEEP_SIZE,
            0,
            4096,
        ),
    );
    o.put("size", fs::metadata(&p).unwrap().len());
    o.content("content", &p);
    let a = fs::OpenOptions::new().append(true).open(&p).unwrap();
    o.res("append fd", fallocate(&a, FallocateFlags::empty(), 0, 10));
}

/// `FALLOC_FL_ZERO_RANGE`, with and without `FALLOC_FL_KEEP_SIZE`: the range reads as zeros.
/// tmpfs does not have it; [`the_mount_zeroes_ranges_like_ext4`] compares with ext4.
fn fallocate_zero_range(d: &Path, _: &Path, o: &mut Out) {
    let p = d.join("f");
    let mut want = random_file(&p);
    let f = open_rw(&p);
    o.res(
        "zero",
        fallocate(&f, FallocateFlags::FALLOC_FL_ZERO_RANGE, 100_000, 300_000),
    );
    want[100_000..400_000].fill(0);
    o.put("content", compare(&p, &want));
    o.res(
        "zero past the end, keep size",
        fallocate(
            &f,
            FallocateFlags::FALLOC_FL_ZERO_RANGE | FallocateFlags::FALLOC_FL_KEEP_SIZE,
            (2 << 20) - 10,
            100,
        ),
    );
    want[(2 << 20) - 10..].fill(0);
    o.put("size keep", fs::metadata(&p).unwrap().len());
    o.put("content keep", compare(&p, &want));
    o.res(
        "zero past the end",
        fallocate(&f, FallocateFlags::FALLOC_FL_ZERO_RANGE, 2 << 20, 5000),
    );
    want.resize((2 << 20) + 5000, 0);
    o.put("size", fs::metadata(&p).unwrap().len());
    o.put("content after", compare(&p, &want));
    let ro = fs::File::open(&p).unwrap();
    o.res(
        "read-only fd",
        fallocate(&ro, FallocateFlags::FALLOC_FL_ZERO_RANGE, 0, 10),
    );
    o.res(
        "len 0",
        fallocate(&f, FallocateFlags::FALLOC_FL_ZERO_RANGE, 0, 0),
    );
}

/// `FALLOC_FL_ZERO_RANGE` as ext4 does it (tmpfs answers EOPNOTSUPP), on a mount with
/// `allow_other`.
#[test]
fn the_mount_zeroes_ranges_like_ext4() {
    let reference = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let m = Mounted::with(|o| o.allow_other = true);
    let want = run(
        reference.path(),
        &m.dir,
        "fallocate/zero_range",
        fallocate_zero_range,
    );
    let got = run(
        &m.dir,
        reference.path(),
        "fallocate/zero_range",
        fallocate_zero_range,
    );
    assert_eq!(got, want);
}

// ---- utimensat ----

fn ts(secs: i64, nanos: i64) -> TimeSpec {
    TimeSpec::new(secs, nanos)
}

fn utimensat_explicit(d: &Path, _: &Path, o: &mut Out) {
    let p = d.join("f");
    file(&p, "f");
    let c = ctime(&p);
    clock_moves();
    o.res(
        "set",
        utimensat(
            AT_FDCWD,
            &p,
            &ts(1_000_000_000, 5),
            &ts(1_500_000_000, 123_456_789),
            UtimensatFlags::FollowSymlink,
        ),
    );
    let m = fs::metadata(&p).unwrap();
    o.put("mtime", format!("{}.{}", m.mtime(), m.mtime_nsec()));
    o.put("atime", format!("{}.{}", m.atime(), m.atime_nsec()));
    o.put("ctime", ctime(&p) > c);
}

fn utimensat_omit_and_now(d: &Path, _: &Path, o: &mut Out) {
    let p = d.join("f");
    file(&p, "f");
    utimensat(
        AT_FDCWD,
        &p,
        &ts(1_000_000_000, 0),
        &ts(1_000_000_000, 0),
        UtimensatFlags::FollowSymlink,
    )
    .unwrap();
    o.res(
        "omit mtime",
        utimensat(
            AT_FDCWD,
            &p,
            &ts(1_100_000_000, 0),
            &TimeSpec::UTIME_OMIT,
            UtimensatFlags::FollowSymlink,
        ),
    );
    o.put("mtime kept", fs::metadata(&p).unwrap().mtime());
    o.res(
        "now",
        utimensat(
            AT_FDCWD,
            &p,
            &TimeSpec::UTIME_NOW,
            &TimeSpec::UTIME_NOW,
            UtimensatFlags::FollowSymlink,
        ),
    );
    o.put(
        "mtime recent",
        fs::metadata(&p).unwrap().mtime() > 1_700_000_000,
    );
}

fn utimensat_permissions(d: &Path, _: &Path, o: &mut Out) {
    let p = d.join("f");
    file(&p, "f");
    chmod(&p, 0o666);
    o.res(
        "other, explicit",
        as_user(ALICE, || {
            utimensat(
                AT_FDCWD,
                &p,
                &ts(5, 0),
                &ts(5, 0),
                UtimensatFlags::FollowSymlink,
            )
        }),
    );
    o.res(
        "other with write, now",
        as_user(ALICE, || {
            utimensat(
                AT_FDCWD,
                &p,
                &TimeSpec::UTIME_NOW,
                &TimeSpec::UTIME_NOW,
                UtimensatFlags::FollowSymlink,
            )
        }),
    );
    chmod(&p, 0o644);
    o.res(
        "other without write, now",
        as_user(ALICE, || {
            utimensat(
                AT_FDCWD,
                &p,
                &TimeSpec::UTIME_NOW,
                &TimeSpec::UTIME_NOW,
                UtimensatFlags::FollowSymlink,
            )
        }),
    );
    chown(&p, ALICE);
    o.res(
        "owner, explicit",
        as_user(ALICE, || {
            utimensat(
                AT_FDCWD,
                &p,
                &ts(5, 0),
                &ts(5, 0),
                UtimensatFlags::FollowSymlink,
            )
        }),
    );
    o.put("mtime", fs::metadata(&p).unwrap().mtime());
}

fn utimensat_symlink_itself(d: &Path, _: &Path, o: &mut Out) {
    file(&d.join("t"), "t");
    symlink("t", d.join("l")).unwrap();
    o.res(
        "nofollow",
        utimensat(
            AT_FDCWD,
            &d.join("l"),
            &ts(7, 0),
            &ts(7, 0),
            UtimensatFlags::NoFollowSymlink,
        ),
    );
    o.put(
        "link mtime",
        fs::symlink_metadata(d.join("l")).unwrap().mtime(),
    );
    o.put(
        "target mtime is 7",
        fs::metadata(d.join("t")).unwrap().mtime() == 7,
    );
}

// ---- open, write ----

fn open_errors(d: &Path, _: &Path, o: &mut Out) {
    file(&d.join("f"), "f");
    fs::create_dir(d.join("x")).unwrap();
    o.io(
        "excl on existing",
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(d.join("f")),
    );
    o.io(
        "write a dir",
        fs::OpenOptions::new().write(true).open(d.join("x")),
    );
    o.io("under a file", fs::File::open(d.join("f/y")));
    chmod(&d.join("f"), 0o600);
    o.io(
        "other reads 0600",
        as_user(ALICE, || fs::File::open(d.join("f"))),
    );
    o.io(
        "create in 0755 dir",
        as_user(ALICE, || fs::write(d.join("x/new"), "n")),
    );
}

fn create_takes_the_callers_owner(d: &Path, _: &Path, o: &mut Out) {
    chmod(d, 0o777);
    o.io("create", as_user(ALICE, || fs::write(d.join("f"), "f")));
    o.owner("owner", &d.join("f"));
    fs::create_dir(d.join("g")).unwrap();
    chown(&d.join("g"), (0, 4242));
    chmod(&d.join("g"), 0o2777);
    o.io(
        "create in setgid",
        as_user(ALICE, || fs::create_dir(d.join("g/sub"))),
    );
    o.owner("owner in setgid", &d.join("g/sub"));
    o.mode("mode in setgid", &d.join("g/sub"));
}

fn write_changes_times(d: &Path, _: &Path, o: &mut Out) {
    let p = d.join("f");
    file(&p, "f");
    let (m, c) = (mtime(&p), ctime(&p));
    clock_moves();
    fs::OpenOptions::new()
        .append(true)
        .open(&p)
        .unwrap()
        .write_all(b"g")
        .unwrap();
    o.put("mtime", mtime(&p) > m);
    o.put("ctime", ctime(&p) > c);
}

/// Every case, by group and name.
pub const CASES: &[(&str, Case)] = &[
    ("rename/file_over_file", rename_file_over_file),
    ("rename/dir_over_empty_dir", rename_dir_over_empty_dir),
    ("rename/dir_over_nonempty_dir", rename_dir_over_nonempty_dir),
    ("rename/file_over_dir", rename_file_over_dir),
    ("rename/dir_over_file", rename_dir_over_file),
    ("rename/across_dirs", rename_across_dirs),
    ("rename/dir_into_itself", rename_dir_into_itself),
    ("rename/missing_source", rename_missing_source),
    ("rename/to_itself", rename_to_itself),
    (
        "rename/noreplace_over_existing",
        rename_noreplace_over_existing,
    ),
    (
        "rename/noreplace_to_free_name",
        rename_noreplace_to_free_name,
    ),
    ("rename/exchange_files", rename_exchange_files),
    ("rename/exchange_file_and_dir", rename_exchange_file_and_dir),
    ("rename/exchange_across_dirs", rename_exchange_across_dirs),
    (
        "rename/exchange_missing_target",
        rename_exchange_missing_target,
    ),
    (
        "rename/exchange_and_noreplace",
        rename_exchange_and_noreplace,
    ),
    (
        "rename/to_another_file_system",
        rename_to_another_file_system,
    ),
    (
        "rename/changes_ctime_and_dir_times",
        rename_changes_ctime_and_dir_times,
    ),
    (
        "rename/sticky_dir_other_user",
        rename_over_file_in_sticky_dir_by_other_user,
    ),
    ("unlink/sticky_dir", unlink_in_sticky_dir),
    (
        "unlink/without_write_permission_on_dir",
        unlink_without_write_permission_on_dir,
    ),
    ("unlink/a_directory", unlink_a_directory),
    ("unlink/changes_dir_times", unlink_changes_dir_times),
    ("rmdir/errors", rmdir_errors),
    ("mkdir/errors", mkdir_errors),
    ("chmod/by_owner_and_by_others", chmod_by_owner_and_by_others),
    ("chmod/special_bits_by_root", chmod_special_bits_by_root),
    (
        "chmod/setgid_by_non_member_is_dropped",
        chmod_setgid_by_non_member_is_dropped,
    ),
    ("chmod/changes_ctime", chmod_changes_ctime),
    ("chown/by_root", chown_by_root),
    ("chown/by_non_root", chown_by_non_root),
    (
        "chown/clears_setuid_and_setgid",
        chown_clears_setuid_and_setgid,
    ),
    ("chown/changes_ctime", chown_changes_ctime),
    (
        "open/write_by_other_clears_setuid",
        write_by_other_clears_setuid,
    ),
    (
        "truncate/by_other_clears_setuid",
        truncate_by_other_clears_setuid,
    ),
    ("open/name_too_long", name_too_long),
    ("symlink/loops", symlink_loops),
    ("symlink/basics", symlink_basics),
    ("link/hard_link", hard_link),
    (
        "link/names_share_everything",
        hard_link_names_share_everything,
    ),
    ("link/errors", hard_link_errors),
    ("mkfifo/fifo", fifo),
    ("mknod/special_kinds", special_kinds),
    (
        "mknod/special_files_keep_modes_owners_and_times",
        special_files_keep_modes_owners_and_times,
    ),
    ("truncate/grow_and_shrink", truncate_grow_and_shrink),
    ("truncate/permissions", truncate_permissions),
    ("truncate/changes_times", truncate_changes_times),
    ("fallocate/allocate", fallocate_allocate),
    ("fallocate/punch_hole", fallocate_punch_hole),
    ("fallocate/errors", fallocate_errors),
    ("utimensat/explicit", utimensat_explicit),
    ("utimensat/atime_only", utimensat_atime_only),
    ("utimensat/omit_and_now", utimensat_omit_and_now),
    ("utimensat/permissions", utimensat_permissions),
    ("utimensat/symlink_itself", utimensat_symlink_itself),
    ("open/errors", open_errors),
    (
        "open/create_takes_the_callers_owner",
        create_takes_the_callers_owner,
    ),
    ("open/write_changes_times", write_changes_times),
];

/// Runs `case` in a fresh directory `name` under `base` (owned by root, mode 0755).
fn run(base: &Path, other: &Path, name: &str, case: Case) -> Vec<String> {
    let d = base.join(name.replace('/', "-"));
    fs::create_dir(&d).unwrap();
    chmod(&d, 0o755);
    let mut out = Out::default();
    case(&d, other, &mut out);
    out.0
}

/// The expected failures: case names, one a line (`#` starts a comment).
fn expected_failures() -> Vec<String> {
    include_str!("expected-failures.txt")
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn the_mount_behaves_like_tmpfs_as_root_with_allow_other() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the conformance cases play other users: run as root"
    );
    let reference = tempfile::tempdir_in("/dev/shm").unwrap();
    chmod(reference.path(), 0o755);
    let m = Mounted::with(|o| o.allow_other = true);
    chmod(&m.dir, 0o755);
    let expected = expected_failures();
    let (mut passed, mut unexpected, mut fixed) = (0, Vec::new(), Vec::new());
    for (name, case) in CASES {
        let want = run(reference.path(), &m.dir, name, *case);
        let got = run(&m.dir, reference.path(), name, *case);
        let listed = expected.iter().any(|e| e == name);
        if want == got {
            passed += 1;
            if listed {
                fixed.push(*name);
            }
        } else {
            let diff: Vec<String> = want
                .iter()
                .zip(got.iter().chain(std::iter::repeat(&String::new())))
                .filter(|(w, g)| w != g)
                .map(|(w, g)| format!("    tmpfs {w:<40} mount {g}"))
                .collect();
            eprintln!("{name}: differs\n{}", diff.join("\n"));
            if !listed {
                unexpected.push(*name);
            }
        }
    }
    eprintln!(
        "conformance: {passed} of {} cases as tmpfs ({:.0} %)",
        CASES.len(),
        passed as f64 * 100.0 / CASES.len() as f64
    );
    assert!(
        unexpected.is_empty(),
        "failing and not in expected-failures.txt: {unexpected:?}"
    );
    assert!(
        fixed.is_empty(),
        "passing now: remove from expected-failures.txt: {fixed:?}"
    );
    for e in &expected {
        assert!(
            CASES.iter().any(|(n, _)| n == e),
            "expected-failures.txt names no case: {e}"
        );
    }
}
