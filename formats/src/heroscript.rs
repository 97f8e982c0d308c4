//! HeroScript: the action language of the Hero ecosystem.
//!
//! ```text
//! !!node.define name:n1 ipaddr:'10.0.0.1'
//!     roles:storage,compute
//!     description:'
//!         first line
//!         second line
//!         '
//! ```
//!
//! The grammar, every odd case and the document model are in `docs/heroscript.md`. In
//! short: an action is `!!actor.action` (names case-insensitive, kept lowercase), followed by
//! parameters on the same line and on the following lines indented deeper than the `!!`;
//! `key:value`, `key:'quoted'`, `key:"quoted"`, `key:a,b,c` and `key:[a, 'b c']` (lists),
//! bare or quoted positional arguments; `//` comments; any other line is free text that ends
//! the action. Values are text: the document model never guesses numbers or booleans.

mod model;
mod parse;

use serde_json::{Map, Value};

use crate::error::ParseError;
use crate::{Document, Format, Spans};

pub use model::{Action, Param, ParamValue, Script};

impl Script {
    /// Parses HeroScript text. Never panics; errors carry a line and column.
    pub fn parse(text: &str) -> Result<Script, ParseError> {
        parse::parse(text)
    }

    /// The document model `{actor: {action: [params, …]}}`, each list in file order.
    pub fn to_value(&self) -> Value {
        self.to_value_and_spans().0
    }

    pub(crate) fn to_value_and_spans(&self) -> (Value, Spans) {
        let mut root = Map::new();
        let mut spans = Spans::default();
        for action in &self.actions {
            let actor = root
                .entry(action.actor.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(actor) = actor else {
                continue;
            };
            let list = actor
                .entry(action.name.clone())
                .or_insert_with(|| Value::Array(Vec::new()));
            let Value::Array(list) = list else {
                continue;
            };
            let pointer = crate::pointer(&[
                action.actor.as_str(),
                action.name.as_str(),
                &list.len().to_string(),
            ]);
            spans.insert(pointer.clone(), action.span);
            for p in &action.params {
                spans.insert(crate::pointer_push(&pointer, &p.key), p.span);
            }
            list.push(action.to_value());
        }
        (Value::Object(root), spans)
    }

    /// The document of this script.
    pub fn to_document(&self) -> Document {
        let (value, spans) = self.to_value_and_spans();
        Document {
            format: Format::HeroScript,
            value,
            spans,
        }
    }
}

/// Indentation of parameter lines written by [`to_string`].
const PARAM_INDENT: &str = "    ";
/// Indentation of the lines of multi-line values written by [`to_string`] (and of their
/// closing quote).
const TEXT_INDENT: &str = "        ";

/// Writes a script as HeroScript text that parses back to the same actions
/// (`Script::parse(&to_string(s))` equals `s` but for spans): one action per paragraph,
/// positional arguments on the `!!` line, one parameter per indented line.
pub fn to_string(script: &Script) -> String {
    let mut out = String::new();
    for (i, action) in script.actions.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str("!!");
        out.push_str(&action.actor);
        out.push('.');
        out.push_str(&action.name);
        for arg in &action.args {
            out.push(' ');
            write_text(&mut out, arg, is_bare_arg(arg));
        }
        out.push('\n');
        for p in &action.params {
            out.push_str(PARAM_INDENT);
            out.push_str(&p.key);
            out.push(':');
            match &p.value {
                ParamValue::Text(s) => write_text(&mut out, s, is_bare_value(s)),
                ParamValue::List(items) if items.len() >= 2 => {
                    for (j, item) in items.iter().enumerate() {
                        if j > 0 {
                            out.push(',');
                        }
                        write_text(&mut out, item, is_bare_item(item));
                    }
                }
                ParamValue::List(items) => {
                    out.push('[');
                    for item in items {
                        write_text(&mut out, item, is_bare_item(item));
                    }
                    out.push(']');
                }
            }
            out.push('\n');
        }
    }
    out
}

fn is_bare_arg(s: &str) -> bool {
    !s.is_empty() && !s.starts_with("//") && s.chars().all(parse::is_key_char)
}

fn is_bare_value(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with("//")
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./@+:%~=#?&*".contains(c))
}

fn is_bare_item(s: &str) -> bool {
    is_bare_value(s) && !s.contains(']')
}

fn write_text(out: &mut String, s: &str, bare: bool) {
    if bare {
        out.push_str(s);
        return;
    }
    let escaped = s.replace('\\', "\\\\").replace('\'', "\\'");
    out.push('\'');
    if escaped.contains('\n') {
        // The multi-line form: the opening quote ends its line, every line is indented by
        // TEXT_INDENT and the closing quote sits alone at that indentation.
        out.push('\n');
        for line in escaped.split('\n') {
            if !line.is_empty() {
                out.push_str(TEXT_INDENT);
                out.push_str(line);
            }
            out.push('\n');
        }
        out.push_str(TEXT_INDENT);
    } else {
        out.push_str(&escaped);
    }
    out.push('\'');
}
