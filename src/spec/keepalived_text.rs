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

/// Whether an error may show the string: a secret's never shows, not even in part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// The error quotes the string, and what keepalived would make of it.
    Quoted,
    /// The error says what is wrong without quoting any of it (`auth_pass`).
    Secret,
}

/// Why keepalived would not read `text` as written at `place`; `None` when it would. With
/// [`Shown::Secret`] the reason holds no part of `text`.
pub fn problem(text: &str, place: Place, shown: Shown) -> Option<String> {
    if text.trim().is_empty() {
        return Some("is empty".into());
    }
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        let which = match shown {
            Shown::Quoted => format!("the control character {}", field::quote(&c.to_string())),
            Shown::Secret => "a control character".to_string(),
        };
        return Some(format!(
            "holds {which}: keepalived reads one line per setting"
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
        Place::Word => word_problem(text, shown),
        Place::Script => script_problem(text),
    }
}

fn word_problem(text: &str, shown: Shown) -> Option<String> {
    // What keepalived would read instead: quoted, or for a secret only that it is cut short.
    let cut = |i: usize| match shown {
        Shown::Quoted => format!("keepalived would read {}", field::quote(&text[..i])),
        Shown::Secret => "keepalived would read only what comes before it".to_string(),
    };
    for (i, c) in text.char_indices() {
        let reason = match c {
            '!' | '#' => format!(
                "holds `{c}`, which keepalived reads as the start of a comment anywhere in keepalived.conf: {}",
                cut(i)
            ),
            '\'' => "keepalived reads `'` as a quote in some places and removes it".to_string(),
            '{' | '}' => format!("keepalived reads `{c}` as the edge of a block"),
            '$' => "keepalived replaces `$NAME` and `${NAME}` with its definitions (`$_PWD`, `$_INSTANCE`, `$_RANDOM`)".to_string(),
            ' ' => format!("holds a space, where keepalived ends a word: {}", cut(i)),
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
/// saying why (quoting the string unless it is a secret: [`Shown`]), and `None`.
pub fn read(
    node: &Node,
    key: &str,
    place: Place,
    shown: Shown,
    diags: &mut Diagnostics,
) -> Option<String> {
    let text = field::string(node, key, diags)?;
    match problem(&text, place, shown) {
        None => Some(text),
        Some(reason) => {
            let message = match shown {
                Shown::Quoted => format!("{}: {reason}", field::quote(&text)),
                Shown::Secret => reason,
            };
            diags.push(
                Diagnostic::new(&node.loc, key, message)
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
            assert_eq!(problem(ok, Place::Word, Shown::Quoted), None, "{ok}");
        }
        let reason = problem("eth0!x", Place::Word, Shown::Quoted).unwrap();
        assert!(reason.contains("would read \"eth0\""), "{reason}");
        for bad in [
            "!abc", "ab#x", "a$b", "a\\", "a b", "a\"b", "a'b", "a{b", "a}", "a\nb", "", "é",
        ] {
            assert!(
                problem(bad, Place::Word, Shown::Quoted).is_some(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn scripts_keepalived_would_change_are_refused() {
        for ok in [
            "/bin/sh -c 'kill -0 $(cat /run/haproxy.pid)'",
            "/usr/bin/test -e /run/x # not a comment inside quotes !",
            "/bin/sh -c 'echo {} $HOME'",
        ] {
            assert_eq!(problem(ok, Place::Script, Shown::Quoted), None, "{ok}");
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
            assert!(
                problem(bad, Place::Script, Shown::Quoted).is_some(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_secret_is_refused_without_showing_any_of_it() {
        for (secret, why) in [
            (
                "Sup3r!x",
                "holds `!`, which keepalived reads as the start of a comment",
            ),
            ("Sup3r#x", "holds `#`"),
            ("Sup3r x", "holds a space"),
            ("Sup3r\tx", "holds a control character"),
            ("Se\"cr3t", "keepalived reads `\"` as a quote"),
            ("Sup3r'x", "keepalived reads `'` as a quote"),
        ] {
            let reason = problem(secret, Place::Word, Shown::Secret).unwrap();
            assert!(reason.contains(why), "{reason}");
            assert!(
                !reason.contains("Sup3") && !reason.contains("cr3t"),
                "{reason}"
            );
            let mut diags = Diagnostics::default();
            let loc = crate::source::Loc::new(&std::sync::Arc::from("v.yml"), 3);
            let node = Node::new(crate::source::Value::Str(secret.into()), loc);
            assert_eq!(
                read(
                    &node,
                    "keepalived_auth_pass",
                    Place::Word,
                    Shown::Secret,
                    &mut diags
                ),
                None
            );
            let shown = format!("{:?}", diags.into_vec());
            assert!(
                !shown.contains("Sup3") && !shown.contains("cr3t"),
                "{shown}"
            );
        }
    }
}
