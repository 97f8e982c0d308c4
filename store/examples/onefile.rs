//! Benchmark helper: builds a tree of `FILES` files (10 x 10 x 10 directories) in a new
//! repository through the library API, then times `COMMITS` commits that each change one line
//! of one file. Prints JSON. Usage: `onefile REPO FILES COMMITS`.

use std::time::Instant;

use hero_store::{CommitMeta, EntryKind, Expect, Repo, RepoPath, Signature};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        return Err("usage: onefile REPO FILES COMMITS".into());
    }
    let repo = Repo::open_or_init(&args[1])?;
    let files: usize = args[2].parse()?;
    let commits: usize = args[3].parse()?;
    let sig = Signature {
        name: b"bench".to_vec(),
        email: b"bench@example.com".to_vec(),
        time: 1_700_000_000,
        tz_offset_minutes: 0,
    };
    let path_of = |i: usize| {
        format!(
            "d{}/e{}/f{}/file{}.txt",
            i % 10,
            (i / 10) % 10,
            (i / 100) % 10,
            i
        )
    };
    let t = Instant::now();
    let mut cs = repo.change_set("main")?;
    for i in 0..files {
        cs.put_bytes(
            &RepoPath::parse(path_of(i))?,
            EntryKind::File,
            format!("line one of {i}\nline two\n").as_bytes(),
        )?;
    }
    cs.commit(CommitMeta::new(sig.clone(), "tree"), Expect::Latest)?;
    let setup = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for c in 0..commits {
        let mut cs = repo.change_set("main")?;
        let i = (c * 7919) % files;
        cs.put_bytes(
            &RepoPath::parse(path_of(i))?,
            EntryKind::File,
            format!("line one of {i} changed {c}\nline two\n").as_bytes(),
        )?;
        cs.commit(
            CommitMeta::new(sig.clone(), format!("change {c}")),
            Expect::Latest,
        )?;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{{\"files\": {files}, \"setup_secs\": {setup:.3}, \"commits\": {commits}, \"secs\": {secs:.3}, \"commits_per_sec\": {:.1}}}",
        commits as f64 / secs
    );
    Ok(())
}
