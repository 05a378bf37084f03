//! Ansible's `lookup()`, `query()` and `q()`, for the lookups that read nothing but lbctl's own
//! process and the host's variables: `env`, how CI hands a secret or a setting to a run
//! (`"{{ lookup('env', 'STATS_PASSWORD') }}"`: each term's first word names an environment
//! variable, an unset one gives `default`, empty text unless given), and `vars`, a variable
//! whose name is computed (`lookup('vars', 'haproxy_' ~ name)`: a missing one gives `default`,
//! or is an error). As Ansible's: several terms give their values joined with commas (a list
//! with `wantlist=True`, or from `query`).
//!
//! `inventory_hostnames` gives the hosts of plain group and host names, as `groups` has them;
//! `items`, `list` and `dict` only reshape their terms. Every other lookup reads files
//! relative to a playbook lbctl does not have, runs commands or reaches the network: it is
//! refused with an error that says what to write instead.

use minijinja::{
    Environment, Error, ErrorKind, State, Value,
    value::{Kwargs, Rest, ValueKind},
};

pub(super) fn register(env: &mut Environment<'static>) {
    for name in ["lookup", "ansible.builtin.lookup"] {
        env.add_function(
            name,
            |state: &State, plugin: String, terms: Rest<Value>, kw: Kwargs| {
                let list = kw.get::<Option<bool>>("wantlist")?.unwrap_or(false);
                run(state, &plugin, &terms, &kw, list)
            },
        );
    }
    for name in ["query", "q", "ansible.builtin.query", "ansible.builtin.q"] {
        env.add_function(
            name,
            |state: &State, plugin: String, terms: Rest<Value>, kw: Kwargs| {
                run(state, &plugin, &terms, &kw, true)
            },
        );
    }
}

fn run(
    state: &State,
    plugin: &str,
    terms: &[Value],
    kw: &Kwargs,
    list: bool,
) -> Result<Value, Error> {
    let values = match plugin.strip_prefix("ansible.builtin.").unwrap_or(plugin) {
        "env" => env(terms, kw)?,
        "vars" => vars(state, terms, kw)?,
        "inventory_hostnames" => inventory_hostnames(state, terms)?,
        // the lookups that only reshape their terms
        "items" => terms
            .iter()
            .flat_map(|t| match t.try_iter() {
                Ok(items) if t.kind() == ValueKind::Seq => items.collect(),
                _ => vec![t.clone()],
            })
            .collect(),
        "list" => terms.to_vec(),
        "dict" => dict_items(terms)?,
        other => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!(
                    "lookup('{other}') is not supported by lbctl (it reads a playbook's files, runs commands or reaches the network; lbctl reads env, vars, inventory_hostnames, items, list and dict): write the value into a vars file (Ansible Vault for a secret) or pass it with -e"
                ),
            ));
        }
    };
    // The option every lookup takes, `errors`, is accepted and not acted on: an `env` lookup
    // cannot fail, and a `vars` lookup of a missing name fails whatever it says.
    let _: Option<Value> = kw.get("errors")?;
    kw.assert_all_used()?;
    // As Ansible gives a lookup's results back: one as itself, several texts joined with
    // commas, anything else (none, or not all text) as the list.
    let texts: Option<Vec<&str>> = values.iter().map(Value::as_str).collect();
    Ok(match (values.len(), texts) {
        _ if list => Value::from(values),
        (1, _) => values.into_iter().next().unwrap_or_default(),
        (2.., Some(texts)) => Value::from(texts.join(",")),
        _ => Value::from(values),
    })
}

