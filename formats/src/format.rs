//! Which parser a file needs.

/// The structured formats this crate reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Format {
    /// TOML (`.toml`).
    Toml,
    /// Markdown with optional front matter (`.md`, `.markdown`).
    Markdown,
    /// HeroScript (`.hero`, `.heroscript`, and a file named `.heroscript`).
    HeroScript,
}

impl Format {
    /// All formats.
    pub const ALL: [Format; 3] = [Format::Toml, Format::Markdown, Format::HeroScript];

    /// The format named by a path's extension (case-insensitive), if any.
    ///
    /// A file named just `.heroscript` (as Hero tools keep beside their code) is HeroScript.
    pub fn from_path(path: &str) -> Option<Format> {
        let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
        let lower = name.to_ascii_lowercase();
        if lower == ".heroscript" {
            return Some(Format::HeroScript);
        }
        let (_, ext) = lower.rsplit_once('.')?;
        match ext {
            "toml" => Some(Format::Toml),
            "md" | "markdown" => Some(Format::Markdown),
            "hero" | "heroscript" => Some(Format::HeroScript),
            _ => None,
        }
    }

    /// The format of a file from its path and, when the extension names none, its content:
    /// a text with a line that starts (after indentation) with `!!name.name` is HeroScript.
    ///
    /// Content never overrides an extension: a `.md` file is Markdown even when it holds
    /// actions (parse it with [`Format::HeroScript`] explicitly to read them; the HeroScript
    /// parser skips the prose around them).
    ///
    /// `.hero` is also the extension of hero store repositories, which are binary: a `.hero`
    /// file that is not text (not UTF-8, or holding a NUL byte) is no format at all.
    pub fn detect(path: &str, bytes: &[u8]) -> Option<Format> {
        if let Some(format) = Format::from_path(path) {
            let binary = std::str::from_utf8(bytes).is_err() || bytes.contains(&0);
            if format == Format::HeroScript && binary {
                return None;
            }
            return Some(format);
        }
        let text = std::str::from_utf8(bytes).ok()?;
        text.lines()
            .any(looks_like_action)
            .then_some(Format::HeroScript)
    }

    /// The lowercase name (`toml`, `markdown`, `heroscript`).
    pub fn name(self) -> &'static str {
        match self {
            Format::Toml => "toml",
            Format::Markdown => "markdown",
            Format::HeroScript => "heroscript",
        }
    }

    /// The format with this name (as [`Format::name`] gives, or `md`, `hero`), any case.
    pub fn from_name(name: &str) -> Option<Format> {
        match name.to_ascii_lowercase().as_str() {
            "toml" => Some(Format::Toml),
            "markdown" | "md" => Some(Format::Markdown),
            "heroscript" | "hero" => Some(Format::HeroScript),
            _ => None,
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

fn looks_like_action(line: &str) -> bool {
    let Some(rest) = line.trim_start().strip_prefix("!!") else {
        return false;
    };
    let name = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    let head = rest.split([' ', '\t']).next().unwrap_or("");
    match head.split_once('.') {
        Some((actor, action)) => name(actor) && name(action),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_name_formats_and_content_names_heroscript_only_without_one() {
        assert_eq!(Format::from_path("a/b/Cargo.toml"), Some(Format::Toml));
        assert_eq!(
            Format::from_path("docs/adr/0001-x.MD"),
            Some(Format::Markdown)
        );
        assert_eq!(Format::from_path("x.markdown"), Some(Format::Markdown));
        assert_eq!(
            Format::from_path("infra/nodes.hero"),
            Some(Format::HeroScript)
        );
        assert_eq!(
            Format::from_path("infra/nodes.heroscript"),
            Some(Format::HeroScript)
        );
        assert_eq!(
            Format::from_path("lib/x/.heroscript"),
            Some(Format::HeroScript)
        );
        assert_eq!(Format::from_path("README"), None);
        assert_eq!(Format::from_path("archive.tar.gz"), None);
        assert_eq!(
            Format::detect("setup", b"text\n  !!node.define name:x\n"),
            Some(Format::HeroScript)
        );
        assert_eq!(
            Format::detect("notes.md", b"!!node.define\n"),
            Some(Format::Markdown)
        );
        assert_eq!(Format::detect("setup", b"!! not an action\n"), None);
        assert_eq!(Format::detect("setup", b"!!node\n"), None);
        assert_eq!(Format::detect("blob", &[0xff, 0xfe]), None);
    }

    #[test]
    fn a_binary_hero_file_is_a_repository_not_a_script() {
        assert_eq!(
            Format::detect("backup/store.hero", b"redb\x1a\n\0\0\x01"),
            None
        );
        assert_eq!(Format::detect("old.hero", &[0xff, 0x00, 0x12]), None);
        assert_eq!(
            Format::detect("nodes.hero", b"!!node.define name:a\n"),
            Some(Format::HeroScript)
        );
        // Only `.hero` is ambiguous: a binary `.toml` is still offered to the TOML parser,
        // which reports it.
        assert_eq!(Format::detect("x.toml", &[0xff]), Some(Format::Toml));
    }
}
