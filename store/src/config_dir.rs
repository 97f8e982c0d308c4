//! The directory of a repository that configures the nodes serving it (`.hero/`: the
//! daemon's configuration, whose hooks run as the daemon's account). Writes there carry that
//! account's authority, so the mount and the share let only it write there (ADR 0022).

/// The configuration directory at the root of a branch.
pub const CONFIG_DIR: &str = ".hero";

/// Whether `path` (a path in a branch, `a/b` or `/a/b`, as text or bytes) is the
/// configuration directory or inside it. Empty and `.` components are skipped.
pub fn is_config_path(path: impl AsRef<[u8]>) -> bool {
    path.as_ref()
        .split(|&b| b == b'/')
        .find(|c| !c.is_empty() && *c != b".")
        .is_some_and(|first| first == CONFIG_DIR.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_paths() {
        assert!(is_config_path(".hero"));
        assert!(is_config_path("/.hero/"));
        assert!(is_config_path(".hero/daemon.toml"));
        assert!(is_config_path(b"//./.hero/x/y".as_slice()));
        assert!(!is_config_path(""));
        assert!(!is_config_path("/"));
        assert!(!is_config_path(".heroignore"));
        assert!(!is_config_path("a/.hero/daemon.toml"));
        assert!(!is_config_path(".HERO/daemon.toml"));
    }
}
