//! Lookups through a missing value, as Ansible allows them: `{{ facts.eth0.address |
//! default('x') }}` and `{{ tuning.haproxy.maxconn is defined }}` hold where `facts` or
//! `tuning.haproxy` has no value, and only using such a value (printing it, testing its truth,
//! iterating it, a filter reading it, comparing it) is an error.
//!
//! minijinja's strict mode, which gives the errors Ansible gives everywhere else, fails at the
//! lookup itself. So a template that fails for want of a value is evaluated a second time,
//! with every missing variable and every missing key of the user's lists and mappings standing
//! in as a [`Missing`] value, which lookups go through: `default` and the `defined`/`undefined`
//! tests take it as undefined (they settle it), and any other use of it is noted. The second
//! result counts only when nothing used a stand-in and none is left in it; else the first
//! error stands, so a template that fails in Ansible fails here with the same message.
//!
//! minijinja compares values (`==`, `<`, `in`, ...) without asking them, so a stand-in's use
//! there would go unnoticed. Where the template compares anything, the second result also
//! counts only when every stand-in it made was settled: `{{ facts.eth0 | default('x') == 'x'
//! }}` holds, `{{ facts.eth0 == 'x' }}` fails, as in Ansible. One case still passes unseen: a
//! stand-in kept in a variable of the template (`{% set v = facts.eth0 %}`), settled in one
//! place and compared in another, where Ansible fails at the comparison.

use std::{
    cell::Cell,
    fmt,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use minijinja::{
    Environment, Error, ErrorKind, State, Value,
    value::{Enumerator, Object, ObjectRepr, Rest},
};

/// The state of the evaluation under way on this thread.
#[derive(Clone, Copy, Default)]
struct Tally {
    /// Whether lookups of missing values give stand-ins (the second evaluation is running).
    standing_in: bool,
    /// Whether a stand-in was used as a value.
    used: bool,
    /// How many stand-ins were made, and how many of them were settled.
    made: usize,
    settled: usize,
}

thread_local! {
    static TALLY: Cell<Tally> = const {
        Cell::new(Tally { standing_in: false, used: false, made: 0, settled: 0 })
    };
}

fn tally(change: impl FnOnce(&mut Tally)) {
    TALLY.with(|t| {
        let mut tally = t.get();
        change(&mut tally);
        t.set(tally);
    });
}

/// What a lookup of a missing value gives during the second evaluation: lookups through it
/// give a new one (and settle it); any other use is noted (`used`) and gives nothing.
#[derive(Debug)]
pub(super) struct Missing {
    settled: AtomicBool,
}

impl Missing {
    fn made() -> Value {
        tally(|t| t.made += 1);
        Value::from_object(Missing {
            settled: AtomicBool::new(false),
        })
    }

    /// Taken for undefined by `default` or a test, or looked through: accounted for.
    fn settle(&self) {
        if !self.settled.swap(true, Ordering::Relaxed) {
            tally(|t| t.settled += 1);
        }
    }
}

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
        self.settle();
        Some(Missing::made())
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
    tally(|t| t.used = true);
}

fn undefined() -> Error {
    Error::new(ErrorKind::UndefinedError, "an undefined value")
}

/// Whether `value` stands in for a missing one (see [`Missing`]).
pub(super) fn is_missing(value: &Value) -> bool {
    value.downcast_object_ref::<Missing>().is_some()
}

/// `value` settled when it stands in for a missing one, and whether it does.
fn settled(value: &Value) -> bool {
    value
        .downcast_object_ref::<Missing>()
        .map(Missing::settle)
        .is_some()
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
    TALLY.with(Cell::get).standing_in.then(Missing::made)
}

/// Runs `evaluate` with `tally` for this thread's, and gives its result and the tally it
/// left; the tally of the evaluation around it (a variable that reads this one) is put back.
fn with_tally<T>(tally: Tally, evaluate: impl FnOnce() -> T) -> (T, Tally) {
    let outer = TALLY.with(|t| t.replace(tally));
    let result = evaluate();
    (result, TALLY.with(|t| t.replace(outer)))
}

