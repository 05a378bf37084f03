//! Ansible's time filters: `to_datetime` (Python's `datetime.strptime`: a `datetime` with
//! `year` ... `microsecond`, `strftime()`, `isoformat()`, `timestamp()`, `weekday()` and
//! `isoweekday()`, compared with `<` and `==`) and `strftime` (Python's `time.strftime` of
//! a time given in seconds since the epoch, local or UTC).
//!
//! Two datetimes cannot be subtracted (minijinja has no operators for objects): compare
//! their `timestamp()`s instead. `strftime` without a time is refused, as `random` without
//! a seed is: every run would render other files, and every plan would show a change.

use std::sync::Arc;

use minijinja::{
    Error, ErrorKind, State, Value,
    value::{DynObject, Object, ObjectRepr, from_args},
};

use super::clock::{Clock, MONTHS, civil_from_days, days_from_civil, days_in_month};

fn failure(message: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, message)
}

/// A Python `datetime` without a time zone, as `to_datetime` makes it.
#[derive(Debug)]
pub(super) struct DateTime(Clock);

impl DateTime {
    fn printed(&self, separator: char) -> String {
        let c = &self.0;
        let mut text = format!(
            "{:04}-{:02}-{:02}{separator}{:02}:{:02}:{:02}",
            c.year, c.month, c.day, c.hour, c.minute, c.second
        );
        if c.micro != 0 {
            text.push_str(&format!(".{:06}", c.micro));
        }
        text
    }
}

/// Python's `repr()` of a `datetime` (`datetime.datetime(2016, 8, 14, 20, 0)`: the second
/// and microsecond only where not zero), for one printed inside a list or mapping.
pub(super) fn python_repr_of(value: &Value) -> Option<String> {
    let c = &value.downcast_object_ref::<DateTime>()?.0;
    let mut repr = format!(
        "datetime.datetime({}, {}, {}, {}, {}",
        c.year, c.month, c.day, c.hour, c.minute
    );
    if c.second != 0 || c.micro != 0 {
        repr.push_str(&format!(", {}", c.second));
    }
    if c.micro != 0 {
        repr.push_str(&format!(", {}", c.micro));
    }
    repr.push(')');
    Some(repr)
}

/// A `datetime` as Ansible's JSON writes it: `isoformat()`.
pub(super) fn iso_format_of(value: &Value) -> Option<String> {
    Some(value.downcast_object_ref::<DateTime>()?.printed('T'))
}

impl Object for DateTime {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let c = &self.0;
        Some(match key.as_str()? {
            "year" => Value::from(c.year),
            "month" => Value::from(c.month),
            "day" => Value::from(c.day),
            "hour" => Value::from(c.hour),
            "minute" => Value::from(c.minute),
            "second" => Value::from(c.second),
            "microsecond" => Value::from(c.micro),
            _ => return None,
        })
    }

    fn call_method(
        self: &Arc<Self>,
        state: &mut State,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "strftime" => {
                let (format,): (String,) = from_args(args)?;
                let room = super::super::methods::room_left(state);
                self.0.strftime(&format, "strftime", room).map(Value::from)
            }
            "isoformat" => {
                let (separator,): (Option<String>,) = from_args(args)?;
                let separator = separator.unwrap_or_else(|| "T".into());
                let mut chars = separator.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => Ok(Value::from(self.printed(c))),
                    _ => Err(failure(
                        "isoformat() argument 1 must be a unicode character".into(),
                    )),
                }
            }
            "timestamp" => {
                from_args::<()>(args)?;
                let seconds = self.0.local_seconds().ok_or_else(|| {
                    failure("timestamp(): the time is out of the range of the clock".into())
                })?;
                Ok(Value::from(seconds as f64 + f64::from(self.0.micro) / 1e6))
            }
            "weekday" | "isoweekday" => {
                from_args::<()>(args)?;
                let day = self.0.monday_weekday() + u32::from(method == "isoweekday");
                Ok(Value::from(day))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.printed(' '))
    }

    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<std::cmp::Ordering> {
        Some(self.0.cmp(&other.downcast_ref::<DateTime>()?.0))
    }
}

