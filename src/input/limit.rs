//! `--limit PATTERN`: the inventory hosts a command works on, chosen with Ansible's host
//! patterns, evaluated as ansible-core evaluates `--limit`:
//!
//! - a pattern is split into terms on `,` (or, without a comma, on `:` outside brackets,
//!   unless the whole pattern is one address such as `lb[1:3]` or `10.0.0.1`);
//! - a term is a host name, a group (its hosts and its children's), a glob (`lb*`, `web?`,
//!   `db[12]`) or, after `~`, a regular expression matched from the start of the name; a
//!   group may be subscripted (`haproxy_servers[0]`, `[-1]`, `[1:2]`, `[1:]`);
//! - plain terms add hosts, `&term` keeps only hosts also in it, `!term` removes hosts; they
//!   apply in that order (plain, then `&`, then `!`), and with no plain term `all` is the
//!   start, so `!lb1` alone means every host but lb1;
//! - `@FILE` reads terms from a file, one a line;
//! - a term that matches nothing is a warning, not an error.
//!
//! One addition: Ansible reads `lb[1:2]` as a subscript of a group or host `lb`, and when
//! there is none it matches nothing. lbctl then reads it as an inventory host range, as in
//! the inventory file itself (`lb1`, `lb2`), keeping the hosts that exist.

use std::collections::{BTreeSet, HashSet};

use regex::Regex;

use super::{
    InputError,
    inventory::{Inventory, expand_host_pattern},
};

/// Most terms a limit may have (load balancers are counted in tens; a retry file of every
/// host of a large inventory stays well under it).
const MAX_TERMS: usize = 10_000;

/// Longest term, in bytes: a host name is at most 253 characters.
const MAX_TERM_BYTES: usize = 1_024;

/// The compiled size the `~regex` terms of a limit share (the regex crate's default for one):
/// each compiled up to 10 MiB, a limit of 200 regexes of 19 bytes (`~[\p{L}\p{N}]{199}`)
/// took more than 60 s to parse, 20 of them 8.7 s.
const REGEX_BYTES: usize = 10 << 20;

/// A parsed `--limit`.
#[derive(Debug, Clone)]
pub struct Limit {
    /// As the user wrote it.
    pub text: String,
    terms: Vec<String>,
    /// The `~regex` terms, compiled once, by their text (`~` and any `&` or `!` included).
    regexes: Vec<(String, Regex)>,
}

/// What a limit selects in an inventory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// The hosts, in the order Ansible lists them.
    pub hosts: Vec<String>,
    /// Terms that matched no host (Ansible warns about them and goes on).
    pub unmatched: Vec<String>,
}

impl Limit {
    /// Parses a pattern; `@FILE` terms are read from the file (relative to the current
    /// directory).
    pub fn parse(text: &str) -> Result<Limit, InputError> {
        let invalid = |message: String| InputError::Limit {
            pattern: shown(text),
            message,
        };
        let too_many = || invalid(format!("more than {MAX_TERMS} terms"));
        if text.matches(',').count() >= MAX_TERMS {
            return Err(too_many());
        }
        let mut terms = Vec::new();
        for term in split(text) {
            if let Some(path) = term.strip_prefix('@') {
                let content =
                    crate::source::read_text(std::path::Path::new(path)).map_err(|d| {
                        InputError::LimitFile {
                            path: path.to_string(),
                            message: d.message,
                        }
                    })?;
                terms.extend(
                    content
                        .lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .take(MAX_TERMS + 1)
                        .map(String::from),
                );
            } else {
                terms.push(term);
            }
            if terms.len() > MAX_TERMS {
                return Err(too_many());
            }
        }
        if terms.is_empty() {
            return Err(invalid("the pattern is empty".into()));
        }
        let regex_terms = terms.iter().filter(|t| regex_of(t).is_some()).count();
        let mut regexes = Vec::with_capacity(regex_terms);
        for term in &terms {
            if term.len() > MAX_TERM_BYTES {
                return Err(invalid(format!(
                    "the term `{}` is longer than {MAX_TERM_BYTES} bytes; host and group names are shorter",
                    shown(term)
                )));
            }
            if let Some(c) = term.chars().find(|c| c.is_control()) {
                return Err(invalid(format!(
                    "the term `{}` holds the control character {c:?}, which no host or group name has; separate terms with `,`, or one a line in @FILE",
                    shown(term)
                )));
            }
            let bare = term.trim_start_matches(['&', '!']);
            if bare.is_empty() {
                return Err(invalid(format!("`{term}` names nothing")));
            }
            if let Some(re) = regex_of(term) {
                let compiled = regex::RegexBuilder::new(&format!("^(?:{re})"))
                    .size_limit(REGEX_BYTES / regex_terms)
                    .build()
                    .map_err(|e| match e {
                        regex::Error::CompiledTooBig(_) => invalid(format!(
                            "the regular expression `{}` is too large: the {regex_terms} `~` terms share {} MiB compiled",
                            shown(term),
                            REGEX_BYTES >> 20
                        )),
                        e => invalid(format!("`{}`: {e}", shown(term))),
                    })?;
                regexes.push((term.clone(), compiled));
            }
        }
        Ok(Limit {
            text: text.to_string(),
            terms,
            regexes,
        })
    }

