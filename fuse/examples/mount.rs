//! Mounts a repository until SIGINT or SIGTERM (a stand-in for `heroctl mount`).
//!
//! `cargo run -p hero-fuse --example mount -- <repo> <dir> [--branch NAME] [--read-only]
//! [--allow-other] [--spill-dir DIR] [--spin-us N]`
//! Creates the repository if it does not exist. SIGUSR1 prints the number of inodes held and
//! the requests answered so far, by kind; so does the unmount.

use std::path::PathBuf;
use std::process::ExitCode;

use nix::sys::signal::{SigSet, Signal};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(repo), Some(dir)) = (args.next(), args.next()) else {
        eprintln!(
            "usage: mount <repo> <dir> [--branch NAME] [--read-only] [--allow-other] \
             [--spill-dir DIR] [--spin-us N]"
        );
        return ExitCode::from(2);
    };
    let mut opts = hero_fuse::MountOptions::new(PathBuf::from(repo), PathBuf::from(dir));
    while let Some(a) = args.next() {
        match a.to_str() {
            Some("--branch") => match args.next().and_then(|b| b.into_string().ok()) {
                Some(b) => opts.branch = b,
                None => {
                    eprintln!("--branch needs a name");
                    return ExitCode::from(2);
                }
            },
            Some("--read-only") => opts.read_only = true,
            Some("--spin-us") => match args.next().and_then(|n| n.to_str()?.parse().ok()) {
                Some(us) => opts.spin = std::time::Duration::from_micros(us),
                None => {
                    eprintln!("--spin-us needs a number of microseconds");
                    return ExitCode::from(2);
                }
            },
            Some("--allow-other") => opts.allow_other = true,
            Some("--spill-dir") => match args.next() {
                Some(d) => opts.spill_dir = Some(PathBuf::from(d)),
                None => {
                    eprintln!("--spill-dir needs a directory");
                    return ExitCode::from(2);
                }
            },
            _ => {
                eprintln!("unknown argument {a:?}");
                return ExitCode::from(2);
            }
        }
    }
    // Block the signals in every thread (the mount's threads inherit this) and wait for them.
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGUSR1);
    if let Err(e) = signals.thread_block() {
        eprintln!("blocking signals: {e}");
        return ExitCode::FAILURE;
    }
    if !opts.repo.exists()
        && let Err(e) = hero_store::Repo::init(&opts.repo)
    {
        eprintln!("{e}");
        return ExitCode::FAILURE;
    }
    let handle = match hero_fuse::mount(opts) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    println!("mounted at {}", handle.mountpoint().display());
    loop {
        match signals.wait() {
            // SIGUSR1: report the inode table size (for fuse/benches/mount_large.sh).
            Ok(Signal::SIGUSR1) => {
                println!("inodes: {}", handle.inode_count());
                print_requests(&handle);
            }
            Ok(sig) => {
                eprintln!("{sig}: unmounting");
                break;
            }
            Err(e) => {
                eprintln!("waiting for a signal: {e}");
                break;
            }
        }
    }
    print_requests(&handle);
    match handle.unmount() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// One line per kind of request: `requests: NAME COUNT BUSY_NS` (for fuse/benches/requests.sh).
fn print_requests(handle: &hero_fuse::MountHandle) {
    for c in handle.request_stats() {
        println!("requests: {} {} {}", c.name, c.count, c.busy.as_nanos());
    }
    println!("requests: end");
}
