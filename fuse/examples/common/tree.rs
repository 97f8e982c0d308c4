//! Writes a large synthetic branch quickly (one batch, no working directory): used by the
//! `make_tree` example (benchmarks) and by the tests.
#![allow(dead_code)]

use hero_store::{Commit, EntryKind, ObjectId, RefValue, Repo, Signature, Tree, TreeEntry};

/// The deep file's path and content.
pub const DEEP_PATH: &str = "deep/a/b/c/d/e/f/g/leaf.txt";
/// What the deep file holds.
pub const DEEP_CONTENT: &[u8] = b"the deep leaf\n";

/// The content of `d<d>/f<f>`.
pub fn content(d: usize, f: usize) -> String {
    format!("file {d}/{f}\n")
}

/// The path of file `f` of directory `d`.
pub fn path(d: usize, f: usize) -> String {
    format!("d{d:04}/f{f:05}")
}

/// Makes `branch` a single commit holding `dirs` directories of `files` files each, plus
/// [`DEEP_PATH`]. Returns the commit.
pub fn build(repo: &Repo, branch: &str, dirs: usize, files: usize) -> hero_store::Result<ObjectId> {
    let sig = Signature {
        name: b"bench".to_vec(),
        email: b"bench@localhost".to_vec(),
        time: 1_700_000_000,
        tz_offset_minutes: 0,
    };
    repo.batch(|b| {
        let mut root = Vec::with_capacity(dirs + 1);
        for d in 0..dirs {
            let mut entries = Vec::with_capacity(files);
            for f in 0..files {
                let c = content(d, f);
                let id = b.put_blob(c.as_bytes(), None)?;
                entries.push(TreeEntry::new(
                    format!("f{f:05}").into_bytes(),
                    EntryKind::File,
                    id,
                    c.len() as u64,
                ));
            }
            let id = b.put_tree(&Tree { entries }, None)?;
            root.push(TreeEntry::new(
                format!("d{d:04}").into_bytes(),
                EntryKind::Dir,
                id,
                files as u64,
            ));
        }
        // deep/a/.../leaf.txt, built from the leaf up.
        let names: Vec<&str> = DEEP_PATH.split('/').collect();
        let (leaf, dirs_above) = names.split_last().unwrap_or((&"leaf.txt", &[]));
        let mut entry = TreeEntry::new(
            leaf.as_bytes().to_vec(),
            EntryKind::File,
            b.put_blob(DEEP_CONTENT, None)?,
            DEEP_CONTENT.len() as u64,
        );
        for name in dirs_above.iter().rev() {
            let id = b.put_tree(
                &Tree {
                    entries: vec![entry],
                },
                None,
            )?;
            entry = TreeEntry::new(name.as_bytes().to_vec(), EntryKind::Dir, id, 1);
        }
        root.push(entry);
        let tree = b.put_tree(&Tree { entries: root }, None)?;
        let commit = b.put_commit(&Commit {
            tree,
            parents: Vec::new(),
            author: sig.clone(),
            committer: sig,
            message: format!("{} files\n", dirs * files + 1).into_bytes(),
            extra: Vec::new(),
        })?;
        let refname = format!("refs/heads/{branch}");
        let old = repo.branch_head(branch)?.map(RefValue::Commit);
        b.cas_ref(
            &refname,
            old,
            Some(RefValue::Commit(commit)),
            "synthetic tree",
        )?;
        Ok(commit)
    })
}
