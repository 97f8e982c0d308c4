//! `verify_import`: compares every imported commit's tree with git's, file by file.

use std::collections::HashSet;
use std::path::Path;

use gix::objs::Kind;
use hero_store::{EntryKind, ObjectId, Repo};

use crate::error::ImportError;
use crate::gitfmt::{self, GitId};
use crate::mapping::{MappedKind, lookup_git};
use crate::reader::GitReader;

/// How to verify.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Stop collecting differences after this many.
    pub max_differences: usize,
    /// The import dropped the entries git refuses
    /// ([`crate::ImportOptions::skip_unsafe_paths`]): their absence is no difference.
    pub skip_unsafe_paths: bool,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            max_differences: 1000,
            skip_unsafe_paths: false,
        }
    }
}

/// One difference between git and the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The git commit whose tree differs.
    pub commit: GitId,
    /// The path inside it (bytes, `/`-separated; empty for the commit itself).
    pub path: Vec<u8>,
    /// What differs.
    pub what: String,
}

/// What a verification found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Git commits compared.
    pub commits: u64,
    /// Distinct trees compared.
    pub trees: u64,
    /// Distinct files (blobs) compared.
    pub files: u64,
    /// Differences found (at most [`VerifyOptions::max_differences`]).
    pub differences: Vec<Difference>,
}

impl VerifyReport {
    /// Whether git and the store agree everywhere.
    pub fn is_ok(&self) -> bool {
        self.differences.is_empty()
    }
}

/// Pairs already compared are remembered up to this many.
const SEEN_MAX: usize = 1 << 20;

struct Verifier<'a> {
    repo: &'a Repo,
    git: GitReader,
    opts: &'a VerifyOptions,
    refname: String,
    commit: GitId,
    trees_seen: HashSet<(GitId, ObjectId)>,
    blobs_seen: HashSet<(GitId, ObjectId)>,
    report: VerifyReport,
}

/// Walks every branch and tag of the git repository at `git_dir` and checks that each
/// commit was imported into `repo` with the same tree: same names, same kinds (file,
/// executable, symlink, directory, gitlink), same content (BLAKE3 of git's blob equals the
/// store's content id, same size, content present in the store).
pub fn verify_import(
    repo: &Repo,
    git_dir: &Path,
    opts: &VerifyOptions,
) -> Result<VerifyReport, ImportError> {
    let git = GitReader::open(git_dir)?;
    let (refs, _) = git.refs()?;
    let mut v = Verifier {
        repo,
        git,
        opts,
        refname: String::new(),
        commit: gitfmt::EMPTY_TREE,
        trees_seen: HashSet::new(),
        blobs_seen: HashSet::new(),
        report: VerifyReport::default(),
    };
    let mut seen: HashSet<GitId> = HashSet::new();
    for r in &refs {
        v.refname = r.name.clone();
        let mut id = r.target;
        // Peel annotated tags.
        let mut start = None;
        for _ in 0..64 {
            let (kind, raw) = v.git.read_any(id, &r.name)?;
            match kind {
                Kind::Commit => {
                    start = Some(id);
                    break;
                }
                Kind::Tag => match gitfmt::parse_tag(&raw) {
                    Some(t) => id = t.target,
                    None => break,
                },
                _ => break,
            }
        }
        let mut stack: Vec<GitId> = start.into_iter().collect();
        while let Some(c) = stack.pop() {
            if !seen.insert(c) {
                continue;
            }
            let raw = v.git.read(c, Kind::Commit, &r.name)?;
            let Some(gc) = gitfmt::parse_commit(&raw) else {
                v.diff(c, b"", "git commit does not parse".to_owned());
                continue;
            };
            stack.extend(gc.parents.iter().copied().filter(|p| !seen.contains(p)));
            v.commit(c, &gc)?;
        }
    }
    Ok(v.report)
}

