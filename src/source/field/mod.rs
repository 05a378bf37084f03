//! Reading typed values out of positioned vars, recording a located diagnostic for every
//! problem instead of stopping at the first.
//!
//! `shape`: mappings (unknown keys, with the closest known one), lists, required keys, the
//! paths diagnostics name; `template_keys`: the keys a user's own templates read, which are
//! theirs, not typos; `values`: strings, numbers, ports, booleans, one of a set; `duration`:
//! HAProxy's time values; `names`: what is written into a config as a name, an address, a
//! host name, a path or a word, and cannot carry a directive with it.

mod duration;
mod names;
mod shape;
mod template_keys;
mod values;

pub use duration::{Duration, duration, parse_duration, positive_duration};
pub use names::{
    abs_path, address, bind_address, cidr, identifier, is_hostname, is_word, legacy_ipv4,
    legacy_ipv4_refused, server_name, word,
};
pub use shape::{Index, Key, entry, join, list, mapping, one_or_many, required, suggest};
pub use template_keys::{template_names, template_reads, with_template_keys};
pub use values::{boolean, int, one_of, port, quote, string};