/// `lookup('inventory_hostnames', PATTERN...)`: the hosts of the groups and the hosts a
/// pattern names (`workers`, `lb1,lb2`, `all`, `a:b`), in inventory order as `groups` has
/// them, each once. Patterns with `!`, `&`, wildcards, regular expressions or subscripts are
/// refused: `groups` and its filters say the same.
fn inventory_hostnames(state: &State, terms: &[Value]) -> Result<Vec<Value>, Error> {
    let groups = state.lookup("groups").unwrap_or_default();
    let refuse = |why: String| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "lookup('inventory_hostnames', ...): {why}: write groups['NAME'] (a group's hosts in inventory order), with filters such as difference() or intersect() to combine groups"
            ),
        )
    };
    let all: std::collections::HashSet<String> = groups
        .get_item(&Value::from("all"))
        .ok()
        .and_then(|hosts| hosts.try_iter().ok())
        .map(|hosts| hosts.map(|h| h.to_string()).collect())
        .unwrap_or_default();
    let is_host = |name: &str| all.contains(name);
    let mut out: Vec<Value> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for term in terms {
        let Some(pattern) = term.as_str() else {
            return Err(refuse(format!("it takes host patterns, not {term}")));
        };
        for name in pattern
            .split([',', ':'])
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            if name.contains(['!', '&', '*', '?', '~', '[', '@']) {
                return Err(refuse(format!(
                    "lbctl reads plain group and host names, not `{name}`"
                )));
            }
            let hosts: Vec<Value> = match groups.get_item(&Value::from(name)) {
                Ok(hosts) if !hosts.is_undefined() && !hosts.is_none() => {
                    hosts.try_iter().map(Iterator::collect).unwrap_or_default()
                }
                _ if is_host(name) => vec![Value::from(name)],
                // as Ansible: a name that matches nothing gives nothing
                _ => Vec::new(),
            };
            for host in hosts {
                if seen.insert(host.to_string()) {
                    out.push(host);
                }
            }
        }
    }
    Ok(out)
}

/// `lookup('dict', MAPPING...)`: each mapping's entries as `{key, value}` items.
fn dict_items(terms: &[Value]) -> Result<Vec<Value>, Error> {
    let mut out = Vec::new();
    for term in terms {
        if term.kind() != ValueKind::Map {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("lookup('dict', ...) takes mappings, not {term}"),
            ));
        }
        out.extend(super::filters::key_value_items(term, "key", "value")?);
    }
    Ok(out)
}

/// `lookup('env', NAME...)`: each term's first word is a variable's name.
fn env(terms: &[Value], kw: &Kwargs) -> Result<Vec<Value>, Error> {
    let default = kw
        .get::<Option<Value>>("default")?
        .unwrap_or_else(|| Value::from(""));
    terms
        .iter()
        .map(|term| {
            let term = term.as_str().ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidOperation,
                    format!("lookup('env', ...) takes variable names, not {term}"),
                )
            })?;
            let name = term.split_whitespace().next().unwrap_or_default();
            Ok(match std::env::var(name) {
                Ok(value) if !name.is_empty() => Value::from(value),
                _ => default.clone(),
            })
        })
        .collect()
}