/// `strftime(second=None, utc=False)`: the time `second` seconds after the epoch (a number
/// or its text; fractions dropped), in the local time zone or in UTC, formatted.
pub(super) fn strftime(
    state: &State,
    format: Value,
    second: Option<Value>,
    utc: Option<Value>,
) -> Result<String, Error> {
    super::defined(&format)?;
    let format = format.as_str().ok_or_else(|| {
        failure(format!(
            "strftime: strftime() argument 1 must be str, not {}",
            super::types::python_type_name(&format)
        ))
    })?;
    let Some(second) = second.filter(|s| !s.is_none()) else {
        return Err(failure(
            "strftime without a time is not supported by lbctl: the current time would render other files in every run, and every plan would show a change; give the time in seconds, as in `strftime(lookup('env', 'SOURCE_DATE_EPOCH'))`".into(),
        ));
    };
    let seconds = match (f64::try_from(second.clone()), second.as_str()) {
        (Ok(s), _) => Some(s),
        (_, Some(text)) => text.trim().parse::<f64>().ok(),
        _ => None,
    }
    .ok_or_else(|| failure(format!("Invalid value for epoch value ({second})")))?;
    let floor = seconds.floor();
    let clock = (floor.abs() < 1e17)
        .then(|| Clock::at(floor as i64, utc.is_some_and(|u| u.is_true())))
        .flatten()
        .ok_or_else(|| failure("strftime: timestamp out of range for platform time_t".into()))?;
    clock.strftime(format, "strftime", super::super::methods::room_left(state))
}

/// `to_datetime(format='%Y-%m-%d %H:%M:%S')`: the text read as `format` says, as Python's
/// `datetime.strptime` reads it (the whole text, case ignored, a run of spaces in the
/// format matching any run of whitespace).
pub(super) fn to_datetime(value: Value, format: Option<Value>) -> Result<Value, Error> {
    super::defined(&value)?;
    let text_of = |v: &Value, n: u8| -> Result<String, Error> {
        v.as_str().map(String::from).ok_or_else(|| {
            failure(format!(
                "to_datetime: strptime() argument {n} must be str, not {}",
                super::types::python_type_name(v)
            ))
        })
    };
    let text = text_of(&value, 1)?;
    let format = match format {
        Some(f) => text_of(&f, 2)?,
        None => "%Y-%m-%d %H:%M:%S".into(),
    };
    let pattern = regex::RegexBuilder::new(&pattern_of(&format)?)
        .case_insensitive(true)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| {
            failure(format!(
                "to_datetime: the format '{format}' cannot be read: {e}"
            ))
        })?;
    let repr = |s: &str| super::python_repr(&Value::from(s));
    let found = pattern.captures(&text).ok_or_else(|| {
        failure(format!(
            "to_datetime: time data {} does not match format {}",
            repr(&text),
            repr(&format)
        ))
    })?;
    let end = found.get(0).map_or(0, |m| m.end());
    if end != text.len() {
        return Err(failure(format!(
            "to_datetime: unconverted data remains: {}",
            &text[end..]
        )));
    }
    let number = |name: &str| -> Option<i64> { found.name(name)?.as_str().trim().parse().ok() };
    let month_named = |name: &str, len: usize| -> Option<u32> {
        let given = found.name(name)?.as_str().to_lowercase();
        MONTHS
            .iter()
            .position(|m| m[..len.min(m.len())].to_lowercase() == given)
            .map(|i| i as u32 + 1)
    };
    let year = match (number("Y"), number("y")) {
        (Some(y), _) => y,
        (None, Some(y)) if y <= 68 => 2000 + y,
        (None, Some(y)) => 1900 + y,
        (None, None) => 1900,
    };
    let month = number("m")
        .map(|m| m as u32)
        .or_else(|| month_named("B", usize::MAX))
        .or_else(|| month_named("b", 3))
        .unwrap_or(1);
    let mut hour = number("H").unwrap_or(0) as u32;
    if let Some(twelve) = number("I") {
        let pm = found
            .name("p")
            .is_some_and(|p| p.as_str().eq_ignore_ascii_case("pm"));
        hour = match (twelve as u32 % 12, pm) {
            (h, true) => h + 12,
            (h, false) => h,
        };
    }
    let micro = found.name("f").map_or(0, |f| {
        let digits = f.as_str();
        digits.parse::<u32>().unwrap_or(0) * 10u32.pow(6 - digits.len() as u32)
    });
    let mut clock = Clock {
        year,
        month,
        day: number("d").unwrap_or(1) as u32,
        hour,
        minute: number("M").unwrap_or(0) as u32,
        second: number("S").unwrap_or(0) as u32,
        micro,
        zone: None,
        dst: -1,
    };
    if !(1..=9999).contains(&clock.year) {
        return Err(failure(format!(
            "to_datetime: year {} is out of range",
            clock.year
        )));
    }
    if let Some(julian) = number("j") {
        let days = days_from_civil(clock.year, 1, 1) + julian - 1;
        (clock.year, clock.month, clock.day) = civil_from_days(days);
    }
    if clock.day > days_in_month(clock.year, clock.month) {
        return Err(failure("to_datetime: day is out of range for month".into()));
    }
    if clock.second > 59 {
        return Err(failure("to_datetime: second must be in 0..59".into()));
    }
    Ok(Value::from_object(DateTime(clock)))
}

