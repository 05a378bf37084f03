//! Python's methods on strings and lists that Ansible's templates use and minijinja-contrib's
//! `pycompat` leaves out: `list.index` (a host's place in its group, for a VRRP priority:
//! `groups['lbs'].index(inventory_hostname)`), `str.index` and `rindex`, `zfill`, `ljust`,
//! `rjust`, `center`, `partition` and `rpartition`. Every other method goes on to `pycompat`.
//! Positions and widths count characters, as Python's do; a missing item is an error with
//! Python's words (`'x' is not in list`, `substring not found`).

use minijinja::{
    Error, ErrorKind, State, Value,
    value::{ValueKind, from_args},
};

use super::filters::python_repr;
use crate::source::MAX_FILE_BYTES;

/// The environment's unknown-method callback: the methods above, then `pycompat`'s.
pub(super) fn unknown_method(
    state: &mut State,
    value: &Value,
    method: &str,
    args: &[Value],
) -> Result<Value, Error> {
    let ours = match (value.kind(), value.as_str()) {
        (ValueKind::Seq, _) if method == "index" => Some(seq_index(value, args)),
        // pycompat's own, once the widths it asks for are known to fit
        (ValueKind::String, Some(s)) if method == "format" => {
            room_to_format(state, s).err().map(Err)
        }
        (ValueKind::String, Some(s)) => string_method(s, method, args),
        _ => None,
    };
    match ours {
        Some(result) => result,
        None => minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args),
    }
}

/// The most a padded text may grow to, as a rendered file may ([`MAX_FILE_BYTES`]): a width
/// from the input (`'7'.zfill(10 ** 12)`) is refused rather than allocated.
fn room_to_pad(text: &str, margin: usize, fill: char) -> Result<(), Error> {
    let bytes = margin
        .checked_mul(fill.len_utf8())
        .and_then(|pad| pad.checked_add(text.len()));
    match bytes {
        Some(b) if b as u64 <= MAX_FILE_BYTES => Ok(()),
        _ => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "a text padded to that width would be over {} MiB",
                MAX_FILE_BYTES >> 20
            ),
        )),
    }
}

/// Whether `str.format` may fill in `text`: the widths and precisions of its fields
/// (`'{0:>99999999999}'`), which pycompat would allocate at once, must fit in what a rendered
/// file may hold ([`MAX_FILE_BYTES`]) and in what is left of the render's fuel (one unit per
/// 64 bytes, as the `format` filter counts them). Every number in a field's spec counts, so
/// the sum is at least the padding asked for.
fn room_to_format(state: &State, text: &str) -> Result<(), Error> {
    let mut bytes = text.len() as u64;
    let mut fields = text.split('{').skip(1);
    while let Some(field) = fields.next() {
        if field.is_empty() {
            // `{{` is a literal brace
            fields.next();
            continue;
        }
        let field = field.split('}').next().unwrap_or_default();
        let Some((_, spec)) = field.split_once(':') else {
            continue;
        };
        let widest_char = spec.chars().map(char::len_utf8).max().unwrap_or(1) as u64;
        for number in spec.split(|c: char| !c.is_ascii_digit()) {
            let n = number
                .parse::<u64>()
                .unwrap_or(if number.is_empty() { 0 } else { u64::MAX });
            bytes = bytes.saturating_add(n.saturating_mul(widest_char));
        }
    }
    let limit = room_left(state);
    if bytes <= limit {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::InvalidOperation,
        format!(
            "str.format: the widths and precisions asked for would make a text of {bytes} \
             bytes, more than this template may still make ({limit} bytes); use smaller ones"
        ),
    ))
}

/// The most text a filter or method may still make in this render: what a rendered file may
/// hold ([`MAX_FILE_BYTES`]), and no more than the render's fuel pays for (one unit per 64
/// bytes, as the `format` filter counts them).
pub(super) fn room_left(state: &State) -> u64 {
    let fuel = state
        .fuel_levels()
        .map_or(u64::MAX, |(_, remaining)| remaining.saturating_mul(64));
    MAX_FILE_BYTES.min(fuel)
}

/// Python's ValueError, as a template error.
fn value_error(message: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, message)
}

