//! One problem with the user's input, located precisely enough to fix it without searching.

use std::{borrow::Cow, fmt};

use crate::source::Loc;

/// A problem found in the inventory, vars or templates.
///
/// Validation collects every diagnostic before giving up, so a user fixes all problems in one
/// pass instead of one per run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    /// Dotted path of the offending key, e.g. `haproxy_tcp_backends[0].servers[1].port`.
    pub key: String,
    pub message: String,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn new(loc: &Loc, key: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            file: loc.file.to_string(),
            line: loc.line as usize,
            key: key.into(),
            message: message.into(),
            hint: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// What a user sees: `file:line: key: message` and the hint on the next line. Everything
/// that came from the input (file names, keys, values quoted in the message) is shown with
/// control characters escaped, so a value holding a newline or a terminal escape sequence can
/// neither forge another line of output nor restyle the terminal.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |text: &str| clip(escape_control(text).into_owned());
        let file = shown(&self.file);
        if self.line > 0 {
            write!(f, "{file}:{}: ", self.line)?;
        } else {
            write!(f, "{file}: ")?;
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", shown(&self.key))?;
        }
        write!(f, "{}", shown(&self.message))?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {}", shown(hint))?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostic {}

impl Diagnostic {
    /// This diagnostic as `--json` prints it: every field at most [`MAX_SHOWN`] characters.
    pub fn clipped(&self) -> Diagnostic {
        Diagnostic {
            file: clip(self.file.clone()),
            line: self.line,
            key: clip(self.key.clone()),
            message: clip(self.message.clone()),
            hint: self.hint.clone().map(clip),
        }
    }
}

/// The most characters of one message (or key, or hint) a user is shown. Clipping happens as
/// a message is printed, after secrets were redacted, so no cut can split a secret.
pub const MAX_SHOWN: usize = 2000;

/// `text`, or when it is longer than [`MAX_SHOWN`] characters its start and its end around
/// a mark saying how much was left out: a megabyte value quoted in an error is not worth a
/// megabyte of terminal, and the end of a message usually says what to do.
pub fn clip(text: String) -> String {
    const TAIL: usize = 500;
    let Some((head_end, _)) = text.char_indices().nth(MAX_SHOWN) else {
        return text;
    };
    let total = MAX_SHOWN + text[head_end..].chars().count();
    let left_out = total - (MAX_SHOWN - TAIL);
    let head = &text[..text
        .char_indices()
        .nth(MAX_SHOWN - TAIL)
        .map_or(0, |(i, _)| i)];
    let tail_start = text
        .char_indices()
        .rev()
        .nth(TAIL - 1)
        .map_or(0, |(i, _)| i);
    format!(
        "{head} ... [{left_out} characters left out] ... {}",
        &text[tail_start..]
    )
}

/// `text` with every control character (C0, DEL, C1) and every invisible character that
/// reorders or hides text (bidirectional overrides, zero-width marks) written as an escape:
/// `\n`, `\t`, `\r`, or `\u{..}`.
pub fn escape_control(text: &str) -> Cow<'_, str> {
    fn hidden(c: char) -> bool {
        c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
    }
    if !text.chars().any(hidden) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if hidden(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Collects diagnostics while a stage keeps going past the first problem.
#[derive(Debug, Default)]
pub struct Diagnostics(Vec<Diagnostic>);

impl From<Vec<Diagnostic>> for Diagnostics {
    fn from(v: Vec<Diagnostic>) -> Self {
        Diagnostics(v)
    }
}

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.0
    }

    /// Whether a problem was already found with `key` or inside it (`key[0].port`,
    /// `key.name`): a check that reads `key` as missing would be a second, false error.
    pub fn about(&self, key: &str) -> bool {
        self.0.iter().any(|d| {
            d.key
                .strip_prefix(key)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['[', '.']))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_cannot_forge_lines_or_restyle_the_terminal() {
        let d = Diagnostic {
            file: "vars\n.yml".into(),
            line: 3,
            key: "a\u{1b}[31mb".into(),
            message: "`x\nerror: forged` is bad\u{202e}".into(),
            hint: Some("tab\there".into()),
        };
        assert_eq!(
            d.to_string(),
            "vars\\n.yml:3: a\\u{1b}[31mb: `x\\nerror: forged` is bad\\u{202e}\n  hint: tab\\there"
        );
        assert!(matches!(escape_control("plain: text"), Cow::Borrowed(_)));
    }

    #[test]
    fn long_text_is_shown_by_its_start_and_end() {
        assert_eq!(clip("short".into()), "short");
        let exact = "é".repeat(MAX_SHOWN);
        assert_eq!(clip(exact.clone()), exact);
        let long = format!("unknown \"{}\": use one of a, b", "é".repeat(1 << 20));
        let shown = clip(long);
        assert_eq!(
            shown.chars().count(),
            MAX_SHOWN + " ... [1047103 characters left out] ... ".len()
        );
        assert!(shown.starts_with("unknown \"éé"), "{}", &shown[..40]);
        assert!(shown.ends_with("éé\": use one of a, b"));
        let d = Diagnostic::new(
            &Loc::new(&std::sync::Arc::from("vars.yml"), 2),
            "k".repeat(5000),
            "m".repeat(5000),
        )
        .hint("h".repeat(5000));
        assert!(
            d.to_string().len() < 3 * (MAX_SHOWN + 60),
            "{}",
            d.to_string().len()
        );
        let clipped = d.clipped();
        assert!(
            [
                &clipped.key,
                &clipped.message,
                clipped.hint.as_ref().unwrap()
            ]
            .iter()
            .all(|t| t.len() < MAX_SHOWN + 60)
        );
    }

    #[test]
    fn about_a_key_is_about_what_is_inside_it_too() {
        let loc = Loc::new(&std::sync::Arc::from("vars.yml"), 1);
        let mut diags = Diagnostics::default();
        diags.push(Diagnostic::new(&loc, "haproxy_tcp_backends[0].port", "bad"));
        diags.push(Diagnostic::new(&loc, "haproxy_stats_password", "bad"));
        assert!(diags.about("haproxy_tcp_backends"));
        assert!(diags.about("haproxy_stats_password"));
        assert!(!diags.about("haproxy_stats"));
        assert!(!diags.about("haproxy_tcp"));
        assert!(!diags.about("haproxy_stats_user"));
    }
}
