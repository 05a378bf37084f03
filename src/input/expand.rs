//! Python's `os.path.expandvars`, which both `ansible.cfg` paths and the `expandvars` filter
//! go through: `$NAME` (ASCII letters, digits, `_`) and `${ANYTHING}` replaced by the
//! variable's value; a variable without one, an empty name, or a `$` before anything else is
//! left as written.

/// `text` expanded: `value` gives a name's value (`None`: left as written), and `grown` sees
/// the text made so far after each variable, to stop one that grows too long.
pub(crate) fn expand_vars<E>(
    text: &str,
    mut value: impl FnMut(&str) -> Result<Option<String>, E>,
    mut grown: impl FnMut(&str) -> Result<(), E>,
) -> Result<String, E> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, written) = match after.strip_prefix('{') {
            Some(braced) => match braced.find('}') {
                Some(end) => (&braced[..end], end + 2),
                None => ("", 0),
            },
            None => {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], end)
            }
        };
        match if name.is_empty() { None } else { value(name)? } {
            Some(v) => out.push_str(&v),
            None => out.push_str(&rest[at..at + 1 + written]),
        }
        grown(&out)?;
        rest = &after[written..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(text: &str) -> String {
        let value = |name: &str| {
            Ok::<_, ()>(match name {
                "HOME" => Some("/root".to_string()),
                "a b" => Some("spaced".to_string()),
                _ => None,
            })
        };
        expand_vars(text, value, |_| Ok(())).unwrap()
    }

    #[test]
    fn names_are_replaced_as_python_replaces_them() {
        assert_eq!(expand("$HOME/x"), "/root/x");
        assert_eq!(expand("${HOME}x"), "/rootx");
        assert_eq!(expand("${a b}"), "spaced");
        assert_eq!(expand("$UNSET/$HOME"), "$UNSET//root");
        assert_eq!(expand("$ $/x ${HOME"), "$ $/x ${HOME");
        assert_eq!(expand("${}$"), "${}$");
        assert_eq!(expand("$HOME_x"), "$HOME_x");
    }

    #[test]
    fn growth_is_seen_after_each_variable() {
        let mut seen = Vec::new();
        let out = expand_vars(
            "a$X-b$X",
            |_| Ok::<_, ()>(Some("1".into())),
            |so_far| {
                seen.push(so_far.to_string());
                Ok(())
            },
        );
        assert_eq!(out.unwrap(), "a1-b1");
        assert_eq!(seen, ["a1", "a1-b1"]);
        let stopped = expand_vars(
            "$X$X",
            |_| Ok(Some("1".into())),
            |s| {
                if s.len() > 1 { Err("too long") } else { Ok(()) }
            },
        );
        assert_eq!(stopped, Err("too long"));
    }
}
