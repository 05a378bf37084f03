//! Host patterns: `worker[1:3]`, `db[01:10:2]`, `node-[a:c].lan`, as Ansible expands them.

use crate::input::InputError;

/// Expands `worker[1:3]`, `db[01:10:2]`, `node-[a:c].lan` into host names.
pub fn expand_host_pattern(pattern: &str) -> Result<Vec<String>, InputError> {
    let Some(open) = pattern.find('[') else {
        return check_host_name(pattern).map(|()| vec![pattern.to_string()]);
    };
    let close =
        pattern[open..]
            .find(']')
            .map(|i| open + i)
            .ok_or_else(|| InputError::NotClosed {
                pattern: pattern.to_string(),
            })?;
    let (head, range, tail) = (
        &pattern[..open],
        &pattern[open + 1..close],
        &pattern[close + 1..],
    );
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
    let step: usize = step
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
        if b - a > 100_000 {
            return Err(InputError::TooLarge {
                range: range.to_string(),
            });
        }
        let width = if start.len() > 1 && start.starts_with('0') {
            start.len()
        } else {
            0
        };
        let mut i = a;
        while i <= b {
            items.push(format!("{i:0width$}"));
            i += step as u64;
        }
    } else if let ([a], [b]) = (start.as_bytes(), end.as_bytes()) {
        if !a.is_ascii_alphabetic() || !b.is_ascii_alphabetic() || a > b {
            return Err(InputError::Letters {
                range: range.to_string(),
            });
        }
        items.extend((*a..=*b).step_by(step).map(|c| (c as char).to_string()));
    } else {
        return Err(InputError::Kind {
            range: range.to_string(),
        });
    }
    let mut out = Vec::new();
    for item in items {
        // The tail may hold another range.
        for rest in expand_host_pattern(&format!("{item}{tail}"))? {
            out.push(format!("{head}{rest}"));
        }
    }
    for name in &out {
        check_host_name(name)?;
    }
    Ok(out)
}

fn check_host_name(name: &str) -> Result<(), InputError> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
    if ok {
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
    }
}
