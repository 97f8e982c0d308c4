//! Files and directories beside a repository, readable only by the account that made them
//! (ADR 0022): files 0600 and directories 0700 whatever the umask, and
//! files that must never be seen half-written (keys, tokens) created atomically.
//!
//! Every mode is set explicitly after creation: the umask can only take bits away, so a
//! strict umask (0277) would otherwise leave a file its owner cannot write again.

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The mode of every file the store and its adapters create beside a repository.
pub const FILE_MODE: u32 = 0o600;
/// The mode of every directory they create there (the mount's spill directories).
pub const DIR_MODE: u32 = 0o700;

/// Creates `path`, which must not exist, for reading and writing with mode 0600.
pub fn create_new(path: &Path) -> io::Result<File> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)?;
    f.set_permissions(Permissions::from_mode(FILE_MODE))?;
    Ok(f)
}

/// Creates the directory `path` and its missing parents, each it creates with mode 0700.
/// Directories that exist already are left as they are (see [`tighten`]).
pub fn create_dir_all(path: &Path) -> io::Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir_all(parent)?;
    }
    match DirBuilder::new().mode(DIR_MODE).create(path) {
        Ok(()) => std::fs::set_permissions(path, Permissions::from_mode(DIR_MODE)),
        // Another process made it meanwhile.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Takes group and other permissions away from `path` (a file: 0600, a directory: 0700,
/// other bits such as the owner's kept) when this process's account owns it and they are
/// set; returns whether the mode changed. A path owned by another account is left alone.
pub fn tighten(path: &Path) -> io::Result<bool> {
    let meta = std::fs::symlink_metadata(path)?;
    if meta.file_type().is_symlink() || meta.uid() != rustix::process::geteuid().as_raw() {
        return Ok(false);
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 == 0 {
        return Ok(false);
    }
    std::fs::set_permissions(path, Permissions::from_mode(mode & 0o700))?;
    Ok(true)
}

/// Like [`tighten`], logging a change at warn level with `what` the path is.
pub fn tighten_logged(path: &Path, what: &str) {
    match tighten(path) {
        Ok(true) => tracing::warn!(
            path = %path.display(),
            "{what} was readable by other accounts; its mode is now owner-only"
        ),
        Ok(false) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "tightening the mode of {what}")
        }
    }
}

/// What [`write_new_atomically`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteNew {
    /// This call created the file with the given contents.
    Created,
    /// A file was already there (another process's, perhaps created meanwhile); it was left
    /// as it is.
    Exists,
}

/// Creates `path` with `contents`, mode 0600, so that no process ever sees it missing some of
/// them: the contents go to a temporary file in the same directory, which is synced and then
/// hard-linked to `path` (a link never replaces a file, so among processes that race, the
/// first one's file wins and the others get [`WriteNew::Exists`]).
pub fn write_new_atomically(path: &Path, contents: &[u8]) -> io::Result<WriteNew> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp-{}-{nanos}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f = create_new(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        match std::fs::hard_link(&tmp, path) {
            Ok(()) => {
                // The new name durable too (best effort: some file systems refuse).
                if let Ok(d) = File::open(dir) {
                    let _ = d.sync_all();
                }
                Ok(WriteNew::Created)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(WriteNew::Exists),
            Err(e) => Err(e),
        }
    })();
    let _ = std::fs::remove_file(&tmp);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).map(|m| m.mode() & 0o777).unwrap_or(0)
    }

    #[test]
    fn created_private_and_never_replaced() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let d = dir.path().join("a/b");
        create_dir_all(&d)?;
        assert_eq!(mode(&d), 0o700);
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        let f = d.join("key");
        assert_eq!(write_new_atomically(&f, b"one")?, WriteNew::Created);
        assert_eq!(write_new_atomically(&f, b"two")?, WriteNew::Exists);
        assert_eq!(std::fs::read(&f)?, b"one");
        assert_eq!(mode(&f), 0o600);
        // No temporary file left beside it.
        assert_eq!(std::fs::read_dir(&d)?.count(), 1);
        Ok(())
    }

    #[test]
    fn repository_file_owner_only() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("r.hero");
        drop(crate::Repo::init(&path)?);
        assert_eq!(mode(&path), 0o600);
        // One made wider (by an older version) is tightened when opened.
        std::fs::set_permissions(&path, Permissions::from_mode(0o644))?;
        drop(crate::Repo::open(&path)?);
        assert_eq!(mode(&path), 0o600);
        assert!(matches!(
            crate::Repo::init(&path),
            Err(crate::Error::RepositoryExists(_))
        ));
        Ok(())
    }

    #[test]
    fn wide_modes_tightened() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let f = dir.path().join("f");
        std::fs::write(&f, b"x")?;
        std::fs::set_permissions(&f, Permissions::from_mode(0o664))?;
        assert!(tighten(&f)?);
        assert_eq!(mode(&f), 0o600);
        assert!(!tighten(&f)?);
        let d = dir.path().join("d");
        std::fs::create_dir(&d)?;
        std::fs::set_permissions(&d, Permissions::from_mode(0o755))?;
        assert!(tighten(&d)?);
        assert_eq!(mode(&d), 0o700);
        Ok(())
    }
}
