//! # hero-formats
//!
//! Parsers, paths, queries and semantic diffs for the structured files a hero store keeps:
//! TOML configuration, Markdown (front matter, sections, decision-record fields) and
//! HeroScript. Bytes in, values out: no I/O, no environment, no printing, so the CLI, the
//! daemon, a web page and scripts read files the same way.
//!
//! Every format becomes one [`Document`]: a JSON value (`serde_json::Value`) plus the line
//! and column of its values where the parser knows them. Parsing never panics, on any
//! bytes; every [`ParseError`] names a line and a column.
//!
//! ```
//! use hero_formats::{Format, parse, query};
//!
//! let text = b"!!node.define name:n1 ipaddr:'10.0.0.1'\n\
//!              !!node.define name:n2\n    ipaddr:10.0.0.2 // the spare\n";
//! let doc = parse(Format::HeroScript, text)?;
//! assert_eq!(doc.get("node.define[1].ipaddr")?, "10.0.0.2");
//! assert_eq!(doc.get("node.define[name=n1].ipaddr")?, "10.0.0.1");
//! assert_eq!(doc.span("/node/define/1/ipaddr").map(|s| s.line), Some(3));
//! let all = query(&doc.value, "node.define[*].ipaddr")?;
//! assert_eq!(all, serde_json::json!(["10.0.0.1", "10.0.0.2"]));
//!
//! let cargo = parse(Format::Toml, b"[[servers]]\nport = 80\n")?;
//! assert_eq!(cargo.get("servers[0].port")?, 80);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Dependencies, each with default features off: `toml` (the parser the CLI already uses,
//! and its `DeTable` keeps the span of every key and value), `yaml-rust2` (a maintained,
//! pure-Rust YAML 1.2 parser whose event API lets us bound depth and refuse aliases),
//! `serde_json` (the common model) and `thiserror`. Why not the others is in ADR 0024.
#![forbid(unsafe_code)]

mod diff;
mod error;
mod format;
#[doc(hidden)]
pub mod fuzzing;
pub mod heroscript;
pub mod markdown;
mod path;
mod query;
pub mod schema;
mod span;
mod toml_doc;
mod yaml;

use std::collections::BTreeMap;

pub use diff::{Change, diff};
pub use error::{HeroScriptError, ParseError};
pub use format::Format;
pub use heroscript::Script;
pub use path::{GetError, Path, Step, get};
pub use query::{MAX_TOKENS, Query, QueryError, query};
pub use schema::{Mode, Problem, Rule, Schema, SchemaError};
pub use serde_json::Value;
pub use span::Span;

/// Positions of values, by JSON Pointer (RFC 6901) into [`Document::value`].
pub type Spans = BTreeMap<String, Span>;

/// A parsed file: its format, its value in the common model, and where its values are.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The format it was parsed as.
    pub format: Format,
    /// The document model (see each format's module for its shape).
    pub value: Value,
    /// Positions of values, by JSON Pointer into `value` (`/servers/0/port`). TOML and
    /// YAML front matter give every value; HeroScript every action and parameter; Markdown
    /// sections and decision-record fields.
    pub spans: Spans,
}

impl Document {
    /// Where the value at a JSON Pointer starts, when known.
    pub fn span(&self, pointer: &str) -> Option<Span> {
        self.spans.get(pointer).copied()
    }
}

/// Parses `bytes` as `format`. Never panics; a UTF-8 byte order mark is skipped.
pub fn parse(format: Format, bytes: &[u8]) -> Result<Document, ParseError> {
    let text = text(bytes)?;
    match format {
        Format::Toml => toml_doc::parse(text),
        Format::Markdown => markdown::parse(text),
        Format::HeroScript => Ok(Script::parse(text)?.to_document()),
    }
}

/// Parses TOML.
pub fn parse_toml(bytes: &[u8]) -> Result<Document, ParseError> {
    parse(Format::Toml, bytes)
}

/// Parses Markdown with optional front matter.
pub fn parse_markdown(bytes: &[u8]) -> Result<Document, ParseError> {
    parse(Format::Markdown, bytes)
}

/// Parses HeroScript into its actions (with [`Script::to_document`] for the model).
pub fn parse_heroscript(bytes: &[u8]) -> Result<Script, ParseError> {
    Script::parse(text(bytes)?)
}

fn text(bytes: &[u8]) -> Result<&str, ParseError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|source| ParseError::NotUtf8 {
        at: span::utf8_prefix(bytes, source.valid_up_to()),
        source,
    })
}

/// `base` extended by one reference token, escaped (`~` → `~0`, `/` → `~1`).
pub(crate) fn pointer_push(base: &str, token: &str) -> String {
    format!("{base}/{}", token.replace('~', "~0").replace('/', "~1"))
}

/// A JSON Pointer from its tokens.
pub(crate) fn pointer(tokens: &[&str]) -> String {
    tokens
        .iter()
        .fold(String::new(), |acc, t| pointer_push(&acc, t))
}
