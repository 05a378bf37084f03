//! A scope's variables by name, as read from the user's YAML and INI.

use std::{collections::BTreeMap, sync::Arc};

use super::{Diagnostic, Node, Value};

/// Variables of one scope (a group, a host, a vars file), by name, each remembering its origin.
/// Values are shared: resolving a host's variables copies pointers, not whole backend lists.
pub type VarMap = BTreeMap<String, Arc<Node>>;

/// The entries of a mapping node as a `VarMap`; null counts as empty.
pub fn map_entries(node: Node, what: &str) -> Result<VarMap, Diagnostic> {
    match node.value {
        Value::Null => Ok(VarMap::new()),
        Value::Map(entries) => Ok(entries
            .into_iter()
            .map(|(k, _, v)| (k.to_string(), Arc::new(v)))
            .collect()),
        _ => Err(Diagnostic::new(
            &node.loc,
            what,
            format!("expected a mapping of variables, found {}", node.kind()),
        )
        .hint("variables are written `name: value`, one per line")),
    }
}
