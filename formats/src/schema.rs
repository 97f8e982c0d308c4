//! Schemas: rules a repository keeps under `.hero/schemas/*.toml` that bind globs of paths to
//! what their structured files must hold (docs/structured-files.md, "Schemas").
//!
//! ```toml
//! [[rule]]
//! glob = "etc/**/*.toml"        # which files (matched by the caller: `*`, `?`, `**`)
//! mode = "refuse"               # or "warn"; default "refuse"
//! required = ["server.port"]    # get paths that must exist
//! types = { "server.port" = "integer", "server.host" = "string" }
//! ranges = { "server.port" = { min = 1, max = 65535 } }
//! enums = { "log.level" = ["debug", "info", "warn", "error"] }
//! patterns = { "server.host" = '^[a-z0-9.-]+$' }   # texts must match (a search: anchor it)
//! ```
//!
//! A schema is read from TOML ([`Schema::parse`]), so a mistake in one names its line and
//! column; [`Rule::check`] applies one rule to one parsed [`Document`] and returns every
//! [`Problem`], each with the line and column of the offending value (or of the file's start
//! for a missing key). Pure: matching globs to paths and reading files is the caller's.

use serde_json::Value;

use crate::{Document, Format, ParseError, Span, Spans};

/// What a failed rule does to a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The change is refused.
    Refuse,
    /// The change goes through with a warning.
    Warn,
}

impl Mode {
    /// `refuse` or `warn`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Refuse => "refuse",
            Mode::Warn => "warn",
        }
    }
}

/// A value type a rule can require.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// Text.
    String,
    /// A whole number.
    Integer,
    /// Any number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// A list.
    Array,
    /// A table.
    Object,
}

impl Type {
    const ALL: [(&'static str, Type); 6] = [
        ("string", Type::String),
        ("integer", Type::Integer),
        ("number", Type::Number),
        ("boolean", Type::Boolean),
        ("array", Type::Array),
        ("object", Type::Object),
    ];

    fn from_name(name: &str) -> Option<Type> {
        Type::ALL.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
    }

    /// The name used in schemas.
    pub fn name(self) -> &'static str {
        Type::ALL
            .iter()
            .find(|(_, t)| *t == self)
            .map_or("?", |(n, _)| n)
    }

    fn admits(self, v: &Value) -> bool {
        match self {
            Type::String => v.is_string(),
            Type::Integer => v.is_i64() || v.is_u64(),
            Type::Number => v.is_number(),
            Type::Boolean => v.is_boolean(),
            Type::Array => v.is_array(),
            Type::Object => v.is_object(),
        }
    }
}

/// One rule: the files it applies to and what they must hold.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The paths it applies to, a glob with `*`, `?` and `**` (matched by the caller).
    pub glob: String,
    /// What a failure does.
    pub mode: Mode,
    /// Get paths that must exist.
    pub required: Vec<String>,
    /// Get paths whose value, when present, must have a type.
    pub types: Vec<(String, Type)>,
    /// Get paths whose value, when present, must be a number within bounds (inclusive).
    pub ranges: Vec<(String, Option<f64>, Option<f64>)>,
    /// Get paths whose value, when present, must be one of these.
    pub enums: Vec<(String, Vec<Value>)>,
    /// Get paths whose value, when present, must be a text the regular expression finds a
    /// match in (linear-time matching: a schema cannot make a check run away).
    pub patterns: Vec<(String, regex::Regex)>,
    /// Where the rule starts in its schema file.
    pub span: Span,
}

/// A schema file: its rules, in file order.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    /// The rules.
    pub rules: Vec<Rule>,
}

/// A schema file that is not one, and where.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// It is not TOML.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// It is TOML but not a schema.
    #[error("{at}: {message}")]
    Invalid {
        /// Where.
        at: Span,
        /// What is wrong.
        message: String,
    },
}

