//! Lookups through a missing value, as Ansible allows them: `{{ facts.eth0.address |
//! default('x') }}` and `{{ tuning.haproxy.maxconn is defined }}` hold where `facts` or
//! `tuning.haproxy` has no value, and only using such a value (printing it, testing its truth,
//! iterating it, a filter reading it) is an error.
//!
//! minijinja's strict mode, which gives the errors Ansible gives everywhere else, fails at the
//! lookup itself. So a variable template that fails for want of a value is evaluated a second
//! time, with every missing variable and every missing key of the user's lists and mappings
//! standing in as a [`Missing`] value, which lookups go through: `default` and the
//! `defined`/`undefined` tests take it as undefined, and any other use of it is noted. The
//! second result counts only when nothing used a stand-in and none is left in it; else the
//! first error stands, so a template that fails in Ansible fails here with the same message.

use std::{cell::Cell, fmt, sync::Arc};

use minijinja::{
    Environment, Error, ErrorKind, State, Value,
    value::{Enumerator, Object, ObjectRepr, Rest},
};

thread_local! {
    /// Whether lookups of missing values give stand-ins (the second evaluation is running).
    static STANDING_IN: Cell<bool> = const { Cell::new(false) };
    /// Whether a stand-in was used as a value during the second evaluation.
    static USED: Cell<bool> = const { Cell::new(false) };
}

/// What a lookup of a missing value gives during the second evaluation: lookups through it
/// give it again; any other use is noted (`used`) and gives nothing.
#[derive(Debug)]
pub(super) struct Missing;

impl fmt::Display for Missing {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        used();
        Ok(())
    }
}

impl Object for Missing {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, _: &Value) -> Option<Value> {
        Some(Value::from_dyn_object(Arc::clone(self)))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        used();
        Enumerator::NonEnumerable
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        used();
        None
    }

    fn is_true(self: &Arc<Self>) -> bool {
        used();
        false
    }

    fn call(self: &Arc<Self>, _: &mut State<'_, '_>, _: &[Value]) -> Result<Value, Error> {
        used();
        Err(undefined())
    }

    fn call_method(
        self: &Arc<Self>,
        _: &mut State<'_, '_>,
        _: &str,
        _: &[Value],
    ) -> Result<Value, Error> {
        used();
        Err(undefined())
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

fn used() {
    USED.with(|u| u.set(true));
}

fn undefined() -> Error {
    Error::new(ErrorKind::UndefinedError, "an undefined value")
}

/// Whether `value` stands in for a missing one (see [`Missing`]).
pub(super) fn is_missing(value: &Value) -> bool {
    value.downcast_object_ref::<Missing>().is_some()
}

/// Whether `value` has no value: undefined, or a stand-in for a missing one. A stand-in
/// found here is being used: the second evaluation does not count.
pub(super) fn lacks_value(value: &Value) -> bool {
    if is_missing(value) {
        used();
        return true;
    }
    value.is_undefined()
}

/// What a lookup of a missing value gives: a stand-in during the second evaluation, else
/// nothing (undefined).
pub(super) fn stand_in() -> Option<Value> {
    STANDING_IN
        .with(Cell::get)
        .then(|| Value::from_object(Missing))
}

/// Runs `evaluate` as a first evaluation: lookups of missing values give nothing, whatever
/// evaluation (a variable that reads this one) is under way around it.
pub(super) fn first<T>(evaluate: impl FnOnce() -> T) -> T {
    let outer = (
        STANDING_IN.with(|s| s.replace(false)),
        USED.with(|u| u.replace(false)),
    );
    let result = evaluate();
    STANDING_IN.with(|s| s.set(outer.0));
    USED.with(|u| u.set(outer.1));
    result
}

/// Whether a first evaluation of `source` that failed with `error` may be evaluated a second
/// time: it failed for want of a value, and it compares no values (`==`, `<`, `in`, ...),
/// which minijinja does without asking the values, so that a stand-in's use there would go
/// unnoticed (`{{ facts.eth0 == 'x' }}` fails in Ansible, and here too).
pub(super) fn worth_a_second_look(error: &Error, source: &str) -> bool {
    error.kind() == ErrorKind::UndefinedError && !compares(source)
}

/// Whether the expressions of `source` (inside `{{ }}` and `{% %}`, outside string literals)
/// hold a comparison: `==`, `!=`, `<`, `>`, `<=`, `>=` or the word `in` (but for the one of a
/// `{% for ... in ... %}`).
fn compares(source: &str) -> bool {
    let bytes = source.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let end: &[u8] = match (bytes[i], bytes.get(i + 1)) {
            (b'{', Some(b'{')) => b"}}",
            (b'{', Some(b'%')) => b"%}",
            _ => {
                i += 1;
                continue;
            }
        };
        let mut j = i + 2;
        let mut quote = None;
        let mut words = 0;
        let mut is_for = false;
        while j < bytes.len() && !(quote.is_none() && bytes[j..].starts_with(end)) {
            let c = bytes[j];
            j += 1;
            if let Some(q) = quote {
                if c == b'\\' {
                    j += 1;
                } else if c == q {
                    quote = None;
                }
                continue;
            }
            match c {
                b'\'' | b'"' => quote = Some(c),
                b'<' | b'>' => return true,
                b'=' | b'!' if bytes.get(j) == Some(&b'=') => return true,
                c if c.is_ascii_alphabetic() || c == b'_' => {
                    let start = j - 1;
                    while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_')
                    {
                        j += 1;
                    }
                    let word = &bytes[start..j];
                    let after_dot = start > 0 && bytes[start - 1] == b'.';
                    words += 1;
                    if words == 1 && end == b"%}" && word == b"for" {
                        is_for = true;
                    } else if word == b"in" && !after_dot {
                        if !is_for {
                            return true;
                        }
                        is_for = false;
                    }
                }
                _ => {}
            }
        }
        i = j + end.len();
    }
    false
}

