//! The filters and tests Ansible adds to Jinja2 that roles use most (`bool`, `int`, `string`,
//! `ternary`, `mandatory`, `combine`, `dict2items`, `items2dict`, `to_json`, `to_nice_json`,
//! `to_yaml`, `to_nice_yaml`, `from_json`, `from_yaml`, `regex_replace`, `regex_search`,
//! `regex_findall`, `b64encode`, `b64decode`, `extract`, `flatten`, `union`, `intersect`, `difference`,
//! `symmetric_difference`, `basename`, `dirname`, `quote`, `regex_escape`, `ipaddr`, `ipv4`,
//! `ipv6`, `ipwrap`, `ipmath`, `hash`, `checksum`, `md5`, `sha1`, `to_uuid`, `random` and
//! `shuffle` with a seed, `comment`, `subelements`, `product`, `combinations`, `permutations`,
//! `zip_longest`, `type_debug`, `log`, `pow`, `root`, `human_readable`, `human_to_bytes`,
//! `splitext`, `path_join`, `normpath`, `commonpath`, `expanduser`, `expandvars`, `realpath`,
//! `relpath`, `win_basename`, `win_dirname`, `win_splitdrive`, `from_yaml_all`, `strftime`,
//! `to_datetime`, `urlsplit`, `urldecode`, `wordcount`, `rekey_on_member`, and the tests `match`, `search`, `regex`,
//! and in `checks`, `version`, `subset`, `superset`, `contains`, `any`, `all`, `truthy`,
//! `falsy`),
//! also under their `ansible.builtin.` / `ansible.utils.` names.

mod checks;
mod clock;
mod datetime;
mod dicts;
mod digest;
mod encode;
mod host_paths;
mod ipaddr;
mod lists;
mod math;
mod ntpath;
mod paths;
mod patterns;
mod python;
mod seeded;
mod sizes;
mod text;
mod types;
mod url;

pub(super) use dicts::key_value_items;

use minijinja::{
    Environment, State, Value,
    value::{Kwargs, Rest},
};

use crate::source::base64;

use dicts::{combine, dict2items, items2dict, rekey_on_member};
use encode::{JsonStyle, b64decode, from_json, from_yaml, from_yaml_all, json, to_yaml};
use ipaddr::{ipaddr, ipmath, ipwrap};
use lists::{
    combinations, difference, extract, flatten, intersect, map, permutations, product, subelements,
    symmetric_difference, union, zip_longest,
};
use patterns::{Find, regex_findall, regex_replace, regex_search, regex_test};
use python::{mandatory, ternary, to_bool, to_int};
use text::{basename, center, comment, dirname, quote, regex_escape, truncate, wordcount};

pub(super) use dicts::ordered_map;
use python::defined;
pub(super) use python::printable;
pub(super) use python::python_repr;
pub use python::{printed, python_str};

/// An argument given by position or by name (Python's `f(x, base=16)`), not both.
fn positional_or_keyword<'a, T>(
    positional: Option<T>,
    kw: &'a Kwargs,
    name: &'a str,
) -> Result<Option<T>, minijinja::Error>
where
    T: minijinja::value::ArgType<'a, Output = T>,
{
    match (positional, kw.get::<Option<T>>(name)?) {
        (Some(_), Some(_)) => Err(minijinja::Error::new(
            minijinja::ErrorKind::TooManyArguments,
            format!("{name} given twice, by position and by name"),
        )),
        (given, None) | (None, given) => Ok(given),
    }
}

/// A filter's one argument after the value, by position or by name, where `none` given is
/// not the same as nothing given (`pow(none)` is Python's TypeError, not a missing argument).
fn argument(
    given: &[Value],
    kw: &Kwargs,
    name: &str,
    filter: &str,
) -> Result<Option<Value>, minijinja::Error> {
    let too_many = |why: String| minijinja::Error::new(minijinja::ErrorKind::TooManyArguments, why);
    if given.len() > 1 {
        return Err(too_many(format!(
            "{filter}() takes at most 2 positional arguments but {} were given",
            given.len() + 1
        )));
    }
    let named = if kw.has(name) {
        Some(kw.get::<Value>(name)?)
    } else {
        None
    };
    kw.assert_all_used()?;
    match (given.first(), named) {
        (Some(_), Some(_)) => Err(too_many(format!(
            "{filter}() got multiple values for argument '{name}'"
        ))),
        (Some(v), None) => Ok(Some(v.clone())),
        (None, named) => Ok(named),
    }
}

