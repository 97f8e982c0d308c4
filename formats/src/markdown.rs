//! Markdown: front matter, headings as sections, and the fields of decision records.
//!
//! A careful line scanner rather than a CommonMark parser: we need each heading's text,
//! level and line and the raw text under it, not rendered HTML. The scanner knows what can
//! hide or fake a heading: fenced code blocks (```` ``` ```` and `~~~`, any length, closed by
//! a fence at least as long), ATX headings (`#` to `######` after at most three spaces, an
//! optional closing run of `#`), and setext headings (a paragraph underlined with `===` or
//! `---`; a line of dashes after a blank line or a list item is a thematic break). Inline
//! markup in heading text is kept as written.
//!
//! The document model (a JSON object):
//! - `front_matter`: the YAML (`---`) or TOML (`+++`) block at the very top, when present;
//! - `title`: front matter's `title`, else the first level-1 heading;
//! - `status`, `date`: decision-record fields, from front matter (`status:`), else from a
//!   `Status: …` line (also `* Status: …`, `**Status:** …`), else from the first line of a
//!   `## Status` section; kept as written;
//! - `supersedes`, `superseded_by`: lists of references from `Supersedes …` and
//!   `Superseded by …` lines (anywhere, also as a status), or front matter: link targets
//!   (`0003-use-x.md`) when the line has links, else `.md` paths, else ADR numbers padded to
//!   four digits (`ADR-3` → `"0003"`);
//! - `sections`: every heading in order as `{heading, level, slug, text}`, where `text` is the
//!   raw text under the heading up to the next heading of the same or a higher level
//!   (subsections included), blank lines at both ends removed.

use serde_json::{Map, Value};

use crate::error::ParseError;
use crate::span::Span;
use crate::{Document, Format, Spans};

/// A heading and the text under it (the model holds them as `sections`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Section {
    /// The heading's text, trimmed, inline markup kept.
    pub heading: String,
    /// 1 to 6.
    pub level: u8,
    /// The GitHub-style anchor: lowercase, spaces to `-`, punctuation dropped.
    pub slug: String,
    /// The raw text under the heading, subsections included.
    pub text: String,
    /// Where the heading starts.
    pub span: Span,
}

/// GitHub-style anchor of a heading: lowercase letters and digits, `-` and `_` kept,
/// spaces become `-`, everything else is dropped.
pub fn slug(heading: &str) -> String {
    let mut out = String::new();
    for c in heading.trim().chars() {
        if c.is_alphanumeric() || c == '-' || c == '_' {
            out.extend(c.to_lowercase());
        } else if c == ' ' {
            out.push('-');
        }
    }
    out
}

