//! YAML values that remember where they came from, so every later error can point at a line.

use std::sync::Arc;

use super::loc::Loc;

/// A mapping entry: the key, where the key was written, and the value.
pub type Entry = (Arc<str>, Loc, Node);

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Strings and keys are shared: equal scalars of one file are stored once.
    Str(Arc<str>),
    Seq(Box<[Node]>),
    /// Keys keep their own location: "unknown key" errors point at the key's line.
    Map(Box<[Entry]>),
    /// An inline Ansible Vault value (`!vault |`): the envelope, decrypted only when read.
    Vault(Arc<str>),
    /// A string marked `!unsafe`: text as written, never evaluated as a Jinja2 template.
    Unsafe(Arc<str>),
}

/// A value and where it was written. Trees are at most [`MAX_DEPTH`] deep: the parser
/// refuses deeper input, so the code walking a tree (conversions, serialisation, drop) may
/// recurse.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub loc: Loc,
}

impl Node {
    pub fn new(value: Value, loc: Loc) -> Self {
        Node { value, loc }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _, _)| **k == *key)
                .map(|(_, _, v)| v),
            _ => None,
        }
    }

    /// A scalar as text, the way Ansible would interpolate it.
    pub fn as_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) | Value::Unsafe(s) => Some(s.to_string()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(x) => Some(x.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Null | Value::Seq(_) | Value::Map(_) | Value::Vault(_) => None,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) | Value::Unsafe(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
            Value::Vault(_) => "a vault-encrypted value",
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(x) => serde_json::Number::from_f64(*x).map_or(J::Null, J::Number),
            Value::Str(s) | Value::Unsafe(s) => J::String(s.to_string()),
            // Never the ciphertext: a value is decrypted before anything shows it.
            Value::Vault(_) => J::Null,
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, _, v)| (k.to_string(), v.to_json()))
                    .collect(),
            ),
        }
    }
}
