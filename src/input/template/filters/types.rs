//! The names of Python's types, as Ansible 2.19 gives them for each kind of value lbctl has:
//! the filter `type_debug`, and the `not str` of the errors of filters given the wrong kind.

use minijinja::{Value, value::ValueKind};

/// `type_debug`: the name of the Python type Ansible would hold `value` as. A list made by a
/// filter (`map`, `zip`, `dict.items()`) is a `list`, as Ansible 2.19 makes it one; `hostvars`
/// and `hostvars[host]` are Ansible's own `HostVars` and `HostVarsVars`, `vars` a `dict`; an
/// undefined value is Ansible's `UndefinedMarker`.
pub(super) fn type_debug(value: Value) -> &'static str {
    python_type_name(&value)
}

/// The name of the Python type of `value` (see [`type_debug`]).
pub(super) fn python_type_name(value: &Value) -> &'static str {
    if super::super::omit::is_omit(value) {
        return "_OmitType";
    }
    if super::super::chain::lacks_value(value) {
        return "UndefinedMarker";
    }
    if value
        .downcast_object_ref::<super::datetime::DateTime>()
        .is_some()
    {
        return "datetime";
    }
    if let Some(name) = super::super::scope::python_type_name(value) {
        return name;
    }
    match value.kind() {
        ValueKind::Undefined | ValueKind::Invalid => "UndefinedMarker",
        ValueKind::None => "NoneType",
        ValueKind::Bool => "bool",
        ValueKind::Number if value.is_integer() => "int",
        ValueKind::Number => "float",
        ValueKind::String if value.is_safe() => "Markup",
        ValueKind::String => "str",
        ValueKind::Bytes => "bytes",
        ValueKind::Seq if value.is_tuple() => "tuple",
        ValueKind::Seq | ValueKind::Iterable => "list",
        ValueKind::Map => "dict",
        _ => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::scope::tests::{eval, templar};
    use super::super::tests::rendered;

    /// What ansible-core 2.19.14 printed for each (`ansible -m debug`, and a playbook reading
    /// each variable with `lookup('vars', ...)`).
    #[test]
    fn type_debug_names_python_s_types_as_ansible_does() {
        for (template, ansible) in [
            ("{{ 1 | type_debug }}", "int"),
            ("{{ (2 ** 70) | type_debug }}", "int"),
            ("{{ 1.5 | type_debug }}", "float"),
            ("{{ (4 / 2) | type_debug }}", "float"),
            ("{{ (7 // 2) | type_debug }}", "int"),
            ("{{ 'a' | type_debug }}", "str"),
            ("{{ true | type_debug }}", "bool"),
            ("{{ none | type_debug }}", "NoneType"),
            ("{{ [1] | type_debug }}", "list"),
            ("{{ {'a': 1} | type_debug }}", "dict"),
            ("{{ (1, 2) | type_debug }}", "tuple"),
            ("{{ (1,) | type_debug }}", "tuple"),
            ("{{ [(1, 2)][0] | type_debug }}", "tuple"),
            ("{{ omit | type_debug }}", "_OmitType"),
            ("{{ [1, 2] | zip([3, 4]) | type_debug }}", "list"),
            (
                "{{ [1, 2] | zip([3]) | list | first | type_debug }}",
                "tuple",
            ),
            ("{{ {'a': 1}.items() | type_debug }}", "list"),
            ("{{ {'a': 1} | dictsort | first | type_debug }}", "tuple"),
            ("{{ [1, 2] | map('string') | type_debug }}", "list"),
            ("{{ 'a' | safe | type_debug }}", "Markup"),
            ("{{ 'a' | e | type_debug }}", "Markup"),
            ("{{ [1] | join | type_debug }}", "str"),
            ("{{ '{\"a\": 1}' | from_json | type_debug }}", "dict"),
            ("{{ '1' | bool | type_debug }}", "bool"),
            ("{{ undefined_x | type_debug }}", "UndefinedMarker"),
            ("{{ 1 | ansible.builtin.type_debug }}", "int"),
        ] {
            assert_eq!(rendered(template), ansible, "{template}");
        }
    }

    #[test]
    fn type_debug_names_ansible_s_own_objects() {
        let t = templar(
            "type-debug",
            &[
                (
                    "hosts.yml",
                    "all:\n  hosts:\n    h1:\n      a_int: 5\n      a_str: \"5\"\n      a_float: 1.5\n      a_list: [1]\n      a_map: {k: v}\n      a_none: null\n      a_tuple: \"{{ (1, 2) }}\"\n      a_zip: \"{{ [1] | zip([2]) }}\"\n      a_omit: \"{{ omit }}\"\n",
                ),
                (
                    "group_vars/all.yml",
                    "types: \"{{ [hostvars, hostvars['h1'], vars, groups, a_int, a_str, a_float, a_list, a_map, a_none, a_tuple, a_zip, a_omit] | map('type_debug') | list }}\"\n",
                ),
            ],
        );
        assert_eq!(
            eval(&t, "h1", "types").unwrap(),
            r#"["HostVars","HostVarsVars","dict","dict","int","str","float","list","dict","NoneType","tuple","list","_OmitType"]"#
        );
    }
}