/// A key as `get` compares it loosely (Markdown's first step): lowercase, with `-` and
/// spaces read as `_`.
pub(crate) fn normalize_key(key: &str) -> String {
    key.trim()
        .chars()
        .map(|c| match c {
            ' ' | '-' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

pub(crate) fn parse(text: &str) -> Result<Document, ParseError> {
    let mut spans = Spans::default();
    let mut root = Map::new();
    let (front, body, body_first_line) = front_matter(text, &mut spans)?;
    let lines: Vec<&str> = body
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let line_no = |i: usize| body_first_line.saturating_add(u32::try_from(i).unwrap_or(u32::MAX));
    let scan = scan(&lines);

    let sections: Vec<Section> = scan
        .headings
        .iter()
        .enumerate()
        .map(|(n, h)| {
            let end = scan
                .headings
                .iter()
                .skip(n + 1)
                .find(|next| next.level <= h.level)
                .map_or(lines.len(), |next| next.start);
            Section {
                heading: h.text.clone(),
                level: h.level,
                slug: slug(&h.text),
                text: trim_blank_lines(lines.get(h.end + 1..end).unwrap_or(&[])),
                span: Span {
                    line: line_no(h.start),
                    column: 1,
                },
            }
        })
        .collect();

    // Title.
    let front_title = front
        .as_ref()
        .and_then(|f| field(f, "title"))
        .and_then(|v| v.as_str().map(str::to_string));
    let title = front_title.or_else(|| {
        sections
            .iter()
            .find(|s| s.level == 1)
            .map(|s| s.heading.clone())
    });
    if let Some(title) = title {
        if let Some(s) = sections.iter().find(|s| s.level == 1) {
            spans.insert("/title".to_string(), s.span);
        }
        root.insert("title".to_string(), Value::String(title));
    }

    // Decision-record fields.
    let mut adr = Adr::default();
    if let Some(f) = &front {
        for (name, slot) in [("status", &mut adr.status), ("date", &mut adr.date)] {
            if let Some(v) = field(f, name) {
                *slot = Some((scalar_text(v), spans_of(&spans, name)));
            }
        }
        if let Some(v) = field(f, "status") {
            adr.superseded_by.extend(superseded_by(&scalar_text(v)));
        }
        for (name, list) in [
            ("supersedes", &mut adr.supersedes),
            ("superseded_by", &mut adr.superseded_by),
        ] {
            if let Some(v) = field(f, name) {
                let items: Vec<String> = match v {
                    Value::Array(items) => items.iter().map(scalar_text).collect(),
                    other => vec![scalar_text(other)],
                };
                for item in items {
                    list.extend(references(&item));
                }
            }
        }
    }
    for (i, line) in lines.iter().enumerate() {
        if scan.in_code.get(i).copied().unwrap_or(true) {
            continue;
        }
        let at = Span {
            line: line_no(i),
            column: 1,
        };
        if let Some((label, value)) = labelled(line) {
            match label.as_str() {
                "status" if adr.status.is_none() => {
                    adr.superseded_by.extend(superseded_by(line));
                    adr.status = Some((value, Some(at)));
                }
                "date" if adr.date.is_none() => adr.date = Some((value, Some(at))),
                _ => {}
            }
        }
        // Links are kept: their targets are the references.
        let cleaned = unmarked(line);
        if let Some(rest) = strip_prefix_ci(&cleaned, "superseded by") {
            adr.superseded_by.extend(references(rest));
        } else if let Some(rest) = strip_prefix_ci(&cleaned, "supersedes") {
            adr.supersedes.extend(references(rest));
        }
    }
    for section in &sections {
        let name = section.heading.trim().to_lowercase();
        let slot = match name.as_str() {
            "status" => &mut adr.status,
            "date" => &mut adr.date,
            _ => continue,
        };
        if slot.is_none()
            && let Some(first) = section.text.lines().find(|l| !l.trim().is_empty())
        {
            *slot = Some((clean(first), Some(section.span)));
            if name == "status" {
                adr.superseded_by.extend(superseded_by(first));
            }
        }
    }
    adr.insert(&mut root, &mut spans);

    if let Some(front) = front {
        root.insert("front_matter".to_string(), front);
    }
    let mut list = Vec::with_capacity(sections.len());
    for (i, s) in sections.iter().enumerate() {
        spans.insert(format!("/sections/{i}"), s.span);
        let mut object = Map::new();
        object.insert("heading".to_string(), Value::String(s.heading.clone()));
        object.insert("level".to_string(), Value::from(s.level));
        object.insert("slug".to_string(), Value::String(s.slug.clone()));
        object.insert("text".to_string(), Value::String(s.text.clone()));
        list.push(Value::Object(object));
    }
    root.insert("sections".to_string(), Value::Array(list));
    Ok(Document {
        format: Format::Markdown,
        value: Value::Object(root),
        spans,
    })
}

#[derive(Default)]
struct Adr {
    status: Option<(String, Option<Span>)>,
    date: Option<(String, Option<Span>)>,
    supersedes: Vec<String>,
    superseded_by: Vec<String>,
}

impl Adr {
    fn insert(mut self, root: &mut Map<String, Value>, spans: &mut Spans) {
        if let Some((status, at)) = self.status.take() {
            if let Some(at) = at {
                spans.insert("/status".to_string(), at);
            }
            root.insert("status".to_string(), Value::String(status));
        }
        if let Some((date, at)) = self.date.take() {
            if let Some(at) = at {
                spans.insert("/date".to_string(), at);
            }
            root.insert("date".to_string(), Value::String(date));
        }
        for (name, mut list) in [
            ("supersedes", self.supersedes),
            ("superseded_by", self.superseded_by),
        ] {
            let mut seen = std::collections::BTreeSet::new();
            list.retain(|r| seen.insert(r.clone()));
            if !list.is_empty() {
                root.insert(
                    name.to_string(),
                    Value::Array(list.into_iter().map(Value::String).collect()),
                );
            }
        }
    }
}

/// `s` without an ASCII `prefix`, compared case-insensitively.
fn strip_prefix_ci<'s>(s: &'s str, prefix: &str) -> Option<&'s str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

/// A front-matter key, case-insensitively, with `-` and ` ` read as `_`.
fn field<'v>(front: &'v Value, name: &str) -> Option<&'v Value> {
    front
        .as_object()?
        .iter()
        .find(|(k, _)| normalize_key(k) == name)
        .map(|(_, v)| v)
}

