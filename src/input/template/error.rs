//! A variable that could not be evaluated, located at the template that failed, and how the
//! failure of a variable read inside another template reaches the user.
//!
//! minijinja's objects cannot return errors when a template reads a variable, so a variable
//! that fails while another template reads it is recorded here (per thread: an evaluation
//! runs on one) and stands in the template as undefined (when it failed for want of a value,
//! so that `default` and `is defined` work as in Ansible) or as an invalid value (which fails
//! the reading template at once). When the reading template then fails, the recorded failure
//! is the error shown: it names the variable that was undefined and where it is written.

use std::cell::RefCell;

use crate::source::{Diagnostic, Loc, escape_control};

/// Why a variable has no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// Where the failing template (or vault) is written.
    pub loc: Loc,
    /// The host whose variables were being evaluated.
    pub host: String,
    /// The variable holding the failing template.
    pub var: String,
    /// Where in the variable: `haproxy_tcp_backends[0].servers[1].port` (the variable's name
    /// when the whole value is the template).
    pub key: String,
    /// The template, for the message (none for a vault that cannot be decrypted).
    pub template: Option<String>,
    pub message: String,
    pub hint: Option<String>,
    /// It failed for want of a value: reading templates see it as undefined.
    pub undefined: bool,
    /// The variables whose templates read this one, the first reader first: host, variable
    /// and where its template is written.
    pub via: Vec<(String, String, Loc)>,
}

impl TemplateError {
    /// The error as the user sees it, at the failing template's line.
    pub fn diagnostic(&self) -> Diagnostic {
        let mut message = match &self.template {
            Some(t) => format!("cannot evaluate {}: {}", shown(t), self.message),
            None => self.message.clone(),
        };
        if let Some((first_host, _, _)) = self.via.first()
            && *first_host != self.host
        {
            message.push_str(&format!(" (for host `{}`)", self.host));
        }
        let mut hint = self.hint.clone().unwrap_or_else(|| {
            if self.undefined {
                let undefined = self
                    .message
                    .strip_prefix('`')
                    .and_then(|m| m.strip_suffix("` is undefined"));
                let plain = |n: &&str| {
                    n.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '.')
                        && !n.starts_with('.')
                };
                let name = match undefined {
                    Some(n) if plain(&n) => n,
                    // a subscript: `hostvars['lb9']`, `groups['web'][0]`
                    Some(n) if n.starts_with("hostvars[") || n.starts_with("groups[") => {
                        return format!("`{n}` names a host or group the inventory does not have: check the name, or give a default: `{{{{ {n} | default(...) }}}}`");
                    }
                    _ => "name",
                };
                match name.rsplit_once('.') {
                    Some((mapping, key)) => format!("`{mapping}` has no key `{key}`: add it, or give a default: `{{{{ {name} | default(...) }}}}`"),
                    None => format!("define `{name}` (group_vars/, host_vars/, the inventory or -e), or give it a default: `{{{{ {name} | default(...) }}}}`"),
                }
            } else {
                "fix the template: Jinja2 in variables is evaluated as Ansible evaluates it".into()
            }
        });
        if !self.via.is_empty() {
            let readers: Vec<String> = self
                .via
                .iter()
                .rev()
                .map(|(_, var, loc)| format!("`{var}` ({loc})"))
                .collect();
            hint.push_str(&format!("; read by {}", readers.join(", read by ")));
        }
        Diagnostic::new(&self.loc, &self.key, message).hint(hint)
    }

    /// This error as seen from the list or mapping holding the failing value: `segment`
    /// (`[0]`, `.port`) is its place there.
    pub(super) fn within(mut self: Box<Self>, segment: &str) -> Box<TemplateError> {
        let key = match self.via.first_mut() {
            Some((_, reader, _)) => reader,
            None => &mut self.key,
        };
        let at = key.find(['[', '.']).unwrap_or(key.len());
        key.insert_str(at, segment);
        self
    }

    /// This error as seen from a template of `host`'s variable `var` (at `loc`) that read it.
    fn read_by(mut self: Box<Self>, host: &str, var: &str, loc: Loc) -> Box<TemplateError> {
        self.via.insert(0, (host.to_string(), var.to_string(), loc));
        self
    }
}

