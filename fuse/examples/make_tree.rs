//! Writes a synthetic branch of `DIRS x FILES` small files (plus one deep file) into a
//! repository, for the large-mount benchmark (`fuse/benches/mount_large.sh`).
//!
//! `cargo run --release -p hero-fuse --example make_tree -- <repo> [DIRS] [FILES]`
//! (default 100 x 1000). Creates the repository if needed; replaces branch `main`.

use std::process::ExitCode;

#[path = "common/tree.rs"]
mod tree;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(repo_path) = args.first() else {
        eprintln!("usage: make_tree <repo> [DIRS] [FILES]");
        return ExitCode::from(2);
    };
    let num = |i: usize, default: usize| match args.get(i) {
        Some(s) => s.parse::<usize>().ok(),
        None => Some(default),
    };
    let (Some(dirs), Some(files)) = (num(1, 100), num(2, 1000)) else {
        eprintln!("DIRS and FILES must be numbers");
        return ExitCode::from(2);
    };
    let started = std::time::Instant::now();
    let res = hero_store::Repo::open_or_init(repo_path)
        .and_then(|repo| tree::build(&repo, "main", dirs, files));
    match res {
        Ok(commit) => {
            println!(
                "{} files in {:.2} s, commit {}",
                dirs * files + 1,
                started.elapsed().as_secs_f64(),
                commit.short()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