impl SchemaError {
    /// Where the error is.
    pub fn span(&self) -> Span {
        match self {
            SchemaError::Parse(e) => e.span(),
            SchemaError::Invalid { at, .. } => *at,
        }
    }
}

/// A value that breaks a rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// Where in the checked file (the value, or the start of the file for a missing key).
    pub span: Span,
    /// The get path concerned.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

const RULE_KEYS: [&str; 7] = [
    "glob", "mode", "required", "types", "ranges", "enums", "patterns",
];

impl Schema {
    /// Reads a schema from its TOML text; unknown keys, types and modes are errors with
    /// their line and column, as are keys that are not get paths.
    pub fn parse(bytes: &[u8]) -> Result<Schema, SchemaError> {
        let doc = crate::parse(Format::Toml, bytes)?;
        let invalid = |pointer: &str, message: String| SchemaError::Invalid {
            at: doc.span(pointer).unwrap_or(Span::START),
            message,
        };
        let Value::Object(root) = &doc.value else {
            return Err(invalid("", "a schema is a TOML table".into()));
        };
        if let Some(k) = root.keys().find(|k| *k != "rule") {
            return Err(invalid(
                &crate::pointer(&[k]),
                format!("unknown key `{k}`: a schema holds `[[rule]]` tables"),
            ));
        }
        let rules = match root.get("rule") {
            None => &[][..],
            Some(Value::Array(rules)) => rules.as_slice(),
            Some(_) => {
                return Err(invalid(
                    "/rule",
                    "`rule` is an array of tables: write `[[rule]]`".into(),
                ));
            }
        };
        let mut out = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            let base = crate::pointer(&["rule", &i.to_string()]);
            out.push(read_rule(&doc.spans, &base, rule)?);
        }
        Ok(Schema { rules: out })
    }
}

