//! Ansible's filters on lists: `extract` (`groups['workers'] | map('extract', hostvars,
//! 'ansible_host')`), `flatten`, and the set filters `unique`-like `union`, `intersect`,
//! `difference`, `symmetric_difference`, which keep the first list's order as Ansible does.

use minijinja::{Error, ErrorKind, Value, value::ValueKind};

/// `item | extract(container, morekeys)`: `container[item]`, then each of `morekeys` (one key
/// or a list of them) looked up in turn.
pub(super) fn extract(
    item: Value,
    container: Value,
    morekeys: Option<Value>,
) -> Result<Value, Error> {
    let mut value = container.get_item(&item)?;
    let keys: Vec<Value> = match morekeys {
        None => Vec::new(),
        Some(k) if k.kind() == ValueKind::Seq => k.try_iter()?.collect(),
        Some(k) => vec![k],
    };
    for key in keys {
        value = value.get_item(&key)?;
    }
    if value.is_undefined() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            format!("extract: no item {item} in the container"),
        ));
    }
    Ok(value)
}

/// `flatten(levels=None)`: nested lists made one, `None` items dropped, as Ansible's.
pub(super) fn flatten(value: Value, levels: Option<usize>) -> Result<Value, Error> {
    fn walk(value: &Value, levels: Option<usize>, out: &mut Vec<Value>) -> Result<(), Error> {
        for item in value.try_iter()? {
            match item.kind() {
                ValueKind::None => {}
                ValueKind::Seq if levels != Some(0) => walk(&item, levels.map(|l| l - 1), out)?,
                _ => out.push(item),
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(&value, levels, &mut out)?;
    Ok(Value::from(out))
}

fn items(value: &Value) -> Result<Vec<Value>, Error> {
    Ok(value.try_iter()?.collect())
}

fn unique(values: impl IntoIterator<Item = Value>) -> Value {
    let mut out: Vec<Value> = Vec::new();
    for v in values {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    Value::from(out)
}

pub(super) fn union(a: Value, b: Value) -> Result<Value, Error> {
    Ok(unique(items(&a)?.into_iter().chain(items(&b)?)))
}

pub(super) fn intersect(a: Value, b: Value) -> Result<Value, Error> {
    let b = items(&b)?;
    Ok(unique(items(&a)?.into_iter().filter(|v| b.contains(v))))
}

pub(super) fn difference(a: Value, b: Value) -> Result<Value, Error> {
    let b = items(&b)?;
    Ok(unique(items(&a)?.into_iter().filter(|v| !b.contains(v))))
}

pub(super) fn symmetric_difference(a: Value, b: Value) -> Result<Value, Error> {
    let (a, b) = (items(&a)?, items(&b)?);
    let only_a = a.iter().filter(|v| !b.contains(v)).cloned();
    let only_b = b.iter().filter(|v| !a.contains(v)).cloned();
    Ok(unique(only_a.chain(only_b).collect::<Vec<_>>()))
}
