//! Host patterns: `worker[1:3]`, `db[01:10:2]`, `node-[a:c].lan`, as Ansible expands them.

use crate::input::InputError;

/// Most host names one pattern may expand to: each range may hold up to this many, and so
/// may their product (`lb[1:1000][1:1000]` would be a million).
const MAX_EXPANDED: usize = 100_000;

/// Expands `worker[1:3]`, `db[01:10:2]`, `node-[a:c].lan` into host names; several ranges
/// multiply, the first varying slowest, as Ansible expands them.
pub fn expand_host_pattern(pattern: &str) -> Result<Vec<String>, InputError> {
    let mut names = vec![String::new()];
    let mut rest = pattern;
    while let Some(open) = rest.find('[') {
        let close =
            rest[open..]
                .find(']')
                .map(|i| open + i)
                .ok_or_else(|| InputError::NotClosed {
                    pattern: pattern.to_string(),
                })?;
        let (literal, range) = (&rest[..open], &rest[open + 1..close]);
        let items = range_items(range)?;
        if names.len().saturating_mul(items.len()) > MAX_EXPANDED {
            return Err(InputError::TooMany {
                pattern: pattern.to_string(),
                max: MAX_EXPANDED,
            });
        }
        names = names
            .iter()
            .flat_map(|name| {
                items
                    .iter()
                    .map(move |item| format!("{name}{literal}{item}"))
            })
            .collect();
        rest = &rest[close + 1..];
    }
    for name in &mut names {
        name.push_str(rest);
        check_host_name(name)?;
    }
    Ok(names)
}

/// The items of one range: `1:3`, `08:10`, `1:5:2`, `a:c`.
fn range_items(range: &str) -> Result<Vec<String>, InputError> {
    let parts: Vec<&str> = range.split(':').collect();
    let (start, end, step) = match parts.as_slice() {
        [a, b] => (*a, *b, "1"),
        [a, b, s] => (*a, *b, *s),
        _ => {
            return Err(InputError::Shape {
                range: range.to_string(),
            });
        }
    };
    let step: u64 = step
        .parse()
        .ok()
        .filter(|s| *s > 0)
        .ok_or_else(|| InputError::Step {
            step: step.to_string(),
        })?;
    let mut items = Vec::new();
    if let (Ok(a), Ok(b)) = (start.parse::<u64>(), end.parse::<u64>()) {
        if a > b {
            return Err(InputError::Backwards {
                range: range.to_string(),
            });
        }
        if b - a >= MAX_EXPANDED as u64 {
            return Err(InputError::TooLarge {
                range: range.to_string(),
            });
        }
        let width = if start.len() > 1 && start.starts_with('0') {
            start.len()
        } else {
            0
        };
        let mut i = Some(a);
        while let Some(n) = i.filter(|n| *n <= b) {
            items.push(format!("{n:0width$}"));
            i = n.checked_add(step);
        }
    } else if let ([a], [b]) = (start.as_bytes(), end.as_bytes()) {
        if !a.is_ascii_alphabetic() || !b.is_ascii_alphabetic() || a > b {
            return Err(InputError::Letters {
                range: range.to_string(),
            });
        }
        let step = usize::try_from(step).unwrap_or(usize::MAX);
        items.extend((*a..=*b).step_by(step).map(|c| (c as char).to_string()));
    } else {
        return Err(InputError::Kind {
            range: range.to_string(),
        });
    }
    Ok(items)
}

/// A host name lbctl can use everywhere it goes: as a directory name (`render -o OUT/<host>`),
/// in keepalived's `router_id`, in messages. Letters, digits and `.-_:` (`:` for IPv6
/// addresses used as names), starting with a letter, a digit, `_` or `:`, so that `.`, `..`
/// and names read as options (`-x`) are refused.
pub fn check_host_name(name: &str) -> Result<(), InputError> {
    let chars_ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
    let start_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':'));
    if chars_ok && start_ok && name.len() <= 253 {
        Ok(())
    } else {
        Err(InputError::HostName {
            name: name.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_expand_like_ansible() {
        assert_eq!(
            expand_host_pattern("worker[1:3]").unwrap(),
            ["worker1", "worker2", "worker3"]
        );
        assert_eq!(
            expand_host_pattern("db[08:10]").unwrap(),
            ["db08", "db09", "db10"]
        );
        assert_eq!(
            expand_host_pattern("n[a:c].lan").unwrap(),
            ["na.lan", "nb.lan", "nc.lan"]
        );
        assert_eq!(expand_host_pattern("x[1:5:2]").unwrap(), ["x1", "x3", "x5"]);
        assert!(expand_host_pattern("x[3:1]").is_err());
        assert!(expand_host_pattern("x[1:3").is_err());
        assert_eq!(
            expand_host_pattern("r[1:2]-[a:b]").unwrap(),
            ["r1-a", "r1-b", "r2-a", "r2-b"]
        );
    }

    #[test]
    fn names_that_would_escape_a_directory_or_explode_are_refused() {
        for name in [".", "..", "-rf", ".hidden", "a/b", "a b", "lb1\nx"] {
            assert!(expand_host_pattern(name).is_err(), "{name:?}");
        }
        assert!(expand_host_pattern("fe80::1").is_ok());
        assert!(expand_host_pattern(&"x[1:2]".repeat(40)).is_err());
        let edge = expand_host_pattern("x[18446744073709551610:18446744073709551615:4]").unwrap();
        assert_eq!(edge.len(), 2);
    }
}
