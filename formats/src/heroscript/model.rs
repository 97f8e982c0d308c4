//! The document model of a HeroScript text: actions with their arguments and parameters.

use serde_json::{Map, Value};

use crate::span::Span;

/// The reserved name under which positional arguments appear in the document model.
pub(crate) const ARGS_KEY: &str = "_args";

/// A parsed HeroScript text: its actions in file order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Script {
    /// The actions, in the order of the text.
    pub actions: Vec<Action>,
}

/// One `!!actor.action …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// The actor (before the dot), lowercase.
    pub actor: String,
    /// The action (after the dot), lowercase.
    pub name: String,
    /// Positional arguments (words with no `key:`), in order.
    pub args: Vec<String>,
    /// Parameters in the order written; no two share a key.
    pub params: Vec<Param>,
    /// Where the `!!` is.
    pub span: Span,
}

/// One `key:value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// The name, lowercase.
    pub key: String,
    /// The value.
    pub value: ParamValue,
    /// Where the name starts.
    pub span: Span,
}

/// A parameter's value: text, or a list of texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamValue {
    /// `key:value`, `key:'quoted'`, `key:` (empty).
    Text(String),
    /// `key:a,b,c` or `key:[a, b]`.
    List(Vec<String>),
}

impl ParamValue {
    /// The JSON form: a string or an array of strings.
    pub fn to_value(&self) -> Value {
        match self {
            ParamValue::Text(s) => Value::String(s.clone()),
            ParamValue::List(items) => {
                Value::Array(items.iter().cloned().map(Value::String).collect())
            }
        }
    }
}

impl Action {
    /// The value of parameter `key` (lowercase).
    pub fn param(&self, key: &str) -> Option<&ParamValue> {
        self.params.iter().find(|p| p.key == key).map(|p| &p.value)
    }

    /// The parameters as one JSON object; positional arguments under `_args`.
    pub fn to_value(&self) -> Value {
        let mut object = Map::new();
        if !self.args.is_empty() {
            object.insert(
                ARGS_KEY.to_string(),
                Value::Array(self.args.iter().cloned().map(Value::String).collect()),
            );
        }
        for p in &self.params {
            object.insert(p.key.clone(), p.value.to_value());
        }
        Value::Object(object)
    }
}