fn spans_of(spans: &Spans, name: &str) -> Option<Span> {
    spans
        .iter()
        .find(|(k, _)| {
            k.strip_prefix("/front_matter/")
                .is_some_and(|k| normalize_key(k) == name)
        })
        .map(|(_, s)| *s)
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Splits off the front matter: its value, the body and the body's first line number.
fn front_matter<'t>(
    text: &'t str,
    spans: &mut Spans,
) -> Result<(Option<Value>, &'t str, u32), ParseError> {
    let first_end = text.find('\n').unwrap_or(text.len());
    let first = text.get(..first_end).unwrap_or("").trim_end();
    let (closers, fence): (&[&str], &'static str) = match first {
        "---" => (&["---", "..."], "---"),
        "+++" => (&["+++"], "+++"),
        _ => return Ok((None, text, 1)),
    };
    let content_start = (first_end + 1).min(text.len());
    let mut offset = content_start;
    let mut line = 2u32;
    loop {
        let rest = text.get(offset..).unwrap_or("");
        if rest.is_empty() && offset >= text.len() {
            return Err(ParseError::UnclosedFrontMatter {
                at: Span::START,
                fence,
            });
        }
        let end = rest.find('\n').map_or(text.len(), |e| offset + e);
        let this = text.get(offset..end).unwrap_or("").trim_end();
        if closers.contains(&this) {
            let content = text.get(content_start..offset).unwrap_or("");
            let body = text.get((end + 1).min(text.len())..).unwrap_or("");
            let value = if fence == "+++" {
                toml_front_matter(content, spans)?
            } else {
                crate::yaml::parse(content, 2, "/front_matter", spans)?
            };
            let value = match value {
                Value::Null => Value::Object(Map::new()),
                other => other,
            };
            return Ok((Some(value), body, line.saturating_add(1)));
        }
        if end >= text.len() {
            return Err(ParseError::UnclosedFrontMatter {
                at: Span::START,
                fence,
            });
        }
        offset = end + 1;
        line = line.saturating_add(1);
    }
}

fn toml_front_matter(content: &str, spans: &mut Spans) -> Result<Value, ParseError> {
    match crate::toml_doc::parse(content) {
        Ok(doc) => {
            for (pointer, at) in doc.spans {
                spans.insert(format!("/front_matter{pointer}"), at.shifted(1));
            }
            Ok(doc.value)
        }
        Err(ParseError::Toml {
            at,
            message,
            source,
        }) => Err(ParseError::Toml {
            at: at.shifted(1),
            message,
            source,
        }),
        Err(ParseError::TooDeep { at, limit }) => Err(ParseError::TooDeep {
            at: at.shifted(1),
            limit,
        }),
        Err(other) => Err(other),
    }
}

struct Heading {
    /// First line (a setext heading's paragraph starts before its underline).
    start: usize,
    /// Last line (the underline of a setext heading).
    end: usize,
    level: u8,
    text: String,
}

struct Scan {
    headings: Vec<Heading>,
    /// Lines inside fenced code (fences included).
    in_code: Vec<bool>,
}

