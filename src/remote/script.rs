//! How a script is put together: its header of shell variables, the shared functions of
//! `common.sh`, its body, and the call to its `main`.

use std::net::IpAddr;

const COMMON: &str = include_str!("common.sh");

pub(crate) fn finish_script(header: String, body: &str) -> String {
    // Commands must not read the rest of the script from stdin: main only starts once the
    // shell has read every definition, and runs with stdin closed.
    finish_script_with(header, body, "main </dev/null\n")
}

pub(crate) fn finish_script_with(header: String, body: &str, call: &str) -> String {
    let mut script = header;
    script.push_str(COMMON);
    script.push_str(body);
    script.push_str(call);
    script
}

/// The line a script run by [`first_part`] is followed by, however it ended.
pub const PART_END: &str = "@@lbctl-part-end";

/// `script` as the first of two sent to one shell at once (one round trip for both): run in
/// a subshell, so that its variables and functions are gone for the second, and followed by
/// [`PART_END`] on stdout, so that its report can be read on its own. Not a frame: a report
/// of the second script is read from after it.
pub fn first_part(script: &str) -> String {
    format!("(\n{script})\necho {PART_END}\n")
}

/// A fetch script (made with `matches_to_fd3`) and a held apply script made for every file
/// (`speculative_apply_script`), sent to one shell at once: the fetch runs and reports as
/// [`first_part`] has it, followed by [`PART_END`]; then, on a host where lbctl's admin
/// record (`record`) holds nothing, the apply script starts right away, without waiting for
/// lbctl, to stage and check every file the fetch did not find already holding what lbctl
/// would write, after a line [`SPECULATION_STAGING`]. Where the record holds something, the
/// script would carry the wrong admin state (lbctl builds it from every host's record): it
/// does not run, and the line [`SPECULATION_DECLINED`] says the shell waits for the next
/// script, as after [`first_part`]. The fetch runs in a command substitution (its variables
/// and functions gone after it) with its stdout on the channel's, and fd 3 on the
/// substitution: what it names there, the matching files, is what the apply script leaves
/// out (`LBCTL_MATCHED`).
pub fn fetch_then(fetch: &str, then: &str, record: &str) -> String {
    format!(
        "lbctl_fetch() {{\n{fetch}}}\n{{ LBCTL_MATCHED=$(lbctl_fetch 3>&1 >&4); }} 4>&1\nunset -f lbctl_fetch\necho {PART_END}\nif [ -s {record} ]; then\necho {SPECULATION_DECLINED}\nelse\necho {SPECULATION_STAGING}\n{then}fi\n",
        record = quote(record),
    )
}

/// The line after [`fetch_then`]'s [`PART_END`] when its apply script is under way.
pub const SPECULATION_STAGING: &str = "@@lbctl-part-staging";

/// The line after [`fetch_then`]'s [`PART_END`] when its apply script did not run.
pub const SPECULATION_DECLINED: &str = "@@lbctl-part-declined";

/// `text` as one single-quoted shell word.
pub(crate) fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The address of a VIP as `ip -o addr show` prints it: without a prefix length, and in
/// canonical form for IPv6.
pub(crate) fn address_of(vip: &str) -> String {
    let address = vip.split('/').next().unwrap_or(vip);
    match address.parse::<IpAddr>() {
        Ok(address) => address.to_string(),
        Err(_) => address.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vips_are_compared_the_way_ip_prints_them() {
        assert_eq!(address_of("10.0.0.10/24"), "10.0.0.10");
        assert_eq!(address_of("2001:DB8:0:0::1/64"), "2001:db8::1");
        assert_eq!(address_of("vip.example"), "vip.example");
    }

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(quote("it's"), r"'it'\''s'");
    }
}
