//! Semantic differences between two document models: which keys and elements changed,
//! not which lines.
//!
//! - Objects compare key by key, so reordered TOML tables and keys, reordered front matter
//!   and reordered HeroScript parameters are no change.
//! - Arrays whose elements are objects with a `name` field (unique in each array) match
//!   those elements by name — HeroScript actions by `(actor, action, name:)`, TOML
//!   `[[bin]] name = …` — and the others by position among themselves; a change inside a
//!   matched element is reported under `[name=…]`. Arrays where no element has a `name`
//!   but some have a `heading` (Markdown sections) match by heading the same way. Other
//!   arrays compare by position.
//! - Each change names its path in `get`'s syntax; `old` is `None` for an addition, `new`
//!   is `None` for a removal.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::path::{Step, display};

/// Values nested deeper than this compare as wholes.
const MAX_DEPTH: usize = 128;

/// One changed value.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Where, in `get`'s path syntax (empty for the whole document).
    pub path: String,
    /// The value before; `None` when added.
    pub old: Option<Value>,
    /// The value after; `None` when removed.
    pub new: Option<Value>,
}

/// The changes from `old` to `new`, in path order within each container.
pub fn diff(old: &Value, new: &Value) -> Vec<Change> {
    let mut out = Vec::new();
    walk(old, new, &mut Vec::new(), &mut out);
    out
}

fn change(out: &mut Vec<Change>, path: &[Step], old: Option<&Value>, new: Option<&Value>) {
    out.push(Change {
        path: display(path),
        old: old.cloned(),
        new: new.cloned(),
    });
}

fn walk(old: &Value, new: &Value, path: &mut Vec<Step>, out: &mut Vec<Change>) {
    if old == new {
        return;
    }
    if path.len() >= MAX_DEPTH {
        change(out, path, Some(old), Some(new));
        return;
    }
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                path.push(Step::Key(key.clone()));
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => walk(x, y, path, out),
                    (x, y) => change(out, path, x, y),
                }
                path.pop();
            }
        }
        (Value::Array(a), Value::Array(b)) => arrays(a, b, path, out),
        _ => change(out, path, Some(old), Some(new)),
    }
}

/// The field that names an array's elements: `name` when any element has one as text,
/// else `heading` (Markdown sections).
fn identity(a: &[Value], b: &[Value]) -> &'static str {
    let has = |field: &str| {
        a.iter()
            .chain(b)
            .any(|item| item.get(field).is_some_and(Value::is_string))
    };
    if has("name") || !has("heading") {
        "name"
    } else {
        "heading"
    }
}

/// Names of elements that have a `field` text unique in their array.
fn names(items: &[Value], field: &str) -> BTreeMap<usize, String> {
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for item in items {
        if let Some(n) = item.get(field).and_then(Value::as_str) {
            *count.entry(n).or_default() += 1;
        }
    }
    items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| {
            let n = item.get(field).and_then(Value::as_str)?;
            (count.get(n) == Some(&1)).then(|| (i, n.to_string()))
        })
        .collect()
}

fn arrays(a: &[Value], b: &[Value], path: &mut Vec<Step>, out: &mut Vec<Change>) {
    let field = identity(a, b);
    let names_a = names(a, field);
    let names_b = names(b, field);
    let by_name_b: BTreeMap<&str, usize> = names_b.iter().map(|(i, n)| (n.as_str(), *i)).collect();
    let by_name_a: BTreeMap<&str, usize> = names_a.iter().map(|(i, n)| (n.as_str(), *i)).collect();
    let matched = |name: &str| by_name_a.contains_key(name) && by_name_b.contains_key(name);
    // Elements matched by name.
    for (i, name) in &names_a {
        let step = Step::Select {
            key: field.to_string(),
            value: name.clone(),
        };
        path.push(step);
        match by_name_b.get(name.as_str()).and_then(|&j| b.get(j)) {
            Some(y) => {
                if let Some(x) = a.get(*i) {
                    walk(x, y, path, out);
                }
            }
            None => change(out, path, a.get(*i), None),
        }
        path.pop();
    }
    // The rest by position among themselves. A named element of one side whose name the
    // other side lacks is an addition or a removal, never compared with another.
    let rest_a: Vec<usize> = (0..a.len()).filter(|i| !names_a.contains_key(i)).collect();
    let rest_b: Vec<usize> = (0..b.len()).filter(|i| !names_b.contains_key(i)).collect();
    for k in 0..rest_a.len().max(rest_b.len()) {
        let i = rest_a.get(k).copied();
        let j = rest_b.get(k).copied();
        let index = j.or(i).unwrap_or(k);
        path.push(Step::Index(i64::try_from(index).unwrap_or(i64::MAX)));
        match (i.and_then(|i| a.get(i)), j.and_then(|j| b.get(j))) {
            (Some(x), Some(y)) => walk(x, y, path, out),
            (x, y) => change(out, path, x, y),
        }
        path.pop();
    }
    for (j, name) in &names_b {
        if matched(name) {
            continue;
        }
        path.push(Step::Select {
            key: field.to_string(),
            value: name.clone(),
        });
        change(out, path, None, b.get(*j));
        path.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn named_elements_match_by_name_and_the_rest_by_position() {
        let old = json!({"node": {"define": [
            {"name": "n1", "ipaddr": "10.0.0.1"},
            {"name": "n2", "ipaddr": "10.0.0.2"},
            {"ipaddr": "10.0.0.9"}
        ]}});
        let new = json!({"node": {"define": [
            {"name": "n2", "ipaddr": "10.0.0.2"},
            {"ipaddr": "10.0.0.10"},
            {"name": "n1", "ipaddr": "10.0.0.3"},
            {"name": "n3"}
        ]}});
        let changes = diff(&old, &new);
        let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "node.define[name=n1].ipaddr",
                "node.define[1].ipaddr",
                "node.define[name=n3]"
            ]
        );
        assert_eq!(changes.get(2).and_then(|c| c.old.clone()), None);
    }
}
