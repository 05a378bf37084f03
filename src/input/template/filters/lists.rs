//! Ansible's filters on lists: `extract` (`groups['workers'] | map('extract', hostvars,
//! 'ansible_host')`), `flatten`, and the set filters `unique`-like `union`, `intersect`,
//! `difference`, `symmetric_difference`, which keep the first list's order as Ansible does,
//! `subelements`, and Python's `itertools` as Ansible gives them: `product`, `combinations`,
//! `permutations`, `zip_longest`.

use std::collections::HashSet;

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
    let mut seen = HashSet::new();
    let out: Vec<Value> = values
        .into_iter()
        .filter(|v| seen.insert(v.clone()))
        .collect();
    Value::from(out)
}

/// The items of a list as a set, to look them up by hash (a list of 100,000 against another
/// is then milliseconds, not a minute).
pub(super) fn set_of(items: &[Value]) -> HashSet<&Value> {
    items.iter().collect()
}

pub(super) fn union(a: Value, b: Value) -> Result<Value, Error> {
    Ok(unique(items(&a)?.into_iter().chain(items(&b)?)))
}

pub(super) fn intersect(a: Value, b: Value) -> Result<Value, Error> {
    let b = items(&b)?;
    let b = set_of(&b);
    Ok(unique(items(&a)?.into_iter().filter(|v| b.contains(v))))
}

pub(super) fn difference(a: Value, b: Value) -> Result<Value, Error> {
    let b = items(&b)?;
    let b = set_of(&b);
    Ok(unique(items(&a)?.into_iter().filter(|v| !b.contains(v))))
}

