//! Paths for `get`: `servers[0].port`, `"a.b".c`, `node.define[name=n1].ipaddr`, and in
//! Markdown `Status` and `#Section`.
//!
//! ```text
//! path    = "#" heading                      (Markdown: the text of a section)
//!         | step { step }
//! step    = [ "." ] key                      (a field of an object)
//!         | "[" [ "-" ] digits "]"           (an element; negative counts from the end)
//!         | "[" key "=" value "]"            (the one element whose field `key` is `value`)
//! key     = bare | quoted
//! bare    = 1*( any character but . [ ] = " ' ) (blanks around it are trimmed)
//! quoted  = '"' { char | '\"' | '\\' } '"' | "'" { char | "\'" | "\\" } "'"
//! value   = bare-value | quoted              (bare-value: up to `]`, trimmed)
//! ```
//!
//! `[name=VALUE]` compares with the field's text (a number or boolean by its JSON text); no
//! match is a missing key, several matches are an error naming their indices. A missing key
//! reports the nearest existing keys by edit distance.

use serde_json::Value;

use crate::markdown::{normalize_key, slug};
use crate::{Document, Format};

/// One step of a [`Path`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A field of an object.
    Key(String),
    /// An element of an array; negative counts from the end (`-1` is the last).
    Index(i64),
    /// The element of an array of objects whose field `key` has the text `value`.
    Select {
        /// The field compared.
        key: String,
        /// The text it must have.
        value: String,
    },
}

/// A parsed `get` path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Path {
    /// The steps, outermost first.
    pub steps: Vec<Step>,
}

/// Why `get` found no value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GetError {
    /// The path does not follow the path syntax.
    #[error("invalid path at column {column}: {message}")]
    Syntax {
        /// 1-based column in the path, in characters.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// Nothing at this path.
    #[error("{}", missing_message(path, suggestions))]
    Missing {
        /// The path up to and including the step that found nothing.
        path: String,
        /// The nearest existing paths, best first.
        suggestions: Vec<String>,
    },
    /// A step that needs an object or an array met something else.
    #[error("`{path}` is {found}, not {expected}")]
    WrongType {
        /// The path of the value met.
        path: String,
        /// What the step needed.
        expected: &'static str,
        /// What is there.
        found: String,
    },
    /// `[key=value]` matched several elements.
    #[error("`{path}` matches the elements {indices:?}; pick one by index")]
    Ambiguous {
        /// The path with the selection.
        path: String,
        /// The indices of the matching elements.
        indices: Vec<usize>,
    },
}

fn missing_message(path: &str, suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        format!("`{path}` not found")
    } else {
        format!("`{path}` not found; nearest: {}", suggestions.join(", "))
    }
}

impl Path {
    /// Parses a path (not the Markdown `#heading` form, which [`Document::get`] handles).
    pub fn parse(text: &str) -> Result<Path, GetError> {
        let chars: Vec<char> = text.chars().collect();
        let mut pos = 0;
        let mut steps = Vec::new();
        let err = |pos: usize, message: &str| GetError::Syntax {
            column: pos + 1,
            message: message.to_string(),
        };
        if chars.iter().all(|c| c.is_whitespace()) {
            return Err(err(0, "the path is empty"));
        }
        while pos < chars.len() {
            match chars.get(pos) {
                Some('[') => {
                    let open = pos;
                    pos += 1;
                    let (step, next) = bracket(&chars, pos).map_err(|(p, m)| err(p, &m))?;
                    pos = next;
                    if chars.get(pos) != Some(&']') {
                        return Err(err(open, "`[` is not closed by `]`"));
                    }
                    pos += 1;
                    steps.push(step);
                }
                Some('.') if !steps.is_empty() => {
                    pos += 1;
                    let (key, next) = key(&chars, pos).map_err(|(p, m)| err(p, &m))?;
                    pos = next;
                    steps.push(Step::Key(key));
                }
                Some('.') => return Err(err(pos, "a path cannot start with `.`")),
                Some(_) if steps.is_empty() => {
                    let (key, next) = key(&chars, pos).map_err(|(p, m)| err(p, &m))?;
                    pos = next;
                    steps.push(Step::Key(key));
                }
                Some(_) => return Err(err(pos, "expected `.` or `[`")),
                None => break,
            }
        }
        Ok(Path { steps })
    }

    /// The value at this path.
    pub fn resolve<'v>(&self, root: &'v Value) -> Result<&'v Value, GetError> {
        resolve(root, &self.steps, &mut Vec::new(), false)
    }
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&display(&self.steps))
    }
}

/// The value at `path` in `value` (see the module's grammar).
pub fn get<'v>(value: &'v Value, path: &str) -> Result<&'v Value, GetError> {
    Path::parse(path)?.resolve(value)
}

