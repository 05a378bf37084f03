//! Ansible's `human_readable` and `human_to_bytes`: sizes in bytes (or bits) written with
//! the binary units K, M, G, ... Y (1024 each), as ansible-core's `bytes_to_human` and
//! `human_to_bytes` write and read them, with their errors.

use std::sync::OnceLock;

use minijinja::{Error, ErrorKind, Value, value::ValueKind};

use super::types::python_type_name;

/// The units from the largest down, each with what one is worth (a power of 1024), and the
/// names `human_to_bytes` accepts beside the unit and `B` or `b`: (bytes, bits).
const UNITS: [(char, u32, (&str, &str)); 9] = [
    ('Y', 80, ("yottabyte", "yottabit")),
    ('Z', 70, ("zetabyte", "zetabit")),
    ('E', 60, ("exabyte", "exabit")),
    ('P', 50, ("petabyte", "petabit")),
    ('T', 40, ("terabyte", "terabit")),
    ('G', 30, ("gigabyte", "gigabit")),
    ('M', 20, ("megabyte", "megabit")),
    ('K', 10, ("kilobyte", "kilobit")),
    ('B', 0, ("byte", "bit")),
];

fn failure(message: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, message)
}

/// `human_readable(isbits=False, unit=None)`: the size in the largest unit it reaches (or in
/// `unit`, a single letter), with two decimals: `1.50 KB`, `1023.00 Bytes`, `1.50 Kb`. A
/// unit that is no single known letter gives bytes, as in Ansible.
pub(super) fn human_readable(
    size: Value,
    isbits: Option<Value>,
    unit: Option<Value>,
) -> Result<String, Error> {
    super::defined(&size)?;
    let bits = isbits.is_some_and(|b| b.is_true());
    let unit = match unit.filter(|u| !u.is_none()) {
        None => None,
        Some(u) => match u.as_str() {
            Some(text) => Some(text.to_uppercase()),
            None => {
                return Err(failure(format!(
                    "human_readable() can't interpret the input: '{}' object has no attribute 'upper'",
                    python_type_name(&u)
                )));
            }
        },
    };
    let bad = |operation: &str| {
        failure(format!(
            "human_readable() failed on bad input: {operation} '{}' and 'int'",
            python_type_name(&size)
        ))
    };
    // An int is compared exactly, as Python compares them (2^60 - 1 is 1024.00 PB, not EB).
    let (whole, x) = match size.kind() {
        ValueKind::Bool => (Some(i128::from(size.is_true())), 0.0),
        ValueKind::Number if size.is_integer() => (i128::try_from(size.clone()).ok(), 0.0),
        ValueKind::Number => (None, f64::try_from(size.clone()).unwrap_or(f64::NAN)),
        _ if unit.is_none() => {
            return Err(bad("'>=' not supported between instances of"));
        }
        _ => return Err(bad("unsupported operand type(s) for /:")),
    };
    let reaches = |shift: u32| match whole {
        Some(n) => n >= 1i128 << shift,
        None => x >= (1u128 << shift) as f64,
    };
    let (letter, shift, _) = UNITS
        .iter()
        .find(|(letter, shift, _)| match &unit {
            None => reaches(*shift),
            Some(u) => u.chars().eq(std::iter::once(*letter)),
        })
        .copied()
        .unwrap_or(UNITS[8]);
    // the division by a power of two is exact once the int is a float, as Python's is
    let value = whole.map_or(x, |n| n as f64) / (1u128 << shift) as f64;
    let suffix = match (shift, bits) {
        (0, false) => "Bytes".to_string(),
        (0, true) => "bits".to_string(),
        (_, false) => format!("{letter}B"),
        (_, true) => format!("{letter}b"),
    };
    let number = if value.is_nan() {
        "nan".to_string()
    } else {
        format!("{value:.2}")
    };
    Ok(format!("{number} {suffix}"))
}

