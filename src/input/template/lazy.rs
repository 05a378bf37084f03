//! Lists and mappings from the user's YAML as templates see them, read item by item as
//! ansible-core 2.19's lazy containers are: an item is evaluated when a template reads it, so
//! `{{ d.a }}` works while `d.b` holds a template that would fail. Also the way back: a
//! template's result as a positioned `Node`.

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, OnceLock, Weak},
};

use minijinja::{
    Value,
    value::{Enumerator, Object, ObjectRepr, ValueKind},
};

use super::{
    chain,
    error::TemplateError,
    filters::python_str,
    omit,
    scope::{HostScope, MAX_RESULT_DEPTH, failed_read},
};
use crate::source::{Loc, Node, Value as V};

/// Mappings with more keys than this are looked up through an index, made on first use.
const INDEXED: usize = 16;

/// Most values a template's result may hold, as the YAML it stands for (the limit of one
/// YAML file).
const MAX_RESULT_NODES: usize = crate::source::MAX_NODES;

/// The message for a result holding an undefined value (a list or mapping the template built).
pub(super) const UNDEFINED_RESULT: &str = "the result holds an undefined value";

/// A list or mapping inside a variable's value: the variable's whole value and the path of
/// indexes leading to this part of it.
pub(super) struct Lazy {
    scope: Weak<HostScope>,
    var: Arc<str>,
    root: Arc<Node>,
    path: Box<[u32]>,
    keys: OnceLock<HashMap<Arc<str>, usize>>,
}

impl fmt::Debug for Lazy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lazy")
            .field("var", &self.var)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Lazy {
    pub(super) fn new(scope: &Arc<HostScope>, var: &str, root: &Arc<Node>, path: &[u32]) -> Lazy {
        Lazy {
            scope: Arc::downgrade(scope),
            var: Arc::from(var),
            root: Arc::clone(root),
            path: path.into(),
            keys: OnceLock::new(),
        }
    }

    fn node(&self) -> &Node {
        self.path
            .iter()
            .fold(&*self.root, |node, &i| match &node.value {
                V::Seq(items) => &items[i as usize],
                V::Map(entries) => &entries[i as usize].2,
                _ => node,
            })
    }

    fn item(&self, index: usize) -> Option<Value> {
        let scope = self.scope.upgrade()?;
        let child = match &self.node().value {
            V::Seq(items) => items.get(index)?,
            V::Map(entries) => &entries.get(index)?.2,
            _ => return None,
        };
        let mut path = self.path.to_vec();
        path.push(u32::try_from(index).ok()?);
        match scope.value(&self.var, &self.root, &path, child) {
            Ok(value) => Some(value),
            Err(e) => failed_read(e),
        }
    }

    fn key_index(&self, key: &str) -> Option<usize> {
        let V::Map(entries) = &self.node().value else {
            return None;
        };
        if entries.len() <= INDEXED {
            return entries.iter().rposition(|(k, _, _)| **k == *key);
        }
        self.keys
            .get_or_init(|| {
                entries
                    .iter()
                    .enumerate()
                    .map(|(i, (k, _, _))| (Arc::clone(k), i))
                    .collect()
            })
            .get(key)
            .copied()
    }
}

impl Object for Lazy {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        match self.node().value {
            V::Seq(_) => ObjectRepr::Seq,
            _ => ObjectRepr::Map,
        }
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let found = match &self.node().value {
            V::Seq(_) => key.as_usize().and_then(|i| self.item(i)),
            _ => key
                .as_str()
                .and_then(|k| self.key_index(k))
                .and_then(|i| self.item(i)),
        };
        found.or_else(chain::stand_in)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        match &self.node().value {
            V::Seq(items) => Enumerator::Seq(items.len()),
            V::Map(entries) => Enumerator::Values(
                entries
                    .iter()
                    .map(|(k, _, _)| Value::from(Arc::clone(k)))
                    .collect(),
            ),
            _ => Enumerator::Empty,
        }
    }
}

/// A template's result as the YAML it stands for, every part of it at `loc` (the template's
/// line) except the parts of variables it returned whole, which keep their own lines; the
/// items and keys that are `omit` left out (`None`: the result is `omit`). `error` makes the
/// error for a result that is no YAML value.
pub(super) fn to_node(
    value: &Value,
    loc: Loc,
    depth: usize,
    error: &dyn Fn(String) -> Box<TemplateError>,
) -> Result<Option<Node>, Box<TemplateError>> {
    let mut budget = MAX_RESULT_NODES;
    convert(value, loc, depth, &mut budget, error)
}

fn convert(
    value: &Value,
    loc: Loc,
    depth: usize,
    budget: &mut usize,
    error: &dyn Fn(String) -> Box<TemplateError>,
) -> Result<Option<Node>, Box<TemplateError>> {
    if omit::is_omit(value) {
        return Ok(None);
    }
    if depth > MAX_RESULT_DEPTH {
        return Err(error(format!(
            "the result nests deeper than {MAX_RESULT_DEPTH} levels"
        )));
    }
    *budget = budget.checked_sub(1).ok_or_else(|| {
        error(format!(
            "the result holds more than {MAX_RESULT_NODES} values"
        ))
    })?;
    if let Some(lazy) = value.downcast_object_ref::<Lazy>()
        && let Some(scope) = lazy.scope.upgrade()
    {
        return scope.evaluate_node(&lazy.var, lazy.node(), depth);
    }
    if chain::is_missing(value) {
        return Err(error(UNDEFINED_RESULT.into()));
    }
    let message = |e: minijinja::Error| error(e.to_string());
    let converted = match value.kind() {
        ValueKind::Undefined => return Err(error(UNDEFINED_RESULT.into())),
        ValueKind::None => V::Null,
        ValueKind::Bool => V::Bool(value.is_true()),
        ValueKind::Number => match value.as_i64() {
            Some(i) => V::Int(i),
            // a whole number past i64 (`int` gives up to i128) keeps its digits, which no
            // field's range holds: a float would report another number
            None if value.is_integer() => V::Str(Arc::from(value.to_string())),
            None => V::Float(f64::try_from(value.clone()).map_err(message)?),
        },
        ValueKind::String | ValueKind::Bytes => V::Str(Arc::from(python_str(value))),
        ValueKind::Seq | ValueKind::Iterable => V::Seq(
            value
                .try_iter()
                .map_err(message)?
                .filter_map(|item| convert(&item, loc, depth + 1, budget, error).transpose())
                .collect::<Result<_, _>>()?,
        ),
        ValueKind::Map | ValueKind::Plain => V::Map(
            value
                .try_iter()
                .map_err(message)?
                .filter_map(|k| {
                    let v = match value.get_item(&k) {
                        Ok(v) => v,
                        Err(e) => return Some(Err(message(e))),
                    };
                    let v = convert(&v, loc, depth + 1, budget, error).transpose()?;
                    Some(v.map(|v| (Arc::from(python_str(&k)), loc, v)))
                })
                .collect::<Result<_, Box<TemplateError>>>()?,
        ),
        _ => {
            return Err(error(format!(
                "the result is {value}, which is no YAML value"
            )));
        }
    };
    Ok(Some(Node::new(converted, loc)))
}