fn read_rule(spans: &Spans, base: &str, rule: &Value) -> Result<Rule, SchemaError> {
    let at = |pointer: &str| {
        spans
            .get(pointer)
            .or_else(|| spans.get(base))
            .copied()
            .unwrap_or(Span::START)
    };
    let invalid = |pointer: &str, message: String| SchemaError::Invalid {
        at: at(pointer),
        message,
    };
    let Value::Object(table) = rule else {
        return Err(invalid(base, "a rule is a table".into()));
    };
    if let Some(k) = table.keys().find(|k| !RULE_KEYS.contains(&k.as_str())) {
        return Err(invalid(
            &crate::pointer_push(base, k),
            format!(
                "unknown key `{k}` in a rule (known: {})",
                RULE_KEYS.join(", ")
            ),
        ));
    }
    let field = |k: &str| crate::pointer_push(base, k);
    let glob = match table.get("glob") {
        Some(Value::String(g)) if !g.trim_matches('/').is_empty() => g.trim_matches('/').into(),
        Some(_) => return Err(invalid(&field("glob"), "`glob` is a non-empty text".into())),
        None => return Err(invalid(base, "a rule needs a `glob`".into())),
    };
    let mode = match table.get("mode").map(|m| m.as_str()) {
        None | Some(Some("refuse")) => Mode::Refuse,
        Some(Some("warn")) => Mode::Warn,
        Some(_) => {
            return Err(invalid(
                &field("mode"),
                "`mode` is \"refuse\" or \"warn\"".into(),
            ));
        }
    };
    let key_ok = |pointer: &str, key: &str| -> Result<String, SchemaError> {
        crate::Path::parse(key)
            .map(|_| key.to_string())
            .map_err(|e| invalid(pointer, format!("`{key}` is not a get path: {e}")))
    };
    let mut required = Vec::new();
    match table.get("required") {
        None => {}
        Some(Value::Array(keys)) => {
            for (i, k) in keys.iter().enumerate() {
                let p = crate::pointer_push(&field("required"), &i.to_string());
                let Some(k) = k.as_str() else {
                    return Err(invalid(&p, "`required` lists get paths, as texts".into()));
                };
                required.push(key_ok(&p, k)?);
            }
        }
        Some(_) => {
            return Err(invalid(
                &field("required"),
                "`required` is a list of get paths".into(),
            ));
        }
    }
    let table_of = |name: &str| -> Result<Vec<(String, String, &Value)>, SchemaError> {
        match table.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| {
                    let p = crate::pointer_push(&field(name), k);
                    Ok((key_ok(&p, k)?, p, v))
                })
                .collect(),
            Some(_) => Err(invalid(
                &field(name),
                format!("`{name}` is a table keyed by get paths"),
            )),
        }
    };
    let mut types = Vec::new();
    for (k, p, v) in table_of("types")? {
        let names: Vec<&str> = Type::ALL.iter().map(|(n, _)| *n).collect();
        let t = v.as_str().and_then(Type::from_name).ok_or_else(|| {
            invalid(
                &p,
                format!("the type of `{k}` is one of {}", names.join(", ")),
            )
        })?;
        types.push((k, t));
    }
    let mut ranges = Vec::new();
    for (k, p, v) in table_of("ranges")? {
        let Value::Object(bounds) = v else {
            return Err(invalid(
                &p,
                format!("the range of `{k}` is {{ min = .., max = .. }}"),
            ));
        };
        if let Some(b) = bounds.keys().find(|b| *b != "min" && *b != "max") {
            return Err(invalid(
                &crate::pointer_push(&p, b),
                format!("unknown bound `{b}` (min, max)"),
            ));
        }
        let bound = |b: &str| -> Result<Option<f64>, SchemaError> {
            match bounds.get(b) {
                None => Ok(None),
                Some(v) => v.as_f64().map(Some).ok_or_else(|| {
                    invalid(&crate::pointer_push(&p, b), format!("`{b}` is a number"))
                }),
            }
        };
        ranges.push((k, bound("min")?, bound("max")?));
    }
    let mut enums = Vec::new();
    for (k, p, v) in table_of("enums")? {
        let Value::Array(values) = v else {
            return Err(invalid(&p, format!("the values of `{k}` are a list")));
        };
        enums.push((k, values.clone()));
    }
    let mut patterns = Vec::new();
    for (k, p, v) in table_of("patterns")? {
        let Some(text) = v.as_str() else {
            return Err(invalid(&p, format!("the pattern of `{k}` is a text")));
        };
        let re = regex::RegexBuilder::new(text)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| {
                invalid(
                    &p,
                    format!("the pattern of `{k}` is not a regular expression: {e}"),
                )
            })?;
        patterns.push((k, re));
    }
    Ok(Rule {
        glob,
        mode,
        required,
        types,
        ranges,
        enums,
        patterns,
        span: at(base),
    })
}