    /// The hosts of `inventory` the limit selects.
    pub fn select(&self, inventory: &Inventory) -> Result<Selection, InputError> {
        let mut ordered: Vec<&str> = self
            .terms
            .iter()
            .filter(|t| !t.starts_with(['&', '!']))
            .map(String::as_str)
            .collect();
        if ordered.is_empty() {
            ordered.push("all");
        }
        ordered.extend(
            self.terms
                .iter()
                .filter(|t| t.starts_with('&'))
                .map(String::as_str),
        );
        ordered.extend(
            self.terms
                .iter()
                .filter(|t| t.starts_with('!'))
                .map(String::as_str),
        );

        // The hosts in order, and the same names as a set: an inventory of many thousand
        // hosts is selected in linear time.
        let mut selection = Selection::default();
        let mut chosen: HashSet<String> = HashSet::new();
        for term in ordered {
            if inventory.hosts.contains_key(term) {
                if chosen.insert(term.to_string()) {
                    selection.hosts.push(term.to_string());
                }
                continue;
            }
            let (matched, unmatched) = self.match_term(inventory, term)?;
            if let Some(name) = unmatched {
                selection.unmatched.push(name);
            }
            let keep = match term.as_bytes()[0] {
                b'!' => false,
                b'&' => true,
                _ => {
                    for host in matched {
                        if chosen.insert(host.clone()) {
                            selection.hosts.push(host);
                        }
                    }
                    continue;
                }
            };
            let matched: HashSet<String> = matched.into_iter().collect();
            selection.hosts.retain(|h| matched.contains(h) == keep);
            chosen.retain(|h| matched.contains(h) == keep);
        }
        Ok(selection)
    }

    /// The hosts one term (with its `&`/`!`) matches, and the name to warn about when none.
    fn match_term(
        &self,
        inventory: &Inventory,
        term: &str,
    ) -> Result<(Vec<String>, Option<String>), InputError> {
        let bare = term.trim_start_matches(['&', '!']);
        let bare = if term.len() - bare.len() > 1 {
            // Ansible strips one `&` or `!`; the rest is part of the name.
            &term[1..]
        } else {
            bare
        };
        if let Some((_, re)) = self.regexes.iter().find(|(t, _)| t == term) {
            let hosts = enumerate(inventory, |name| re.is_match(name), true);
            let unmatched = hosts.is_empty().then(|| bare.to_string());
            return Ok((hosts, unmatched));
        }
        let (expr, subscript) = split_subscript(bare);
        let glob = glob_regex(expr);
        let special = expr.contains(['.', '?', '*', '[']);
        let hosts = enumerate(inventory, |name| glob.is_match(name), special);
        if hosts.is_empty() {
            if let Some(Subscript::Range(_, Some(_))) = subscript
                && let Ok(names) = expand_host_pattern(bare)
            {
                let known: Vec<String> = names
                    .into_iter()
                    .filter(|n| inventory.hosts.contains_key(n))
                    .collect();
                if !known.is_empty() {
                    return Ok((known, None));
                }
            }
            return Ok((Vec::new(), Some(expr.to_string())));
        }
        match subscript {
            None => Ok((hosts, None)),
            Some(s) => {
                s.apply(&hosts)
                    .map(|h| (h, None))
                    .ok_or_else(|| InputError::LimitSubscript {
                        pattern: shown(&self.text),
                        term: bare.to_string(),
                    })
            }
        }
    }
}