/// A slice bound as Python reads one: negative counts from the end, clamped to `0..=len`.
fn bound(at: Option<i64>, len: usize, default: usize) -> usize {
    let len_i = i64::try_from(len).unwrap_or(i64::MAX);
    match at {
        None => default,
        Some(i) if i < 0 => usize::try_from(len_i.saturating_add(i).max(0)).unwrap_or(0),
        Some(i) => usize::try_from(i.min(len_i)).unwrap_or(len),
    }
}

/// `list.index(x[, start[, end]])`: the first position of `x`.
fn seq_index(value: &Value, args: &[Value]) -> Result<Value, Error> {
    let (what, start, end): (Value, Option<i64>, Option<i64>) = from_args(args)?;
    let len = value.len().unwrap_or(0);
    let (from, to) = (bound(start, len, 0), bound(end, len, len));
    for (i, item) in value.try_iter()?.enumerate().take(to).skip(from) {
        if item == what {
            return Ok(Value::from(i));
        }
    }
    Err(value_error(format!(
        "{} is not in list",
        python_repr(&what)
    )))
}

fn string_method(s: &str, method: &str, args: &[Value]) -> Option<Result<Value, Error>> {
    Some(match method {
        "index" => char_position(s, args, |h, n| h.find(n)),
        "rindex" => char_position(s, args, |h, n| h.rfind(n)),
        "zfill" => from_args(args).and_then(|(width,): (i64,)| zfill(s, width).map(Value::from)),
        "ljust" | "rjust" | "center" => justify(s, method, args),
        "partition" | "rpartition" => partition(s, method == "rpartition", args),
        _ => return None,
    })
}

/// `str.index(sub)` and `rindex`: the character position `find` gives, or Python's error.
fn char_position(
    s: &str,
    args: &[Value],
    find: fn(&str, &str) -> Option<usize>,
) -> Result<Value, Error> {
    let (needle,): (&str,) = from_args(args)?;
    match find(s, needle) {
        Some(at) => Ok(Value::from(s[..at].chars().count())),
        None => Err(value_error("substring not found".into())),
    }
}

/// `str.zfill(width)`: zeros on the left, after a leading sign.
fn zfill(s: &str, width: i64) -> Result<String, Error> {
    let len = s.chars().count();
    let width = usize::try_from(width).unwrap_or(0);
    if width <= len {
        return Ok(s.to_string());
    }
    room_to_pad(s, width - len, '0')?;
    let zeros = "0".repeat(width - len);
    Ok(match s.chars().next() {
        Some(sign @ ('+' | '-')) => format!("{sign}{zeros}{}", &s[1..]),
        _ => format!("{zeros}{s}"),
    })
}

/// `str.ljust(width[, fillchar])`, `rjust` and `center`, with Python's split of an odd
/// margin in `center`.
fn justify(s: &str, method: &str, args: &[Value]) -> Result<Value, Error> {
    let (width, fill): (i64, Option<&str>) = from_args(args)?;
    let fill = match fill {
        None => ' ',
        Some(f) => {
            let mut chars = f.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => c,
                _ => {
                    return Err(Error::new(
                        ErrorKind::InvalidOperation,
                        "The fill character must be exactly one character long",
                    ));
                }
            }
        }
    };
    pad(s, width, fill, method).map(Value::from)
}

/// `s` padded with `fill` to `width` characters as Python's `ljust`, `rjust` or (any other
/// `how`) `center` pads it, an odd margin's extra character on the left when `width` is odd.
pub(super) fn pad(s: &str, width: i64, fill: char, how: &str) -> Result<String, Error> {
    let len = s.chars().count();
    let width = usize::try_from(width).unwrap_or(0);
    if width <= len {
        return Ok(s.to_string());
    }
    let margin = width - len;
    room_to_pad(s, margin, fill)?;
    let left = match how {
        "ljust" => 0,
        "rjust" => margin,
        _ => margin / 2 + (margin & width & 1),
    };
    let fill = |n: usize| fill.to_string().repeat(n);
    Ok(format!("{}{s}{}", fill(left), fill(margin - left)))
}

