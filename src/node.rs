//! YAML values that remember where they came from, so every later error can point at a line.

use std::{fmt, path::Path, sync::Arc};

use saphyr::{LoadableYamlNode, MarkedYamlOwned, ScalarOwned, YamlDataOwned};

use crate::diagnostic::Diagnostic;

/// Where a value was written: a file and a 1-based line, or the command line (line 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loc {
    pub file: Arc<str>,
    pub line: usize,
}

impl Loc {
    pub fn new(file: &Arc<str>, line: usize) -> Self {
        Loc {
            file: Arc::clone(file),
            line,
        }
    }
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}", self.file, self.line)
        } else {
            write!(f, "{}", self.file)
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Keys keep their own location: "unknown key" errors point at the key's line.
    Map(Vec<(String, Loc, Node)>),
}

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
            Value::Map(entries) => entries.iter().find(|(k, _, _)| k == key).map(|(_, _, v)| v),
            _ => None,
        }
    }

    /// A scalar as text, the way Ansible would interpolate it.
    pub fn as_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(x) => Some(x.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Null | Value::Seq(_) | Value::Map(_) => None,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(x) => serde_json::Number::from_f64(*x).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, _, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

/// Reads a YAML file into a positioned tree. An empty file is an empty mapping.
pub fn load_file(path: &Path) -> Result<Node, Diagnostic> {
    let display: Arc<str> = Arc::from(path.display().to_string());
    let text = std::fs::read_to_string(path).map_err(|e| {
        Diagnostic::new(&Loc::new(&display, 0), "", format!("cannot read file: {e}"))
    })?;
    parse_str(&text, &display)
}

/// Parses YAML text; `file` is the name errors will show.
pub fn parse_str(text: &str, file: &Arc<str>) -> Result<Node, Diagnostic> {
    let docs = MarkedYamlOwned::load_from_str(text).map_err(|e| {
        Diagnostic::new(
            &Loc::new(file, e.marker().line()),
            "",
            format!("invalid YAML: {}", e.info()),
        )
        .hint("check indentation and quoting on this line and the one above")
    })?;
    match docs.into_iter().next() {
        None => Ok(Node::new(Value::Map(Vec::new()), Loc::new(file, 1))),
        Some(doc) => convert(doc, file),
    }
}

fn convert(node: MarkedYamlOwned, file: &Arc<str>) -> Result<Node, Diagnostic> {
    let loc = Loc::new(file, node.span.start.line());
    let value = match node.data {
        YamlDataOwned::Value(scalar) => scalar_value(scalar),
        YamlDataOwned::Representation(text, _, _) => Value::Str(text),
        YamlDataOwned::Sequence(items) => Value::Seq(
            items
                .into_iter()
                .map(|n| convert(n, file))
                .collect::<Result<_, _>>()?,
        ),
        YamlDataOwned::Mapping(map) => {
            let mut entries: Vec<(String, Loc, Node)> = Vec::with_capacity(map.len());
            for (k, v) in map {
                let key_loc = Loc::new(file, k.span.start.line());
                let key = match convert(k, file)?.as_text() {
                    Some(text) => text,
                    None => {
                        return Err(Diagnostic::new(
                            &key_loc,
                            "",
                            "mapping keys must be plain scalars",
                        ));
                    }
                };
                entries.push((key, key_loc, convert(v, file)?));
            }
            Value::Map(entries)
        }
        YamlDataOwned::Tagged(_, inner) => return convert(*inner, file),
        YamlDataOwned::Alias(_) | YamlDataOwned::BadValue => {
            return Err(
                Diagnostic::new(&loc, "", "value could not be parsed")
                    .hint("quote the value if it is meant to be a string"),
            );
        }
    };
    Ok(Node::new(value, loc))
}

fn scalar_value(scalar: ScalarOwned) -> Value {
    match scalar {
        ScalarOwned::Null => Value::Null,
        ScalarOwned::Boolean(b) => Value::Bool(b),
        ScalarOwned::Integer(i) => Value::Int(i),
        ScalarOwned::FloatingPoint(x) => Value::Float(x.into_inner()),
        ScalarOwned::String(s) => Value::Str(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_lines_of_keys_and_values() {
        let file: Arc<str> = Arc::from("vars.yml");
        let node = parse_str("a: 1\nb:\n  - x: yes\n", &file).unwrap();
        let Value::Map(entries) = &node.value else {
            panic!("not a map")
        };
        assert_eq!(entries[1].1.line, 2);
        let b = node.get("b").unwrap();
        let Value::Seq(items) = &b.value else {
            panic!("not a seq")
        };
        assert_eq!(items[0].get("x").unwrap().loc.line, 3);
    }

    #[test]
    fn invalid_yaml_names_the_line() {
        let file: Arc<str> = Arc::from("bad.yml");
        let err = parse_str("a: 1\nb: [1, 2\nc: 3\n", &file).unwrap_err();
        assert_eq!(err.file, "bad.yml");
        assert!(err.line >= 2, "{err}");
    }
}