/// `lookup('vars', NAME...)`: the host's variables by name, templates evaluated.
fn vars(state: &State, terms: &[Value], kw: &Kwargs) -> Result<Vec<Value>, Error> {
    // `default=None` is no default, as in Ansible
    let default = kw.get::<Option<Value>>("default")?.filter(|d| !d.is_none());
    terms
        .iter()
        .map(|term| {
            let name = term.as_str().ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidOperation,
                    format!("lookup('vars', ...) takes variable names, not {term}"),
                )
            })?;
            match (state.lookup(name).filter(|v| !v.is_undefined()), &default) {
                // a variable that failed (a loop, an error in its template): that error
                (Some(value), _) if value.kind() == ValueKind::Invalid => Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!("lookup('vars', '{name}'): {value}"),
                )),
                (Some(value), _) => Ok(value),
                (None, Some(default)) => Ok(default.clone()),
                (None, None) => Err(Error::new(
                    ErrorKind::UndefinedError,
                    format!("No variable named '{name}' was found."),
                )),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    fn render(template: &str) -> Result<String, String> {
        super::super::environment()
            .render_str(template, ())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn inventory_hostnames_reads_plain_names_and_refuses_other_patterns() {
        let ctx = minijinja::context! {
            groups => minijinja::context! {
                all => vec!["lb1", "lb2", "w1"],
                lbs => vec!["lb1", "lb2"],
            },
        };
        let env = super::super::environment();
        let render = |t: &str| env.render_str(t, &ctx).map_err(|e| e.to_string());
        assert_eq!(
            render("{{ query('inventory_hostnames', 'w1:lbs', 'lb1') }}").unwrap(),
            "['w1', 'lb1', 'lb2']"
        );
        assert_eq!(
            render("{{ query('inventory_hostnames', 'nothing') }}").unwrap(),
            "[]"
        );
        let refused = render("{{ query('inventory_hostnames', 'all:!lb1') }}").unwrap_err();
        assert!(refused.contains("write groups['NAME']"), "{refused}");
    }

    #[test]
    fn env_reads_lbctls_environment_as_ansible_does() {
        // PATH is set for every test process; this name for none
        let path = std::env::var("PATH").unwrap();
        let unset = "LBCTL_TEST_SURELY_UNSET_VARIABLE";
        let cases = [
            ("{{ lookup('env', 'PATH') }}".to_string(), path.clone()),
            (format!("[{{{{ lookup('env', '{unset}') }}}}]"), "[]".into()),
            (
                format!("{{{{ lookup('env', '{unset}', default='d') }}}}"),
                "d".into(),
            ),
            (
                format!("{{{{ lookup('env', '{unset}') | default('fb', true) }}}}"),
                "fb".into(),
            ),
            (
                format!("{{{{ lookup('env', 'PATH', '{unset}', default='x') }}}}"),
                format!("{path},x"),
            ),
            (
                "{{ query('env', 'PATH') == [lookup('env', 'PATH extra words')] }} {{ q('env', 'PATH') | length }} {{ lookup('ansible.builtin.env', 'PATH', wantlist=True) | length }}".into(),
                "True 1 1".into(),
            ),
        ];
        for (template, want) in cases {
            assert_eq!(render(&template), Ok(want), "{template}");
        }
    }

    #[test]
    fn other_lookups_say_what_to_write_instead() {
        for template in [
            "{{ lookup('file', '/etc/hostname') }}",
            "{{ query('pipe', 'id') }}",
            "{{ lookup('ansible.builtin.password', '/tmp/x') }}",
        ] {
            let error = render(template).unwrap_err();
            assert!(
                error.contains("is not supported by lbctl") && error.contains("vars file"),
                "{template}: {error}"
            );
        }
        let option = render("{{ lookup('env', 'PATH', nosuch=1) }}").unwrap_err();
        assert!(option.contains("nosuch"), "{option}");
    }

    #[test]
    fn vars_reads_a_variable_whose_name_is_computed() {
        let ctx = minijinja::context! { haproxy_x => 5, haproxy_y => "why", name => "x" };
        let render = |template: &str| {
            super::super::environment()
                .render_str(template, ctx.clone())
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            render("{{ lookup('vars', 'haproxy_y', 'haproxy_y') }} {{ lookup('vars', 'haproxy_' ~ name) + 1 }} {{ query('vars', 'haproxy_x', 'haproxy_y') }} {{ lookup('vars', 'nope', default='d') }} {{ lookup('ansible.builtin.vars', 'haproxy_x', 'haproxy_y') }}").as_deref(),
            Ok("why,why 6 [5, 'why'] d [5, 'why']")
        );
        for template in [
            "{{ lookup('vars', 'nope') }}",
            "{{ lookup('vars', 'nope', default=none) }}",
        ] {
            let missing = render(template).unwrap_err();
            assert!(
                missing.contains("No variable named 'nope' was found."),
                "{missing}"
            );
        }
    }
}
