//! Parse errors: every one says where, as a 1-based line and column.

use crate::span::Span;

/// Why a text could not be parsed, and where.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The bytes are not UTF-8; `at` is just after the last valid character.
    #[error("{at}: the text is not UTF-8")]
    NotUtf8 {
        /// Where the first invalid byte is.
        at: Span,
        /// The decoder's error.
        #[source]
        source: std::str::Utf8Error,
    },
    /// TOML the `toml` crate refused.
    #[error("TOML, {at}: {message}")]
    Toml {
        /// Where the parser stopped (the start of the text when it gave no span).
        at: Span,
        /// The parser's message, without the quoted source line.
        message: String,
        /// The parser's error.
        #[source]
        source: Box<toml::de::Error>,
    },
    /// YAML front matter that is invalid or uses what front matter does not need.
    #[error("YAML front matter, {at}: {message}")]
    Yaml {
        /// Where, in the whole file.
        at: Span,
        /// What is wrong.
        message: String,
        /// The scanner's error, when it is one.
        #[source]
        source: Option<yaml_rust2::ScanError>,
    },
    /// Front matter opened by `---` or `+++` and never closed.
    #[error("{at}: front matter opened here is never closed (a line `{fence}` is missing)")]
    UnclosedFrontMatter {
        /// Where it opens.
        at: Span,
        /// The closing line expected.
        fence: &'static str,
    },
    /// HeroScript that does not follow the grammar of `docs/heroscript.md`.
    #[error("HeroScript, {at}: {kind}")]
    HeroScript {
        /// Where.
        at: Span,
        /// What.
        kind: HeroScriptError,
    },
    /// Values nested deeper than the parsers follow.
    #[error("{at}: values are nested deeper than {limit} levels")]
    TooDeep {
        /// Where the level past the limit opens.
        at: Span,
        /// The limit.
        limit: usize,
    },
}

impl ParseError {
    /// Where the error is.
    pub fn span(&self) -> Span {
        match self {
            ParseError::NotUtf8 { at, .. }
            | ParseError::Toml { at, .. }
            | ParseError::Yaml { at, .. }
            | ParseError::UnclosedFrontMatter { at, .. }
            | ParseError::HeroScript { at, .. }
            | ParseError::TooDeep { at, .. } => *at,
        }
    }

    /// The 1-based line of the error.
    pub fn line(&self) -> u32 {
        self.span().line
    }

    /// The 1-based column (in characters) of the error.
    pub fn column(&self) -> u32 {
        self.span().column
    }
}

/// What is wrong in a HeroScript text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeroScriptError {
    /// `!!!…`: only two `!` begin an action.
    #[error("`!!!` does not begin an action; write `!!actor.action`")]
    TooManyBangs,
    /// `!!` followed by no name.
    #[error("expected an actor name after `!!`")]
    MissingActor,
    /// `!!actor` with no `.action`.
    #[error("expected `.` and an action name after `!!{actor}`")]
    MissingAction {
        /// The actor named.
        actor: String,
    },
    /// A character that cannot be in an actor or action name.
    #[error("`{found}` cannot be part of an actor or action name (letters, digits, `_` and `-`)")]
    BadNameChar {
        /// The character.
        found: char,
    },
    /// A character that cannot be in a parameter name (before `:`).
    #[error(
        "`{found}` cannot be part of a parameter name (letters, digits, `_`, `-`, `.` and `/`); quote the value if it is a positional argument"
    )]
    BadKeyChar {
        /// The character.
        found: char,
    },
    /// `:value` with no name before it.
    #[error("a parameter needs a name before `:`")]
    EmptyKey,
    /// A quoted value that never ends.
    #[error("the value quoted with {quote} at {opened} is never closed")]
    UnclosedQuote {
        /// The quote character.
        quote: char,
        /// Where the quote opens.
        opened: Span,
    },
    /// A `[` list that never ends.
    #[error("the list opened with `[` at {opened} is never closed by `]`")]
    UnclosedList {
        /// Where `[` is.
        opened: Span,
    },
    /// Something glued to a quoted value or a `[…]` list.
    #[error("expected a space or the end of the line after a value, found `{found}`")]
    AfterValue {
        /// The character found.
        found: char,
    },
    /// Inside `[…]`, something other than `,` or `]` after an item.
    #[error("expected `,` or `]` after a list item, found `{found}`")]
    InList {
        /// The character found.
        found: char,
    },
    /// The same parameter twice in one action.
    #[error("parameter `{key}` is given twice (first at {first})")]
    DuplicateKey {
        /// The parameter name (lowercase).
        key: String,
        /// Where it is first given.
        first: Span,
    },
    /// `_args:` (the document model's name for positional arguments).
    #[error("`_args` is reserved for positional arguments")]
    ReservedKey,
}
