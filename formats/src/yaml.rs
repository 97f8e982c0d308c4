//! YAML front matter through `yaml-rust2`'s event parser, built into JSON here.
//!
//! Building the value ourselves (rather than with the crate's loader) lets us keep every
//! value's position, bound the nesting depth, and refuse aliases: an alias copies a node,
//! and a few lines of aliases of aliases expand to gigabytes. Front matter needs none.
//!
//! Plain (unquoted) scalars are typed by YAML 1.2's core schema: `null`, `~` and nothing are
//! null; `true`/`false` (also capitalised or upper case) are booleans; decimal, `0x` and `0o`
//! integers that fit in `i64` and decimal floats are numbers; everything else, dates
//! included, is a string. Quoted and block scalars are always strings. Tags are ignored.

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::Spans;
use crate::error::ParseError;
use crate::span::Span;

/// The deepest nesting of mappings and sequences accepted.
pub(crate) const MAX_DEPTH: usize = 64;

enum Frame {
    Seq {
        items: Vec<Value>,
        pointer: String,
    },
    Map {
        map: Map<String, Value>,
        pointer: String,
        key: Option<String>,
    },
}

impl Frame {
    fn pointer(&self) -> &str {
        match self {
            Frame::Seq { pointer, .. } | Frame::Map { pointer, .. } => pointer,
        }
    }
}

/// Parses `text` (the front matter between its fences) whose first line is line
/// `first_line` of the file; value positions go to `spans` under `base` (a JSON pointer).
pub(crate) fn parse(
    text: &str,
    first_line: u32,
    base: &str,
    spans: &mut Spans,
) -> Result<Value, ParseError> {
    let at = |m: &Marker| {
        Span::new(m.line(), m.col().saturating_add(1)).shifted(first_line.saturating_sub(1))
    };
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<Value> = None;
    loop {
        let (event, marker) = parser.next_token().map_err(|e| ParseError::Yaml {
            at: at(e.marker()),
            message: e.info().to_string(),
            source: Some(e),
        })?;
        let value = match event {
            Event::StreamEnd | Event::DocumentEnd => break,
            Event::Nothing | Event::StreamStart | Event::DocumentStart => continue,
            Event::Alias(_) => {
                return Err(ParseError::Yaml {
                    at: at(&marker),
                    message: "aliases (`*name`) are not supported in front matter".to_string(),
                    source: None,
                });
            }
            Event::Scalar(text, style, _, _) => {
                let value = if style == TScalarStyle::Plain {
                    plain_scalar(&text)
                } else {
                    Value::String(text)
                };
                // A mapping waiting for its key takes this scalar as the key.
                if let Some(Frame::Map { key, .. }) = stack.last_mut()
                    && key.is_none()
                {
                    *key = Some(match value {
                        Value::String(s) => s,
                        Value::Null => String::new(),
                        other => other.to_string(),
                    });
                    continue;
                }
                spans.insert(child_pointer(&stack, base), at(&marker));
                value
            }
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                if let Some(Frame::Map { key: None, .. }) = stack.last() {
                    return Err(ParseError::Yaml {
                        at: at(&marker),
                        message: "mapping keys must be plain values".to_string(),
                        source: None,
                    });
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(ParseError::TooDeep {
                        at: at(&marker),
                        limit: MAX_DEPTH,
                    });
                }
                let pointer = child_pointer(&stack, base);
                spans.insert(pointer.clone(), at(&marker));
                stack.push(if matches!(event, Event::SequenceStart(..)) {
                    Frame::Seq {
                        items: Vec::new(),
                        pointer,
                    }
                } else {
                    Frame::Map {
                        map: Map::new(),
                        pointer,
                        key: None,
                    }
                });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Seq { items, .. }) => Value::Array(items),
                Some(Frame::Map { map, .. }) => Value::Object(map),
                None => continue,
            },
        };
        match stack.last_mut() {
            Some(Frame::Seq { items, .. }) => items.push(value),
            Some(Frame::Map { map, key, .. }) => {
                if let Some(k) = key.take() {
                    map.insert(k, value);
                }
            }
            None => {
                if root.is_none() {
                    root = Some(value);
                }
            }
        }
    }
    Ok(root.unwrap_or(Value::Null))
}

/// The pointer of the value about to be placed in the innermost open container.
fn child_pointer(stack: &[Frame], base: &str) -> String {
    match stack.last() {
        None => base.to_string(),
        Some(Frame::Seq { items, pointer }) => {
            crate::pointer_push(pointer, &items.len().to_string())
        }
        Some(frame @ Frame::Map { key, .. }) => {
            crate::pointer_push(frame.pointer(), key.as_deref().unwrap_or(""))
        }
    }
}

fn plain_scalar(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    let digits = |s: &str, radix: u32| !s.is_empty() && s.chars().all(|c| c.is_digit(radix));
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits(unsigned, 10)
        && let Ok(i) = text.parse::<i64>()
    {
        return Value::Number(i.into());
    }
    if let Some(hex) = text.strip_prefix("0x").filter(|h| digits(h, 16))
        && let Ok(i) = i64::from_str_radix(hex, 16)
    {
        return Value::Number(i.into());
    }
    if let Some(oct) = text.strip_prefix("0o").filter(|o| digits(o, 8))
        && let Ok(i) = i64::from_str_radix(oct, 8)
    {
        return Value::Number(i.into());
    }
    let float_chars = unsigned
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'));
    if float_chars
        && unsigned.chars().any(|c| c.is_ascii_digit())
        && unsigned.contains('.')
        && let Some(n) = text.parse::<f64>().ok().and_then(Number::from_f64)
    {
        return Value::Number(n);
    }
    Value::String(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn front_matter_yaml_becomes_typed_json_with_positions() {
        let mut spans = Spans::default();
        let value = parse(
            "title: Use TOML\nstatus: accepted\nnumber: 7\nratio: 0.25\ndraft: false\ndate: 2026-12-07\ntags: [a, 'b c']\ndeciders:\n  - ann\n  - bo\nempty:\nquoted: \"7\"\n",
            2,
            "/front_matter",
            &mut spans,
        )
        .unwrap();
        assert_eq!(
            value,
            json!({"title": "Use TOML", "status": "accepted", "number": 7, "ratio": 0.25,
                   "draft": false, "date": "2026-12-07", "tags": ["a", "b c"],
                   "deciders": ["ann", "bo"], "empty": null, "quoted": "7"})
        );
        assert_eq!(spans.get("/front_matter/status"), Some(&Span::new(3, 9)));
        assert_eq!(
            spans.get("/front_matter/deciders/1"),
            Some(&Span::new(11, 5))
        );
    }

    #[test]
    fn aliases_depth_and_bad_yaml_are_errors_with_positions() {
        let mut spans = Spans::default();
        let err = parse("a: &x [1]\nb: *x\n", 1, "", &mut spans).unwrap_err();
        assert_eq!(err.line(), 2, "{err}");
        let deep = format!("a: {}{}\n", "[".repeat(100), "]".repeat(100));
        assert!(matches!(
            parse(&deep, 1, "", &mut spans),
            Err(ParseError::TooDeep { .. })
        ));
        let err = parse("a: [1\nb: 2\n", 5, "", &mut spans).unwrap_err();
        assert!(err.line() >= 5, "{err}");
    }
}
