//! Strings lbctl writes into keepalived.conf, checked against keepalived's own lexer: a value
//! either reaches keepalived exactly as the user wrote it, or is refused with the reason.
//!
//! keepalived reads its configuration line by line (lib/parser.c): `!` and `#` start a comment
//! anywhere outside double quotes; `\` escapes the next character and, at the end of a line,
//! joins the next line to it; `"` quotes; `{` and `}` outside quotes are blocks of their own;
//! `$NAME` and `${NAME}` are replaced by definitions (keepalived defines `_PWD`, `_INSTANCE`
//! and `_RANDOM` itself); words end at white space. A script is one double-quoted word that
//! keepalived splits again into a command line, honouring single and double quotes and
//! reading backslash escapes (`\x41`, `\n`...).

use crate::{
    source::field,
    source::{Diagnostic, Diagnostics, Node},
};

/// Where a string goes in keepalived.conf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A bare word after a keyword: `auth_pass`, `interface`, `process`, `router_id`.
    Word,
    /// A command line inside double quotes: `script "..."`.
    Script,
}

/// Why keepalived would not read `text` as written at `place`; `None` when it would.
pub fn problem(text: &str, place: Place) -> Option<String> {
    if text.trim().is_empty() {
        return Some("is empty".into());
    }
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        return Some(format!(
            "holds the control character {}: keepalived reads one line per setting",
            field::quote(&c.to_string())
        ));
    }
    if !text.is_ascii() {
        return Some(
            "holds characters outside ASCII, which keepalived does not read reliably".into(),
        );
    }
    if text.contains('\\') {
        return Some("keepalived reads `\\` as an escape, and at the end of a line joins the next line to it".into());
    }
    if text.contains('"') {
        return Some("keepalived reads `\"` as a quote and removes it".into());
    }
    match place {
        Place::Word => word_problem(text),
        Place::Script => script_problem(text),
    }
}

fn word_problem(text: &str) -> Option<String> {
    let cut = |i: usize| field::quote(&text[..i]);
    for (i, c) in text.char_indices() {
        let reason = match c {
            '!' | '#' => format!(
                "`{c}` starts a comment anywhere in keepalived.conf: keepalived would read {}",
                cut(i)
            ),
            '\'' => "keepalived reads `'` as a quote in some places and removes it".to_string(),
            '{' | '}' => format!("keepalived reads `{c}` as the edge of a block"),
            '$' => "keepalived replaces `$NAME` and `${NAME}` with its definitions (`$_PWD`, `$_INSTANCE`, `$_RANDOM`)".to_string(),
            ' ' => format!("keepalived ends a word at a space: it would read {}", cut(i)),
            _ => continue,
        };
        return Some(reason);
    }
    None
}

fn script_problem(text: &str) -> Option<String> {
    if let Some(i) = text.find('$')
        && matches!(text[i + 1..].chars().next(), Some('_' | '{'))
    {
        return Some("keepalived replaces `$_NAME` and `${NAME}` with its own definitions (`$_PWD`, `$_INSTANCE`, `$_RANDOM`) before running the script".into());
    }
    if text.matches('\'').count() % 2 == 1 {
        return Some("has a `'` that is never closed: keepalived refuses the script".into());
    }
    None
}

/// The string in `node` if keepalived reads it unchanged at `place`; otherwise a located error
/// saying why, and `None`.
pub fn read(node: &Node, key: &str, place: Place, diags: &mut Diagnostics) -> Option<String> {
    let text = field::string(node, key, diags)?;
    match problem(&text, place) {
        None => Some(text),
        Some(reason) => {
            diags.push(
                Diagnostic::new(&node.loc, key, format!("{}: {reason}", field::quote(&text)))
                    .hint(match place {
                        Place::Word => "use letters, digits and punctuation other than ! # $ ' \" \\ { } and spaces",
                        Place::Script => "write the command without `\"` or `\\`, with balanced single quotes and no `$_`/`${`; or put it in a script file and give its path",
                    }),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keepalived_would_change_are_refused() {
        for ok in [
            "s3cr3t",
            "pa%ss:w@r",
            "eth0.100",
            "a-b_c",
            "x;y",
            "ab+cd=ef",
        ] {
            assert_eq!(problem(ok, Place::Word), None, "{ok}");
        }
        let reason = problem("s3cr3t!", Place::Word).unwrap();
        assert!(reason.contains("would read \"s3cr3t\""), "{reason}");
        for bad in [
            "!abc", "ab#x", "a$b", "a\\", "a b", "a\"b", "a'b", "a{b", "a}", "a\nb", "", "é",
        ] {
            assert!(problem(bad, Place::Word).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn scripts_keepalived_would_change_are_refused() {
        for ok in [
            "/bin/sh -c 'kill -0 $(cat /run/haproxy.pid)'",
            "/usr/bin/test -e /run/x # not a comment inside quotes !",
            "/bin/sh -c 'echo {} $HOME'",
        ] {
            assert_eq!(problem(ok, Place::Script), None, "{ok}");
        }
        for bad in [
            "/bin/check \\",
            "/bin/echo a\\x41",
            "/bin/echo \"q\"",
            "/bin/echo $_PWD",
            "/bin/echo ${_INSTANCE}",
            "/bin/echo 'open",
            "/bin/true\n/bin/false",
        ] {
            assert!(problem(bad, Place::Script).is_some(), "{bad:?}");
        }
    }
}