/// The regular expression of a `~regex` term (after one `&` or `!`, as Ansible strips one).
fn regex_of(term: &str) -> Option<&str> {
    term.strip_prefix(['&', '!'])
        .unwrap_or(term)
        .strip_prefix('~')
}

/// Hosts of the groups whose names match, then (when no group matched, or the pattern is a
/// glob or regex) the hosts whose names match, each once.
fn enumerate(inventory: &Inventory, matches: impl Fn(&str) -> bool, special: bool) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut seen = BTreeSet::new();
    let groups: Vec<&String> = inventory.groups.keys().filter(|g| matches(g)).collect();
    for group in &groups {
        for host in inventory.ordered_hosts(group) {
            if seen.insert(host.clone()) {
                out.push(host);
            }
        }
    }
    if groups.is_empty() || special {
        for host in inventory.order.iter().filter(|h| matches(h)) {
            if seen.insert(host.clone()) {
                out.push(host.clone());
            }
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Subscript {
    Index(i64),
    /// `[start:end]`, both ends included; `[start:]` to the last.
    Range(usize, Option<usize>),
}

impl Subscript {
    fn apply(self, hosts: &[String]) -> Option<Vec<String>> {
        match self {
            Subscript::Index(i) => {
                let index = if i < 0 {
                    hosts.len().checked_sub(i.unsigned_abs() as usize)?
                } else {
                    i as usize
                };
                hosts.get(index).map(|h| vec![h.clone()])
            }
            // As ansible-core: an end of 0 selects only the start, which must exist.
            Subscript::Range(start, Some(0)) => hosts.get(start).map(|h| vec![h.clone()]),
            Subscript::Range(start, end) => {
                let end = end.map_or(hosts.len(), |e| (e + 1).min(hosts.len()));
                Some(
                    hosts
                        .get(start..end)
                        .map(<[String]>::to_vec)
                        .unwrap_or_default(),
                )
            }
        }
    }
}

/// `group[0]`, `group[-1]`, `group[1:2]`, `group[1:]` as ansible-core reads them.
fn split_subscript(term: &str) -> (&str, Option<Subscript>) {
    let Some(inner) = term.strip_suffix(']') else {
        return (term, None);
    };
    let Some(open) = inner.rfind('[') else {
        return (term, None);
    };
    let (expr, sub) = (&inner[..open], &inner[open + 1..]);
    if expr.is_empty() {
        return (term, None);
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(n) = sub
        .strip_prefix('-')
        .filter(|n| digits(n))
        .or(digits(sub).then_some(sub))
    {
        let value: i64 = n.parse().unwrap_or(i64::MAX);
        let value = if sub.starts_with('-') { -value } else { value };
        return (expr, Some(Subscript::Index(value)));
    }
    if let Some((start, end)) = sub.split_once([':', '-'])
        && digits(start)
        && (end.is_empty() || digits(end))
    {
        let start = start.parse().unwrap_or(usize::MAX);
        let end = (!end.is_empty()).then(|| end.parse().unwrap_or(usize::MAX));
        return (expr, Some(Subscript::Range(start, end)));
    }
    (term, None)
}

/// `text` as an error shows it: its first 100 characters, control characters escaped.
fn shown(text: &str) -> String {
    let text = crate::source::escape_control(text);
    match text.char_indices().nth(100) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.into_owned(),
    }
}

/// Python's `fnmatch.translate`: `*`, `?`, `[seq]` and `[!seq]`, the whole name.
fn glob_regex(glob: &str) -> Regex {
    let mut re = String::from("^(?:");
    let chars: Vec<char> = glob.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            '[' => {
                let mut j = i + 1;
                if chars.get(j) == Some(&'!') {
                    j += 1;
                }
                if chars.get(j) == Some(&']') {
                    j += 1;
                }
                while j < chars.len() && chars[j] != ']' {
                    j += 1;
                }
                if j >= chars.len() {
                    re.push_str("\\[");
                } else {
                    let mut set: String = chars[i + 1..j].iter().collect();
                    if let Some(rest) = set.strip_prefix('!') {
                        set = format!("^{rest}");
                    }
                    let set = set.replace('\\', "\\\\").replace('[', "\\[");
                    re.push('[');
                    re.push_str(&set);
                    re.push(']');
                    i = j;
                }
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    re.push_str(")$");
    // Every piece is escaped or a valid class, so this compiles; a class it cannot read
    // (such as a reversed range) matches nothing.
    Regex::new(&re).unwrap_or_else(|_| Regex::new("[^\\s\\S]").expect("static"))
}

/// The terms of a pattern, as ansible-core's `split_host_pattern`.
fn split(pattern: &str) -> Vec<String> {
    let parts: Vec<String> = if pattern.contains(',') {
        pattern.split(',').map(String::from).collect()
    } else if is_one_address(pattern.trim()) {
        vec![pattern.to_string()]
    } else {
        let mut parts = Vec::new();
        let mut current = String::new();
        let mut depth = 0;
        for c in pattern.chars() {
            match c {
                '[' => depth += 1,
                ']' => depth = (depth - 1).max(0),
                // As ansible-core's `re.findall`: whitespace separates terms too, so a
                // retry file given as `--limit "$(cat hosts)"` is one term a line.
                ':' if depth == 0 => {
                    parts.push(std::mem::take(&mut current));
                    continue;
                }
                c if c.is_whitespace() && depth == 0 => {
                    parts.push(std::mem::take(&mut current));
                    continue;
                }
                _ => {}
            }
            current.push(c);
        }
        parts.push(current);
        parts
    };
    parts
        .into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Whether a pattern without commas is one host address (a name or IPv4 address with
/// optional `[a:b]` ranges and `:port`, an IPv6 address, or `[address]:port`), whose colons
/// separate nothing.
fn is_one_address(pattern: &str) -> bool {
    static FORMS: std::sync::OnceLock<[Regex; 3]> = std::sync::OnceLock::new();
    let forms = FORMS.get_or_init(|| {
        [
            Regex::new(
                r"^(?:[A-Za-z0-9_.-]|\[[A-Za-z0-9_-]*:[A-Za-z0-9_-]*(?::[0-9]+)?\])+(?::[0-9]+)?$",
            )
            .expect("static"),
            Regex::new(r"^[0-9A-Fa-f]*:[0-9A-Fa-f]*:[0-9A-Fa-f:.]*$").expect("static"),
            Regex::new(r"^\[[^\]]+\](?::[0-9]+)?$").expect("static"),
        ]
    });
    forms.iter().any(|f| f.is_match(pattern))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inventory() -> Inventory {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("lbctl-limit-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("hosts");
        std::fs::write(
            &file,
            "[haproxy_servers]\nlb1\nlb2\nlb3\n[workers]\nw2\nw1\n[k8s:children]\nworkers\n",
        )
        .unwrap();
        Inventory::load(&[file]).unwrap()
    }

    fn hosts(pattern: &str) -> Vec<String> {
        Limit::parse(pattern)
            .unwrap()
            .select(&inventory())
            .unwrap()
            .hosts
    }

    #[test]
    fn terms_split_as_ansible_splits_them() {
        assert_eq!(split("lb1,lb2"), ["lb1", "lb2"]);
        assert_eq!(split(" lb1 , lb2 "), ["lb1", "lb2"]);
        assert_eq!(split("all:!lb3"), ["all", "!lb3"]);
        assert_eq!(split("lb[1:2]"), ["lb[1:2]"]);
        assert_eq!(split("g[1:2]:&k8s"), ["g[1:2]", "&k8s"]);
        assert_eq!(split("a:b,c"), ["a:b", "c"]);
        assert_eq!(split("fe80::1"), ["fe80::1"]);
        assert_eq!(split("lb1 lb2\nlb3:!w1"), ["lb1", "lb2", "lb3", "!w1"]);
    }

    #[test]
    fn hosts_groups_globs_and_operators() {
        assert_eq!(hosts("lb3"), ["lb3"]);
        assert_eq!(hosts("all:!lb1"), ["lb2", "lb3", "w2", "w1"]);
        assert_eq!(hosts("!lb1:!k8s"), ["lb2", "lb3"]);
        assert_eq!(hosts("lb1,lb2"), ["lb1", "lb2"]);
        assert_eq!(hosts("haproxy_servers:&~lb[23]"), ["lb2", "lb3"]);
        assert_eq!(hosts("haproxy_servers:&lb[23]"), Vec::<String>::new());
        assert_eq!(hosts("lb*:&k8s"), Vec::<String>::new());
        assert_eq!(hosts("w?"), ["w2", "w1"]);
        assert_eq!(hosts("~lb[13]"), ["lb1", "lb3"]);
        assert_eq!(hosts("k8s"), ["w2", "w1"]);
        assert_eq!(hosts("k8s[0]"), ["w2"]);
        assert_eq!(hosts("all[3:]"), ["w2", "w1"]);
    }

    #[test]
    fn subscripts_count_a_groups_hosts_and_a_bare_range_is_a_host_range() {
        assert_eq!(hosts("haproxy_servers[0]"), ["lb1"]);
        assert_eq!(hosts("haproxy_servers[-1]"), ["lb3"]);
        assert_eq!(hosts("haproxy_servers[1:2]"), ["lb2", "lb3"]);
        assert_eq!(hosts("haproxy_servers[1:]"), ["lb2", "lb3"]);
        assert_eq!(hosts("haproxy_servers[0:0]"), ["lb1"]);
        assert_eq!(hosts("lb[1:2]"), ["lb1", "lb2"]);
        assert!(matches!(
            Limit::parse("haproxy_servers[7]")
                .unwrap()
                .select(&inventory()),
            Err(InputError::LimitSubscript { .. })
        ));
    }

    #[test]
    fn a_term_matching_nothing_is_reported_and_ignored() {
        let s = Limit::parse("lb1,lb9")
            .unwrap()
            .select(&inventory())
            .unwrap();
        assert_eq!(s.hosts, ["lb1"]);
        assert_eq!(s.unmatched, ["lb9"]);
        assert!(Limit::parse(" , ").is_err());
        assert!(Limit::parse("~(").is_err());
        assert!(Limit::parse("!").is_err());
    }

    /// 20 terms `~[\p{L}\p{N}]{199}` took 8.7 s, 200 more than a minute: each was compiled
    /// twice, up to 10 MiB; now all of them share that.
    #[test]
    fn regex_terms_share_one_compile_budget() {
        let started = std::time::Instant::now();
        let pattern = vec![r"~[\p{L}\p{N}]{199}"; 200].join(",");
        let e = Limit::parse(&pattern).unwrap_err().to_string();
        assert!(
            e.contains("too large") && e.contains("200 `~` terms"),
            "{e}"
        );
        let elapsed = started.elapsed();
        assert!(elapsed < std::time::Duration::from_secs(2), "{elapsed:?}");
        assert_eq!(hosts("~lb[12],~w"), ["lb1", "lb2", "w2", "w1"]);
        assert_eq!(hosts("haproxy_servers:!~lb[12]"), ["lb3"]);
    }

    #[test]
    fn a_control_character_is_refused_and_never_echoed() {
        assert_eq!(hosts("lb1\nlb2"), ["lb1", "lb2"]);
        let e = Limit::parse("lb1\nlb2,lb3").unwrap_err().to_string();
        assert!(e.contains(r"control character '\n'"), "{e}");
        assert!(!e.contains('\n'), "{e}");
        let e = Limit::parse("lb1,\u{1b}[2J").unwrap_err().to_string();
        assert!(!e.contains('\u{1b}'), "{e}");
    }

    /// A pattern of 200,000 `[` took 17 s, an 18 MB one 1.9 GB: limits are refused by size
    /// first, and their errors show the start of the pattern only.
    #[test]
    fn oversized_patterns_are_refused_before_any_matching() {
        for pattern in [
            "[".repeat(200_000),
            "x*".repeat(600),
            vec!["lb1"; 20_000].join(","),
        ] {
            let e = Limit::parse(&pattern).unwrap_err().to_string();
            assert!(e.len() < 400, "{e}");
            assert!(
                e.contains("longer than 1024 bytes") || e.contains("more than 10000 terms"),
                "{e}"
            );
        }
        let dir = std::env::temp_dir().join(format!("lbctl-limit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("retry");
        std::fs::write(&file, "lb1\n".repeat(10_001)).unwrap();
        let e = Limit::parse(&format!("@{}", file.display())).unwrap_err();
        assert!(e.to_string().contains("more than 10000 terms"), "{e}");
        std::fs::write(&file, "lb1\n".repeat(10_000)).unwrap();
        assert!(Limit::parse(&format!("@{}", file.display())).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
