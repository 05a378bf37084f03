//! Ansible's `omit`: the value that means "as if this were not written", most often as
//! `{{ x | default(omit) }}`.
//!
//! As ansible-core 2.19 treats it: while templates read a value, `omit` is a value like any
//! other (defined, `default` keeps it, printed alone as nothing, `<<Omit>>` as text); where the
//! value is finished, a mapping's key whose value is `omit` is dropped and so is a list's item
//! (`{a: 1, b: "{{ omit }}"}` is `{a: 1}`), as for a module's arguments. lbctl finishes values
//! where its spec reads them and where a template prints them; a variable that is `omit` as a
//! whole is not set at all, so lbctl's default applies (Ansible's own template would print
//! nothing there).

use std::{fmt, sync::Arc};

use minijinja::{
    Value,
    value::{DynObject, Object, ObjectRepr},
};

/// The one `omit`.
#[derive(Debug)]
struct Omit;

impl Object for Omit {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    /// Equal to itself only (`omit == omit`).
    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<std::cmp::Ordering> {
        other
            .downcast_ref::<Omit>()
            .map(|_| std::cmp::Ordering::Equal)
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<<Omit>>")
    }
}

/// The value templates see as `omit`.
pub(super) fn value() -> Value {
    Value::from_object(Omit)
}

/// Whether `value` is `omit`.
pub(super) fn is_omit(value: &Value) -> bool {
    value.downcast_object_ref::<Omit>().is_some()
}

#[cfg(test)]
mod tests {
    use crate::input::template::scope::tests::{eval, templar};

    /// Each value as ansible-core 2.19.14 finishes it (`ansible -m debug -a var=NAME`), and a
    /// variable that is `omit` as a whole, which lbctl reads as not set.
    #[test]
    fn omitted_keys_and_items_are_left_out_where_a_value_is_finished() {
        let t = templar(
            "omit",
            &[
                ("hosts", "[lbs]\nlb1\n"),
                (
                    "group_vars/lbs.yml",
                    concat!(
                        "backend:\n",
                        "  name: x\n",
                        "  balance: \"{{ nothere | default(omit) }}\"\n",
                        "  weight: \"{{ 5 | default(omit) }}\"\n",
                        "  servers: [\"{{ omit }}\", {name: a, port: \"{{ omit }}\"}]\n",
                        "concatenated: \"a{{ omit }}b\"\n",
                        "built_list: \"{{ [1, omit, 2] }}\"\n",
                        "built_map: \"{{ {'a': omit, 'b': [omit, 2]} }}\"\n",
                        "defined: \"{{ omit is defined }}\"\n",
                        "kept_by_default: \"{{ omit | default('d') | string }}\"\n",
                        "read_lazily: \"{{ backend.servers | length }}\"\n",
                        "whole: \"{{ nothere | default(omit) }}\"\n",
                    ),
                ),
            ],
        );
        let cases = [
            // (printed with sorted keys)
            (
                "backend",
                r#"{"name":"x","servers":[{"name":"a"}],"weight":5}"#,
            ),
            ("concatenated", r#""ab""#),
            ("built_list", "[1,2]"),
            ("built_map", r#"{"b":[2]}"#),
            ("defined", "true"),
            ("kept_by_default", r#""<<Omit>>""#),
            // templates read a list before it is finished: the `omit` item is still there
            ("read_lazily", "2"),
        ];
        for (var, want) in cases {
            assert_eq!(eval(&t, "lb1", var).unwrap(), want, "{var}");
        }
        assert!(t.scope("lb1").unwrap().node("whole").is_none());
    }
}
