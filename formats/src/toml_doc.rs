//! TOML through the `toml` crate's span-keeping parser (`toml::de::DeTable`).
//!
//! Types map to JSON as: string → string, integer → number (a decimal, hexadecimal, octal or
//! binary integer that fits in `i64`), float → number (`inf` and `nan`, which JSON lacks,
//! stay strings: `"inf"`, `"-inf"`, `"nan"`), boolean → boolean, date-time → string in
//! TOML's own form (`1979-05-27T07:32:00Z`), array → array, table → object (keys sorted, so
//! two tables that differ only in order are equal).

use serde_json::{Map, Number, Value};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::error::ParseError;
use crate::span::LineIndex;
use crate::{Document, Format, Spans};

/// The deepest nesting followed (the `toml` parser stops well before this itself).
const MAX_DEPTH: usize = 128;

pub(crate) fn parse(text: &str) -> Result<Document, ParseError> {
    let index = LineIndex::new(text);
    let table = DeTable::parse(text).map_err(|e| {
        let at = e
            .span()
            .map_or(crate::span::Span::START, |r| index.span(r.start));
        ParseError::Toml {
            at,
            message: e.message().trim_end().to_string(),
            source: Box::new(e),
        }
    })?;
    let mut spans = Spans::default();
    let value = table_value(table.get_ref(), "", 0, &index, &mut spans)?;
    Ok(Document {
        format: Format::Toml,
        value,
        spans,
    })
}

fn table_value(
    table: &DeTable<'_>,
    pointer: &str,
    depth: usize,
    index: &LineIndex<'_>,
    spans: &mut Spans,
) -> Result<Value, ParseError> {
    let mut map = Map::new();
    for (key, value) in table.iter() {
        let key: &str = key.get_ref();
        let here = crate::pointer_push(pointer, key);
        let converted = convert(value, &here, depth + 1, index, spans)?;
        map.insert(key.to_string(), converted);
    }
    Ok(Value::Object(map))
}

fn convert(
    value: &Spanned<DeValue<'_>>,
    pointer: &str,
    depth: usize,
    index: &LineIndex<'_>,
    spans: &mut Spans,
) -> Result<Value, ParseError> {
    let at = index.span(value.span().start);
    if depth > MAX_DEPTH {
        return Err(ParseError::TooDeep {
            at,
            limit: MAX_DEPTH,
        });
    }
    spans.insert(pointer.to_string(), at);
    Ok(match value.get_ref() {
        DeValue::String(s) => Value::String(s.to_string()),
        DeValue::Integer(i) => integer(i.as_str(), i.radix()),
        DeValue::Float(f) => float(f.as_str()),
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Datetime(d) => Value::String(d.to_string()),
        DeValue::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let here = crate::pointer_push(pointer, &i.to_string());
                out.push(convert(item, &here, depth + 1, index, spans)?);
            }
            Value::Array(out)
        }
        DeValue::Table(t) => table_value(t, pointer, depth, index, spans)?,
    })
}

fn integer(digits: &str, radix: u32) -> Value {
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    if let Ok(i) = i64::from_str_radix(&clean, radix) {
        return Value::Number(i.into());
    }
    if let Ok(u) = u64::from_str_radix(&clean, radix) {
        return Value::Number(u.into());
    }
    Value::String(clean)
}

fn float(text: &str) -> Value {
    let clean: String = text.chars().filter(|&c| c != '_').collect();
    match clean.parse::<f64>().ok().and_then(Number::from_f64) {
        Some(n) => Value::Number(n),
        None => Value::String(clean.trim_start_matches('+').to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn toml_types_become_json_types_with_spans() {
        let doc = parse(
            "title = \"x\"\n[server]\nport = 8_080\nhex = 0xff\nneg = -3\nratio = 0.5\ninf = -inf\non = true\nat = 1979-05-27T07:32:00Z\n[[servers]]\nport = 1\n",
        )
        .unwrap();
        assert_eq!(
            doc.value,
            json!({
                "title": "x",
                "server": {"port": 8080, "hex": 255, "neg": -3, "ratio": 0.5, "inf": "-inf",
                           "on": true, "at": "1979-05-27T07:32:00Z"},
                "servers": [{"port": 1}]
            })
        );
        assert_eq!(
            doc.span("/server/port").map(|s| (s.line, s.column)),
            Some((3, 8))
        );
        assert_eq!(doc.span("/servers/0/port").map(|s| s.line), Some(11));
    }

    #[test]
    fn toml_errors_have_line_and_column() {
        let err = parse("a = 1\nb = \n").unwrap_err();
        assert_eq!(err.line(), 2, "{err}");
        let err = parse("a = 1\na = 2\n").unwrap_err();
        assert_eq!(err.line(), 2, "{err}");
    }
}