impl Rule {
    /// Every way `doc` breaks this rule, in the order of the rule's keys.
    pub fn check(&self, doc: &Document) -> Vec<Problem> {
        let mut out = Vec::new();
        let problem = |key: &str, v: Option<&Value>, message: String| Problem {
            span: v.and_then(|v| span_of(doc, v)).unwrap_or(Span::START),
            key: key.to_string(),
            message,
        };
        let found = |key: &str| doc.find(key).ok().flatten();
        for key in &self.required {
            if found(key).is_none() {
                out.push(problem(key, None, format!("`{key}` is required")));
            }
        }
        for (key, t) in &self.types {
            if let Some(v) = found(key).filter(|v| !t.admits(v)) {
                out.push(problem(
                    key,
                    Some(v),
                    format!(
                        "`{key}` is {}, not {} {}",
                        show(v),
                        article(t.name()),
                        t.name()
                    ),
                ));
            }
        }
        for (key, min, max) in &self.ranges {
            let Some(v) = found(key) else { continue };
            let Some(n) = v.as_f64() else {
                out.push(problem(
                    key,
                    Some(v),
                    format!("`{key}` is {}, not a number", show(v)),
                ));
                continue;
            };
            let below = min.is_some_and(|m| n < m);
            let above = max.is_some_and(|m| n > m);
            if below || above {
                let bounds = match (min, max) {
                    (Some(a), Some(b)) => format!("between {a} and {b}"),
                    (Some(a), None) => format!("at least {a}"),
                    (None, Some(b)) => format!("at most {b}"),
                    (None, None) => String::new(),
                };
                out.push(problem(
                    key,
                    Some(v),
                    format!("`{key}` is {v}, must be {bounds}"),
                ));
            }
        }
        for (key, values) in &self.enums {
            if let Some(v) = found(key).filter(|v| !values.contains(v)) {
                let list: Vec<String> = values.iter().map(Value::to_string).collect();
                out.push(problem(
                    key,
                    Some(v),
                    format!("`{key}` is {}, not one of {}", show(v), list.join(", ")),
                ));
            }
        }
        for (key, re) in &self.patterns {
            let Some(v) = found(key) else { continue };
            match v.as_str() {
                Some(text) if re.is_match(text) => {}
                Some(_) => out.push(problem(
                    key,
                    Some(v),
                    format!(
                        "`{key}` is {}, which does not match `{}`",
                        show(v),
                        re.as_str()
                    ),
                )),
                None => out.push(problem(
                    key,
                    Some(v),
                    format!(
                        "`{key}` is {}, not a text to match `{}`",
                        show(v),
                        re.as_str()
                    ),
                )),
            }
        }
        out
    }
}

fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'i', 'o']) {
        "an"
    } else {
        "a"
    }
}

/// A value for a message: scalars as JSON, containers by kind.
fn show(v: &Value) -> String {
    match v {
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "a table".into(),
        other => other.to_string(),
    }
}