/// `str.partition(sep)` and `rpartition`: the three parts, as a list (lbctl has no tuples).
fn partition(s: &str, from_right: bool, args: &[Value]) -> Result<Value, Error> {
    let (sep,): (&str,) = from_args(args)?;
    if sep.is_empty() {
        return Err(value_error("empty separator".into()));
    }
    let found = if from_right {
        s.rfind(sep)
    } else {
        s.find(sep)
    };
    let parts = match found {
        Some(at) => [&s[..at], sep, &s[at + sep.len()..]],
        None if from_right => ["", "", s],
        None => [s, "", ""],
    };
    Ok(Value::from(parts.map(Value::from).to_vec()))
}

#[cfg(test)]
mod tests {
    fn render(template: &str) -> Result<String, String> {
        let ctx = minijinja::context! { group => vec!["lb1", "lb2", "lb3"] };
        super::super::environment()
            .render_str(template, ctx)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn methods_python_has_and_pycompat_lacks() {
        let cases = [
            (
                "{{ 150 - group.index('lb3') * 10 }} {{ group.index('lb2', 1) }} {{ group.index('lb1', -3, 1) }}",
                "130 1 0",
            ),
            (
                "{{ 'k8s-worker-12'.index('-') }} {{ 'k8s-worker-12'.rindex('-') }} {{ 'é-x'.index('x') }}",
                "3 10 2",
            ),
            (
                "{{ '7'.zfill(3) }} {{ '-7'.zfill(4) }} {{ 'abc'.zfill(2) }}",
                "007 -007 abc",
            ),
            (
                "[{{ 'ab'.ljust(4) }}] [{{ 'ab'.rjust(4, '.') }}] [{{ 'ab'.center(5, '*') }}] [{{ 'abc'.center(6) }}]",
                "[ab  ] [..ab] [**ab*] [ abc  ]",
            ),
            (
                "{{ 'k=v=w'.partition('=') }} {{ 'k=v=w'.rpartition('=') }} {{ 'kv'.partition('=') }} {{ 'kv'.rpartition('=')[2] }}",
                "['k', '=', 'v=w'] ['k=v', '=', 'w'] ['kv', '', ''] kv",
            ),
            // pycompat's own still answer
            (
                "{{ 'a,b'.split(',') }} {{ group.count('lb1') }}",
                "['a', 'b'] 1",
            ),
        ];
        for (template, want) in cases {
            assert_eq!(render(template).as_deref(), Ok(want), "{template}");
        }
    }

    #[test]
    fn a_missing_item_is_pythons_error() {
        let missing = render("{{ group.index('lb9') }}").unwrap_err();
        assert!(missing.contains("'lb9' is not in list"), "{missing}");
        let substring = render("{{ 'abc'.index('z') }}").unwrap_err();
        assert!(substring.contains("substring not found"), "{substring}");
        let fill = render("{{ 'a'.center(3, 'xy') }}").unwrap_err();
        assert!(fill.contains("exactly one character"), "{fill}");
        for huge in [
            "{{ '7'.zfill(10 ** 12) }}",
            "{{ 'a'.ljust(10 ** 12) }}",
            "{{ 'a'.center(9223372036854775807, 'é') }}",
            "{{ 'a' | center(10 ** 12) }}",
        ] {
            let e = render(huge).unwrap_err();
            assert!(e.contains("would be over 64 MiB"), "{huge}: {e}");
        }
        for huge in [
            "{{ '{0:>99999999999}'.format(1) }}",
            "{{ '{:.99999999999f}'.format(1.5) }}",
            "{{ '{0:é>40000000}'.format(1) }}",
            "{{ '{0:>60000000}{0:>60000000}'.format(1) }}",
            "{{ '{0:>99999999999999999999999}'.format(1) }}",
        ] {
            let e = render(huge).unwrap_err();
            assert!(e.contains("use smaller ones"), "{huge}: {e}");
        }
        assert_eq!(
            render("{{ '{0:>5}|{1:.2f}|{{0:>99999999999}}|{2:^7}'.format(1, 2.5, 'a') }}")
                .as_deref(),
            Ok("    1|2.50|{0:>99999999999}|   a   ")
        );
        let unknown = render("{{ 'a'.nosuch() }}").unwrap_err();
        assert!(unknown.contains("nosuch"), "{unknown}");
    }
}