/// `human_to_bytes(default_unit=None, isbits=False)`: the number of bytes (or bits) a size
/// such as `1.5 MB`, `10K` or `2 kilobytes` stands for, rounded half to even; a bare number is
/// in `default_unit`. With `isbits`, a unit's second letter must be `b` (`Mb`), else `B`.
pub(super) fn human_to_bytes(
    size: Value,
    default_unit: Option<Value>,
    isbits: Option<Value>,
) -> Result<Value, Error> {
    super::printable(&size)?;
    let bits = isbits.is_some_and(|b| b.is_true());
    let text = super::python_str(&size);
    let cannot =
        |why: String| failure(format!("human_to_bytes() can't interpret the input: {why}"));
    static SIZE: OnceLock<regex::Regex> = OnceLock::new();
    // Python's `\s` is Unicode's whitespace and the separators \x1c to \x1f
    let pattern = SIZE.get_or_init(|| {
        regex::Regex::new(r"^([0-9]*\.?[0-9]+)(?:[\s\x1c-\x1f]*([A-Za-z]+))?[\s\x1c-\x1f]*$")
            .expect("the pattern is valid")
    });
    let Some(found) = pattern.captures(&text) else {
        return Err(cannot(format!(
            "human_to_bytes() can't interpret following string: {text}"
        )));
    };
    let number: f64 = found[1].parse().unwrap_or(f64::NAN);
    let unit = match found.get(2) {
        Some(u) => Some(u.as_str().to_string()),
        None => match default_unit.filter(|u| !u.is_none()) {
            None => None,
            Some(u) => match u.as_str() {
                Some(u) => Some(u.to_string()),
                None if matches!(u.kind(), ValueKind::Bool | ValueKind::Number) => {
                    return Err(failure(format!(
                        "human_to_bytes() failed on bad input: '{}' object is not subscriptable",
                        python_type_name(&u)
                    )));
                }
                None => {
                    return Err(failure(format!(
                        "human_to_bytes() failed on bad input: default_unit must be text (such as 'K' or 'MB'), not {}",
                        python_type_name(&u)
                    )));
                }
            },
        },
    };
    let Some(unit) = unit else {
        return whole(number, &text);
    };
    let Some(first) = unit.chars().next() else {
        return Err(cannot("string index out of range".into()));
    };
    let key = first.to_uppercase().to_string();
    let Some((letter, shift, names)) = UNITS
        .iter()
        .find(|(letter, _, _)| key.chars().eq(std::iter::once(*letter)))
    else {
        return Err(cannot(format!(
            "human_to_bytes() failed to convert {text} (unit = {unit}). The suffix must be one of Y, Z, E, P, T, G, M, K, B"
        )));
    };
    if unit.chars().count() > 1 {
        let (class, name) = if bits { ('b', names.1) } else { ('B', names.0) };
        let expect = if *letter == 'B' {
            format!("expect {class} or {name}")
        } else {
            format!("expect {letter}{class} or {letter}")
        };
        if unit.to_lowercase() != name && unit != format!("{letter}{class}") {
            return Err(cannot(format!(
                "human_to_bytes() failed to convert {text}. Value is not a valid string ({expect})"
            )));
        }
    }
    whole(number * (1u128 << shift) as f64, &text)
}