/// A template as quoted in a message: on one line, and not too long.
fn shown(template: &str) -> String {
    let one_line = escape_control(template.trim_end());
    match one_line.char_indices().nth(80) {
        Some((cut, _)) => format!("`{}...`", &one_line[..cut]),
        None => format!("`{one_line}`"),
    }
}

thread_local! {
    static FAILED: RefCell<Vec<TemplateError>> = const { RefCell::new(Vec::new()) };
    static MISSING: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Remembers a name a template read that no variable has (bounded: the first few).
pub(super) fn missing(name: &str) {
    MISSING.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() < 64 && !m.iter().any(|n| n == name) {
            m.push(name.to_string());
        }
    });
}

/// The names without a value read since `mark` (`missing_mark`), forgetting them.
pub(super) fn missing_since(mark: usize) -> Vec<String> {
    MISSING.with(|m| {
        let mut m = m.borrow_mut();
        let from = mark.min(m.len());
        m.split_off(from)
    })
}

/// The name read last that no variable has: the likely source of an undefined value that
/// reached a filter.
pub(super) fn last_missing() -> Option<String> {
    MISSING.with(|m| m.borrow().last().cloned())
}

pub(super) fn missing_mark() -> usize {
    MISSING.with(|m| m.borrow().len())
}

/// Remembers a variable that failed while a template read it.
pub(super) fn record(error: Box<TemplateError>) {
    FAILED.with(|f| f.borrow_mut().push(*error));
}

/// How many failures are recorded now; the failures of one evaluation are those after it.
pub(super) fn mark() -> usize {
    FAILED.with(|f| f.borrow().len())
}

/// Forgets the failures recorded since `mark` (the template that read them succeeded: it did
/// not need them, as with `default`), returning them.
pub(super) fn take_since(mark: usize) -> Vec<TemplateError> {
    FAILED.with(|f| {
        let mut f = f.borrow_mut();
        let from = mark.min(f.len());
        f.split_off(from)
    })
}

/// The recorded failure that made `error` happen, if one did: the latest failure of a
/// variable the error names as undefined; else, for another error than an undefined value,
/// the latest failure that was not for want of a value (it reached the template as an
/// invalid value).
pub(super) fn cause(
    error: &minijinja::Error,
    failed: Vec<TemplateError>,
) -> Option<Box<TemplateError>> {
    let detail = error.detail().unwrap_or_default();
    let names: Vec<&str> = detail
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    // The name this template read: the variable that failed, or the variable whose own
    // template failed reading it (`vip` when `vip: "{{ base }}.1"` lacks `base`).
    let read = |f: &TemplateError| {
        let reader = f.via.first().map(|(_, var, _)| var.as_str());
        names.contains(&f.var.as_str()) || reader.is_some_and(|r| names.contains(&r))
    };
    let named = failed.iter().rposition(|f| f.undefined && read(f));
    let invalid = (error.kind() != minijinja::ErrorKind::UndefinedError)
        .then(|| failed.iter().rposition(|f| !f.undefined))
        .flatten();
    let index = named.or(invalid)?;
    failed.into_iter().nth(index).map(Box::new)
}

/// The error of a template that read variables: the failure of a variable it read when that
/// is what made it fail, tagged with the reader.
pub(super) fn reader_error(
    error: minijinja::Error,
    failed: Vec<TemplateError>,
    reader: impl FnOnce(minijinja::Error) -> Box<TemplateError>,
    reading: (&str, &str, Loc),
) -> Box<TemplateError> {
    match cause(&error, failed) {
        Some(inner) => inner.read_by(reading.0, reading.1, reading.2),
        None => reader(error),
    }
}

