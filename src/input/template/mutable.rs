//! Lists and mappings a template builds and changes in place, as Python's do:
//! `{% set out = [] %}{% for h in groups.web %}{% set _ = out.append(h) %}{% endfor %}` and
//! `{% set d = {} %}{% set _ = d.update({'k': 1}) %}`, idioms of Ansible repositories.
//!
//! minijinja's values are immutable, so every empty literal (`[]`, `{}`) in a template's
//! expressions is read as a fresh list or mapping that has Python's mutating methods
//! (`append`, `extend`, `insert`, `pop`, `remove`, `clear`; `update`, `setdefault`, `pop`,
//! `clear`); everything else reads it as any list or mapping.
//!
//! Unlike Python's, these never hold themselves (`l.append(l)`, `d.update({'a': d})`): every
//! filter that walks a value (`join`, `flatten`, `to_json`, `~`, `pprint`) would never end.

use std::{
    borrow::Cow,
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex, MutexGuard},
};

use minijinja::{
    Environment, Error, ErrorKind, State, Value,
    value::{Enumerator, Object, ObjectRepr, ValueKind},
};

use super::scope::{MAX_RESULT_DEPTH, is_inventory};

/// The functions the rewritten literals call.
const LIST: &str = "__lbctl_list";
const DICT: &str = "__lbctl_dict";

/// Bounds what a template can build by appending, like every other input.
const MAX_ITEMS: usize = 1 << 20;

pub(super) fn register(env: &mut Environment<'static>) {
    env.add_function(LIST, || Value::from_object(List::default()));
    env.add_function(DICT, || Value::from_object(Dict::default()));
}

/// `source` with each empty `[]` / `{}` literal inside `{{ }}` and `{% %}` read as a new
/// changeable list or mapping; text, comments, string literals and `{% raw %}` untouched.
pub fn prepare(source: &str) -> Cow<'_, str> {
    let mut out = String::new();
    let mut copied = 0;
    let mut changed = false;
    for_each_block(source, |start, end| {
        if let Cow::Owned(body) = rewrite(&source[start..end]) {
            out.push_str(&source[copied..start]);
            out.push_str(&body);
            copied = end;
            changed = true;
        }
        Ok(())
    })
    .expect("rewriting refuses no block");
    if !changed {
        return Cow::Borrowed(source);
    }
    out.push_str(&source[copied..]);
    Cow::Owned(out)
}

/// Most operators one `{{ }}` or `{% %}` block may chain. Jinja2 reads `a | f | g`, `a.b.c`
/// and `a ~ b ~ c` as trees as deep as the chain is long, which minijinja compiles and frees
/// by recursion: a chain of tens of thousands (a 100 KB variable of `|string|string...`)
/// would overflow the stack. No real expression comes near this.
pub const MAX_BLOCK_OPERATORS: usize = 5_000;

/// Refuses a template with a block of more than [`MAX_BLOCK_OPERATORS`] operators (filters,
/// attribute and item lookups, calls, arithmetic, comparisons and `and`/`or`/`not`/`is`/`in`/
/// `if`), outside string literals, before it is compiled: the error, and the line of `source`
/// the block starts on.
pub fn check_chains(source: &str) -> Result<(), (usize, Error)> {
    let mut line = 0;
    for_each_block(source, |start, end| {
        let count = operators(&source.as_bytes()[start..end]);
        if count <= MAX_BLOCK_OPERATORS {
            return Ok(());
        }
        line = 1 + source.as_bytes()[..start]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        Err(Error::new(
            ErrorKind::SyntaxError,
            format!(
                "a block chains {count} operators (filters, lookups, arithmetic, comparisons); \
                 lbctl compiles at most {MAX_BLOCK_OPERATORS} in one block: split the \
                 expression with `{{% set %}}`"
            ),
        ))
    })
    .map_err(|e| (line, e))
}