fn is_special(c: char) -> bool {
    matches!(c, '.' | '[' | ']' | '=' | '"' | '\'')
}

type Parsed<T> = Result<(T, usize), (usize, String)>;

fn key(chars: &[char], mut pos: usize) -> Parsed<String> {
    while chars.get(pos).is_some_and(|c| *c == ' ' || *c == '\t') {
        pos += 1;
    }
    match chars.get(pos) {
        Some(&q @ ('"' | '\'')) => {
            let (s, next) = quoted(chars, pos, q)?;
            let mut next = next;
            while chars.get(next).is_some_and(|c| *c == ' ' || *c == '\t') {
                next += 1;
            }
            Ok((s, next))
        }
        _ => {
            let start = pos;
            while chars.get(pos).is_some_and(|&c| !is_special(c)) {
                pos += 1;
            }
            let s: String = chars.get(start..pos).unwrap_or(&[]).iter().collect();
            let s = s.trim().to_string();
            if s.is_empty() {
                return Err((start, "expected a key".to_string()));
            }
            Ok((s, pos))
        }
    }
}

fn quoted(chars: &[char], open: usize, q: char) -> Parsed<String> {
    let mut pos = open + 1;
    let mut s = String::new();
    loop {
        match chars.get(pos) {
            None => return Err((open, "the quoted key is not closed".to_string())),
            Some('\\') if matches!(chars.get(pos + 1), Some(&c) if c == q || c == '\\') => {
                if let Some(&c) = chars.get(pos + 1) {
                    s.push(c);
                }
                pos += 2;
            }
            Some(&c) if c == q => return Ok((s, pos + 1)),
            Some(&c) => {
                s.push(c);
                pos += 1;
            }
        }
    }
}

fn bracket(chars: &[char], pos: usize) -> Parsed<Step> {
    let mut p = pos;
    while chars.get(p).is_some_and(|c| c.is_whitespace()) {
        p += 1;
    }
    let negative = chars.get(p) == Some(&'-');
    let digits_start = if negative { p + 1 } else { p };
    let mut q = digits_start;
    while chars.get(q).is_some_and(char::is_ascii_digit) {
        q += 1;
    }
    let mut end = q;
    while chars.get(end).is_some_and(|c| c.is_whitespace()) {
        end += 1;
    }
    if q > digits_start && chars.get(end) == Some(&']') {
        let digits: String = chars.get(digits_start..q).unwrap_or(&[]).iter().collect();
        let n: i64 = digits
            .parse()
            .map_err(|_| (digits_start, "the index is too large".to_string()))?;
        return Ok((Step::Index(if negative { -n } else { n }), end));
    }
    if chars.get(p) == Some(&'*') || chars.get(p) == Some(&'?') {
        return Err((
            p,
            "`[*]` and `[?…]` belong to queries (`query`), not to `get`".to_string(),
        ));
    }
    let (k, next) = key(chars, p)?;
    if chars.get(next) != Some(&'=') {
        return Err((
            next,
            "expected `]` after an index, or `key=value`".to_string(),
        ));
    }
    let mut v = next + 1;
    if chars.get(v) == Some(&'=') {
        v += 1;
    }
    while chars.get(v).is_some_and(|c| *c == ' ' || *c == '\t') {
        v += 1;
    }
    match chars.get(v) {
        Some(&q @ ('"' | '\'')) => {
            let (s, mut next) = quoted(chars, v, q)?;
            while chars.get(next).is_some_and(|c| *c == ' ' || *c == '\t') {
                next += 1;
            }
            Ok((Step::Select { key: k, value: s }, next))
        }
        _ => {
            let start = v;
            while chars.get(v).is_some_and(|&c| c != ']') {
                v += 1;
            }
            let s: String = chars.get(start..v).unwrap_or(&[]).iter().collect();
            Ok((
                Step::Select {
                    key: k,
                    value: s.trim().to_string(),
                },
                v,
            ))
        }
    }
}

fn display_key(key: &str) -> String {
    if !key.is_empty() && key.trim() == key && !key.chars().any(|c| is_special(c) || c == '#') {
        key.to_string()
    } else {
        format!("\"{}\"", key.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

pub(crate) fn display(steps: &[Step]) -> String {
    let mut out = String::new();
    for step in steps {
        match step {
            Step::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&display_key(k));
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
            Step::Select { key, value } => {
                let v = if value.contains([']', '"', '\''])
                    || value.starts_with('=')
                    || value.trim() != value
                {
                    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
                } else {
                    value.clone()
                };
                out.push_str(&format!("[{}={v}]", display_key(key)));
            }
        }
    }
    out
}

fn kind(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(_) => "a boolean".to_string(),
        Value::Number(_) => "a number".to_string(),
        Value::String(_) => "a string".to_string(),
        Value::Array(a) => format!("an array of {}", a.len()),
        Value::Object(_) => "an object".to_string(),
    }
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) => Some(v.to_string()),
        _ => None,
    }
}