/// The regular expression Python's `strptime` makes of `format`: each directive a named
/// group of what it reads, whitespace any whitespace, anything else itself.
fn pattern_of(format: &str) -> Result<String, Error> {
    let months = |len: Option<usize>| -> String {
        let names: Vec<&str> = MONTHS.iter().map(|m| len.map_or(*m, |l| &m[..l])).collect();
        names.join("|")
    };
    let days = |len: Option<usize>| -> String {
        let names = [
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
            "sunday",
        ];
        let names: Vec<&str> = names.iter().map(|d| len.map_or(*d, |l| &d[..l])).collect();
        names.join("|")
    };
    let mut pattern = String::from("^");
    let mut used = Vec::new();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_whitespace() {
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            pattern.push_str(r"\s+");
            continue;
        }
        if c != '%' {
            pattern.push_str(&regex::escape(c.encode_utf8(&mut [0; 4])));
            continue;
        }
        let Some(d) = chars.next() else {
            return Err(failure(format!(
                "to_datetime: stray % in format '{format}'"
            )));
        };
        let group = match d {
            '%' => {
                pattern.push('%');
                continue;
            }
            'd' => "3[01]|[12][0-9]|0[1-9]|[1-9]| [1-9]".to_string(),
            'f' => "[0-9]{1,6}".into(),
            'H' => "2[0-3]|[0-1][0-9]|[0-9]".into(),
            'I' => "1[0-2]|0[1-9]|[1-9]".into(),
            'j' => "36[0-6]|3[0-5][0-9]|[12][0-9][0-9]|0[1-9][0-9]|00[1-9]|[1-9][0-9]|0[1-9]|[1-9]"
                .into(),
            'm' => "1[0-2]|0[1-9]|[1-9]".into(),
            'M' => "[0-5][0-9]|[0-9]".into(),
            'S' => "6[0-1]|[0-5][0-9]|[0-9]".into(),
            'w' => "[0-6]".into(),
            'u' => "[1-7]".into(),
            'y' => "[0-9][0-9]".into(),
            'Y' => "[0-9][0-9][0-9][0-9]".into(),
            'B' => months(None),
            'b' => months(Some(3)),
            'A' => days(None),
            'a' => days(Some(3)),
            'p' => "am|pm".into(),
            'c' | 'x' | 'X' | 'z' | 'Z' | 'U' | 'W' | 'G' | 'V' => {
                return Err(failure(format!(
                    "to_datetime: the directive %{d} is not supported by lbctl (in format '{format}')"
                )));
            }
            other => {
                return Err(failure(format!(
                    "to_datetime: '{other}' is a bad directive in format '{format}'"
                )));
            }
        };
        if used.contains(&d) {
            return Err(failure(format!(
                "to_datetime: redefinition of group name '{d}' in format '{format}'"
            )));
        }
        used.push(d);
        pattern.push_str(&format!("(?P<{d}>{group})"));
    }
    Ok(pattern)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{refusal, rendered};

    /// Each template, and what ansible-core 2.19.14 printed for it, in UTC; the differential
    /// case templated-paths-times-yaml-documents compares many more, in the local time zone.
    #[test]
    fn times_are_ansible_s() {
        for (template, ansible) in [
            (
                "{{ '%Y-%m-%d %H:%M:%S %a %j %U %W %V %G %-d %_m %^b %s' | strftime(1709622489, utc=true) }}",
                "2024-03-05 07:08:09 Tue 065 09 10 10 2024 5  3 MAR 1709622489",
            ),
            (
                "{{ '%F %T' | strftime('-1.5', true) }}",
                "1969-12-31 23:59:58",
            ),
            (
                "{{ '14/8/16 8:05 PM' | to_datetime('%d/%m/%y %I:%M %p') }}",
                "2016-08-14 20:05:00",
            ),
            (
                "{{ '2023 366' | to_datetime('%Y %j') }}",
                "2024-01-01 00:00:00",
            ),
            (
                "{{ ['2016-08-14 20:00:00.5' | to_datetime('%Y-%m-%d %H:%M:%S.%f')] }}",
                "[datetime.datetime(2016, 8, 14, 20, 0, 0, 500000)]",
            ),
            (
                "{{ '2016-08-14 20:00:12' | to_datetime | to_json }}",
                "\"2016-08-14T20:00:12\"",
            ),
            (
                "{{ ('2024-01-07 01:02:03' | to_datetime).isoweekday() }}",
                "7",
            ),
        ] {
            assert_eq!(rendered(template), ansible, "{template}");
        }
        for (template, ansible) in [
            (
                "{{ '2016' | to_datetime }}",
                "time data '2016' does not match format '%Y-%m-%d %H:%M:%S'",
            ),
            (
                "{{ '2016-01-01 00:00:00x' | to_datetime }}",
                "unconverted data remains: x",
            ),
            (
                "{{ '2016-02-30' | to_datetime('%Y-%m-%d') }}",
                "day is out of range for month",
            ),
            (
                "{{ '1' | to_datetime('%q') }}",
                "'q' is a bad directive in format '%q'",
            ),
            ("{{ '1' | to_datetime('%') }}", "stray % in format '%'"),
            (
                "{{ 1 | to_datetime }}",
                "strptime() argument 1 must be str, not int",
            ),
            (
                "{{ '1' | to_datetime('%z') }}",
                "the directive %z is not supported by lbctl",
            ),
            (
                "{{ '1 1' | to_datetime('%d %d') }}",
                "redefinition of group name 'd'",
            ),
            (
                "{{ '%Y' | strftime('x') }}",
                "Invalid value for epoch value (x)",
            ),
            (
                "{{ '%Y %q' | strftime(0) }}",
                "the directive %q is not supported by lbctl",
            ),
            (
                "{{ '%Y %' | strftime(0) }}",
                "a `%` at the end of the format is not supported",
            ),
            ("{{ '%Y' | strftime('inf') }}", "timestamp out of range"),
            (
                "{{ '%Y' | strftime }}",
                "strftime without a time is not supported by lbctl",
            ),
            (
                "{{ '%f' | strftime(0) }}",
                "the directive %f is not supported by lbctl",
            ),
            (
                "{{ ('2016-01-01 00:00:00' | to_datetime) - ('2016-01-01 00:00:00' | to_datetime) }}",
                "unsupported types",
            ),
        ] {
            let e = refusal(template);
            assert!(e.contains(ansible), "{template}: {e}");
        }
    }
}