/// Where `target`, a reference into `doc.value`, starts: its JSON Pointer found by identity.
fn span_of(doc: &Document, target: &Value) -> Option<Span> {
    fn walk(v: &Value, target: &Value, pointer: &mut String) -> bool {
        if std::ptr::eq(v, target) {
            return true;
        }
        let len = pointer.len();
        match v {
            Value::Object(m) => {
                for (k, child) in m {
                    *pointer = crate::pointer_push(pointer, k);
                    if walk(child, target, pointer) {
                        return true;
                    }
                    pointer.truncate(len);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    *pointer = crate::pointer_push(pointer, &i.to_string());
                    if walk(child, target, pointer) {
                        return true;
                    }
                    pointer.truncate(len);
                }
            }
            _ => {}
        }
        false
    }
    let mut pointer = String::new();
    if walk(&doc.value, target, &mut pointer) {
        doc.span(&pointer)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const SCHEMA: &str = r#"
[[rule]]
glob = "etc/**/*.toml"
required = ["server.port", "server.host"]
types = { "server.port" = "integer" }
ranges = { "server.port" = { min = 1, max = 65535 } }
enums = { "log.level" = ["debug", "info"] }

[[rule]]
glob = "docs/**/*.md"
mode = "warn"
required = ["Status"]
"#;

    #[test]
    fn a_file_that_keeps_the_rules_has_no_problem() {
        let schema = Schema::parse(SCHEMA.as_bytes()).unwrap();
        assert_eq!(schema.rules.len(), 2);
        assert_eq!(schema.rules[1].mode, Mode::Warn);
        let doc =
            crate::parse_toml(b"[server]\nport = 8080\nhost = \"a\"\n[log]\nlevel = \"info\"\n")
                .unwrap();
        assert_eq!(schema.rules[0].check(&doc), vec![]);
    }

    #[test]
    fn problems_name_the_line_and_column_of_the_value() {
        let schema = Schema::parse(SCHEMA.as_bytes()).unwrap();
        let doc =
            crate::parse_toml(b"[server]\nport = 70000\n\n[log]\nlevel = \"loud\"\n").unwrap();
        let problems = schema.rules[0].check(&doc);
        let got: Vec<(u32, u32, &str)> = problems
            .iter()
            .map(|p| (p.span.line, p.span.column, p.key.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, 1, "server.host"),
                (2, 8, "server.port"),
                (5, 9, "log.level")
            ]
        );
        assert!(problems[1].message.contains("between 1 and 65535"));
        let doc = crate::parse_toml(b"[server]\nport = \"80\"\nhost = \"a\"\n").unwrap();
        let problems = schema.rules[0].check(&doc);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(
            problems[0].message,
            "`server.port` is \"80\", not an integer"
        );
        assert_eq!(problems[0].span, Span::new(2, 8));
    }

    #[test]
    fn a_pattern_must_find_a_match_in_a_text() {
        let rule =
            Schema::parse(b"[[rule]]\nglob = \"*.toml\"\npatterns = { \"host\" = '^[a-z.]+$' }\n")
                .unwrap();
        let ok = crate::parse_toml(b"host = \"example.org\"\n").unwrap();
        assert!(rule.rules[0].check(&ok).is_empty());
        let bad = crate::parse_toml(b"\nhost = \"Example.org\"\n").unwrap();
        let p = rule.rules[0].check(&bad);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].span, Span::new(2, 8));
        assert!(
            p[0].message.contains("does not match `^[a-z.]+$`"),
            "{}",
            p[0].message
        );
        let number = crate::parse_toml(b"host = 4\n").unwrap();
        assert!(
            rule.rules[0].check(&number)[0]
                .message
                .contains("not a text")
        );
        // A pattern that is not a regular expression is the schema's error, at its value.
        let e =
            Schema::parse(b"[[rule]]\nglob = \"*\"\npatterns = { \"a\" = \"(\" }\n").unwrap_err();
        assert_eq!(e.span().line, 3);
        assert!(e.to_string().contains("not a regular expression"), "{e}");
    }

    #[test]
    fn markdown_fields_and_heroscript_parameters_are_checked_too() {
        let schema = Schema::parse(SCHEMA.as_bytes()).unwrap();
        let md = crate::parse_markdown(b"# A decision\n\nNo status here.\n").unwrap();
        assert_eq!(schema.rules[1].check(&md)[0].key, "Status");
        let rule = Schema::parse(
            b"[[rule]]\nglob = \"*.hero\"\nenums = { \"node.define[0].farmid\" = [\"3\"] }\n",
        )
        .unwrap();
        let hs = crate::parse(Format::HeroScript, b"!!node.define name:a\n  farmid:4\n").unwrap();
        let p = rule.rules[0].check(&hs);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].span.line, 2);
    }

    #[test]
    fn a_wrong_schema_names_its_line_and_column() {
        let err = |text: &str| {
            let e = Schema::parse(text.as_bytes()).unwrap_err();
            (e.span().line, e.span().column, e.to_string())
        };
        let (line, _, msg) = err("[[rule]]\nglob = \"a\"\nmode = \"maybe\"\n");
        assert_eq!(line, 3);
        assert!(msg.contains("refuse"), "{msg}");
        let (line, _, msg) = err("[[rule]]\nglob = \"a\"\nrequird = [\"x\"]\n");
        assert_eq!(line, 3);
        assert!(msg.contains("unknown key `requird`"), "{msg}");
        let (line, _, msg) = err("[[rule]]\nglob = \"a\"\ntypes = { x = \"int\" }\n");
        assert_eq!(line, 3);
        assert!(msg.contains("integer"), "{msg}");
        let (_, _, msg) = err("[[rule]]\nmode = \"warn\"\n");
        assert!(msg.contains("needs a `glob`"), "{msg}");
        let (line, _, _) = err("[[rule]]\nglob = \"a\"\nrequired = [\"a[\"]\n");
        assert_eq!(line, 3);
        assert!(Schema::parse(b"x = 1").is_err());
        assert!(Schema::parse(b"[[rule]\n").is_err());
    }
}
