//! The keys a user's own templates read: allowed wherever lbctl checks key names, since a
//! key such a template reads (`server.maxconn`) is the user's, not a typo of lbctl's.

thread_local! {
    /// Names the user's own templates mention, while they are in force ([`with_template_keys`]).
    static TEMPLATE_KEYS: std::cell::RefCell<std::collections::BTreeSet<String>> =
        const { std::cell::RefCell::new(std::collections::BTreeSet::new()) };
}

/// Runs `f` (a validation) with `keys` allowed wherever lbctl checks key names: a key the
/// user's own template reads (`server.maxconn`) is theirs, not a typo of lbctl's.
pub fn with_template_keys<T>(keys: std::collections::BTreeSet<String>, f: impl FnOnce() -> T) -> T {
    let previous = TEMPLATE_KEYS.with(|k| std::mem::replace(&mut *k.borrow_mut(), keys));
    let out = f();
    TEMPLATE_KEYS.with(|k| *k.borrow_mut() = previous);
    out
}

/// Whether the user's own templates read `key`.
pub fn template_reads(key: &str) -> bool {
    TEMPLATE_KEYS.with(|k| k.borrow().contains(key))
}

/// The names a Jinja2 template mentions inside `{{ }}` and `{% %}`: identifiers, and the text
/// of string literals (`server['maxconn']`).
pub fn template_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    let mut rest = text;
    while let Some(open) = rest.find(['{']) {
        let after = &rest[open + 1..];
        let close = match after.chars().next() {
            Some('{') => "}}",
            Some('%') => "%}",
            _ => {
                rest = after;
                continue;
            }
        };
        let Some(end) = after.find(close) else { break };
        let block = &after[1..end];
        let mut chars = block.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c == '\'' || c == '"' {
                let body: String = chars
                    .by_ref()
                    .map(|(_, c)| c)
                    .take_while(|x| *x != c)
                    .collect();
                names.insert(body);
            } else if c.is_ascii_alphabetic() || c == '_' {
                let mut j = i + c.len_utf8();
                while let Some((k, d)) = chars.peek().copied() {
                    if d.is_ascii_alphanumeric() || d == '_' {
                        j = k + d.len_utf8();
                        chars.next();
                    } else {
                        break;
                    }
                }
                names.insert(block[i..j].to_string());
            }
        }
        rest = &after[end + close.len()..];
    }
    names
}