/// Python's `int(round(x))`: half to even; infinity is an error, as is (in lbctl) a number of
/// bytes past what it holds (2^127).
fn whole(x: f64, text: &str) -> Result<Value, Error> {
    let rounded = x.round_ties_even();
    if !rounded.is_finite() {
        return Err(failure(
            "human_to_bytes() can't interpret the input: cannot convert float infinity to integer"
                .into(),
        ));
    }
    if rounded >= 2f64.powi(127) {
        return Err(failure(format!(
            "human_to_bytes(): {text} is more bytes than lbctl can count (2^127)"
        )));
    }
    let n = rounded as i128;
    Ok(match i64::try_from(n) {
        Ok(small) => Value::from(small),
        Err(_) => Value::from(n),
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{refusal, rendered};

    /// Each template, and what ansible-core 2.19.14 printed for it (`ansible -m debug`).
    #[test]
    fn human_readable_is_ansible_s() {
        for (template, ansible) in [
            ("{{ 1536 | human_readable }}", "1.50 KB"),
            ("{{ 0 | human_readable }}", "0.00 Bytes"),
            ("{{ 1 | human_readable }}", "1.00 Bytes"),
            ("{{ 1023 | human_readable }}", "1023.00 Bytes"),
            ("{{ 1024 | human_readable }}", "1.00 KB"),
            ("{{ 1048576 | human_readable }}", "1.00 MB"),
            ("{{ 1536 | human_readable(isbits=true) }}", "1.50 Kb"),
            ("{{ 1536 | human_readable(true) }}", "1.50 Kb"),
            ("{{ 1536 | human_readable(isbits='no') }}", "1.50 Kb"),
            ("{{ 1536 | human_readable(isbits=0) }}", "1.50 KB"),
            ("{{ 1536 | human_readable(unit='M') }}", "0.00 MB"),
            ("{{ 1536 | human_readable(unit='m') }}", "0.00 MB"),
            ("{{ 1536 | human_readable(unit='KB') }}", "1536.00 Bytes"),
            ("{{ 1536 | human_readable(unit='X') }}", "1536.00 Bytes"),
            ("{{ 1536 | human_readable(unit='') }}", "1536.00 Bytes"),
            ("{{ 1536 | human_readable(unit='b') }}", "1536.00 Bytes"),
            ("{{ 1536 | human_readable(false, 'G') }}", "0.00 GB"),
            ("{{ -1536 | human_readable }}", "-1536.00 Bytes"),
            ("{{ 1.5 | human_readable }}", "1.50 Bytes"),
            ("{{ 1536.7 | human_readable }}", "1.50 KB"),
            ("{{ true | human_readable }}", "1.00 Bytes"),
            ("{{ (2 ** 90) | human_readable }}", "1024.00 YB"),
            ("{{ (2 ** 63) | human_readable }}", "8.00 EB"),
            ("{{ (2 ** 60 - 1) | human_readable }}", "1024.00 PB"),
            ("{{ 1.125 | human_readable }}", "1.12 Bytes"),
            ("{{ 1.135 | human_readable }}", "1.14 Bytes"),
            ("{{ 2.675 | human_readable }}", "2.67 Bytes"),
            ("{{ 'inf' | float | human_readable }}", "inf YB"),
            ("{{ 'nan' | float | human_readable }}", "nan Bytes"),
            ("{{ '-inf' | float | human_readable }}", "-inf Bytes"),
            (
                "{{ 1125899906842624 | human_readable(unit='E') }}",
                "0.00 EB",
            ),
            ("{{ 1 | human_readable(unit='Y') }}", "0.00 YB"),
            (
                "{{ 1536 | human_readable(isbits=true, unit='K') }}",
                "1.50 Kb",
            ),
            ("{{ 1536 | ansible.builtin.human_readable }}", "1.50 KB"),
        ] {
            assert_eq!(rendered(template), ansible, "{template}");
        }
        for (template, ansible) in [
            (
                "{{ 1536 | human_readable(unit=1) }}",
                "human_readable() can't interpret the input: 'int' object has no attribute 'upper'",
            ),
            (
                "{{ '1536' | human_readable }}",
                "human_readable() failed on bad input: '>=' not supported between instances of 'str' and 'int'",
            ),
            (
                "{{ none | human_readable }}",
                "human_readable() failed on bad input: '>=' not supported between instances of 'NoneType' and 'int'",
            ),
            (
                "{{ '1536' | human_readable(unit='K') }}",
                "human_readable() failed on bad input: unsupported operand type(s) for /: 'str' and 'int'",
            ),
        ] {
            let e = refusal(template);
            assert!(e.contains(ansible), "{template}: {e}");
        }
    }

    /// Each template, and what ansible-core 2.19.14 printed for it (`ansible -m debug`).
    #[test]
    fn human_to_bytes_is_ansible_s() {
        for (template, ansible) in [
            ("{{ '1K' | human_to_bytes }}", "1024"),
            ("{{ '1 K' | human_to_bytes }}", "1024"),
            ("{{ '1KB' | human_to_bytes }}", "1024"),
            ("{{ '1Kb' | human_to_bytes(isbits=true) }}", "1024"),
            ("{{ '1 kilobyte' | human_to_bytes }}", "1024"),
            ("{{ '1 KiloByte' | human_to_bytes }}", "1024"),
            ("{{ '1 kilobit' | human_to_bytes(isbits=true) }}", "1024"),
            ("{{ '1.5M' | human_to_bytes }}", "1572864"),
            ("{{ '1.5 MB' | human_to_bytes }}", "1572864"),
            ("{{ '.5K' | human_to_bytes }}", "512"),
            ("{{ '10' | human_to_bytes }}", "10"),
            ("{{ '10' | human_to_bytes('K') }}", "10240"),
            ("{{ '10' | human_to_bytes(default_unit='M') }}", "10485760"),
            ("{{ '10' | human_to_bytes('MB') }}", "10485760"),
            ("{{ '10' | human_to_bytes('Mb', true) }}", "10485760"),
            ("{{ '10' | human_to_bytes(none) }}", "10"),
            ("{{ 10 | human_to_bytes }}", "10"),
            ("{{ 10 | human_to_bytes('G') }}", "10737418240"),
            ("{{ 1.5 | human_to_bytes('K') }}", "1536"),
            ("{{ '2.5' | human_to_bytes }}", "2"),
            ("{{ '3.5' | human_to_bytes }}", "4"),
            ("{{ '0.5' | human_to_bytes }}", "0"),
            ("{{ '1 B' | human_to_bytes }}", "1"),
            ("{{ '1 b' | human_to_bytes }}", "1"),
            ("{{ '1 B' | human_to_bytes(isbits=true) }}", "1"),
            ("{{ '1 byte' | human_to_bytes }}", "1"),
            ("{{ '1 bit' | human_to_bytes(isbits=true) }}", "1"),
            ("{{ '1K ' | human_to_bytes }}", "1024"),
            ("{{ '1 megabit' | human_to_bytes(isbits=true) }}", "1048576"),
            (
                "{{ '1 zetabyte' | human_to_bytes }}",
                "1180591620717411303424",
            ),
            ("{{ '1 Y' | human_to_bytes }}", "1208925819614629174706176"),
            ("{{ '1 E' | human_to_bytes }}", "1152921504606846976"),
            (
                "{{ '1.1' | human_to_bytes('Y') }}",
                "1329818401576092199550976",
            ),
            (
                "{{ '8 Yb' | human_to_bytes(isbits=true) }}",
                "9671406556917033397649408",
            ),
            ("{{ '1K' | human_to_bytes(isbits='no') }}", "1024"),
            ("{{ '1K' | human_to_bytes | type_debug }}", "int"),
            ("{{ '0.0000001K' | human_to_bytes }}", "0"),
            ("{{ '1.0005K' | human_to_bytes }}", "1025"),
        ] {
            assert_eq!(rendered(template), ansible, "{template}");
        }
        let cannot = "human_to_bytes() can't interpret the input: ";
        for (template, ansible) in [
            (
                "{{ '1Kb' | human_to_bytes }}",
                "human_to_bytes() failed to convert 1Kb. Value is not a valid string (expect KB or K)",
            ),
            (
                "{{ '1kb' | human_to_bytes }}",
                "human_to_bytes() failed to convert 1kb. Value is not a valid string (expect KB or K)",
            ),
            (
                "{{ '1KB' | human_to_bytes(isbits=true) }}",
                "human_to_bytes() failed to convert 1KB. Value is not a valid string (expect Kb or K)",
            ),
            (
                "{{ '1 kilobytes' | human_to_bytes }}",
                "human_to_bytes() failed to convert 1 kilobytes. Value is not a valid string (expect KB or K)",
            ),
            (
                "{{ '5.' | human_to_bytes }}",
                "human_to_bytes() can't interpret following string: 5.",
            ),
            (
                "{{ '10' | human_to_bytes('Mb') }}",
                "human_to_bytes() failed to convert 10. Value is not a valid string (expect MB or M)",
            ),
            (
                "{{ '1 bytes' | human_to_bytes }}",
                "human_to_bytes() failed to convert 1 bytes. Value is not a valid string (expect B or byte)",
            ),
            (
                "{{ '1 bits' | human_to_bytes(isbits=true) }}",
                "human_to_bytes() failed to convert 1 bits. Value is not a valid string (expect b or bit)",
            ),
            (
                "{{ '1 X' | human_to_bytes }}",
                "human_to_bytes() failed to convert 1 X (unit = X). The suffix must be one of Y, Z, E, P, T, G, M, K, B",
            ),
            (
                "{{ '1 XB' | human_to_bytes }}",
                "human_to_bytes() failed to convert 1 XB (unit = XB). The suffix must be one of Y, Z, E, P, T, G, M, K, B",
            ),
            (
                "{{ 'abc' | human_to_bytes }}",
                "human_to_bytes() can't interpret following string: abc",
            ),
            (
                "{{ '-1K' | human_to_bytes }}",
                "human_to_bytes() can't interpret following string: -1K",
            ),
            (
                "{{ ' 1K' | human_to_bytes }}",
                "human_to_bytes() can't interpret following string:  1K",
            ),
            (
                "{{ none | human_to_bytes }}",
                "human_to_bytes() can't interpret following string: None",
            ),
            (
                "{{ true | human_to_bytes }}",
                "human_to_bytes() can't interpret following string: True",
            ),
            (
                "{{ [1] | human_to_bytes }}",
                "human_to_bytes() can't interpret following string: [1]",
            ),
            (
                "{{ '10' | human_to_bytes('') }}",
                "string index out of range",
            ),
            (
                "{{ '1 MBB' | human_to_bytes }}",
                "human_to_bytes() failed to convert 1 MBB. Value is not a valid string (expect MB or M)",
            ),
            (
                "{{ '1 zettabyte' | human_to_bytes }}",
                "human_to_bytes() failed to convert 1 zettabyte. Value is not a valid string (expect ZB or Z)",
            ),
        ] {
            let e = refusal(template);
            assert!(e.contains(&format!("{cannot}{ansible}")), "{template}: {e}");
        }
        // Ansible's own wording where it has one; lbctl's where Python's would be an accident
        for (template, says) in [
            (
                "{{ '10' | human_to_bytes(1) }}",
                "human_to_bytes() failed on bad input: 'int' object is not subscriptable",
            ),
            (
                "{{ '10' | human_to_bytes(true) }}",
                "human_to_bytes() failed on bad input: 'bool' object is not subscriptable",
            ),
            (
                "{{ '10' | human_to_bytes(['K']) }}",
                "human_to_bytes() failed on bad input: default_unit must be text",
            ),
            (
                "{{ '99999999999999999999Y' | human_to_bytes }}",
                "more bytes than lbctl can count",
            ),
            (
                "{{ ('1' * 400) | human_to_bytes }}",
                "cannot convert float infinity to integer",
            ),
            (
                "{{ ([1] * 10 ** 8) | human_to_bytes }}",
                "would print as more than 64 MiB",
            ),
        ] {
            let e = refusal(template);
            assert!(e.contains(says), "{template}: {e}");
        }
    }
}
