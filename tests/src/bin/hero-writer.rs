//! Test helper: commits `COUNT` one-file changes to `BRANCH` of the repository at `REPO`, each
//! writing `PREFIX-N`, as a separate process would (the mount, the share, the daemon).
//!
//! Usage: `hero-writer REPO BRANCH PREFIX COUNT [BIG_MIB]`. With BIG_MIB, instead commits one
//! file of that many MiB (for crash tests) and prints `writing` before it starts.

use std::io::Write;
use std::process::ExitCode;

use hero_store::{CommitMeta, EntryKind, Expect, Repo, RepoPath, Signature};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hero-writer: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        return Err("usage: hero-writer REPO BRANCH PREFIX COUNT [BIG_MIB]".into());
    }
    let repo = Repo::open(&args[1])?;
    let branch = &args[2];
    let prefix = &args[3];
    let count: usize = args[4].parse()?;
    let sig = Signature {
        name: prefix.as_bytes().to_vec(),
        email: b"writer@example.com".to_vec(),
        time: 1_700_000_000,
        tz_offset_minutes: 0,
    };
    if let Some(mib) = args.get(5) {
        let mib: usize = mib.parse()?;
        println!("writing");
        std::io::stdout().flush()?;
        let mut cs = repo.change_set(branch)?;
        let reader = Pseudo {
            rng: fastrand::Rng::with_seed(12345),
            left: mib << 20,
            read: 0,
        };
        cs.put_reader(
            &RepoPath::parse(format!("{prefix}.bin"))?,
            EntryKind::File,
            reader,
        )?;
        cs.commit(CommitMeta::new(sig, "big"), Expect::Latest)?;
        println!("done");
        return Ok(());
    }
    for i in 0..count {
        let mut cs = repo.change_set(branch)?;
        let path = RepoPath::parse(format!("{prefix}/{i}.txt"))?;
        cs.put_bytes(&path, EntryKind::File, format!("{prefix} {i}\n").as_bytes())?;
        cs.commit(
            CommitMeta::new(sig.clone(), format!("{prefix} {i}")),
            Expect::Latest,
        )?;
    }
    Ok(())
}

/// Pseudo-random bytes, incompressible, without holding them in memory. Says `read N MiB`
/// on stdout each time another 64 MiB were read (a test kills the writer on one of those
/// lines: well into the write, with transactions of its data already committed).
struct Pseudo {
    rng: fastrand::Rng,
    left: usize,
    read: usize,
}

impl std::io::Read for Pseudo {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.left);
        self.rng.fill(&mut buf[..n]);
        self.left -= n;
        let before = self.read >> 26;
        self.read += n;
        if self.read >> 26 > before {
            println!("read {} MiB", self.read >> 20);
            std::io::stdout().flush()?;
        }
        Ok(n)
    }
}