/// How many operators `body` (a block's expression) holds outside its string literals.
fn operators(body: &[u8]) -> usize {
    let mut count = 0;
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            q @ (b'\'' | b'"') => i = string_end(body, i, q),
            b'|' | b'.' | b'[' | b'(' | b'~' | b'+' | b'-' | b'*' | b'/' | b'%' | b'<' | b'>'
            | b'=' | b'!' => count += 1,
            b if b.is_ascii_alphabetic() || b == b'_' => {
                let word_end = body[i..]
                    .iter()
                    .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
                    .map_or(body.len(), |n| i + n);
                if matches!(
                    &body[i..word_end],
                    b"and" | b"or" | b"not" | b"is" | b"in" | b"if"
                ) {
                    count += 1;
                }
                i = word_end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    count
}

/// Calls `f` with the start and end of each `{{ }}` and `{% %}` block's expression in
/// `source`, in order; comments and `{% raw %}` blocks are skipped. Stops at `f`'s first error.
fn for_each_block(
    source: &str,
    mut f: impl FnMut(usize, usize) -> Result<(), Error>,
) -> Result<(), Error> {
    if !(source.contains("{{") || source.contains("{%")) {
        return Ok(());
    }
    let bytes = source.as_bytes();
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] != b'{' {
            i += 1;
            continue;
        }
        match bytes[i + 1] {
            b'#' => {
                i = source[i..].find("#}").map_or(bytes.len(), |e| i + e + 2);
            }
            b'{' | b'%' => {
                let statement = bytes[i + 1] == b'%';
                let start = i + 2;
                let end = block_end(bytes, start, statement);
                if statement && is_tag(&source[start..end.body], "raw") {
                    i = raw_end(source, end.after);
                    continue;
                }
                f(start, end.body)?;
                i = end.after;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

struct End {
    /// Where the block's expression ends (its closing delimiter starts).
    body: usize,
    /// After the closing delimiter.
    after: usize,
}

/// The end of the `{{ }}` or `{% %}` block whose body starts at `from`: its closing delimiter
/// outside string literals and brackets, as Jinja2's lexer finds it.
fn block_end(bytes: &[u8], from: usize, statement: bool) -> End {
    let close = if statement { b'%' } else { b'}' };
    let mut depth = 0usize;
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            q @ (b'\'' | b'"') => i = string_end(bytes, i, q),
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' => depth = depth.saturating_sub(1),
            b'}' if depth > 0 => depth -= 1,
            b if b == close && depth == 0 && bytes.get(i + 1) == Some(&b'}') => {
                // `-}}` / `+%}`: whitespace control belongs to the delimiter.
                let body = if i > from && matches!(bytes[i - 1], b'-' | b'+') {
                    i - 1
                } else {
                    i
                };
                return End { body, after: i + 2 };
            }
            _ => {}
        }
        i += 1;
    }
    End {
        body: bytes.len(),
        after: bytes.len(),
    }
}

/// The index of the quote closing the string literal opened at `at`.
fn string_end(bytes: &[u8], at: usize, quote: u8) -> usize {
    let mut i = at + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b if b == quote => return i,
            _ => {}
        }
        i += 1;
    }
    bytes.len()
}

fn is_tag(body: &str, tag: &str) -> bool {
    body.trim_matches(|c: char| c == '-' || c == '+').trim() == tag
}

/// After the `{% endraw %}` closing a raw block whose opening tag ends at `from`.
fn raw_end(source: &str, from: usize) -> usize {
    let bytes = source.as_bytes();
    let mut at = from;
    while let Some(found) = source[at..].find("{%") {
        let start = at + found + 2;
        let end = block_end(bytes, start, true);
        if is_tag(&source[start..end.body], "endraw") {
            return end.after;
        }
        at = end.after;
    }
    bytes.len()
}

/// One block's expression with its empty literals replaced.
fn rewrite(body: &str) -> Cow<'_, str> {
    let bytes = body.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            q @ (b'\'' | b'"') => i = string_end(bytes, i, q),
            open @ (b'[' | b'{') => {
                let close = if open == b'[' { b']' } else { b'}' };
                let mut j = i + 1;
                while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                    j += 1;
                }
                // `x[]` is not Jinja2, so an empty pair of brackets is always a literal.
                if bytes.get(j) == Some(&close) {
                    out.push_str(&body[copied..i]);
                    out.push_str(if open == b'[' { LIST } else { DICT });
                    out.push_str("()");
                    copied = j + 1;
                    i = j;
                }
            }
            _ => {}
        }
        i += 1;
    }
    if copied == 0 {
        return Cow::Borrowed(body);
    }
    out.push_str(&body[copied..]);
    Cow::Owned(out)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn arity(method: &str, args: &[Value], min: usize, max: usize) -> Result<(), Error> {
    if args.len() < min || args.len() > max {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "{method}() takes {min} to {max} arguments, {} given",
                args.len()
            ),
        ));
    }
    Ok(())
}

