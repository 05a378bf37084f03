//! Ansible's math filters `log`, `pow` and `root`: Python's `math.log`, `math.log10`,
//! `math.pow` and `math.sqrt`, a float each, with their errors (`math domain error` for a
//! logarithm of 0, `math range error` for a power too large for a float).

use minijinja::{Error, ErrorKind, Value, value::ValueKind};

use super::types::python_type_name;

fn failure(message: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, message)
}

/// `value` as Python's `math` functions take a number (an int, a bool or a float); else the
/// TypeError they raise (`must be real number, not str`), after `filter`'s own words.
fn real(value: &Value, filter: &str) -> Result<f64, Error> {
    match value.kind() {
        ValueKind::Bool => Ok(if value.is_true() { 1.0 } else { 0.0 }),
        // an integer too large for a float is out of lbctl's reach (at most 2^127)
        ValueKind::Number => f64::try_from(value.clone())
            .map_err(|_| failure(format!("{filter}(): int too large to convert to float"))),
        _ => Err(failure(format!(
            "{filter}() can only be used on numbers: must be real number, not {}",
            python_type_name(value)
        ))),
    }
}

fn domain(filter: &str) -> Error {
    failure(format!("{filter}(): math domain error"))
}

/// Python's natural logarithm, which is an error at 0 and below.
fn ln(x: f64, filter: &str) -> Result<f64, Error> {
    if x.is_nan() {
        Ok(x)
    } else if x <= 0.0 {
        Err(domain(filter))
    } else {
        Ok(x.ln())
    }
}

/// `log(base=e)`: `math.log10(x)` for base 10, else `math.log(x, base)`, which is
/// `log(x) / log(base)` (a base of 1 divides by zero).
pub(super) fn log(x: Value, base: Option<Value>) -> Result<Value, Error> {
    let x = real(&x, "log")?;
    let Some(base) = base else {
        return ln(x, "log").map(Value::from);
    };
    let base = real(&base, "log")?;
    if base == 10.0 {
        return if x.is_nan() {
            Ok(Value::from(x))
        } else if x <= 0.0 {
            Err(domain("log"))
        } else {
            Ok(Value::from(x.log10()))
        };
    }
    let (num, den) = (ln(x, "log")?, ln(base, "log")?);
    if den == 0.0 {
        return Err(failure("log(): float division by zero".into()));
    }
    Ok(Value::from(num / den))
}

/// `math.pow(x, y)`: C's `pow`, and Python's errors where it fails with finite numbers: a
/// result that is not a number (`-8 | pow(1/3)`) or `0 | pow(-1)` is a domain error, one
/// too large for a float a range error.
fn power(x: f64, y: f64, filter: &str) -> Result<f64, Error> {
    let r = x.powf(y);
    if x.is_finite() && y.is_finite() {
        if r.is_nan() || (r.is_infinite() && x == 0.0) {
            return Err(domain(filter));
        }
        if r.is_infinite() {
            return Err(failure(format!("{filter}(): math range error")));
        }
    }
    Ok(r)
}

pub(super) fn pow(x: Value, y: Value) -> Result<Value, Error> {
    let (x, y) = (real(&x, "pow")?, real(&y, "pow")?);
    power(x, y, "pow").map(Value::from)
}

/// `root(base=2)`: `math.sqrt(x)` for base 2, else `math.pow(x, 1.0 / float(base))`, the
/// base read as Python's `float()` reads it (so `'3'` is 3).
pub(super) fn root(x: Value, base: Option<Value>) -> Result<Value, Error> {
    let wrong = |why: String| failure(format!("root() can only be used on numbers: {why}"));
    let x = real(&x, "root")?;
    // `base == 2` is Python's: a number 2, not the text '2' (read as a float below)
    let square = base.as_ref().is_none_or(|b| {
        b.kind() == ValueKind::Number && f64::try_from(b.clone()).ok() == Some(2.0)
    });
    let base = match &base {
        None => 2.0,
        Some(b) => match b.kind() {
            ValueKind::String => {
                let text = b.as_str().unwrap_or_default();
                super::python::python_float(text).ok_or_else(|| {
                    wrong(format!(
                        "could not convert string to float: {}",
                        super::python_repr(b)
                    ))
                })?
            }
            ValueKind::Bool | ValueKind::Number => real(b, "root")?,
            _ => {
                return Err(wrong(format!(
                    "float() argument must be a string or a real number, not '{}'",
                    python_type_name(b)
                )));
            }
        },
    };
    if square {
        return if x < 0.0 {
            Err(wrong("math domain error".into()))
        } else {
            Ok(Value::from(x.sqrt()))
        };
    }
    if base == 0.0 {
        return Err(failure("root(): float division by zero".into()));
    }
    match power(x, 1.0 / base, "root") {
        Err(e) if e.detail().is_some_and(|d| d.ends_with("domain error")) => {
            Err(wrong("math domain error".into()))
        }
        result => result.map(Value::from),
    }
}

