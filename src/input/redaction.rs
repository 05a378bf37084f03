//! Hiding secrets in text meant for the user. An error rarely prints a value as written: it
//! quotes it, and quoting escapes it (`"Se\"cr3t"`), so hiding only the value as written would
//! leave the escaped one whole. Every way a message may print a secret is hidden.

use crate::source::escape_control;

/// What replaces a secret in a message.
const HIDDEN: &str = "<redacted>";

/// `text` with every form of every secret in `secrets` replaced by `<redacted>`. The longest
/// forms go first, so that a secret inside another one never leaves the rest of it shown.
pub fn hide_secrets(text: &str, secrets: &[String]) -> String {
    let mut forms: Vec<String> = secrets
        .iter()
        .filter(|s| !s.is_empty())
        .flat_map(|s| printed_forms(s))
        .collect();
    forms.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    forms.dedup();
    forms
        .iter()
        .fold(text.to_string(), |t, form| t.replace(form.as_str(), HIDDEN))
}

/// `secret` as written, with its control characters escaped as a diagnostic shows a template
/// (`escape_control`), and as it reads between quotes once escaped: by Rust's `{:?}` (what
/// diagnostics quote values with), twice over (a quoted value quoted again), by JSON, and by
/// Python's `repr()` (what Ansible's filters print).
fn printed_forms(secret: &str) -> Vec<String> {
    let rust = debug_inner(secret);
    let twice = debug_inner(&rust);
    let json = serde_json::to_string(secret)
        .ok()
        .and_then(|q| Some(q.strip_prefix('"')?.strip_suffix('"')?.to_string()))
        .unwrap_or_default();
    vec![
        secret.to_string(),
        escape_control(secret).into_owned(),
        rust,
        twice,
        json,
        python_inner(secret, true),
        python_inner(secret, false),
    ]
}

/// What Rust's `{:?}` writes between the quotes.
fn debug_inner(text: &str) -> String {
    let quoted = format!("{text:?}");
    quoted[1..quoted.len() - 1].to_string()
}

/// What Python's `repr()` writes between the quotes: in single quotes, escaping them, or (for
/// a text with `'` and no `"`) in double quotes, escaping none.
fn python_inner(text: &str, single_quotes: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\'' if single_quotes => out.push_str("\\'"),
            c if (c as u32) < 0x20 || (0x7f..0xa0).contains(&(c as u32)) => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hidden(text: &str, secret: &str) -> String {
        hide_secrets(text, &[secret.to_string()])
    }

    #[test]
    fn a_secret_is_hidden_however_it_was_quoted() {
        let secret = "Se\"cr'3t\\x\u{1b}";
        for text in [
            format!("value {secret} here"),
            format!("value {} here", escape_control(secret)),
            format!("value {secret:?} here"),
            format!("value {:?} here", format!("{secret:?}")),
            format!("value {} here", serde_json::to_string(secret).unwrap()),
            "value 'Se\"cr\\'3t\\\\x\\x1b' here".to_string(),
            "value \"Se\"cr'3t\\\\x\\x1b\" here".to_string(),
        ] {
            let shown = hidden(&text, secret);
            assert!(!shown.contains("Se") && !shown.contains("3t"), "{shown}");
            assert!(shown.contains("<redacted>"), "{shown}");
        }
    }

    #[test]
    fn a_secret_inside_another_leaves_nothing_of_the_longer_one() {
        let secrets = ["Sup3r".to_string(), "Sup3r-and-more".to_string()];
        assert_eq!(
            hide_secrets("a Sup3r-and-more b Sup3r", &secrets),
            "a <redacted> b <redacted>"
        );
    }
}