fn resolve<'v>(
    mut current: &'v Value,
    steps: &[Step],
    done: &mut Vec<Step>,
    loose_first: bool,
) -> Result<&'v Value, GetError> {
    for (n, step) in steps.iter().enumerate() {
        match step {
            Step::Key(k) => {
                let Value::Object(map) = current else {
                    return Err(GetError::WrongType {
                        path: display(done),
                        expected: "an object",
                        found: kind(current),
                    });
                };
                let found = map.get(k).or_else(|| {
                    (loose_first && n == 0)
                        .then(|| {
                            let want = normalize_key(k);
                            map.iter().find(|(key, _)| normalize_key(key) == want)
                        })
                        .flatten()
                        .map(|(_, v)| v)
                });
                match found {
                    Some(v) => current = v,
                    None => {
                        let mut missing = done.clone();
                        missing.push(step.clone());
                        let suggestions = nearest(k, map.keys().map(String::as_str))
                            .into_iter()
                            .map(|key| {
                                let mut p = done.clone();
                                p.push(Step::Key(key.to_string()));
                                display(&p)
                            })
                            .collect();
                        return Err(GetError::Missing {
                            path: display(&missing),
                            suggestions,
                        });
                    }
                }
            }
            Step::Index(i) => {
                let Value::Array(items) = current else {
                    return Err(GetError::WrongType {
                        path: display(done),
                        expected: "an array",
                        found: kind(current),
                    });
                };
                let len = i64::try_from(items.len()).unwrap_or(i64::MAX);
                let at = if *i < 0 { len + i } else { *i };
                match usize::try_from(at).ok().and_then(|at| items.get(at)) {
                    Some(v) => current = v,
                    None => {
                        let mut missing = done.clone();
                        missing.push(step.clone());
                        let mut suggestions = Vec::new();
                        if !items.is_empty() {
                            for last in [0, items.len() - 1] {
                                let mut p = done.clone();
                                p.push(Step::Index(i64::try_from(last).unwrap_or(0)));
                                let shown = display(&p);
                                if !suggestions.contains(&shown) {
                                    suggestions.push(shown);
                                }
                            }
                        }
                        return Err(GetError::Missing {
                            path: display(&missing),
                            suggestions,
                        });
                    }
                }
            }
            Step::Select { key, value } => {
                let Value::Array(items) = current else {
                    return Err(GetError::WrongType {
                        path: display(done),
                        expected: "an array",
                        found: kind(current),
                    });
                };
                let matching: Vec<usize> = items
                    .iter()
                    .enumerate()
                    .filter(|(_, item)| item.get(key).and_then(text_of).as_deref() == Some(value))
                    .map(|(i, _)| i)
                    .collect();
                let mut here = done.clone();
                here.push(step.clone());
                match matching.as_slice() {
                    [one] => match items.get(*one) {
                        Some(v) => current = v,
                        None => break,
                    },
                    [] => {
                        let present: Vec<String> = items
                            .iter()
                            .filter_map(|item| item.get(key).and_then(text_of))
                            .collect();
                        let suggestions = nearest(value, present.iter().map(String::as_str))
                            .into_iter()
                            .map(|v| {
                                let mut p = done.clone();
                                p.push(Step::Select {
                                    key: key.clone(),
                                    value: v.to_string(),
                                });
                                display(&p)
                            })
                            .collect();
                        return Err(GetError::Missing {
                            path: display(&here),
                            suggestions,
                        });
                    }
                    _ => {
                        return Err(GetError::Ambiguous {
                            path: display(&here),
                            indices: matching,
                        });
                    }
                }
            }
        }
        done.push(step.clone());
    }
    Ok(current)
}

/// Edit distance between two short strings (each cut to 64 characters), case-insensitive.
pub(crate) fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(64).flat_map(char::to_lowercase).collect();
    let b: Vec<char> = b.chars().take(64).flat_map(char::to_lowercase).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        if let Some(first) = cur.first_mut() {
            *first = i + 1;
        }
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev.get(j).copied().unwrap_or(0) + usize::from(ca != cb);
            let delete = prev.get(j + 1).copied().unwrap_or(0) + 1;
            let insert = cur.get(j).copied().unwrap_or(0) + 1;
            if let Some(slot) = cur.get_mut(j + 1) {
                *slot = substitute.min(delete).min(insert);
            }
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev.last().copied().unwrap_or(0)
}