impl Verifier<'_> {
    fn diff(&mut self, commit: GitId, path: &[u8], what: String) {
        if self.report.differences.len() < self.opts.max_differences {
            self.report.differences.push(Difference {
                commit,
                path: path.to_vec(),
                what,
            });
        }
    }

    fn commit(&mut self, id: GitId, gc: &gitfmt::GitCommit) -> Result<(), ImportError> {
        self.report.commits += 1;
        self.commit = id;
        let Some(m) = lookup_git(self.repo, &id)? else {
            self.diff(id, b"", "commit was not imported".to_owned());
            return Ok(());
        };
        if m.kind != MappedKind::Commit {
            self.diff(
                id,
                b"",
                "mapped to something other than a commit".to_owned(),
            );
            return Ok(());
        }
        let sc = match self.repo.commit(&m.id) {
            Ok(c) => c,
            Err(e) => {
                self.diff(id, b"", format!("store commit {}: {e}", m.id.short()));
                return Ok(());
            }
        };
        if sc.parents.len() != gc.parents.len() {
            self.diff(id, b"", "parent count differs".to_owned());
        }
        if sc.message != gc.message {
            self.diff(id, b"", "message differs".to_owned());
        }
        self.tree(gc.tree, sc.tree, &mut Vec::new())
    }

    fn tree(&mut self, git: GitId, store: ObjectId, path: &mut Vec<u8>) -> Result<(), ImportError> {
        if self.trees_seen.contains(&(git, store)) {
            return Ok(());
        }
        let commit = self.commit;
        let raw = self.git.read(git, Kind::Tree, &self.refname)?;
        let Some(mut entries) = gitfmt::parse_tree(&raw) else {
            self.diff(commit, path, format!("git tree {git} does not parse"));
            return Ok(());
        };
        if self.opts.skip_unsafe_paths {
            entries.retain(|e| {
                hero_store::validate_name(&e.name).is_ok() && !hero_store::is_git_unsafe(&e.name)
            });
        }
        let st = match self.repo.tree(&store) {
            Ok(t) => t,
            Err(e) => {
                self.diff(commit, path, format!("store tree {}: {e}", store.short()));
                return Ok(());
            }
        };
        self.report.trees += 1;
        let base = path.len();
        for e in &entries {
            path.truncate(base);
            if base > 0 {
                path.push(b'/');
            }
            path.extend_from_slice(&e.name);
            let Some(se) = st.get(&e.name) else {
                self.diff(commit, path, "missing in the store".to_owned());
                continue;
            };
            let kind = gitfmt::kind_of_mode(&e.mode);
            if kind != Some(se.kind) {
                self.diff(
                    commit,
                    path,
                    format!(
                        "git mode {} but store kind {}",
                        String::from_utf8_lossy(&e.mode),
                        se.kind.as_str()
                    ),
                );
                continue;
            }
            match se.kind {
                EntryKind::Dir => {
                    let (sid, n) = (se.id, se.size);
                    self.tree(e.id, sid, path)?;
                    let _ = n;
                }
                EntryKind::Gitlink => {
                    if se.id.0[..20] != e.id.0 || se.size != 20 {
                        self.diff(commit, path, "gitlink id differs".to_owned());
                    }
                }
                _ => {
                    let (sid, size) = (se.id, se.size);
                    self.blob(e.id, sid, size, path)?;
                }
            }
        }
        path.truncate(base);
        for se in &st.entries {
            if !entries.iter().any(|e| e.name == se.name) {
                let mut p = path.clone();
                if base > 0 {
                    p.push(b'/');
                }
                p.extend_from_slice(&se.name);
                self.diff(commit, &p, "in the store but not in git".to_owned());
            }
        }
        if st.entries.len() != entries.len() {
            self.diff(commit, path, "entry count differs".to_owned());
        }
        if self.trees_seen.len() >= SEEN_MAX {
            self.trees_seen.clear();
        }
        self.trees_seen.insert((git, store));
        Ok(())
    }

    fn blob(
        &mut self,
        git: GitId,
        store: ObjectId,
        size: u64,
        path: &[u8],
    ) -> Result<(), ImportError> {
        if self.blobs_seen.contains(&(git, store)) {
            return Ok(());
        }
        let commit = self.commit;
        let bytes = self.git.read(git, Kind::Blob, &self.refname)?;
        self.report.files += 1;
        if ObjectId::of(&bytes) != store {
            self.diff(commit, path, "content differs".to_owned());
        } else if bytes.len() as u64 != size {
            self.diff(commit, path, "size differs".to_owned());
        } else if !self.repo.has_object(&store)? {
            self.diff(commit, path, "content missing from the store".to_owned());
        }
        if self.blobs_seen.len() >= SEEN_MAX {
            self.blobs_seen.clear();
        }
        self.blobs_seen.insert((git, store));
        Ok(())
    }
}
