//! Path scopes: small globs over repository paths.
//!
//! A scope is a relative path whose segments (separated by `/`) may use `*` (any run of
//! characters within one segment), `?` (one character) and a whole segment `**` (any number of
//! segments, zero included). `services/web/**` covers everything below `services/web` and the
//! directory itself; `docs/*.md` covers Markdown files directly in `docs`.

/// The longest scope, in bytes.
pub const MAX_SCOPE_LEN: usize = 256;

/// Why a scope is not a valid glob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// Empty, or longer than [`MAX_SCOPE_LEN`].
    #[error("a scope must be 1 to {MAX_SCOPE_LEN} bytes long")]
    Length,
    /// A leading or trailing `/`, an empty segment, `.` or `..`.
    #[error("scope {0:?} has an empty, `.` or `..` segment")]
    Segment(String),
    /// `**` inside a segment (it must be a whole segment).
    #[error("scope {0:?} uses `**` inside a segment")]
    DoubleStar(String),
    /// A NUL or control character.
    #[error("scope {0:?} contains a control character")]
    Control(String),
}

/// Checks that `scope` is a valid glob.
pub fn check_scope(scope: &str) -> Result<(), ScopeError> {
    if scope.is_empty() || scope.len() > MAX_SCOPE_LEN {
        return Err(ScopeError::Length);
    }
    if scope.chars().any(char::is_control) {
        return Err(ScopeError::Control(scope.to_owned()));
    }
    for seg in scope.split('/') {
        if seg.is_empty() || seg == "." || seg == ".." {
            return Err(ScopeError::Segment(scope.to_owned()));
        }
        if seg != "**" && seg.contains("**") {
            return Err(ScopeError::DoubleStar(scope.to_owned()));
        }
    }
    Ok(())
}

/// Whether `path` (a repository path, segments separated by `/`, no leading `/`) lies inside
/// `scope`. Dynamic programming over segments: time is bounded by the product of the segment
/// counts, whatever the pattern.
pub fn scope_matches(scope: &str, path: &str) -> bool {
    let pat: Vec<&str> = scope.split('/').collect();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    // reach[j]: the first i pattern segments can match the first j path segments.
    let mut reach = vec![false; segs.len() + 1];
    reach[0] = true;
    for p in &pat {
        let mut next = vec![false; segs.len() + 1];
        if *p == "**" {
            let mut any = false;
            for j in 0..=segs.len() {
                any |= reach[j];
                next[j] = any;
            }
        } else {
            for j in 0..segs.len() {
                if reach[j] && segment_matches(p, segs[j]) {
                    next[j + 1] = true;
                }
            }
        }
        reach = next;
    }
    reach[segs.len()]
}

/// `*` and `?` within one segment (iterative, with one backtrack point: linear-ish time).
pub fn segment_matches(pat: &str, name: &str) -> bool {
    let p: Vec<char> = pat.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(c) if *c == '?' || *c == n[ni] => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(scope_matches("services/web/**", "services/web/index.html"));
        assert!(scope_matches("services/web/**", "services/web/a/b/c"));
        assert!(scope_matches("services/web/**", "services/web"));
        assert!(!scope_matches("services/web/**", "services/webby/x"));
        assert!(!scope_matches("services/web/**", "services"));
        assert!(scope_matches("docs/*.md", "docs/a.md"));
        assert!(!scope_matches("docs/*.md", "docs/sub/a.md"));
        assert!(scope_matches("**/*.md", "a/b/c.md"));
        assert!(scope_matches("**/*.md", "c.md"));
        assert!(scope_matches("a?c", "abc"));
        assert!(!scope_matches("a?c", "ac"));
        assert!(scope_matches("*a*b", "xxaxxb"));
        assert!(!scope_matches("*a*b", "xxaxxbx"));
        assert!(check_scope("services/web/**").is_ok());
        assert!(check_scope("/x").is_err());
        assert!(check_scope("x/").is_err());
        assert!(check_scope("a/../b").is_err());
        assert!(check_scope("a**").is_err());
        assert!(check_scope("").is_err());
    }
}