fn scan(lines: &[&str]) -> Scan {
    let mut headings = Vec::new();
    let mut in_code = vec![false; lines.len()];
    let mut fence: Option<(char, usize)> = None;
    let mut paragraph: Option<usize> = None;
    for (i, line) in lines.iter().enumerate() {
        let indent = line.chars().take_while(|&c| c == ' ').count();
        let trimmed = line.trim_start_matches(' ');
        if let Some((c, n)) = fence {
            if let Some(slot) = in_code.get_mut(i) {
                *slot = true;
            }
            let run = trimmed.chars().take_while(|&x| x == c).count();
            if indent <= 3 && run >= n && trimmed.chars().skip(run).all(char::is_whitespace) {
                fence = None;
            }
            continue;
        }
        if indent <= 3 {
            if let Some(c) = trimmed.chars().next().filter(|&c| c == '`' || c == '~') {
                let run = trimmed.chars().take_while(|&x| x == c).count();
                let info = trimmed.chars().skip(run).collect::<String>();
                if run >= 3 && !(c == '`' && info.contains('`')) {
                    fence = Some((c, run));
                    if let Some(slot) = in_code.get_mut(i) {
                        *slot = true;
                    }
                    paragraph = None;
                    continue;
                }
            }
            if let Some((level, text)) = atx(trimmed) {
                headings.push(Heading {
                    start: i,
                    end: i,
                    level,
                    text,
                });
                paragraph = None;
                continue;
            }
            if let (Some(start), Some(level)) = (paragraph, setext_underline(trimmed)) {
                let text = lines
                    .get(start..i)
                    .unwrap_or(&[])
                    .iter()
                    .map(|l| l.trim())
                    .collect::<Vec<_>>()
                    .join(" ");
                headings.push(Heading {
                    start,
                    end: i,
                    level,
                    text,
                });
                paragraph = None;
                continue;
            }
        }
        if line.trim().is_empty() {
            paragraph = None;
        } else if paragraph.is_none() && indent <= 3 && !starts_block(trimmed) {
            paragraph = Some(i);
        }
    }
    Scan { headings, in_code }
}

/// List items and block quotes: a dashed line under them is not a setext underline.
fn starts_block(line: &str) -> bool {
    let digits = line.chars().take_while(char::is_ascii_digit).count();
    line.starts_with("- ")
        || line.starts_with("* ")
        || line.starts_with("+ ")
        || line.starts_with('>')
        || line.starts_with('|')
        || (digits > 0
            && line
                .get(digits..)
                .is_some_and(|r| r.starts_with(". ") || r.starts_with(") ")))
}

fn atx(line: &str) -> Option<(u8, String)> {
    let hashes = line.chars().take_while(|&c| c == '#').count();
    if !(1..=6).contains(&hashes) {
        return None;
    }
    let rest = line.get(hashes..)?;
    if !(rest.is_empty() || rest.starts_with(' ') || rest.starts_with('\t')) {
        return None;
    }
    let mut text = rest.trim();
    // An optional closing sequence: blanks, then only `#`.
    let without = text.trim_end_matches('#');
    if without.is_empty() {
        text = "";
    } else if without.len() < text.len() && without.ends_with([' ', '\t']) {
        text = without.trim_end();
    }
    Some((u8::try_from(hashes).unwrap_or(6), text.to_string()))
}

fn setext_underline(line: &str) -> Option<u8> {
    let t = line.trim_end();
    if !t.is_empty() && t.chars().all(|c| c == '=') {
        Some(1)
    } else if !t.is_empty() && t.chars().all(|c| c == '-') {
        Some(2)
    } else {
        None
    }
}

fn trim_blank_lines(lines: &[&str]) -> String {
    let start = lines
        .iter()
        .position(|l| !l.trim().is_empty())
        .unwrap_or(lines.len());
    let end = lines
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .map_or(start, |e| e + 1);
    lines.get(start..end).unwrap_or(&[]).join("\n")
}

/// A line without its list marker, emphasis and links (`[label](target)` → `label`).
fn clean(line: &str) -> String {
    let mut s = line.trim();
    for marker in ["- ", "* ", "+ ", "> "] {
        if let Some(rest) = s.strip_prefix(marker) {
            s = rest.trim_start();
        }
    }
    let mut out = String::new();
    let mut rest = s;
    while let Some(open) = rest.find('[') {
        let (before, from) = rest.split_at(open);
        out.push_str(before);
        match from.find("](").and_then(|mid| {
            from.get(mid + 2..)
                .and_then(|t| t.find(')'))
                .map(|close| (mid, mid + 2 + close))
        }) {
            Some((mid, close)) => {
                out.push_str(from.get(1..mid).unwrap_or(""));
                rest = from.get(close + 1..).unwrap_or("");
            }
            None => {
                out.push('[');
                rest = from.get(1..).unwrap_or("");
            }
        }
    }
    out.push_str(rest);
    out.replace(['*', '`'], "")
        .trim()
        .trim_end_matches('.')
        .trim()
        .to_string()
}

