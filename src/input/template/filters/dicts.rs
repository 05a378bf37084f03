//! Ansible's filters on mappings: `combine`, `dict2items`, `items2dict`; mappings keep their
//! keys in order, as Python's dicts do.

use minijinja::{
    Error, ErrorKind, Value,
    value::{Kwargs, ValueKind},
};

/// Ansible's `combine`: later mappings win; `recursive=true` merges nested mappings.
pub(super) fn combine(
    base: Value,
    others: minijinja::value::Rest<Value>,
    kw: Kwargs,
) -> Result<Value, Error> {
    let recursive: bool = kw.get::<Option<bool>>("recursive")?.unwrap_or(false);
    let _: Option<String> = kw.get("list_merge")?;
    kw.assert_all_used()?;
    let mut out = to_pairs(&base)?;
    for other in others.iter() {
        for (k, v) in to_pairs(other)? {
            match out.iter_mut().find(|(ok, _)| *ok == k) {
                Some((_, existing))
                    if recursive
                        && existing.kind() == ValueKind::Map
                        && v.kind() == ValueKind::Map =>
                {
                    *existing = combine(
                        existing.clone(),
                        minijinja::value::Rest(vec![v]),
                        Kwargs::from_iter([("recursive", Value::from(true))]),
                    )?;
                }
                Some((_, existing)) => *existing = v,
                None => out.push((k, v)),
            }
        }
    }
    Ok(ordered_map(out))
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
    Ok(Value::from(
        to_pairs(&value)?
            .into_iter()
            .map(|(k, v)| {
                ordered_map(vec![
                    (Value::from(key.clone()), k),
                    (Value::from(val.clone()), v),
                ])
            })
            .collect::<Vec<_>>(),
    ))
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