/// Runs a template render (lbctl's own templates) and, when it fails because a variable it
/// read could not be evaluated, gives that variable's error instead of the render's.
pub fn explain<T>(
    render: impl FnOnce() -> Result<T, minijinja::Error>,
) -> Result<T, Box<Result<Box<TemplateError>, minijinja::Error>>> {
    let start = mark();
    let result = render();
    let failed = take_since(start);
    result.map_err(|e| Box::new(cause(&e, failed).ok_or(e)))
}

/// What a minijinja error says, for a message, and whether it is for want of a value: an
/// undefined value is named as Ansible names it (`` `base` is undefined ``), whatever the
/// operation that met it; another error says what it is and, when minijinja gives no detail,
/// quotes the part of `source` that failed.
pub(super) fn describe(error: &minijinja::Error, source: &str) -> (String, bool) {
    let detail = error.detail().unwrap_or_default();
    if let Some(end) = detail.find("` is undefined")
        && let Some(start) = detail[..end].rfind('`')
    {
        return (format!("{} is undefined", &detail[start..=end]), true);
    }
    if error.kind() == minijinja::ErrorKind::UndefinedError {
        return ("an undefined value".into(), true);
    }
    let text = error
        .range()
        .and_then(|r| source.get(r))
        .filter(|t| !t.is_empty() && !detail.contains(*t));
    let mut message = match (detail, text) {
        ("", None) => error.kind().to_string(),
        ("", Some(t)) => format!("{} (`{t}`)", error.kind()),
        (d, None) => format!("{}: {d}", error.kind()),
        (d, Some(t)) => format!("{}: {d} (`{t}`)", error.kind()),
    };
    if let Some(advice) = advice(error) {
        message.push_str("; ");
        message.push_str(advice);
    }
    (message, false)
}

/// What to write instead, for the errors of a template written for Python's Jinja2 that
/// minijinja reads otherwise: a list changed in place that was not written empty, Python's `%`
/// formatting of text.
pub fn advice(error: &minijinja::Error) -> Option<&'static str> {
    const CHANGING: &[&str] = &[
        "append",
        "extend",
        "insert",
        "remove",
        "update",
        "setdefault",
    ];
    let detail = error.detail().unwrap_or_default();
    if error.kind() == minijinja::ErrorKind::UnknownMethod
        && CHANGING
            .iter()
            .any(|m| detail.ends_with(&format!("no method named {m}")))
    {
        return Some(
            "only a list or mapping written empty (`[]`, `{}`) in the same template can be changed in place: build this one with filters (`+`, `union`, `combine`)",
        );
    }
    if error.kind() == minijinja::ErrorKind::OutOfFuel {
        return Some(
            "the template does more work than one render may (16 million steps, or about 1 GiB of text and values): a loop, or a value that grows without end?",
        );
    }
    if detail.starts_with("tried to use % operator on unsupported types string") {
        return Some(
            "Python's `%` formatting of text is not there: write `'%02d' | format(n)` or `'{:02d}'.format(n)`",
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::advice;

    fn failure(template: &str) -> minijinja::Error {
        super::super::environment()
            .render_str(template, ())
            .unwrap_err()
    }

    #[test]
    fn pythons_idioms_that_minijinja_reads_otherwise_come_with_what_to_write() {
        for template in ["{{ '%02d' % 5 }}", "{{ '%s-%s' % ('a', 'b') }}"] {
            let advice = advice(&failure(template)).unwrap_or_default();
            assert!(advice.contains("| format(n)"), "{template}: {advice}");
        }
        let changed = advice(&failure("{% set l = [1] + [2] %}{{ l.append(3) }}"));
        assert!(changed.is_some_and(|a| a.contains("written empty")));
        assert_eq!(advice(&failure("{{ 1 + 'a' }}")), None);
        let endless =
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}";
        assert!(advice(&failure(endless)).is_some_and(|a| a.contains("16 million steps")));
        let grows = "{{ ('a' * 1000).replace('', 'x' * 99999999) | length }}";
        assert!(advice(&failure(grows)).is_some_and(|a| a.contains("1 GiB")));
    }
}
