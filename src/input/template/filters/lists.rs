//! Ansible's filters on lists: `extract` (`groups['workers'] | map('extract', hostvars,
//! 'ansible_host')`), `flatten`, and the set filters `unique`-like `union`, `intersect`,
//! `difference`, `symmetric_difference`, which keep the first list's order as Ansible does.

use minijinja::{
    Error, ErrorKind, State, Value,
    value::{Kwargs, Rest, ValueKind, ValueOrKwargs, from_args},
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