fn room(len: usize, more: usize) -> Result<(), Error> {
    if len.saturating_add(more) > MAX_ITEMS {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("a list or mapping built by a template holds at most {MAX_ITEMS} items"),
        ));
    }
    Ok(())
}

/// Refuses to put `values` into the list or mapping at `target` when one of them is it, or
/// holds it at any depth (a list or mapping that holds itself), or nests deeper than a
/// variable's value may ([`MAX_RESULT_DEPTH`]). The walk is paid for with the render's fuel,
/// as the copy it checks would be; the inventory's own values (which hold no template's list)
/// are not walked.
fn refuse_cycles<'v>(
    state: &State,
    target: *const (),
    values: impl IntoIterator<Item = &'v Value>,
) -> Result<(), Error> {
    for value in values {
        walk(state, target, value, 1)?;
    }
    Ok(())
}

fn walk(state: &State, target: *const (), value: &Value, depth: usize) -> Result<(), Error> {
    if !matches!(
        value.kind(),
        ValueKind::Seq | ValueKind::Map | ValueKind::Iterable
    ) || is_inventory(value)
    {
        return Ok(());
    }
    let list = value.downcast_object_ref::<List>();
    let dict = value.downcast_object_ref::<Dict>();
    let address = list
        .map(|l| std::ptr::from_ref(l).cast::<()>())
        .or(dict.map(|d| std::ptr::from_ref(d).cast::<()>()));
    if address == Some(target) {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "a list or mapping cannot be put into itself, nor into a list or mapping it \
             holds (Python allows it, but lbctl's filters could not walk the result): add a \
             copy, such as `l + []` or `dict(d)`",
        ));
    }
    if depth > MAX_RESULT_DEPTH {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "a list or mapping built by a template nests at most {MAX_RESULT_DEPTH} levels"
            ),
        ));
    }
    let items: Vec<Value> = match (list, dict) {
        (Some(l), _) => lock(&l.0).clone(),
        (_, Some(d)) => lock(&d.0)
            .pairs
            .iter()
            .flat_map(|(k, v)| [k.clone(), v.clone()])
            .collect(),
        _ if value.kind() == ValueKind::Map => value
            .try_iter()?
            .flat_map(|k| {
                let v = value.get_item(&k).unwrap_or_default();
                [k, v]
            })
            .collect(),
        _ => value.try_iter()?.collect(),
    };
    state.consume_fuel(1 + items.len() as u64 / 2)?;
    for item in &items {
        walk(state, target, item, depth + 1)?;
    }
    Ok(())
}

/// An index as Python reads it (negative from the end), if it is within `len`.
fn index(value: &Value, len: usize) -> Option<usize> {
    let i = value.as_i64()?;
    let i = if i < 0 { i + len as i64 } else { i };
    usize::try_from(i).ok().filter(|i| *i < len)
}

/// A Python list.
#[derive(Default)]
struct List(Mutex<Vec<Value>>);

impl fmt::Debug for List {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(lock(&self.0).iter()).finish()
    }
}