#[cfg(test)]
mod tests {
    /// Each template, and what ansible-core 2.19.14 printed for it (`ansible -m debug`).
    #[test]
    fn log_pow_and_root_are_ansible_s() {
        for (template, ansible) in [
            ("{{ 100 | log }}", "4.605170185988092"),
            ("{{ 100 | log(10) }}", "2.0"),
            ("{{ 8 | log(2) }}", "3.0"),
            ("{{ 1000 | log(10) }}", "3.0"),
            ("{{ 1 | log }}", "0.0"),
            ("{{ 2.718281828459045 | log }}", "1.0"),
            ("{{ true | log }}", "0.0"),
            ("{{ 100 | log(10.0) }}", "2.0"),
            ("{{ 100 | log(base=10) }}", "2.0"),
            ("{{ 8 | log(2.5) }}", "2.26941239209809"),
            ("{{ 1e-300 | log }}", "-690.7755278982137"),
            ("{{ 'inf' | float | log }}", "inf"),
            ("{{ 'nan' | float | log }}", "nan"),
            ("{{ 1024 | log(2) | int }}", "10"),
            ("{{ 2 | pow(10) }}", "1024.0"),
            ("{{ 2 | pow(0.5) }}", "1.4142135623730951"),
            ("{{ 2 | pow(-1) }}", "0.5"),
            ("{{ 2 | pow(1023) }}", "8.98846567431158e+307"),
            ("{{ 3 | pow(2) }}", "9.0"),
            ("{{ 1.5 | pow(2) }}", "2.25"),
            ("{{ 10 | pow(16) }}", "1e+16"),
            ("{{ 10 | pow(15) }}", "1000000000000000.0"),
            ("{{ 10 | pow(-5) }}", "1e-05"),
            ("{{ 10 | pow(-4) }}", "0.0001"),
            ("{{ 7 | pow(0) }}", "1.0"),
            ("{{ 9 | root }}", "3.0"),
            ("{{ 9 | root(2) }}", "3.0"),
            ("{{ 27 | root(3) }}", "3.0"),
            ("{{ 16 | root(4) }}", "2.0"),
            ("{{ 2 | root }}", "1.4142135623730951"),
            ("{{ 9 | root('2') }}", "3.0"),
            ("{{ 9 | root('3') }}", "2.080083823051904"),
            ("{{ 9 | root(-2) }}", "0.3333333333333333"),
            ("{{ 1000 | root(3) }}", "9.999999999999998"),
            ("{{ 9 | root(2.0) }}", "3.0"),
            ("{{ 0 | root }}", "0.0"),
            ("{{ 9 | root(true) }}", "9.0"),
            ("{{ 100 | ansible.builtin.log(10) | type_debug }}", "float"),
            ("{{ 2 | pow(3) | type_debug }}", "float"),
            (
                "{{ [2 | pow(70), 9 | root] }}",
                "[1.1805916207174113e+21, 3.0]",
            ),
        ] {
            assert_eq!(
                super::super::tests::rendered(template),
                ansible,
                "{template}"
            );
        }
        for (template, ansible) in [
            ("{{ 0 | log }}", "log(): math domain error"),
            ("{{ -1 | log }}", "log(): math domain error"),
            ("{{ 100 | log(1) }}", "log(): float division by zero"),
            ("{{ 100 | log(0) }}", "log(): math domain error"),
            ("{{ 100 | log(-2) }}", "log(): math domain error"),
            (
                "{{ '100' | log }}",
                "log() can only be used on numbers: must be real number, not str",
            ),
            (
                "{{ none | log }}",
                "log() can only be used on numbers: must be real number, not NoneType",
            ),
            (
                "{{ 100 | log('10') }}",
                "log() can only be used on numbers: must be real number, not str",
            ),
            ("{{ 0 | pow(-1) }}", "pow(): math domain error"),
            ("{{ -8 | pow(1/3) }}", "pow(): math domain error"),
            ("{{ 10 | pow(400) }}", "pow(): math range error"),
            ("{{ 2 | pow(1024) }}", "pow(): math range error"),
            (
                "{{ '2' | pow(2) }}",
                "pow() can only be used on numbers: must be real number, not str",
            ),
            (
                "{{ 2 | pow(none) }}",
                "pow() can only be used on numbers: must be real number, not NoneType",
            ),
            (
                "{{ -4 | root }}",
                "root() can only be used on numbers: math domain error",
            ),
            (
                "{{ -8 | root(3) }}",
                "root() can only be used on numbers: math domain error",
            ),
            ("{{ 9 | root(0) }}", "root(): float division by zero"),
            (
                "{{ 100 | log(none) }}",
                "log() can only be used on numbers: must be real number, not NoneType",
            ),
            (
                "{{ 9 | root(none) }}",
                "root() can only be used on numbers: float() argument must be a string or a real number, not 'NoneType'",
            ),
            (
                "{{ 2 | pow }}",
                "pow() missing 1 required positional argument: 'y'",
            ),
            (
                "{{ '9' | root }}",
                "root() can only be used on numbers: must be real number, not str",
            ),
            (
                "{{ 9 | root('x') }}",
                "root() can only be used on numbers: could not convert string to float: 'x'",
            ),
        ] {
            let e = super::super::tests::refusal(template);
            assert!(e.contains(ansible), "{template}: {e}");
        }
    }
}