/// Runs `evaluate` a second time, with stand-ins for missing values; its value when nothing
/// used one and `holds_none` finds none left in it.
pub(super) fn second<T>(
    evaluate: impl FnOnce() -> Result<T, Error>,
    holds_none: impl FnOnce(&T) -> bool,
) -> Option<T> {
    let outer = (
        STANDING_IN.with(|s| s.replace(true)),
        USED.with(|u| u.replace(false)),
    );
    let result = evaluate();
    let used = USED.with(|u| u.get());
    STANDING_IN.with(|s| s.set(outer.0));
    USED.with(|u| u.set(outer.1));
    match result {
        Ok(value) if !used && holds_none(&value) => Some(value),
        _ => None,
    }
}

/// `default` (and `d`) and the `defined`/`undefined` tests, which take a stand-in as
/// undefined.
pub(super) fn register(env: &mut Environment<'static>) {
    for name in ["default", "d"] {
        env.add_filter(name, |state: &State, value: Value, rest: Rest<Value>| {
            let value = if is_missing(&value) {
                Value::UNDEFINED
            } else {
                value
            };
            minijinja::filters::default(state, &value, rest)
        });
    }
    env.add_test("defined", |value: &Value| {
        !is_missing(value) && !value.is_undefined()
    });
    env.add_test("undefined", |value: &Value| {
        is_missing(value) || value.is_undefined()
    });
}

#[cfg(test)]
mod tests {
    use super::super::scope::tests::{eval, templar};