/// A line without its list or quote marker and emphasis; links kept.
fn unmarked(line: &str) -> String {
    let mut s = line.trim();
    for marker in ["- ", "* ", "+ ", "> "] {
        if let Some(rest) = s.strip_prefix(marker) {
            s = rest.trim_start();
        }
    }
    s.replace(['*', '`'], "").trim().to_string()
}

/// The references of a status that reads `Superseded by …` (after an optional `Status:`).
fn superseded_by(status: &str) -> Vec<String> {
    let s = unmarked(status);
    let s = match strip_prefix_ci(&s, "status") {
        Some(rest) => rest.trim_start_matches([':', ' ', '\t', '_']).to_string(),
        None => s,
    };
    strip_prefix_ci(&s, "superseded by")
        .map(references)
        .unwrap_or_default()
}

/// `Label: value` lines: the label lowercase (emphasis and list marker removed), the value
/// cleaned.
fn labelled(line: &str) -> Option<(String, String)> {
    let mut s = line.trim();
    for marker in ["- ", "* ", "+ "] {
        if let Some(rest) = s.strip_prefix(marker) {
            s = rest.trim_start();
        }
    }
    let (label, value) = s.split_once(':')?;
    let label = label.trim_matches(|c: char| c == '*' || c == '_' || c.is_whitespace());
    if label.is_empty() || label.len() > 20 {
        return None;
    }
    let value = value.trim_start_matches(|c: char| c == '*' || c == '_' || c.is_whitespace());
    if value.is_empty() {
        return None;
    }
    Some((label.to_lowercase(), clean(value)))
}

/// References in the text after `Supersedes`/`Superseded by`.
fn references(text: &str) -> Vec<String> {
    let text = text.trim_start_matches([':', ' ', '\t']);
    let mut targets = Vec::new();
    let mut rest = text;
    while let Some(mid) = rest.find("](") {
        let after = rest.get(mid + 2..).unwrap_or("");
        match after.find(')') {
            Some(close) => {
                let target = after.get(..close).unwrap_or("").trim();
                if !target.is_empty() {
                    targets.push(target.to_string());
                }
                rest = after.get(close + 1..).unwrap_or("");
            }
            None => break,
        }
    }
    if !targets.is_empty() {
        return targets;
    }
    let mut out = Vec::new();
    for piece in text.split(|c: char| c.is_whitespace() || c == ',' || c == ';') {
        let piece = piece.trim_matches(|c: char| "()[]`*_\"'".contains(c));
        if piece.to_ascii_lowercase().ends_with(".md") {
            out.push(piece.to_string());
            continue;
        }
        let digits: String = piece
            .chars()
            .skip_while(|c| !c.is_ascii_digit())
            .take_while(char::is_ascii_digit)
            .collect();
        if !digits.is_empty() && digits.len() <= 6 {
            out.push(format!("{digits:0>4}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atx_headings_follow_commonmark_on_the_odd_cases() {
        assert_eq!(atx("# Title"), Some((1, "Title".to_string())));
        assert_eq!(atx("## Status ##"), Some((2, "Status".to_string())));
        assert_eq!(atx("### C# #"), Some((3, "C#".to_string())));
        assert_eq!(atx("#"), Some((1, String::new())));
        assert_eq!(atx("#hashtag"), None);
        assert_eq!(atx("####### seven"), None);
    }

    #[test]
    fn references_are_links_paths_or_padded_numbers() {
        assert_eq!(
            references(" [ADR 3](0003-use-x.md) and [5](0005-y.md)"),
            ["0003-use-x.md", "0005-y.md"]
        );
        assert_eq!(references(": ADR-3, ADR 0012"), ["0003", "0012"]);
        assert_eq!(references(" 0007-thing.md"), ["0007-thing.md"]);
    }

    #[test]
    fn slugs_are_github_anchors() {
        assert_eq!(slug("Decision Outcome"), "decision-outcome");
        assert_eq!(
            slug("1. Record architecture decisions"),
            "1-record-architecture-decisions"
        );
        assert_eq!(slug("Pros & Cons"), "pros--cons");
    }
}