/// Up to five candidates nearest to `want`: those within a third of its length (at least 2)
/// by edit distance, best first; when none is that near, the first five in order.
pub(crate) fn nearest<'a>(want: &str, candidates: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let all: Vec<&str> = candidates.collect();
    let limit = (want.chars().count() / 3).max(2);
    let mut near: Vec<(usize, &str)> = all
        .iter()
        .map(|c| (distance(want, c), *c))
        .filter(|(d, c)| *d <= limit || c.to_lowercase().contains(&want.to_lowercase()))
        .collect();
    near.sort();
    let mut out: Vec<&str> = near.into_iter().map(|(_, c)| c).collect();
    if out.is_empty() {
        out = all;
    }
    out.dedup();
    out.truncate(5);
    out
}

impl Document {
    /// The value at `path`, read as this document's format reads it.
    ///
    /// In Markdown, `#Heading` is the text of the section with that heading (compared
    /// case-insensitively, or by its slug), and the first key is compared loosely
    /// (`Status`, `status`; `Superseded by`, `superseded_by`) and looked up in the front
    /// matter when the document has no such field.
    pub fn get(&self, path: &str) -> Result<&Value, GetError> {
        if self.format != Format::Markdown {
            return get(&self.value, path);
        }
        if let Some(heading) = path.trim_start().strip_prefix('#') {
            return self.section(heading.trim());
        }
        let parsed = Path::parse(path)?;
        let first = resolve(&self.value, &parsed.steps, &mut Vec::new(), true);
        let Err(GetError::Missing { suggestions, .. }) = &first else {
            return first;
        };
        if let (Some(Step::Key(_)), Some(front)) =
            (parsed.steps.first(), self.value.get("front_matter"))
        {
            let from_front = resolve(front, &parsed.steps, &mut Vec::new(), true);
            let first_step_missing = matches!(
                &from_front,
                Err(GetError::Missing { path: p, .. })
                    if parsed.steps.first().map(|s| display(std::slice::from_ref(s))).as_deref() == Some(p.as_str())
            );
            if !first_step_missing {
                return from_front;
            }
        }
        // Nothing at the first step: suggest among the fields, the front matter's keys and
        // the headings.
        let mut suggestions = suggestions.clone();
        if let Some(Step::Key(k)) = parsed.steps.first() {
            let mut candidates: Vec<String> = Vec::new();
            if let Value::Object(root) = &self.value {
                candidates.extend(root.keys().filter(|k| *k != "sections").cloned());
            }
            if let Some(Value::Object(front)) = self.value.get("front_matter") {
                candidates.extend(front.keys().cloned());
            }
            candidates.sort();
            candidates.dedup();
            if parsed.steps.len() == 1 {
                suggestions = nearest(k, candidates.iter().map(String::as_str))
                    .into_iter()
                    .map(|c| display(&[Step::Key(c.to_string())]))
                    .collect();
            }
            if let Some(Value::Array(sections)) = self.value.get("sections") {
                let headings: Vec<&str> = sections
                    .iter()
                    .filter_map(|s| s.get("heading").and_then(Value::as_str))
                    .collect();
                for h in nearest(k, headings.into_iter()) {
                    if distance(k, h) <= (k.chars().count() / 3).max(2) {
                        suggestions.push(format!("#{h}"));
                    }
                }
            }
        }
        Err(GetError::Missing {
            path: parsed.to_string(),
            suggestions,
        })
    }

    /// The value at `path`, or `None` when there is none at this revision of the file
    /// (missing, or a parent of another type): what `log --key` compares from commit to
    /// commit. Errors only for a path that is not one, or a selection that matches several.
    pub fn find(&self, path: &str) -> Result<Option<&Value>, GetError> {
        match self.get(path) {
            Ok(v) => Ok(Some(v)),
            Err(GetError::Missing { .. } | GetError::WrongType { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn section(&self, heading: &str) -> Result<&Value, GetError> {
        let sections = self
            .value
            .get("sections")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let want_slug = slug(heading);
        let found = sections
            .iter()
            .find(|s| {
                s.get("heading")
                    .and_then(Value::as_str)
                    .is_some_and(|h| h.trim().eq_ignore_ascii_case(heading))
            })
            .or_else(|| {
                sections.iter().find(|s| {
                    s.get("slug").and_then(Value::as_str) == Some(want_slug.as_str())
                        || s.get("slug").and_then(Value::as_str) == Some(heading)
                })
            });
        match found.and_then(|s| s.get("text")) {
            Some(text) => Ok(text),
            None => {
                let headings: Vec<&str> = sections
                    .iter()
                    .filter_map(|s| s.get("heading").and_then(Value::as_str))
                    .collect();
                Err(GetError::Missing {
                    path: format!("#{heading}"),
                    suggestions: nearest(heading, headings.into_iter())
                        .into_iter()
                        .map(|h| format!("#{h}"))
                        .collect(),
                })
            }
        }
    }
}