/// Adds one filter under the name given.
type AddFilter = fn(&mut Environment<'static>, String);

pub(super) fn register(env: &mut Environment<'static>) {
    let core: &[(&str, AddFilter)] = &[
        ("bool", |e, n| {
            e.add_filter(n, |v: Value| defined(&v).map(|()| to_bool(v)))
        }),
        ("int", |e, n| {
            e.add_filter(
                n,
                |v: Value, d: Option<i64>, b: Option<Value>, kw: Kwargs| {
                    let default = positional_or_keyword(d, &kw, "default")?;
                    let base = positional_or_keyword(b, &kw, "base")?;
                    kw.assert_all_used()?;
                    defined(&v).map(|()| to_int(v, default, base))
                },
            )
        }),
        ("string", |e, n| {
            e.add_filter(n, |v: Value| printable(&v).map(|()| python_str(&v)))
        }),
        ("ternary", |e, n| {
            e.add_filter(
                n,
                |v: Value, y: Option<Value>, no: Option<Value>, none: Option<Value>, kw: Kwargs| {
                    let yes = positional_or_keyword(y, &kw, "true_val")?;
                    let no = positional_or_keyword(no, &kw, "false_val")?;
                    let none = positional_or_keyword(none, &kw, "none_val")?;
                    kw.assert_all_used()?;
                    let (Some(yes), Some(no)) = (yes, no) else {
                        return Err(minijinja::Error::new(
                            minijinja::ErrorKind::MissingArgument,
                            "ternary needs a true_val and a false_val",
                        ));
                    };
                    defined(&v).map(|()| ternary(v, yes, no, none))
                },
            )
        }),
        ("mandatory", |e, n| e.add_filter(n, mandatory)),
        ("combine", |e, n| e.add_filter(n, combine)),
        ("dict2items", |e, n| e.add_filter(n, dict2items)),
        ("items2dict", |e, n| e.add_filter(n, items2dict)),
        ("to_json", |e, n| {
            e.add_filter(n, |v: Value, kw: Kwargs| {
                let style = JsonStyle::COMPACT.with(&kw)?;
                printable(&v).map(|()| json(&v, &style))
            })
        }),
        ("to_nice_json", |e, n| {
            e.add_filter(n, |v: Value, kw: Kwargs| {
                let style = JsonStyle::nice_with(&kw)?;
                printable(&v).map(|()| json(&v, &style))
            })
        }),
        ("to_yaml", |e, n| e.add_filter(n, to_yaml)),
        ("from_json", |e, n| e.add_filter(n, from_json)),
        ("from_yaml", |e, n| e.add_filter(n, from_yaml)),
        ("from_yaml_all", |e, n| e.add_filter(n, from_yaml_all)),
        ("to_nice_yaml", |e, n| e.add_filter(n, to_yaml)),
        ("regex_replace", |e, n| e.add_filter(n, regex_replace)),
        ("regex_search", |e, n| e.add_filter(n, regex_search)),
        ("regex_findall", |e, n| e.add_filter(n, regex_findall)),
        ("b64encode", |e, n| {
            e.add_filter(n, |s: String| base64::encode(s.as_bytes()))
        }),
        ("b64decode", |e, n| e.add_filter(n, b64decode)),
        ("extract", |e, n| e.add_filter(n, extract)),
        ("flatten", |e, n| e.add_filter(n, flatten)),
        ("union", |e, n| e.add_filter(n, union)),
        ("intersect", |e, n| e.add_filter(n, intersect)),
        ("difference", |e, n| e.add_filter(n, difference)),
        ("symmetric_difference", |e, n| {
            e.add_filter(n, symmetric_difference)
        }),
        ("basename", |e, n| e.add_filter(n, basename)),
        ("dirname", |e, n| e.add_filter(n, dirname)),
        ("quote", |e, n| e.add_filter(n, quote)),
        ("regex_escape", |e, n| e.add_filter(n, regex_escape)),
        ("hash", |e, n| {
            e.add_filter(n, |v: Value, kind: Option<String>| {
                digest::hash(&v, kind.as_deref())
            })
        }),
        ("checksum", |e, n| {
            e.add_filter(n, |v: Value| digest::hash(&v, Some("sha1")))
        }),
        ("sha1", |e, n| {
            e.add_filter(n, |v: Value| digest::hash(&v, Some("sha1")))
        }),
        ("md5", |e, n| {
            e.add_filter(n, |v: Value| digest::hash(&v, Some("md5")))
        }),
        ("to_uuid", |e, n| {
            e.add_filter(n, |v: Value, ns: Option<String>, kw: Kwargs| {
                let namespace = positional_or_keyword(ns, &kw, "namespace")?;
                kw.assert_all_used()?;
                digest::to_uuid(&v, namespace.as_deref())
            })
        }),
        ("random", |e, n| e.add_filter(n, seeded::random)),
        ("comment", |e, n| e.add_filter(n, comment)),
        ("subelements", |e, n| e.add_filter(n, subelements)),
        ("product", |e, n| e.add_filter(n, product)),
        ("combinations", |e, n| e.add_filter(n, combinations)),
        ("permutations", |e, n| e.add_filter(n, permutations)),
        ("zip_longest", |e, n| e.add_filter(n, zip_longest)),
        ("shuffle", |e, n| e.add_filter(n, seeded::shuffle)),
        ("type_debug", |e, n| e.add_filter(n, types::type_debug)),
        ("log", |e, n| {
            e.add_filter(n, |x: Value, rest: Rest<Value>, kw: Kwargs| {
                let base = argument(&rest, &kw, "base", "log")?;
                defined(&x).and_then(|()| math::log(x, base))
            })
        }),
        ("pow", |e, n| {
            e.add_filter(n, |x: Value, rest: Rest<Value>, kw: Kwargs| {
                let y = argument(&rest, &kw, "y", "pow")?.ok_or_else(|| {
                    minijinja::Error::new(
                        minijinja::ErrorKind::MissingArgument,
                        "pow() missing 1 required positional argument: 'y'",
                    )
                })?;
                defined(&x).and_then(|()| math::pow(x, y))
            })
        }),
        ("root", |e, n| {
            e.add_filter(n, |x: Value, rest: Rest<Value>, kw: Kwargs| {
                let base = argument(&rest, &kw, "base", "root")?;
                defined(&x).and_then(|()| math::root(x, base))
            })
        }),
        ("human_readable", |e, n| {
            e.add_filter(
                n,
                |v: Value, b: Option<Value>, u: Option<Value>, kw: Kwargs| {
                    let isbits = positional_or_keyword(b, &kw, "isbits")?;
                    let unit = positional_or_keyword(u, &kw, "unit")?;
                    kw.assert_all_used()?;
                    sizes::human_readable(v, isbits, unit)
                },
            )
        }),
        ("human_to_bytes", |e, n| {
            e.add_filter(
                n,
                |v: Value, u: Option<Value>, b: Option<Value>, kw: Kwargs| {
                    let default_unit = positional_or_keyword(u, &kw, "default_unit")?;
                    let isbits = positional_or_keyword(b, &kw, "isbits")?;
                    kw.assert_all_used()?;
                    sizes::human_to_bytes(v, default_unit, isbits)
                },
            )
        }),
        ("splitext", |e, n| e.add_filter(n, paths::splitext)),
        ("path_join", |e, n| e.add_filter(n, paths::path_join)),
        ("normpath", |e, n| e.add_filter(n, paths::normpath)),
        ("commonpath", |e, n| e.add_filter(n, paths::commonpath)),
        ("expanduser", |e, n| e.add_filter(n, host_paths::expanduser)),
        ("expandvars", |e, n| e.add_filter(n, host_paths::expandvars)),
        ("realpath", |e, n| e.add_filter(n, host_paths::realpath)),
        ("relpath", |e, n| {
            e.add_filter(n, |v: Value, s: Option<Value>, kw: Kwargs| {
                let start = positional_or_keyword(s, &kw, "start")?;
                kw.assert_all_used()?;
                host_paths::relpath(v, start)
            })
        }),
        ("strftime", |e, n| {
            e.add_filter(
                n,
                |state: &State, f: Value, s: Option<Value>, u: Option<Value>, kw: Kwargs| {
                    let second = positional_or_keyword(s, &kw, "second")?;
                    let utc = positional_or_keyword(u, &kw, "utc")?;
                    kw.assert_all_used()?;
                    datetime::strftime(state, f, second, utc)
                },
            )
        }),
        ("to_datetime", |e, n| {
            e.add_filter(n, |v: Value, f: Option<Value>, kw: Kwargs| {
                let format = positional_or_keyword(f, &kw, "format")?;
                kw.assert_all_used()?;
                datetime::to_datetime(v, format)
            })
        }),
        ("win_basename", |e, n| e.add_filter(n, ntpath::win_basename)),
        ("win_dirname", |e, n| e.add_filter(n, ntpath::win_dirname)),
        ("win_splitdrive", |e, n| {
            e.add_filter(n, ntpath::win_splitdrive)
        }),
        ("urlsplit", |e, n| {
            e.add_filter(
                n,
                |v: Value, q: Option<Value>, a: Option<String>, kw: Kwargs| {
                    let query = positional_or_keyword(q, &kw, "query")?;
                    let alias = positional_or_keyword(a, &kw, "alias")?;
                    kw.assert_all_used()?;
                    url::urlsplit(v, query, alias)
                },
            )
        }),
        ("urldecode", |e, n| e.add_filter(n, url::urldecode)),
        ("rekey_on_member", |e, n| {
            e.add_filter(n, |v: Value, key: Value, d: Option<String>, kw: Kwargs| {
                let duplicates = positional_or_keyword(d, &kw, "duplicates")?;
                kw.assert_all_used()?;
                rekey_on_member(v, key, duplicates)
            })
        }),
    ];
    for (name, add) in core {
        add(env, name.to_string());
        add(env, format!("ansible.builtin.{name}"));
    }
    env.add_filter("map", map);
    // Jinja2's own, which minijinja leaves out
    env.add_filter("center", center);
    env.add_filter("truncate", truncate);
    env.add_filter("wordcount", wordcount);
    for name in ["ipaddr", "ansible.utils.ipaddr", "ansible.netcommon.ipaddr"] {
        env.add_filter(name, |v: Value, q: Option<String>| {
            ipaddr(&v, q.as_deref(), None)
        });
    }
    for name in ["ipmath", "ansible.utils.ipmath"] {
        env.add_filter(name, |v: Value, amount: i64| ipmath(&v, amount));
    }
    for name in ["ipwrap", "ansible.utils.ipwrap", "ansible.netcommon.ipwrap"] {
        env.add_filter(name, |v: Value, q: Option<String>| ipwrap(&v, q.as_deref()));
    }
    for (name, family) in [("ipv4", 4), ("ipv6", 6)] {
        for full in [name.to_string(), format!("ansible.utils.{name}")] {
            env.add_filter(full, move |v: Value, q: Option<String>| {
                ipaddr(&v, q.as_deref(), Some(family))
            });
        }
    }
    undefined_fails_jinja_tests(env);
    checks::register(env);
    for (name, how) in [("match", Find::Start), ("search", Find::Anywhere)] {
        for full in [name.to_string(), format!("ansible.builtin.{name}")] {
            env.add_test(full, move |v: String, p: String, kw: Kwargs| {
                regex_test(&v, &p, &kw, how)
            });
        }
    }
    for full in ["regex", "ansible.builtin.regex"] {
        env.add_test(full, |v: String, p: String, kw: Kwargs| {
            let how = match kw.get::<Option<String>>("match_type")?.as_deref() {
                Some("match") => Find::Start,
                _ => Find::Anywhere,
            };
            regex_test(&v, &p, &kw, how)
        });
    }
}

/// Jinja2's tests over again, an undefined value tested an error as in Ansible (`typo is none`
/// fails, naming `typo`, where minijinja's strict mode answers `false`); `defined` and
/// `undefined` alone take one.
fn undefined_fails_jinja_tests(env: &mut Environment<'static>) {
    use minijinja::{State, tests};
    type Unary = fn(&Value) -> bool;
    type Binary = fn(&Value, &Value) -> bool;
    let unary: [(&[&str], Unary); 13] = [
        (&["none"], tests::is_none),
        (&["safe", "escaped"], tests::is_safe),
        (&["boolean"], tests::is_boolean),
        (&["number"], tests::is_number),
        (&["integer", "int"], tests::is_integer),
        (&["float"], tests::is_float),
        (&["string"], tests::is_string),
        (&["sequence"], tests::is_sequence),
        (&["iterable"], tests::is_iterable),
        (&["mapping"], tests::is_mapping),
        (&["lower"], tests::is_lower),
        (&["upper"], tests::is_upper),
        (&["true"], tests::is_true),
    ];
    for (names, test) in unary {
        for name in names {
            env.add_test(*name, move |v: &Value| defined(v).map(|()| test(v)));
        }
    }
    env.add_test("false", |v: &Value| defined(v).map(|()| tests::is_false(v)));
    env.add_test("odd", |v: Value| defined(&v).map(|()| tests::is_odd(v)));
    env.add_test("even", |v: Value| defined(&v).map(|()| tests::is_even(v)));
    let binary: [(&[&str], Binary); 8] = [
        (&["sameas"], tests::is_sameas),
        (&["divisibleby"], tests::is_divisibleby),
        (&["eq", "equalto", "=="], tests::is_eq),
        (&["ne", "!="], tests::is_ne),
        (&["lt", "lessthan", "<"], tests::is_lt),
        (&["le", "<="], tests::is_le),
        (&["gt", "greaterthan", ">"], tests::is_gt),
        (&["ge", ">="], tests::is_ge),
    ];
    for (names, test) in binary {
        for name in names {
            env.add_test(*name, move |v: &Value, other: &Value| {
                defined(v).map(|()| test(v, other))
            });
        }
    }
    env.add_test("in", |state: &State, v: &Value, other: &Value| {
        defined(v).and_then(|()| tests::is_in(state, v, other))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(template: &str, ctx: Value) -> String {
        super::super::environment()
            .render_str(template, ctx)
            .unwrap()
    }

    /// What `template` renders to, without variables.
    pub(super) fn rendered(template: &str) -> String {
        render(template, Value::UNDEFINED)
    }

    /// The error `template` fails with (it must fail).
    pub(super) fn refusal(template: &str) -> String {
        super::super::environment()
            .render_str(template, Value::UNDEFINED)
            .unwrap_err()
            .to_string()
    }

    /// The values are ansible-core 2.19's (the differential case
    /// templated-digests-and-seeded-random compares many more); the errors say what Ansible's
    /// say, but for `random` without a seed, which lbctl refuses.
    #[test]
    fn digests_and_seeded_draws_are_ansible_s() {
        let ctx = Value::UNDEFINED;
        assert_eq!(
            render(
                "{{ 'abc' | hash('md5') }} {{ 'abc' | hash }} {{ 123 | md5 }} {{ 'é' | sha1 }}",
                ctx.clone()
            ),
            "900150983cd24fb0d6963f7d28e17f72 a9993e364706816aba3e25717850c26c9cd0d89d 202cb962ac59075b964b07152d234b70 bf15be717ac1b080b4f1c456692825891ff5073d"
        );
        assert_eq!(
            render("{{ 'lb1' | to_uuid }} {{ 42 | to_uuid }}", ctx.clone()),
            "77164d1d-198d-5c03-8b97-2a27a35c914b 3668da1b-cef1-5085-ae20-443409c9cc73"
        );
        assert_eq!(
            render(
                "{{ 100 | random(seed='lb1') }} {{ 100 | random(start=10, step=5, seed='s') }} {{ ['a', 'b', 'c'] | random(seed='q') }} {{ 100 | random(seed=1.5 | int) }} {{ [1, 2, 3, 4, 5] | shuffle(seed='x') }}",
                ctx.clone()
            ),
            "13 85 b 17 [5, 2, 1, 4, 3]"
        );
        for (template, says) in [
            ("{{ 'abc' | hash('nope') }}", "unsupported hash type nope"),
            ("{{ 'abc' | hash('blake2b') }}", "not supported by lbctl"),
            (
                "{{ 0 | random(seed='x') }}",
                "empty range for randrange() (0, 0, 0)",
            ),
            (
                "{{ 100 | random(90, -3, seed='n') }}",
                "empty range for randrange()",
            ),
            (
                "{{ [] | random(seed='x') }}",
                "Cannot choose from an empty sequence",
            ),
            (
                "{{ [1] | random(2, seed='x') }}",
                "start and step can only be used with integer values",
            ),
            (
                "{{ 1.5 | random(seed='x') }}",
                "random can only be used on sequences and integers",
            ),
            (
                "{{ 100 | random }}",
                "give it one, as in `random(seed=inventory_hostname)`",
            ),
            (
                "{{ [1, 2] | shuffle }}",
                "give it one, as in `shuffle(seed=inventory_hostname)`",
            ),
            (
                "{{ 'x' | to_uuid('nope') }}",
                "Invalid value 'nope' for 'namespace'",
            ),
        ] {
            let e = refusal(template);
            assert!(e.contains(says), "{template}: {e}");
        }
    }

    /// ansible-core 2.19's answers.
    #[test]
    fn comment_subelements_and_tuples_are_ansible_s() {
        let ctx = Value::UNDEFINED;
        for (template, ansible) in [
            ("{{ 'a\nb\n\nc' | comment }}", "#\n# a\n# b\n#\n# c\n#"),
            (
                "{{ 'x\ny' | comment('cblock') }}",
                "/*\n *\n * x\n * y\n *\n */",
            ),
            ("{{ 'x' | comment('xml') }}", "<!--\n -\n - x\n -\n-->"),
            ("{{ 'x' | comment(decoration='; ') }}", ";\n; x\n;"),
            (
                "{{ 'x' | comment(prefix_count=2, postfix_count=0) }}",
                "#\n#\n# x",
            ),
            ("{{ 'x' | comment(prefix='', postfix='') }}", "# x\n"),
            (
                "{{ 'x' | comment(beginning='>>', end='<<') }}",
                ">>\n#\n# x\n#\n<<",
            ),
            ("{{ 'x' | comment(prefix='\n') }}", "\n# x\n#"),
            ("{{ 'x\n' | comment }}", "#\n# x\n# \n#"),
            ("{{ 'x' | comment(prefix_count='3') }}", "#\n#\n#\n# x\n#"),
            (
                "{{ [{'n': 1, 's': [1, 2]}, {'n': 2, 's': [3]}] | subelements('s') | string }}",
                "[({'n': 1, 's': [1, 2]}, 1), ({'n': 1, 's': [1, 2]}, 2), ({'n': 2, 's': [3]}, 3)]",
            ),
            (
                "{{ {'a': {'s': ['x']}} | subelements('s') }}",
                "[[{'s': ['x']}, 'x']]",
            ),
            (
                "{{ [{'o': {'s': [1]}}] | subelements('o.s') }}",
                "[[{'o': {'s': [1]}}, 1]]",
            ),
            (
                "{{ [{'o': {'s': [1]}}] | subelements(['o', 's']) }}",
                "[[{'o': {'s': [1]}}, 1]]",
            ),
            (
                "{{ [{'n': 1}, {'s': [5]}] | subelements('s', skip_missing=True) }}",
                "[[{'s': [5]}, 5]]",
            ),
            (
                "{% for a, b in [{'n': 1, 's': [1, 2]}] | subelements('s') %}{{ a.n }}-{{ b }} {% endfor %}",
                "1-1 1-2 ",
            ),
            // a `{{ }}` result writes tuples as lists, Python's str() as tuples
            (
                "{{ [1, 2] | zip(['a', 'b']) | list }}",
                "[[1, 'a'], [2, 'b']]",
            ),
            (
                "{{ [1, 2] | zip(['a', 'b']) | list | string }}",
                "[(1, 'a'), (2, 'b')]",
            ),
            (
                "{{ (1,) }} {{ (1, 'a') }} {{ ((1, 2), 3) }} {{ {'a': (1,)} }}",
                "[1] [1, 'a'] [[1, 2], 3] {'a': [1]}",
            ),
            (
                "{{ (1, 2) | string }} {{ 'x' ~ (1, 2) }} {{ [(1, 2)] | join(',') }} {{ ((1, 2),) | first }}",
                "(1, 2) x(1, 2) (1, 2) [1, 2]",
            ),
            ("{{ (1,) | string }} {{ () | string }}", "(1,) ()"),
            ("{{ [(1, 2), (3,)] | to_json }}", "[[1, 2], [3]]"),
        ] {
            assert_eq!(render(template, ctx.clone()), ansible, "{template}");
        }
        for (template, says) in [
            ("{{ 'x' | comment('nope') }}", "Invalid style 'nope'"),
            (
                "{{ [{'n': 1}] | subelements('s') }}",
                "could not find 's' key in iterated item {'n': 1}",
            ),
            (
                "{{ [{'s': 3}] | subelements('s') }}",
                "the key 's' should point to a list, got 3",
            ),
            (
                "{{ [{'s': 'ab'}] | subelements('s.x') }}",
                "the key x should point to a dictionary, got 'ab'",
            ),
            (
                "{{ 'x' | subelements('s') }}",
                "obj must be a list of dicts or a nested dict",
            ),
            (
                "{{ 'x' | comment(prefix_count=10 ** 9) }}",
                "longer than 64 MiB",
            ),
        ] {
            let e = refusal(template);
            assert!(e.contains(says), "{template}: {e}");
        }
    }

    /// ansible-core 2.19's answers.
    #[test]
    fn ansible_s_own_tests_answer_as_ansible_s() {
        let ctx = Value::UNDEFINED;
        for (template, ansible) in [
            ("{{ '2.6' is version('2.0', '>=') }}", "True"),
            ("{{ '2.6.1' is version_compare('2.6', 'gt') }}", "True"),
            ("{{ '2.10' is version('2.9', '>') }}", "True"),
            ("{{ '1.0' is version('1.0.0', '==') }}", "False"),
            ("{{ '1.0' is version('1.0.0', '<') }}", "True"),
            ("{{ '2.4.22-0+deb11u1' is version('2.4.3', '>=') }}", "True"),
            ("{{ '1.2a' is version('1.2', '<') }}", "False"),
            ("{{ '1.2-rc1' is version('1.2', '>') }}", "True"),
            ("{{ 'abc' is version('abd', 'lt') }}", "True"),
            ("{{ '1.2' is version('1.2', 'ne') }}", "False"),
            ("{{ '1.2' is version('1.3', '<>') }}", "True"),
            ("{{ 2.6 is version('2.10', '<') }}", "True"),
            ("{{ '1.2' is version('1.10', 'lt', strict=True) }}", "True"),
            (
                "{{ '1.2a1' is version('1.2', 'lt', version_type='strict') }}",
                "True",
            ),
            (
                "{{ '1.2b2' is version('1.2a3', 'gt', strict=true) }}",
                "True",
            ),
            ("{{ '1.2.0' is version('1.2', 'eq', strict=true) }}", "True"),
            (
                "{{ '1.0.0' is version('1.0.0-rc1', '>', version_type='semver') }}",
                "True",
            ),
            ("{{ '1.0' is version('1.0') }}", "True"),
            ("{{ '1.01' is version('1.1', '==') }}", "True"),
            ("{{ 'V1.2' is version('V1.3', '<') }}", "True"),
            ("{{ '1.2_3' is version('1.2_4', '<') }}", "True"),
            ("{{ [1] is subset([1,2]) }}", "True"),
            ("{{ [1,3] is subset([1,2]) }}", "False"),
            ("{{ [1,2] is superset([1]) }}", "True"),
            ("{{ [1,2] is contains(1) }}", "True"),
            ("{{ 'abc' is contains('b') }}", "True"),
            ("{{ {'a':1} is contains('a') }}", "True"),
            ("{{ [true, false] is any }}", "True"),
            ("{{ [false] is any }}", "False"),
            ("{{ [true] is all }}", "True"),
            ("{{ [] is all }}", "True"),
            ("{{ [1, 0] is all }}", "False"),
            ("{{ 1 is truthy }}", "True"),
            ("{{ 0 is falsy }}", "True"),
            ("{{ 'no' is truthy }}", "True"),
            ("{{ 'no' is truthy(convert_bool=True) }}", "False"),
            ("{{ 'off' is falsy(convert_bool=True) }}", "True"),
            ("{{ ' Yes ' is truthy(convert_bool=True) }}", "True"),
            ("{{ '' is falsy }}", "True"),
            ("{{ [] is truthy }}", "False"),
            ("{{ 'x' is subset('xy') }}", "True"),
            (
                "{{ '1.2.3' is ansible.builtin.version('1.2', 'ge') }}",
                "True",
            ),
            ("{{ [1] is ansible.builtin.subset([1]) }}", "True"),
            ("{{ '2' is version('10', '<', strict=False) }}", "True"),
            ("{{ '1.0' is version('1.0', 'eq', strict=true) }}", "True"),
            (
                "{{ '1.0.0' is version('1.0.0-rc1', '>', version_type='semver') }}",
                "True",
            ),
            (
                "{{ '1.0.0-alpha' is version('1.0.0-alpha.1', '<', version_type='semver') }}",
                "True",
            ),
            (
                "{{ '1.0.0-alpha.1' is version('1.0.0-alpha.beta', '<', version_type='semver') }}",
                "True",
            ),
            (
                "{{ '1.0.0-alpha.beta' is version('1.0.0-beta', '<', version_type='semver') }}",
                "True",
            ),
            (
                "{{ '1.0.0-beta.2' is version('1.0.0-beta.11', '<', version_type='semver') }}",
                "True",
            ),
            (
                "{{ '1.0.0-rc.1' is version('1.0.0', '<', version_type='semantic') }}",
                "True",
            ),
            (
                "{{ '1.0.0+build.1' is version('1.0.0+build.2', '==', version_type='semver') }}",
                "True",
            ),
            (
                "{{ '1.10.0' is version('1.9.9', '>', version_type='semver') }}",
                "True",
            ),
            (
                "{{ '1.0.0-x-y' is version('1.0.0-x', '>', version_type='semver') }}",
                "True",
            ),
        ] {
            assert_eq!(render(template, ctx.clone()), ansible, "{template}");
        }
        for (template, says) in [
            (
                "{{ '1.a' is version('1.1', '<') }}",
                "'<' not supported between instances of 'str' and 'int'",
            ),
            (
                "{{ '1.2.3.4' is version('1.2', 'eq', strict=true) }}",
                "invalid version number '1.2.3.4'",
            ),
            (
                "{{ '' is version('1.2') }}",
                "Input version value cannot be empty",
            ),
            (
                "{{ '1' is version('', 'lt') }}",
                "Version parameter to compare against cannot be empty",
            ),
            (
                "{{ '1' is version('2', 'bad') }}",
                "Invalid operator type (bad). Must be one of '==', '=', 'eq', '<', 'lt', '<=', 'le', '>', 'gt', '>=', 'ge', '!=', '<>', 'ne'",
            ),
            (
                "{{ '1' is version('2', 'lt', version_type='nope') }}",
                "Invalid version type (nope). Must be one of 'loose', 'strict', 'semver', 'semantic', 'pep440'",
            ),
            (
                "{{ '1' is version('2', 'lt', strict=true, version_type='loose') }}",
                "Cannot specify both 'strict' and 'version_type'",
            ),
            ("{{ 1 is any }}", "'int' object is not iterable"),
            (
                "{{ '2.0' is version('2.0.0', '==', version_type='semver') }}",
                "invalid semantic version '2.0'",
            ),
            (
                "{{ '01.0.0' is version('1.0.0', '==', version_type='semver') }}",
                "invalid semantic version '01.0.0'",
            ),
            (
                "{{ '1.0.0-01' is version('1.0.0', '<', version_type='semver') }}",
                "invalid semantic version '1.0.0-01'",
            ),
            (
                "{{ '1.0.0+' is version('1.0.0', '==', version_type='semver') }}",
                "invalid semantic version '1.0.0+'",
            ),
            (
                "{{ '1.0.0-a..b' is version('1.0.0', '<', version_type='semver') }}",
                "invalid semantic version '1.0.0-a..b'",
            ),
        ] {
            let e = refusal(template);
            assert!(e.contains(says), "{template}: {e}");
        }
    }

    /// ansible-core 2.19's answers (Python's `itertools`).
    #[test]
    fn itertools_filters_are_ansible_s() {
        let ctx = Value::UNDEFINED;
        for (template, ansible) in [
            (
                "{{ [1, 2] | product(['a'], [true]) | list }}",
                "[[1, 'a', True], [2, 'a', True]]",
            ),
            (
                "{{ 'ab' | product(repeat=2) | list }}",
                "[['a', 'a'], ['a', 'b'], ['b', 'a'], ['b', 'b']]",
            ),
            ("{{ [1, 2] | product([]) | list }}", "[]"),
            ("{{ [] | product(repeat=10 ** 12) | list }}", "[]"),
            ("{{ [1] | product(repeat=3) | list }}", "[[1, 1, 1]]"),
            ("{{ [1, 2, 3] | combinations(0) | list }}", "[[]]"),
            (
                "{{ 'abcd' | combinations(3) | list }}",
                "[['a', 'b', 'c'], ['a', 'b', 'd'], ['a', 'c', 'd'], ['b', 'c', 'd']]",
            ),
            ("{{ [1, 2] | combinations(3) | list }}", "[]"),
            (
                "{{ [1, 2, 3] | permutations | list }}",
                "[[1, 2, 3], [1, 3, 2], [2, 1, 3], [2, 3, 1], [3, 1, 2], [3, 2, 1]]",
            ),
            (
                "{{ [1, 2, 3] | permutations(2) | list }}",
                "[[1, 2], [1, 3], [2, 1], [2, 3], [3, 1], [3, 2]]",
            ),
            (
                "{{ [1] | zip_longest([2, 3], fillvalue='x') | list }}",
                "[[1, 2], ['x', 3]]",
            ),
            (
                "{{ [1, 2, 3] | zip_longest(['a']) | list | string }}",
                "[(1, 'a'), (2, None), (3, None)]",
            ),
            (
                "{{ {'a': 1, 'b': 2} | product([0]) | list }}",
                "[['a', 0], ['b', 0]]",
            ),
        ] {
            assert_eq!(render(template, ctx.clone()), ansible, "{template}");
        }
        for (template, says) in [
            (
                "{{ [1, 2] | combinations(-1) | list }}",
                "r must be non-negative",
            ),
            (
                "{{ [1, 2] | product(repeat=-1) | list }}",
                "repeat argument cannot be negative",
            ),
            (
                "{{ range(10) | product(range(10), range(10), range(10), range(10), range(10)) | list }}",
                "would make more than 100000 items",
            ),
            (
                "{{ range(10) | permutations | list }}",
                "would make more than 100000 items",
            ),
            (
                "{{ range(100000) | permutations | list }}",
                "would make more than 100000 items",
            ),
            (
                "{{ [1] | product(repeat=10 ** 12) | list }}",
                "would make more than 100000 items",
            ),
            (
                "{{ [1, 2] | product(repeat=10 ** 12) | list }}",
                "would make more than 100000 items",
            ),
        ] {
            let e = refusal(template);
            assert!(e.contains(says), "{template}: {e}");
        }
    }

    #[test]
    fn map_passes_keyword_arguments_on() {
        let ctx = minijinja::context! { l => vec!["Ab", "aB"] };
        assert_eq!(
            render(
                "{{ l | map('regex_replace', 'ab', 'x', ignorecase=true) | list }} {{ [[['k', 1]]] | map('items2dict', key_name=0, value_name=1) | list }} {{ l | map('lower') | list }} {{ [{'a': 1}] | map(attribute='a') | list }}",
                ctx
            ),
            "['x', 'x'] [{'k': 1}] ['ab', 'ab'] [1]"
        );
    }

    /// Each template, and what ansible-core 2.19 renders for it.
    #[test]
    fn keyword_arguments_of_ansible_s_filters_are_taken_as_ansible_takes_them() {
        let ctx = minijinja::context! {
            d => from_json(Value::from(
                r#"{"b": 1, "a": [1, {"y": 2, "x": "é"}], "c": null, "e": {}, "f": []}"#
            )).unwrap(),
            s => "a\u{8}b\u{c}c\u{1}d\u{7f}é😀\t\n\"\\",
        };
        let cases = [
            (
                "{{ d | to_nice_json(indent=2) }}",
                "{\n  \"a\": [\n    1,\n    {\n      \"x\": \"\\u00e9\",\n      \"y\": 2\n    }\n  ],\n  \"b\": 1,\n  \"c\": null,\n  \"e\": {},\n  \"f\": []\n}",
            ),
            (
                "{{ d | to_json(sort_keys=true) }}",
                "{\"a\": [1, {\"x\": \"\\u00e9\", \"y\": 2}], \"b\": 1, \"c\": null, \"e\": {}, \"f\": []}",
            ),
            (
                "{{ d | to_json(separators=(',', ':')) }}",
                "{\"b\":1,\"a\":[1,{\"y\":2,\"x\":\"\\u00e9\"}],\"c\":null,\"e\":{},\"f\":[]}",
            ),
            (
                "{{ d | to_nice_json(indent=1, sort_keys=false) }}",
                "{\n \"b\": 1,\n \"a\": [\n  1,\n  {\n   \"y\": 2,\n   \"x\": \"\\u00e9\"\n  }\n ],\n \"c\": null,\n \"e\": {},\n \"f\": []\n}",
            ),
            (
                "{{ d.a | to_nice_json(indent=0, separators=(',', ' = ')) }}",
                "[\n1,\n{\n\"x\": \"\\u00e9\",\n\"y\": 2\n}\n]",
            ),
            (
                "{{ s | to_json }}",
                "\"a\\bb\\fc\\u0001d\\u007f\\u00e9\\ud83d\\ude00\\t\\n\\\"\\\\\"",
            ),
            (
                "{{ s | to_json(ensure_ascii=false) }}",
                "\"a\\bb\\fc\\u0001d\u{7f}é😀\\t\\n\\\"\\\\\"",
            ),
            (
                "{{ ['a', 'None', 'null', None, ['None', ['x']]] | flatten }} {{ ['a', 'None', None] | flatten(skip_nulls=false) }} {{ [1, [2, [3]]] | flatten(1) }} {{ [1, [2, [3, [4]]], None] | flatten(levels=1) }}",
                "['a', 'x'] ['a', 'None', None] [1, 2, [3]] [1, 2, [3, [4]]]",
            ),
            (
                "{{ '1A' | int(base=16) }} {{ 'z' | int(default=7) }} {{ '0x1A' | int(0, 16) }} {{ '12' | int(base=8) }} {{ '42.7' | int }} {{ '0b101' | int(base=2) }} {{ 'ff' | int(base=16) }}",
                "26 7 26 10 42 5 255",
            ),
            (
                "{{ '0x1A' | int(0, 0) }} {{ '10' | int(0, 1) }} {{ '10' | int(7, 99) }} {{ '10' | int(5, -1) }} {{ '0b101' | int(base=0) }} {{ '0o17' | int(0, 0) }} {{ '017' | int(3, 0) }} {{ '0_0' | int(3, 0) }} {{ '-0x1A' | int(0, 0) }} {{ '0b2' | int(3, 0) }} {{ '12' | int(5, 2) }} {{ '0x1a' | int(3, 36) }} {{ '0x_1_a' | int(3, 16) }} {{ '0x__1' | int(3, 16) }} {{ '1__0' | int(3) }} {{ '0x1a' | int(3) }} {{ '1_0.5' | int(3) }} {{ '1_e5' | int(3) }} {{ 'inf' | int(4) }} {{ 'nan' | int(4) }} {{ '10' | int(3, 1.5) }}",
                "26 10 10 10 5 15 17 0 -26 3 12 42814 26 3 3 3 10 3 4 4 10",
            ),
            (
                // past i64, whole as Python's (never cut to i64's largest)
                "{{ '99999999999999999999' | int }} {{ '-0x1_0000_0000_0000_0000' | int(0, 0) }} {{ 1e20 | int }} {{ '123456789012345678901.5' | int }} {{ ('99999999999999999999' | int) - 99999999999999999919 }}",
                "99999999999999999999 -18446744073709551616 100000000000000000000 123456789012345683968 80",
            ),
            (
                "{{ None | ternary('y', 'n', none_val='?') }} {{ None | ternary('y', 'n') }} {{ true | ternary(true_val='T', false_val='F') }} {{ false | ternary('T', false_val='F') }}",
                "? n T F",
            ),
        ];
        for (template, ansible) in cases {
            assert_eq!(render(template, ctx.clone()), ansible, "{template}");
        }
        let env = super::super::environment();
        for refused in [
            "{{ 1 | to_json(indent=2, colour=true) }}",
            "{{ '1' | int(10, default=3) }}",
            "{{ [1] | flatten(1, levels=2) }}",
            "{{ 1 | ternary('y') }}",
        ] {
            assert!(env.render_str(refused, ()).is_err(), "{refused}");
        }
    }

    /// What ansible-core 2.19 does: testing an undefined value is an error, but for `defined`
    /// and `undefined`.
    #[test]
    fn testing_an_undefined_value_fails_as_in_ansible() {
        let env = super::super::environment();
        for test in [
            "none",
            "string",
            "number",
            "integer",
            "float",
            "mapping",
            "sequence",
            "iterable",
            "boolean",
            "true",
            "false",
            "odd",
            "even",
            "lower",
            "upper",
            "eq 1",
            "ne 1",
            "lt 1",
            "gt 1",
            "le 1",
            "ge 1",
            "sameas none",
            "in [1]",
        ] {
            let template = format!("{{{{ nope is {test} }}}}");
            let e = env.render_str(&template, ()).expect_err(&template);
            assert_eq!(e.kind(), minijinja::ErrorKind::UndefinedError, "{template}");
        }
        assert_eq!(
            render(
                "{{ nope is defined }} {{ nope is undefined }} {{ none is none }} {{ 1 is in [1] }} {{ 'a' is lower }} {{ 3 is odd }} {{ {} is mapping }} {{ 2 is eq 2 }} {{ 1 is lt 2 }}",
                Value::UNDEFINED
            ),
            "False True True True True True True True True"
        );
    }

    /// What ansible-core 2.19.14 printed (`ansible -m debug`).
    #[test]
    fn rekey_on_member_is_ansible_s() {
        for (template, ansible) in [
            (
                "{{ [{'name': 'a', 'p': 1}, {'name': 'b', 'p': 2}] | rekey_on_member('name') }}",
                "{'a': {'name': 'a', 'p': 1}, 'b': {'name': 'b', 'p': 2}}",
            ),
            (
                "{{ {'x': {'name': 'a', 'p': 1}, 'y': {'name': 'b'}} | rekey_on_member('name') }}",
                "{'a': {'name': 'a', 'p': 1}, 'b': {'name': 'b'}}",
            ),
            (
                "{{ [{'name': 'a', 'p': 1}, {'name': 'a', 'p': 2}] | rekey_on_member('name', duplicates='overwrite') }}",
                "{'a': {'name': 'a', 'p': 2}}",
            ),
            (
                "{{ [{'name': 1}, {'name': 'x'}] | rekey_on_member('name') }}",
                "{1: {'name': 1}, 'x': {'name': 'x'}}",
            ),
            ("{{ [] | rekey_on_member('name') }}", "{}"),
            (
                "{{ [{'name': 'a'}] | ansible.builtin.rekey_on_member('name') | type_debug }}",
                "dict",
            ),
        ] {
            assert_eq!(rendered(template), ansible, "{template}");
        }
        for (template, ansible) in [
            (
                "{{ [{'name': 'a', 'p': 1}, {'name': 'a', 'p': 2}] | rekey_on_member('name') }}",
                "Key 'a' is not unique, cannot convert to dict.",
            ),
            (
                "{{ [{'name': 'a'}] | rekey_on_member('name', duplicates='nope') }}",
                "duplicates parameter to rekey_on_member has unknown value 'nope'",
            ),
            (
                "{{ [{'p': 1}] | rekey_on_member('name') }}",
                "Key 'name' was not found.",
            ),
            (
                "{{ [1] | rekey_on_member('name') }}",
                "List item is not a valid dict",
            ),
            (
                "{{ 'abc' | rekey_on_member('name') }}",
                "Type is not a valid list, set, or dict",
            ),
            (
                "{{ [{'name': [1]}] | rekey_on_member('name') }}",
                "unhashable type: 'list'",
            ),
            (
                "{{ [{'name': none}, {'name': none}] | rekey_on_member('name') }}",
                "Key None is not unique, cannot convert to dict.",
            ),
        ] {
            let e = refusal(template);
            assert!(e.contains(ansible), "{template}: {e}");
        }
    }

    /// What ansible-core 2.19.14 printed (`ansible -m debug`): Python's float repr.
    #[test]
    fn floats_print_as_python_prints_them() {
        for (template, ansible) in [
            (
                "{{ [1e22, 1e-5, 0.1 + 0.2, -0.0, 1e16, 1234567890123456.7, 0.0001, 1e100, 5e-324, 1.7976931348623157e308, 100.0, -1.5e-7] }}",
                "[1e+22, 1e-05, 0.30000000000000004, -0.0, 1e+16, 1234567890123456.8, 0.0001, 1e+100, 5e-324, 1.7976931348623157e+308, 100.0, -1.5e-07]",
            ),
            (
                "{{ [1e22, 1e-5, 'inf' | float, '-inf' | float, 'nan' | float] | to_json }}",
                "[1e+22, 1e-05, Infinity, -Infinity, NaN]",
            ),
            ("{{ 1e22 | string }}", "1e+22"),
            ("{{ (2 | pow(70)) | string }}", "1.1805916207174113e+21"),
            ("{{ 'nan' | float }}", "nan"),
        ] {
            assert_eq!(rendered(template), ansible, "{template}");
        }
    }

    #[test]
    fn values_print_as_python_prints_them() {
        let ctx = minijinja::context! { n => (), t => true, l => vec!["a", "b"], s => "x" };
        assert_eq!(
            render("[{{ n }}] {{ t }} {{ l }} {{ s }} {{ {'k': 1} }}", ctx),
            "[] True ['a', 'b'] x {'k': 1}"
        );
    }

    #[test]
    fn a_value_too_long_to_print_is_refused_before_it_is_printed() {
        let env = super::super::environment();
        let refused = |template: &str| {
            env.render_str(template, ())
                .expect_err(template)
                .to_string()
                .contains("would print as more than 64 MiB")
        };
        // a hundred million items (about 300 MB of text), and a value of many small parts
        assert!(refused("{{ [1] * 10 ** 8 }}"));
        assert!(refused("{{ ([1] * 10 ** 8) | to_json }}"));
        assert!(refused("{{ ([[1, 2, 3]] * 10 ** 7) | string }}"));
        // an undefined item is an error, as in Ansible (lbctl's scopes name it)
        for template in [
            "a{{ [x] }}",
            "{{ {'k': [1, x]} | to_json }}",
            "{{ [x] | string }}",
        ] {
            let e = env
                .render_str(template, ())
                .expect_err(template)
                .to_string();
            assert!(e.contains("undefined"), "{template}: {e}");
        }
        assert_eq!(render("{{ [x] | length }}", Value::UNDEFINED), "1");
        assert_eq!(
            render(
                "{{ ([1] * 1000) | string | length }} {{ [\"it's\", 'a', {'k': [none, true, 1.5]}] }}",
                Value::UNDEFINED
            ),
            "3000 [\"it's\", 'a', {'k': [None, True, 1.5]}]"
        );
    }

    #[test]
    fn combine_merges_lists_as_ansibles_merge_hash() {
        let x = "{'l': [1, 2, 3], 'd': {'l': [1], 'k': 1}, 's': 'a'}";
        let y = "{'l': [3, 4], 'd': {'l': [2]}, 's': 'b'}";
        let merged = |how: &str| {
            render(
                &format!("{{{{ {x} | combine({y}{how}) | to_json }}}}"),
                Value::UNDEFINED,
            )
        };
        // what ansible-core's own combine returns for each
        let cases = [
            ("", r#"{"l": [3, 4], "d": {"l": [2]}, "s": "b"}"#),
            (
                ", list_merge='append'",
                r#"{"l": [1, 2, 3, 3, 4], "d": {"l": [2]}, "s": "b"}"#,
            ),
            (
                ", recursive=true, list_merge='prepend'",
                r#"{"l": [3, 4, 1, 2, 3], "d": {"l": [2, 1], "k": 1}, "s": "b"}"#,
            ),
            (
                ", list_merge='append_rp'",
                r#"{"l": [1, 2, 3, 4], "d": {"l": [2]}, "s": "b"}"#,
            ),
            (
                ", recursive=true, list_merge='prepend_rp'",
                r#"{"l": [3, 4, 1, 2], "d": {"l": [2, 1], "k": 1}, "s": "b"}"#,
            ),
            (
                ", recursive=true, list_merge='keep'",
                r#"{"l": [1, 2, 3], "d": {"l": [1], "k": 1}, "s": "b"}"#,
            ),
        ];
        for (how, want) in cases {
            assert_eq!(merged(how), want, "{how}");
        }
        let e = super::super::environment()
            .render_str(
                &format!("{{{{ {x} | combine({y}, list_merge='merge') }}}}"),
                (),
            )
            .unwrap_err();
        assert!(
            e.to_string().contains("'list_merge' argument can only be"),
            "{e}"
        );
    }

    #[test]
    fn ansible_filters() {
        let ctx = minijinja::context! {
            vip => "10.0.0.100/24",
            d => minijinja::context! { a => 1, b => minijinja::context! { x => 1 } },
        };
        let cases = [
            (
                "{{ 'no' | bool }} {{ 'Yes' | bool }} {{ 1 | bool }}",
                "False True True",
            ),
            (
                "{{ '3306' | int + 1 }} {{ 'x' | int(7) }} {{ '2.9' | int }}",
                "3307 7 2",
            ),
            (
                "{{ vip | ipaddr('address') }} {{ vip | ansible.utils.ipaddr('prefix') }}",
                "10.0.0.100 24",
            ),
            (
                "{{ vip | ipaddr('network') }} {{ vip | ipaddr('netmask') }} {{ 'x' | ipaddr }}",
                "10.0.0.0 255.255.255.0 False",
            ),
            (
                "{{ vip | ipv6 }} [{{ vip | ipaddr('net') }}] {{ vip | ipaddr('subnet') }}",
                "False [] 10.0.0.0/24",
            ),
            ("{{ d | to_json }}", "{\"a\": 1, \"b\": {\"x\": 1}}"),
            (
                "{{ d | combine({'b': {'y': 2}}, recursive=true) | to_json }}",
                "{\"a\": 1, \"b\": {\"x\": 1, \"y\": 2}}",
            ),
            (
                "{{ d | combine({'b': 2}) | dict2items | map(attribute='key') | join(',') }}",
                "a,b",
            ),
            (
                "{{ [{'key': 'k', 'value': 'v'}] | items2dict | to_json }}",
                "{\"k\": \"v\"}",
            ),
            (
                "{{ 'web-01.lan' | regex_replace('^web-(\\\\d+).*$', 'w\\\\1') }}",
                "w01",
            ),
            (
                "{{ 'abc123' | regex_search('[0-9]+') }} {{ 'abc' | regex_search('z') }}",
                "123 ",
            ),
            ("{{ 'hi' | b64encode }} {{ 'aGk=' | b64decode }}", "aGk= hi"),
            (
                "{{ ['a', 'b'] | map('extract', {'a': {'ip': 1}, 'b': {'ip': 2}}, 'ip') | list }}",
                "[1, 2]",
            ),
            (
                "{{ [1, [2, [3, none]]] | flatten }} {{ [1, [2, [3]]] | flatten(1) }}",
                "[1, 2, 3] [1, 2, [3]]",
            ),
            (
                "{{ [3, 1, 2] | union([2, 4]) }} {{ [3, 1, 2] | intersect([2, 3]) }} {{ [3, 1, 2] | difference([1]) }} {{ [1, 2] | symmetric_difference([2, 3]) }}",
                "[3, 1, 2, 4] [3, 2] [3, 2] [1, 3]",
            ),
            (
                "{{ 'a,b'.split(',') }} {{ {'k': 1}.items() | list }} {{ 'lb1'.startswith('lb') }}",
                "['a', 'b'] [['k', 1]] True",
            ),
            (
                "{{ 'lb1' is match('lb') }} {{ 'xlb' is match('lb') }} {{ 'xlb' is search('lb') }}",
                "True False True",
            ),
            (
                "{{ none | ternary('a', 'b', 'n') }} {{ 0 | ternary('a', 'b') }}",
                "n b",
            ),
            (
                "{{ d | to_nice_json }}",
                "{\n    \"a\": 1,\n    \"b\": {\n        \"x\": 1\n    }\n}",
            ),
            ("{{ d | to_nice_yaml }}", "a: 1\nb:\n    x: 1\n"),
            (
                "{{ '{\"b\": 1, \"a\": [1, null, 2.5]}' | from_json }} {{ none | from_json }}",
                "{'b': 1, 'a': [1, None, 2.5]} ",
            ),
            (
                "{{ 'b: yes\\na: [1, ~, 0x10, 010]' | from_yaml }} [{{ '# nothing' | from_yaml }}] {{ d | from_yaml | to_json }}",
                "{'b': True, 'a': [1, None, 16, 8]} [] {\"a\": 1, \"b\": {\"x\": 1}}",
            ),
        ];
        for (template, want) in cases {
            assert_eq!(render(template, ctx.clone()), want, "{template}");
        }
    }
}
