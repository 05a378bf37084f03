//! The shape of the user's vars: mappings and the keys allowed in them, lists, required keys,
//! and the paths (`backends[2].servers[0].port`) that diagnostics name.

use std::fmt;

use super::template_keys::template_reads;
use crate::source::{Diagnostic, Diagnostics, Entry, Node, Value};

/// The entries of a mapping whose keys must all be in `allowed`; unknown keys are reported
/// with the closest allowed key as a suggestion.
pub fn mapping<'a>(
    node: &'a Node,
    path: &(impl fmt::Display + ?Sized),
    allowed: &[&str],
    diags: &mut Diagnostics,
) -> Option<&'a [Entry]> {
    let Value::Map(entries) = &node.value else {
        diags.push(Diagnostic::new(
            &node.loc,
            path.to_string(),
            format!("expected a mapping, found {}", node.kind()),
        ));
        return None;
    };
    for (key, loc, _) in entries {
        if !allowed.contains(&&**key) && !template_reads(key) {
            let d = Diagnostic::new(loc, join(path, key), format!("unknown key `{key}`"));
            diags.push(match suggest(key, allowed.iter().copied()) {
                Some(s) => d.hint(format!("did you mean `{s}`?")),
                None => d.hint(format!("allowed keys here: {}", allowed.join(", "))),
            });
        }
    }
    Some(entries)
}

/// The value of `key` among a mapping's entries (as returned by [`mapping`]).
pub fn entry<'a>(entries: &'a [Entry], key: &str) -> Option<&'a Node> {
    entries
        .iter()
        .find(|(k, _, _)| **k == *key)
        .map(|(_, _, v)| v)
}

/// The closest candidate to a misspelt key, if one is close enough to be a likely typo.
///
/// The distance is never less than the difference in length, so a candidate that far apart
/// is passed over without measuring: the measure takes time and memory of both lengths
/// multiplied, which a megabyte key would make a second per candidate.
pub fn suggest<'a>(key: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let key_chars = key.chars().count();
    candidates
        .filter(|c| key_chars.abs_diff(c.chars().count()) <= 2.max(c.len() / 5))
        .map(|c| (strsim::damerau_levenshtein(key, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 5))
        .min()
        .map(|(_, c)| c)
}

/// The items of a list of `what` (e.g. "backends"); null is an empty list, anything else is
/// reported and read as empty.
pub fn list<'a>(node: &'a Node, path: &str, what: &str, diags: &mut Diagnostics) -> &'a [Node] {
    match &node.value {
        Value::Null => &[],
        Value::Seq(items) => items,
        _ => {
            diags.push(
                Diagnostic::new(
                    &node.loc,
                    path,
                    format!("expected a list of {what}, found {}", node.kind()),
                )
                .hint(format!(
                    "each {} is a list item starting with `- name:`",
                    what.trim_end_matches('s')
                )),
            );
            &[]
        }
    }
}

pub fn join(path: &(impl fmt::Display + ?Sized), key: &str) -> String {
    Key(path, key).to_string()
}

/// `path.key` (`key` alone under the root), spelled out only when a diagnostic names it:
/// a 20,000-backend file has about a million values, and almost all of them are fine.
pub struct Key<'a, P: ?Sized>(pub &'a P, pub &'a str);

impl<P: fmt::Display + ?Sized> fmt::Display for Key<'_, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.0.to_string();
        if path.is_empty() {
            f.write_str(self.1)
        } else {
            write!(f, "{path}.{}", self.1)
        }
    }
}

/// `path[index]`, spelled out only when a diagnostic names it.
pub struct Index<'a, P: ?Sized>(pub &'a P, pub usize);

impl<P: fmt::Display + ?Sized> fmt::Display for Index<'_, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]", self.0, self.1)
    }
}

/// One value or a list of them, as Ansible users write either (`sni: a.example.com` or
/// `sni: [a.example.com, b.example.com]`); an empty list is reported.
pub fn one_or_many<'a>(
    node: &'a Node,
    path: &str,
    diags: &mut Diagnostics,
) -> Vec<(String, &'a Node)> {
    match &node.value {
        Value::Seq(items) => {
            if items.is_empty() {
                diags.push(
                    Diagnostic::new(&node.loc, path, "empty list")
                        .hint("give at least one value, or remove the key"),
                );
            }
            items
                .iter()
                .enumerate()
                .map(|(i, item)| (format!("{path}[{i}]"), item))
                .collect()
        }
        _ => vec![(path.to_string(), node)],
    }
}

/// The value of a key that must be present; a missing key is reported at its parent's line.
pub fn required<'a>(
    parent: &Node,
    value: Option<&'a Node>,
    path: &(impl fmt::Display + ?Sized),
    key: &str,
    diags: &mut Diagnostics,
) -> Option<&'a Node> {
    if value.is_none() {
        diags.push(
            Diagnostic::new(
                &parent.loc,
                join(path, key),
                format!("missing required key `{key}`"),
            )
            .hint(format!("add `{key}:` to this entry")),
        );
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let keys = ["check_interval", "check", "rise", "fall"];
        assert_eq!(suggest("chek", keys.iter().copied()), Some("check"));
        assert_eq!(
            suggest("check_intervall", keys.iter().copied()),
            Some("check_interval")
        );
        assert_eq!(suggest("zzzzzz", keys.iter().copied()), None);
        assert_eq!(suggest("chéck", keys.iter().copied()), Some("check"));
        assert_eq!(suggest(&"k".repeat(1 << 20), keys.iter().copied()), None);
    }
}