impl Object for List {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let items = lock(&self.0);
        index(key, items.len()).map(|i| items[i].clone())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(lock(&self.0).clone())
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(lock(&self.0).len())
    }

    fn call_method(
        self: &Arc<Self>,
        state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let target = Arc::as_ptr(self).cast::<()>();
        // what `extend` adds, and where `remove` finds its item, read before the list is
        // locked: `l.extend(l)` adds `l`'s items, `l.remove(l)` compares `l` with each
        let mut more = Vec::new();
        let mut found = None;
        match method {
            "append" => refuse_cycles(state, target, args.first())?,
            "insert" => refuse_cycles(state, target, args.get(1))?,
            "extend" => {
                arity(method, args, 1, 1)?;
                more = args[0].try_iter()?.collect();
                refuse_cycles(state, target, &more)?;
            }
            "remove" => {
                arity(method, args, 1, 1)?;
                let items = lock(&self.0).clone();
                found = items.iter().position(|v| v == &args[0]);
            }
            _ => {}
        }
        let mut items = lock(&self.0);
        match method {
            "append" => {
                arity(method, args, 1, 1)?;
                room(items.len(), 1)?;
                items.push(args[0].clone());
            }
            "extend" => {
                room(items.len(), more.len())?;
                items.extend(more);
            }
            "insert" => {
                arity(method, args, 2, 2)?;
                room(items.len(), 1)?;
                let len = items.len() as i64;
                let at = args[0].as_i64().ok_or_else(|| {
                    Error::new(ErrorKind::InvalidOperation, "insert() needs a whole number")
                })?;
                let at = if at < 0 {
                    (at + len).max(0)
                } else {
                    at.min(len)
                };
                items.insert(at as usize, args[1].clone());
            }
            "pop" => {
                arity(method, args, 0, 1)?;
                let len = items.len();
                let at = match args.first() {
                    Some(i) => index(i, len),
                    None => len.checked_sub(1),
                };
                let at = at.ok_or_else(|| {
                    Error::new(ErrorKind::InvalidOperation, "pop index out of range")
                })?;
                return Ok(items.remove(at));
            }
            "remove" => {
                let at = found.ok_or_else(|| {
                    Error::new(ErrorKind::InvalidOperation, "list.remove(x): x not in list")
                })?;
                items.remove(at);
            }
            "clear" => {
                arity(method, args, 0, 0)?;
                items.clear();
            }
            _ => return Err(Error::from(ErrorKind::UnknownMethod)),
        }
        Ok(Value::from(()))
    }
}

/// A Python dict: keys in insertion order, found by hash (so that building one key by key
/// takes time in proportion to its keys, as in Python).
#[derive(Default)]
struct Dict(Mutex<Entries>);

#[derive(Default)]
struct Entries {
    pairs: Vec<(Value, Value)>,
    /// Each key's place in `pairs`.
    at: HashMap<Value, usize>,
}

/// Refuses a list or mapping a template changes as a key, as Python does (`unhashable type`):
/// its hash would change with it, and looking it up in itself would wait on itself.
fn hashable(key: &Value) -> Result<(), Error> {
    let kind = if key.downcast_object_ref::<List>().is_some() {
        "list"
    } else if key.downcast_object_ref::<Dict>().is_some() {
        "dict"
    } else {
        return Ok(());
    };
    Err(Error::new(
        ErrorKind::InvalidOperation,
        format!("unhashable type: '{kind}'"),
    ))
}

impl Entries {
    fn get(&self, key: &Value) -> Option<&Value> {
        self.at.get(key).map(|&i| &self.pairs[i].1)
    }

    fn set(&mut self, key: Value, value: Value) -> Result<(), Error> {
        match self.at.get(&key) {
            Some(&i) => self.pairs[i].1 = value,
            None => {
                room(self.pairs.len(), 1)?;
                self.at.insert(key.clone(), self.pairs.len());
                self.pairs.push((key, value));
            }
        }
        Ok(())
    }

    fn remove(&mut self, key: &Value) -> Option<Value> {
        let removed = self.at.remove(key)?;
        for i in self.at.values_mut() {
            if *i > removed {
                *i -= 1;
            }
        }
        Some(self.pairs.remove(removed).1)
    }

    fn clear(&mut self) {
        self.pairs.clear();
        self.at.clear();
    }
}

impl fmt::Debug for Dict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(lock(&self.0).pairs.iter().map(|(k, v)| (k, v)))
            .finish()
    }
}