pub(super) fn symmetric_difference(a: Value, b: Value) -> Result<Value, Error> {
    let (a, b) = (items(&a)?, items(&b)?);
    let (in_a, in_b) = (set_of(&a), set_of(&b));
    let only_a = a.iter().filter(|v| !in_b.contains(v)).cloned();
    let only_b = b.iter().filter(|v| !in_a.contains(v)).cloned();
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

/// The most items `product`, `combinations` and `permutations` make.
const MAX_TUPLES: usize = 100_000;

/// The items of what Python's `itertools` take as an iterable (see [`items_of`]).
fn pool(value: &Value) -> Result<Vec<Value>, Error> {
    super::defined(value)?;
    items_of(value).ok_or_else(|| invalid(&format!("{value} is not iterable")))
}

/// The items of what Python iterates: a list's, a text's characters, a mapping's keys.
pub(super) fn items_of(value: &Value) -> Option<Vec<Value>> {
    match value.kind() {
        ValueKind::String => Some(
            value
                .as_str()
                .unwrap_or_default()
                .chars()
                .map(|c| Value::from(c.to_string()))
                .collect(),
        ),
        ValueKind::Seq | ValueKind::Iterable | ValueKind::Map => {
            value.try_iter().ok().map(Iterator::collect)
        }
        _ => None,
    }
}

fn too_many(filter: &str) -> Error {
    invalid(&format!("{filter} would make more than {MAX_TUPLES} items"))
}

/// `a | product(b, ..., repeat=1)`: Python's `itertools.product`, the tuples in its order.
pub(super) fn product(first: Value, rest: Rest<Value>, kw: Kwargs) -> Result<Value, Error> {
    let repeat: Option<i64> = kw.get("repeat")?;
    kw.assert_all_used()?;
    let mut pools = vec![pool(&first)?];
    for other in rest.iter() {
        pools.push(pool(other)?);
    }
    let repeat = usize::try_from(repeat.unwrap_or(1))
        .map_err(|_| invalid("repeat argument cannot be negative"))?;
    // counted before anything is made: a tuple as wide as `repeat` pools, as many tuples as
    // the pools' sizes multiplied
    if pools.iter().any(Vec::is_empty) {
        return Ok(Value::from(Vec::<Value>::new()));
    }
    let width = pools.len().saturating_mul(repeat);
    let count = pools
        .iter()
        .try_fold(1usize, |n, p| n.checked_mul(p.len()))
        .and_then(|n| u32::try_from(repeat).ok().and_then(|r| n.checked_pow(r)))
        .filter(|n| *n <= MAX_TUPLES && width <= MAX_TUPLES)
        .ok_or_else(|| too_many("product"))?;
    let pools: Vec<&Vec<Value>> = (0..repeat).flat_map(|_| pools.iter()).collect();
    let mut tuples: Vec<Vec<Value>> = Vec::with_capacity(count);
    tuples.push(Vec::new());
    for pool in pools {
        tuples = tuples
            .iter()
            .flat_map(|t| {
                pool.iter().map(move |item| {
                    let mut next = t.clone();
                    next.push(item.clone());
                    next
                })
            })
            .collect();
    }
    Ok(Value::from(
        tuples
            .into_iter()
            .map(|t| Value::from(Tuple::from(t)))
            .collect::<Vec<_>>(),
    ))
}

/// `list | combinations(r)`: Python's `itertools.combinations`, in its order.
pub(super) fn combinations(value: Value, r: i64) -> Result<Value, Error> {
    let items = pool(&value)?;
    let r = usize::try_from(r).map_err(|_| invalid("r must be non-negative"))?;
    let mut out = Vec::new();
    if r <= items.len() {
        let mut index: Vec<usize> = (0..r).collect();
        loop {
            if out.len() >= MAX_TUPLES {
                return Err(too_many("combinations"));
            }
            out.push(Value::from(Tuple::from(
                index.iter().map(|&i| items[i].clone()).collect::<Vec<_>>(),
            )));
            // the rightmost index that can still move right
            let Some(at) = (0..r).rev().find(|&i| index[i] != i + items.len() - r) else {
                break;
            };
            index[at] += 1;
            for j in at + 1..r {
                index[j] = index[j - 1] + 1;
            }
        }
    }
    Ok(Value::from(out))
}

/// `list | permutations(r=len)`: Python's `itertools.permutations`, in its order.
pub(super) fn permutations(value: Value, r: Option<i64>) -> Result<Value, Error> {
    let items = pool(&value)?;
    let r = match r {
        None => items.len(),
        Some(r) => usize::try_from(r).map_err(|_| invalid("r must be non-negative"))?,
    };
    let mut out = Vec::new();
    if r <= items.len() {
        // n! / (n - r)!, counted first: no more tuples than allowed, nor deeper recursion
        let count = (items.len() - r + 1..=items.len())
            .try_fold(1usize, |n, k| n.checked_mul(k).filter(|n| *n <= MAX_TUPLES));
        if count.is_none() {
            return Err(too_many("permutations"));
        }
        let mut chosen = Vec::with_capacity(r);
        let mut used = vec![false; items.len()];
        permute(&items, r, &mut chosen, &mut used, &mut out)?;
    }
    Ok(Value::from(out))
}

fn permute(
    items: &[Value],
    r: usize,
    chosen: &mut Vec<usize>,
    used: &mut [bool],
    out: &mut Vec<Value>,
) -> Result<(), Error> {
    if chosen.len() == r {
        if out.len() >= MAX_TUPLES {
            return Err(too_many("permutations"));
        }
        out.push(Value::from(Tuple::from(
            chosen.iter().map(|&i| items[i].clone()).collect::<Vec<_>>(),
        )));
        return Ok(());
    }
    for i in 0..items.len() {
        if !used[i] {
            used[i] = true;
            chosen.push(i);
            permute(items, r, chosen, used, out)?;
            chosen.pop();
            used[i] = false;
        }
    }
    Ok(())
}

/// `a | zip_longest(b, ..., fillvalue=None)`: Python's `itertools.zip_longest`.
pub(super) fn zip_longest(first: Value, rest: Rest<Value>, kw: Kwargs) -> Result<Value, Error> {
    let fill: Option<Value> = kw.get("fillvalue")?;
    kw.assert_all_used()?;
    let fill = fill.unwrap_or(Value::from(()));
    let mut pools = vec![pool(&first)?];
    for other in rest.iter() {
        pools.push(pool(other)?);
    }
    let longest = pools.iter().map(Vec::len).max().unwrap_or(0);
    Ok(Value::from(
        (0..longest)
            .map(|i| {
                Value::from(Tuple::from(
                    pools
                        .iter()
                        .map(|p| p.get(i).cloned().unwrap_or_else(|| fill.clone()))
                        .collect::<Vec<_>>(),
                ))
            })
            .collect::<Vec<_>>(),
    ))
}