/// Evaluates `source` as Ansible would where it looks through missing values: `evaluate` is
/// run once, lookups of missing values giving nothing; if that fails for want of a value, a
/// second time, with stand-ins, and the second result counts when nothing used a stand-in,
/// `holds_none` finds none left in it and, where `source` compares values, every stand-in
/// made was settled. Else the first error stands.
pub(super) fn evaluate<T>(
    source: &str,
    evaluate: impl Fn() -> Result<T, Error>,
    holds_none: impl FnOnce(&T) -> bool,
) -> Result<T, Error> {
    let (first, _) = with_tally(Tally::default(), &evaluate);
    let error = match first {
        Err(e) if e.kind() == ErrorKind::UndefinedError => e,
        first => return first,
    };
    let standing_in = Tally {
        standing_in: true,
        ..Tally::default()
    };
    let (second, tally) = with_tally(standing_in, &evaluate);
    match second {
        Ok(value)
            if !tally.used
                && holds_none(&value)
                && (tally.made == tally.settled || !compares(source)) =>
        {
            Ok(value)
        }
        _ => Err(error),
    }
}

/// Renders a whole template (one of the user's own, for a host) as a variable's template is
/// evaluated: lookups go through missing values (see [`evaluate`]).
pub fn render(source: &str, render: impl Fn() -> Result<String, Error>) -> Result<String, Error> {
    evaluate(source, render, |_| true)
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

/// `default` (and `d`) and the `defined`/`undefined` tests, which take a stand-in as
/// undefined and settle it. A stand-in given to `default` as the value to fall back on is
/// settled too, unless `default` gives it back.
pub(super) fn register(env: &mut Environment<'static>) {
    for name in ["default", "d"] {
        env.add_filter(name, |state: &State, value: Value, rest: Rest<Value>| {
            let value = if settled(&value) {
                Value::UNDEFINED
            } else {
                value
            };
            let result = minijinja::filters::default(state, &value, Rest(rest.0.clone()))?;
            let given_back = result.downcast_object_ref::<Missing>();
            for fallback in rest.iter() {
                if let Some(missing) = fallback.downcast_object_ref::<Missing>()
                    && !given_back.is_some_and(|back| std::ptr::eq(back, missing))
                {
                    missing.settle();
                }
            }
            Ok(result)
        });
    }
    env.add_test("defined", |value: &Value| {
        !settled(value) && !value.is_undefined()
    });
    env.add_test("undefined", |value: &Value| {
        settled(value) || value.is_undefined()
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
            ("{{ a.b | default('a') == 'a' }}", Some("true")),
            ("{{ (a.b | default(1)) > 0 }}", Some("true")),
            (
                "{{ 'y' if a.b is defined and a.b == 1 else 'n' }}",
                Some("\"n\""),
            ),
            ("{{ a.b is undefined or a.b == 1 }}", Some("true")),
            ("{{ a.b | default('x') in ['x', 'y'] }}", Some("true")),
            ("{{ x.y == 1 if x is defined else 2 }}", Some("2")),
            ("{{ d.x.y | default(0) < 1 }}", Some("true")),
            ("{{ a.b == a.b }}", None),
            ("{{ a.b != 1 }}", None),
            ("{{ 1 if a.b | default(none) == none else 2 }}", Some("1")),
            ("{% set p = a.b | default(80) %}{{ p == 80 }}", Some("true")),
            ("{% set p = a.b %}{{ p == 80 }}", None),
            ("{{ a.b | default(1) == 1 and e.f == 2 }}", None),
            (
                "{{ 'yes' if hostvars['nohost'].x | default(0) == 0 else 'no' }}",
                Some("\"yes\""),
            ),
            ("{{ a.b >= 1 }}", None),
            ("{{ 'k' in a.b }}", None),
            ("{{ a.b not in ['x'] }}", None),
            ("{{ d | default(a.b) == d }}", Some("true")),
            ("{{ (a.b | default(a.c)) == 1 }}", None),
            ("{{ a.b.c | default('z') != 'z' }}", Some("false")),
            ("{{ [a.b | default(1), 2] == [1, 2] }}", Some("true")),
            ("{{ a.b | default(1, true) == 1 }}", Some("true")),
            (
                "{{ ansible_default_ipv4.interface | default('eth0') == 'eth0' }}",
                Some("true"),
            ),
            (
                "{% if d.n.x is defined and d.n.x > 1 %}big{% else %}small{% endif %}",
                Some("\"small\""),
            ),
            ("{{ l[5] | default(0) < l[0] }}", Some("true")),
            ("{{ (a.b is defined) == false }}", Some("true")),
            ("{{ d.x is undefined and d.x == 1 }}", None),
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
