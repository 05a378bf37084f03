//! Ansible's filters on mappings: `combine`, `dict2items`, `items2dict`, `rekey_on_member`;
//! mappings keep their keys in order, as Python's dicts do.

use std::collections::HashMap;

use minijinja::{
    Error, ErrorKind, Value,
    value::{Kwargs, ValueKind},
};

/// Ansible's `combine`: later mappings win; `recursive=true` merges nested mappings, and
/// `list_merge` says what becomes of a list both have (Ansible's `merge_hash`).
pub(super) fn combine(
    base: Value,
    others: minijinja::value::Rest<Value>,
    kw: Kwargs,
) -> Result<Value, Error> {
    let recursive: bool = kw.get::<Option<bool>>("recursive")?.unwrap_or(false);
    let lists = match kw.get::<Option<String>>("list_merge")?.as_deref() {
        None | Some("replace") => ListMerge::Replace,
        Some("keep") => ListMerge::Keep,
        Some("append") => ListMerge::Append,
        Some("prepend") => ListMerge::Prepend,
        Some("append_rp") => ListMerge::AppendRp,
        Some("prepend_rp") => ListMerge::PrependRp,
        Some(_) => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                "merge_hash: 'list_merge' argument can only be equal to 'replace', 'keep', \
                 'append', 'prepend', 'append_rp' or 'prepend_rp'",
            ));
        }
    };
    kw.assert_all_used()?;
    let mut out = to_pairs(&base)?;
    for other in others.iter() {
        out = merge(out, other, recursive, lists)?;
    }
    Ok(ordered_map(out))
}

/// What `combine` does with a list both mappings have: `list_merge`'s values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListMerge {
    Replace,
    Keep,
    Append,
    Prepend,
    /// Append, after removing from the first list the items the second has.
    AppendRp,
    /// Prepend, after removing from the first list the items the second has.
    PrependRp,
}

/// `y` merged into the mapping `x` (its pairs), as Ansible's `merge_hash` does.
fn merge(
    mut x: Vec<(Value, Value)>,
    y: &Value,
    recursive: bool,
    lists: ListMerge,
) -> Result<Vec<(Value, Value)>, Error> {
    for (k, y_value) in to_pairs(y)? {
        let Some(slot) = x.iter_mut().find(|(xk, _)| *xk == k) else {
            x.push((k, y_value));
            continue;
        };
        let x_value = &slot.1;
        slot.1 = match (x_value.kind(), y_value.kind()) {
            (ValueKind::Map, ValueKind::Map) if recursive => {
                ordered_map(merge(to_pairs(x_value)?, &y_value, recursive, lists)?)
            }
            // A list, or a list a slice or filter still makes as it is read.
            (ValueKind::Seq | ValueKind::Iterable, ValueKind::Seq | ValueKind::Iterable) => {
                let first: Vec<Value> = x_value.try_iter()?.collect();
                let second: Vec<Value> = y_value.try_iter()?.collect();
                let kept = |list: Vec<Value>| -> Vec<Value> {
                    list.into_iter().filter(|v| !second.contains(v)).collect()
                };
                match lists {
                    ListMerge::Replace => y_value,
                    ListMerge::Keep => continue,
                    ListMerge::Append => Value::from([first, second].concat()),
                    ListMerge::Prepend => Value::from([second, first].concat()),
                    ListMerge::AppendRp => Value::from([kept(first), second].concat()),
                    ListMerge::PrependRp => {
                        let first = kept(first);
                        Value::from([second, first].concat())
                    }
                }
            }
            _ => y_value,
        };
    }
    Ok(x)
}