impl Object for Dict {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        hashable(key).ok()?;
        lock(&self.0).get(key).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let pairs = lock(&self.0).pairs.clone();
        Enumerator::KeyValueIter(Box::new(pairs.into_iter()))
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(lock(&self.0).pairs.len())
    }

    fn call_method(
        self: &Arc<Self>,
        state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let target = Arc::as_ptr(self).cast::<()>();
        // what `update` adds, read before the mapping is locked (`d.update(d)` reads `d`)
        let mut more = Vec::new();
        match method {
            "update" => {
                // update(mapping) and update(k=v): minijinja passes keyword arguments as a
                // trailing mapping, so both read the same.
                for arg in args {
                    if arg.kind() != ValueKind::Map {
                        return Err(Error::new(
                            ErrorKind::InvalidOperation,
                            "update() takes a mapping",
                        ));
                    }
                    for key in arg.try_iter()? {
                        hashable(&key)?;
                        let value = arg.get_item(&key)?;
                        more.push((key, value));
                    }
                }
                refuse_cycles(state, target, more.iter().flat_map(|(k, v)| [k, v]))?;
            }
            "setdefault" => {
                hashable(args.first().unwrap_or(&Value::UNDEFINED))?;
                refuse_cycles(state, target, args)?;
            }
            "pop" => hashable(args.first().unwrap_or(&Value::UNDEFINED))?,
            _ => {}
        }
        let mut entries = lock(&self.0);
        match method {
            "update" => {
                for (key, value) in more {
                    entries.set(key, value)?;
                }
                Ok(Value::from(()))
            }
            "setdefault" => {
                arity(method, args, 1, 2)?;
                if let Some(v) = entries.get(&args[0]) {
                    return Ok(v.clone());
                }
                let default = args.get(1).cloned().unwrap_or(Value::from(()));
                entries.set(args[0].clone(), default.clone())?;
                Ok(default)
            }
            "pop" => {
                arity(method, args, 1, 2)?;
                match entries.remove(&args[0]) {
                    Some(v) => Ok(v),
                    None => args.get(1).cloned().ok_or_else(|| {
                        Error::new(
                            ErrorKind::InvalidOperation,
                            format!("pop(): no key {}", args[0]),
                        )
                    }),
                }
            }
            "clear" => {
                arity(method, args, 0, 0)?;
                entries.clear();
                Ok(Value::from(()))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_empty_literals_in_blocks_are_rewritten() {
        assert_eq!(prepare("a [] {} b"), "a [] {} b");
        assert_eq!(
            prepare("{% set x = [ ] %}{{ x | default({}) }}"),
            "{% set x = __lbctl_list() %}{{ x | default(__lbctl_dict()) }}"
        );
        assert_eq!(prepare("{{ '[]' ~ \"{}\" }}[]"), "{{ '[]' ~ \"{}\" }}[]");
        assert_eq!(prepare("{# [] #}{{ [1] }}"), "{# [] #}{{ [1] }}");
        assert_eq!(
            prepare("{% raw %}{{ [] }}{% endraw %}{{ {}}}"),
            "{% raw %}{{ [] }}{% endraw %}{{ __lbctl_dict()}}"
        );
        assert_eq!(prepare("{{- [] -}}"), "{{- __lbctl_list() -}}");
    }

    #[test]
    fn long_chains_are_refused_before_they_are_compiled() {
        let chain = |n: usize| format!("x\n{{{{ 'a'{} }}}}", "|string".repeat(n));
        assert_eq!(operators(b" a.b | f(1) ~ c[0] "), 5);
        assert_eq!(operators(b" 'a.b|c' ~ \"[(\" and not x is y "), 4);
        assert!(check_chains(&chain(MAX_BLOCK_OPERATORS)).is_ok());
        let (line, e) = check_chains(&chain(MAX_BLOCK_OPERATORS + 1)).unwrap_err();
        assert_eq!(line, 2);
        assert!(e.to_string().contains("chains 5001 operators"), "{e}");
        // comments and raw blocks are not compiled
        let raw = format!(
            "{{% raw %}}{}{{% endraw %}}{{# {} #}}",
            chain(9_000),
            chain(9_000)
        );
        assert!(check_chains(&raw).is_ok());
        // and a long template of short blocks is no chain
        assert!(check_chains(&"{{ a | b }}".repeat(10_000)).is_ok());
    }

    fn render(template: &str) -> String {
        super::super::environment()
            .render_str(&prepare(template), ())
            .unwrap_or_else(|e| format!("error: {e}"))
    }

    #[test]
    fn lists_and_mappings_change_as_in_python() {
        assert_eq!(
            render(
                "{% set out = [] %}{% for h in ['a', 'b'] %}{% set _ = out.append({'name': h}) %}{% endfor %}{{ out }} {{ out | length }} {{ out[-1].name }}"
            ),
            "[{'name': 'a'}, {'name': 'b'}] 2 b"
        );
        assert_eq!(
            render(
                "{% set l = [] %}{{ l.extend([2, 3]) }}{{ l.insert(0, 1) }}{{ l.pop() }} {{ l }} {{ l | to_json }} {{ l == [1, 2] }}"
            ),
            "3 [1, 2] [1, 2] True"
        );
        assert_eq!(
            render(
                "{% set d = {} %}{% set _ = d.update({'b': 1}) %}{% set _ = d.update(a=2) %}{{ d.setdefault('b', 9) }} {{ d }} {{ d | dict2items | map(attribute='key') | join(',') }}"
            ),
            "1 {'b': 1, 'a': 2} b,a"
        );
        assert!(render("{% set l = [] %}{{ l.pop() }}").starts_with("error:"));
    }

    #[test]
    fn a_list_or_mapping_is_never_put_into_itself() {
        for cycle in [
            "{% set l = [] %}{% set _ = l.append(l) %}{{ l | join(',') }}",
            "{% set l = [] %}{% set _ = l.insert(0, [1, l]) %}{{ l | flatten }}",
            "{% set l = [] %}{% set _ = l.extend([l]) %}{{ l ~ '' }}",
            "{% set l = [] %}{% set _ = l.append({'a': [l]}) %}{{ l | to_json }}",
            "{% set d = {} %}{% set _ = d.update({'a': d}) %}{{ d | pprint }}",
            "{% set d = {} %}{% set _ = d.update(a={'b': d}) %}{{ d | combine(d, recursive=true) }}",
            "{% set d = {} %}{% set _ = d.setdefault('a', [d]) %}{{ d | string }}",
            "{% set a = [] %}{% set b = {} %}{% set _ = a.append(b) %}{% set _ = b.update({'a': a}) %}{{ a }}",
            "{% set a = [] %}{% set b = [] %}{% set _ = a.append(b) %}{% set _ = b.append(a[0:1]) %}{{ a }}",
        ] {
            let e = render(cycle);
            assert!(e.contains("cannot be put into itself"), "{cycle}: {e}");
        }
        // and looking a list up in itself, or a mapping by itself, ends
        let e = render("{% set l = [] %}{% set _ = l.append(1) %}{{ l.remove(l) }}");
        assert!(e.contains("x not in list"), "{e}");
        let e = render("{% set d = {} %}{{ d.setdefault(d, 1) }}");
        assert!(e.contains("unhashable type: 'dict'"), "{e}");
        // copies, and a list's own items, are fine
        assert_eq!(
            render(
                "{% set l = [] %}{% set _ = l.append(1) %}{% set _ = l.extend(l) %}{% set _ = l.append(l | list) %}{% set d = {} %}{% set _ = d.update(a=1) %}{% set _ = d.update(d) %}{% set _ = d.update({'l': l}) %}{{ l }} {{ d }}"
            ),
            "[1, 1, [1, 1]] {'a': 1, 'l': [1, 1, [1, 1]]}"
        );
        let deep = "{% set top = [] %}{% set ns = namespace(cur=top) %}{% for i in range(100) %}{% set next = [] %}{% set _ = next.append(ns.cur) %}{% set ns.cur = next %}{% endfor %}";
        let e = render(deep);
        assert!(e.contains("nests at most 64 levels"), "{e}");
    }

    #[test]
    fn a_mapping_grows_key_by_key_in_linear_time() {
        // (100,000 updates ran past a minute when each copied the mapping)
        assert_eq!(
            render(
                "{% set d = {} %}{% for i in range(100000) %}{% set _ = d.update({i: 1}) %}{% endfor %}{{ d | length }} {{ d[99999] }}"
            ),
            "100000 1"
        );
        assert_eq!(
            render(
                "{% set d = {} %}{% set _ = d.update({'a': 1, 'b': 2, 'c': 3}) %}{{ d.pop('b') }} {{ d['c'] }} {{ d.setdefault('b', 4) }} {{ d }} {{ d.pop('x', 0) }}"
            ),
            "2 3 4 {'a': 1, 'c': 3, 'b': 4} 0"
        );
    }
}
