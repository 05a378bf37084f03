//! Ansible's filters on lists: `extract` (`groups['workers'] | map('extract', hostvars,
//! 'ansible_host')`), `flatten`, and the set filters `unique`-like `union`, `intersect`,
//! `difference`, `symmetric_difference`, which keep the first list's order as Ansible does,
//! and `subelements`.

use minijinja::{
    Error, ErrorKind, State, Value,
    value::{Kwargs, Rest, Tuple, ValueKind, ValueOrKwargs, from_args},
};

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

/// `flatten(levels=None, skip_nulls=True)`: nested lists made one, as Ansible's: with
/// `skip_nulls`, `None` items are dropped, and so are the strings `'None'` and `'null'`.
pub(super) fn flatten(value: Value, levels: Option<usize>, kw: Kwargs) -> Result<Value, Error> {
    fn walk(
        value: &Value,
        levels: Option<usize>,
        skip: bool,
        out: &mut Vec<Value>,
    ) -> Result<(), Error> {
        for item in value.try_iter()? {
            match item.kind() {
                _ if skip && (item.is_none() || matches!(item.as_str(), Some("None" | "null"))) => {
                }
                ValueKind::Seq if levels != Some(0) => {
                    walk(&item, levels.map(|l| l - 1), skip, out)?;
                }
                _ => out.push(item),
            }
        }
        Ok(())
    }
    let levels = super::positional_or_keyword(levels, &kw, "levels")?;
    let skip = kw.get::<Option<bool>>("skip_nulls")?.unwrap_or(true);
    kw.assert_all_used()?;
    let mut out = Vec::new();
    walk(&value, levels, skip, &mut out)?;
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

/// Jinja2's `map`, whose keyword arguments reach the filter it applies, as in Python
/// (`map('regex_replace', '^', 'x', ignorecase=true)`, `map('combine', d, recursive=true)`,
/// `map('items2dict', key_name=0, value_name=1)`): minijinja's drops them.
pub(super) fn map(
    state: &mut State,
    value: Value,
    args: Rest<ValueOrKwargs>,
) -> Result<Vec<Value>, Error> {
    let values = args.into_values();
    let (positional, kwargs): (&[Value], Kwargs) = from_args(&values)?;
    let forwarded = kwargs.args().next().is_some() && !kwargs.has("attribute");
    if !forwarded {
        return minijinja::filters::map(
            state,
            value,
            Rest(values.into_iter().map(Into::into).collect()),
        );
    }
    let name = positional
        .first()
        .and_then(Value::as_str)
        .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "map: filter name is required"))?;
    let mut out = Vec::new();
    for item in value.try_iter()? {
        let mut call = vec![item];
        call.extend(positional[1..].iter().cloned());
        call.push(Value::from(kwargs.clone()));
        out.push(state.apply_filter(name, &call)?);
    }
    Ok(out)
}

/// `list | subelements('servers')`: a pair (item, element) for every element of each item's
/// list under that key (a dotted path, or a list of keys; items of a mapping are its values),
/// with Ansible's errors; `skip_missing=True` skips an item without the key.
pub(super) fn subelements(
    value: Value,
    path: Value,
    skip: Option<bool>,
    kw: Kwargs,
) -> Result<Value, Error> {
    let skip_missing = super::positional_or_keyword(skip, &kw, "skip_missing")?.unwrap_or(false);
    kw.assert_all_used()?;
    let items: Vec<Value> = match value.kind() {
        ValueKind::Map => value
            .try_iter()?
            .map(|k| value.get_item(&k).unwrap_or_default())
            .collect(),
        ValueKind::Seq | ValueKind::Iterable => value.try_iter()?.collect(),
        _ => return Err(invalid("obj must be a list of dicts or a nested dict")),
    };
    let keys: Vec<Value> = match path.kind() {
        ValueKind::Seq => path.try_iter()?.collect(),
        ValueKind::String => path
            .as_str()
            .unwrap_or_default()
            .split('.')
            .map(Value::from)
            .collect(),
        _ => return Err(invalid("subelements must be a list or a string")),
    };
    let repr = super::python_repr;
    let mut pairs = Vec::new();
    'items: for item in items {
        let mut found = item.clone();
        for key in &keys {
            if found.kind() != ValueKind::Map {
                return Err(invalid(&format!(
                    "the key {} should point to a dictionary, got '{}'",
                    super::python_str(key),
                    super::python_str(&found)
                )));
            }
            match found.get_item(key).ok().filter(|v| !v.is_undefined()) {
                Some(next) => found = next,
                None if skip_missing => continue 'items,
                None => {
                    return Err(invalid(&format!(
                        "could not find {} key in iterated item {}",
                        repr(key),
                        repr(&found)
                    )));
                }
            }
        }
        if found.kind() != ValueKind::Seq {
            return Err(invalid(&format!(
                "the key {} should point to a list, got {}",
                repr(keys.last().unwrap_or(&Value::UNDEFINED)),
                repr(&found)
            )));
        }
        for element in found.try_iter()? {
            pairs.push(Value::from(Tuple::from([item.clone(), element])));
        }
    }
    Ok(Value::from(pairs))
}

fn invalid(message: &str) -> Error {
    Error::new(ErrorKind::InvalidOperation, message.to_string())
}