    /// Each variable's template, and its value in ansible-core 2.19 (`None`: an error there),
    /// with `d: {a: 1, n: {m: 2}}` and `l: [1, 2]` defined, `a`, `e`, `x` not, and `b` a
    /// template that lacks a value (`{{ undefined_z }}`).
    #[test]
    fn lookups_through_missing_values_are_ansible_s() {
        let cases: &[(&str, Option<&str>)] = &[
            ("{{ a.b | default(1) }}", Some("1")),
            ("{{ a.b.c | default(1) }}", Some("1")),
            ("{{ a.b is defined }}", Some("false")),
            ("{{ a.b.c is undefined }}", Some("true")),
            ("{{ d.x.y | default('z') }}", Some("\"z\"")),
            ("{{ d.n.m | default(0) }}", Some("2")),
            ("{{ d.n.x is defined }}", Some("false")),
            ("{{ l[5] | default('none') }}", Some("\"none\"")),
            ("{{ a['b'] | d('x') }}", Some("\"x\"")),
            ("{{ a.b | default(1, true) }}", Some("1")),
            ("{{ (a.b | default({})).c | default(2) }}", Some("2")),
            ("{{ a.b }}", None),
            ("{{ 'x' if a.b else 'y' }}", None),
            ("{{ a.b ~ 'x' }}", None),
            ("{{ a.b | length }}", None),
            ("{{ a.b is none }}", None),
            ("{{ [a.b] }}", None),
            ("{{ a.b | int }}", None),
            ("{% for x in a.b %}{{ x }}{% endfor %}", None),
            ("{{ d.x.y }}", None),
            (
                "{{ a.b if a is defined else 'fallback' }}",
                Some("\"fallback\""),
            ),
            (
                "{{ a.b | default(d.x.y | default('deep')) }}",
                Some("\"deep\""),
            ),
            (
                "{{ hostvars[inventory_hostname].a.b | default('hv') }}",
                Some("\"hv\""),
            ),
            ("{{ vars['a'].b | default('v') }}", Some("\"v\"")),
            ("{{ a.b | upper }}", None),
            ("{{ a.b == 1 }}", None),
            ("{{ a.b == 'x' }}", None),
            ("{{ a.b in ['x'] }}", None),
            ("{{ a.b + 1 }}", None),
            ("{{ a.b() }}", None),
            ("{{ a.b.split(',') }}", None),
            ("{{ a.b | string }}", None),
            ("{{ a.b | to_json }}", None),
            ("{{ a.b | bool }}", None),
            ("{{ a.b | mandatory }}", None),
            ("{{ not a.b }}", None),
            ("{{ a.b and 1 }}", None),
            ("{{ a.b or 1 }}", None),
            ("{{ a.b | default(1) }}{{ e.f }}", None),
            ("{{ a.b | select | list }}", None),
            ("{{ {'k': a.b} }}", None),
            (
                "{{ a.b | default(x.y | default(a.b.c | default(3))) }}",
                Some("3"),
            ),
            (
                "{{ ansible_default_ipv4.interface | default('eth0') }}",
                Some("\"eth0\""),
            ),
            ("{{ d.x | default('dx') }}", Some("\"dx\"")),
            ("{{ a.b | default([]) | length }}", Some("0")),
            ("{{ a.b is string }}", None),
            ("{{ a.b | ternary(1, 2) }}", None),
            ("{{ l | map(attribute='zz') | list }}", None),
            ("{{ a.b | default(none) }}", Some("null")),
            ("x{{ a.b | default('') }}y", Some("\"xy\"")),
            (
                "{% for x in a.b | default([1]) %}{{ x }}{% endfor %}",
                Some("1"),
            ),
            (
                "{{ 'in' if a.b | default(0) else 'out<' }}",
                Some("\"out<\""),
            ),
            ("{{ b.c | default(1) }}", Some("1")),
            ("{{ b | default(2) }}", Some("2")),
            ("{{ b.c is defined }}", Some("false")),
            ("{{ b.c }}", None),
            ("{{ zz is divisibleby 3 }}", None),
            ("{{ hostvars['nohost'].x | default(1) }}", Some("1")),
            ("{{ hostvars['nohost'] is defined }}", Some("false")),
            ("{{ groups['nogroup'] | default([]) }}", Some("[]")),
            ("{{ groups.nogroup.x | default(2) }}", Some("2")),
            ("{{ zz is sameas none }}", None),
            ("{{ zz is callable }}", None),
            ("{{ zz is filter }}", None),
            ("{{ range(a.b | default(3)) | list }}", Some("[0,1,2]")),
            ("{% set x = a.b %}{{ x | default(3) }}", Some("3")),
            ("{{ a.b | map('upper') | list }}", None),
            ("{{ a.b | dict2items }}", None),
            ("{{ a.b(1) }}", None),
            (
                "{{ lookup('env', 'LBCTL_NO_SUCH_VAR') if a.b is undefined else 'x' }}",
                Some("\"\""),
            ),
            (
                "{{ a.b | default(1) | int + a.c | default(2) | int }}",
                Some("3"),
            ),
            ("{{ namespace(v=a.b | default(4)).v }}", Some("4")),
            ("{{ a.b | combine({}) }}", None),
            ("{{ {} | combine(a.b | default({})) }}", Some("{}")),
        ];
        let mut vars = String::from("d: {a: 1, n: {m: 2}}\nl: [1, 2]\nb: \"{{ undefined_z }}\"\n");
        for (i, (template, _)) in cases.iter().enumerate() {
            vars.push_str(&format!(
                "t{i}: {}\n",
                serde_json::to_string(template).unwrap()
            ));
        }
        let t = templar(
            "chain",
            &[("hosts", "[lbs]\nlb1\n"), ("host_vars/lb1.yml", &vars)],
        );
        let mut wrong = Vec::new();
        for (i, (template, want)) in cases.iter().enumerate() {
            let got = eval(&t, "lb1", &format!("t{i}"));
            let same = match (want, &got) {
                (Some(want), Ok(got)) => want == got,
                (None, Err(_)) => true,
                _ => false,
            };
            if !same {
                wrong.push(format!("{template}: Ansible {want:?}, lbctl {got:?}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
        // Where a comparison meets a lookup through a missing value, lbctl cannot tell
        // whether the value compared was missing: such a template fails as it did before
        // (Ansible answers `true` here).
        let t = templar(
            "chain-compare",
            &[
                ("hosts", "[lbs]\nlb1\n"),
                (
                    "host_vars/lb1.yml",
                    "t: \"{{ a.b | default('a') == 'a' }}\"\n",
                ),
            ],
        );
        let e = eval(&t, "lb1", "t").unwrap_err();
        assert_eq!(e.message, "`a` is undefined", "{e:?}");
    }

    #[test]
    fn comparisons_are_found_outside_string_literals() {
        for (source, compares) in [
            ("{{ a == 1 }}", true),
            ("{{ a != 1 }}", true),
            ("{{ a < 1 }}", true),
            ("{{ a >= 1 }}", true),
            ("{{ a in b }}", true),
            ("{{ a not in b }}", true),
            ("{% if a in b %}x{% endif %}", true),
            ("{% for x in b if x in c %}{% endfor %}", true),
            ("{% for x in b %}{{ x }}{% endfor %}", false),
            ("{{ 'a == b in <' }}", false),
            ("{{ \"it's <\" ~ 'x\\'<' }}", false),
            ("{{ a.in }}", false),
            ("{{ index }}", false),
            ("<b>{{ a }}</b> == in", false),
            ("{# a == b #}{{ a }}", false),
            ("{{ a | default(1) }}{% set x = 1 %}", false),
            ("{{ é }} {{ 'é<' }} {{ x.é }}", false),
            ("{{ é == 1 }}", true),
            ("{{ 'open \\", false),
            ("{{ 'open", false),
            ("{{ a", false),
            ("{", false),
            ("{{", false),
            ("{{ '}}' == x }}", true),
        ] {
            assert_eq!(super::compares(source), compares, "{source}");
        }
    }
}