/// Ansible's `rekey_on_member(key, duplicates='error')`: a list of mappings (or a mapping's
/// values) as a mapping from each one's `key` to it; a key met twice is an error, or with
/// `duplicates='overwrite'` the later mapping wins (the key keeps its first place).
pub(super) fn rekey_on_member(
    data: Value,
    key: Value,
    duplicates: Option<String>,
) -> Result<Value, Error> {
    let fail = |message: String| Error::new(ErrorKind::InvalidOperation, message);
    super::defined(&data)?;
    let overwrite = match duplicates.as_deref() {
        None | Some("error") => false,
        Some("overwrite") => true,
        Some(other) => {
            return Err(fail(format!(
                "duplicates parameter to rekey_on_member has unknown value {}",
                super::python_repr(&Value::from(other))
            )));
        }
    };
    let items: Vec<Value> = match data.kind() {
        ValueKind::Map => data
            .try_iter()?
            .map(|k| data.get_item(&k).unwrap_or_default())
            .collect(),
        ValueKind::Seq | ValueKind::Iterable => data.try_iter()?.collect(),
        _ => return Err(fail("Type is not a valid list, set, or dict".into())),
    };
    let mut pairs: Vec<(Value, Value)> = Vec::new();
    let mut at: HashMap<Value, usize> = HashMap::new();
    for item in items {
        if item.kind() != ValueKind::Map {
            return Err(fail("List item is not a valid dict".into()));
        }
        let found = item.get_item(&key).unwrap_or_default();
        if found.is_undefined() {
            return Err(fail(format!(
                "Key {} was not found.",
                super::python_repr(&key)
            )));
        }
        if matches!(
            found.kind(),
            ValueKind::Seq | ValueKind::Iterable | ValueKind::Map
        ) && !found.is_tuple()
        {
            return Err(fail(format!(
                "unhashable type: '{}'",
                super::types::python_type_name(&found)
            )));
        }
        match at.get(&found) {
            Some(&i) if overwrite => pairs[i].1 = item,
            Some(_) => {
                return Err(fail(format!(
                    "Key {} is not unique, cannot convert to dict.",
                    super::python_repr(&found)
                )));
            }
            None => {
                at.insert(found.clone(), pairs.len());
                pairs.push((found, item));
            }
        }
    }
    Ok(ordered_map(pairs))
}

/// A mapping that keeps its keys in the order given, as Python's dicts do.
pub(crate) fn ordered_map(pairs: Vec<(Value, Value)>) -> Value {
    Value::from_object(OrderedMap(pairs))
}

#[derive(Debug)]
pub(super) struct OrderedMap(Vec<(Value, Value)>);

impl minijinja::value::Object for OrderedMap {
    fn repr(self: &std::sync::Arc<Self>) -> minijinja::value::ObjectRepr {
        minijinja::value::ObjectRepr::Map
    }

    fn get_value(self: &std::sync::Arc<Self>, key: &Value) -> Option<Value> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .or_else(super::super::chain::stand_in)
    }

    fn enumerate(self: &std::sync::Arc<Self>) -> minijinja::value::Enumerator {
        minijinja::value::Enumerator::Values(self.0.iter().map(|(k, _)| k.clone()).collect())
    }
}

pub(super) fn to_pairs(value: &Value) -> Result<Vec<(Value, Value)>, Error> {
    if value.kind() != ValueKind::Map {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("combine expects mappings, got {}", value.kind()),
        ));
    }
    Ok(value
        .try_iter()?
        .map(|k| {
            let v = value.get_item(&k).unwrap_or_default();
            (k, v)
        })
        .collect())
}

pub(super) fn dict2items(value: Value, kw: Kwargs) -> Result<Value, Error> {
    let key: String = kw
        .get::<Option<String>>("key_name")?
        .unwrap_or("key".into());
    let val: String = kw
        .get::<Option<String>>("value_name")?
        .unwrap_or("value".into());
    kw.assert_all_used()?;
    Ok(Value::from(key_value_items(&value, &key, &val)?))
}

/// A mapping's entries as items `{KEY: its key, VALUE: its value}`, in its order
/// (`dict2items`, and the `dict` lookup).
pub(in crate::input::template) fn key_value_items(
    value: &Value,
    key: &str,
    val: &str,
) -> Result<Vec<Value>, Error> {
    Ok(to_pairs(value)?
        .into_iter()
        .map(|(k, v)| ordered_map(vec![(Value::from(key), k), (Value::from(val), v)]))
        .collect())
}

pub(super) fn items2dict(value: Value, kw: Kwargs) -> Result<Value, Error> {
    // Python's item[key_name]: a name for mappings, an index for lists of pairs.
    let key = kw
        .get::<Option<Value>>("key_name")?
        .unwrap_or_else(|| Value::from("key"));
    let val = kw
        .get::<Option<Value>>("value_name")?
        .unwrap_or_else(|| Value::from("value"));
    kw.assert_all_used()?;
    let mut out = Vec::new();
    for item in value.try_iter()? {
        let (k, v) = (item.get_item(&key)?, item.get_item(&val)?);
        if k.is_undefined() || v.is_undefined() {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!(
                    "items2dict requires a list of mappings with key_name ({key}) and value_name ({val}), found {}",
                    super::python_str(&item)
                ),
            ));
        }
        out.push((k, v));
    }
    Ok(ordered_map(out))
}
