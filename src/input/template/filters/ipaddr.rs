//! The `ipaddr` family of filters (ansible.utils): addresses and networks, and their parts.

use std::net::IpAddr;

use minijinja::Value;

/// The `ipaddr` family (ansible.utils): the address if it is one (of `family`), else false;
/// with a query, a part of it: `address`, `prefix`, `netmask`, `network`, `broadcast`,
/// `host` (address/prefix), `net` (network/prefix), `size`, `public`, `private`.
pub(super) fn ipaddr(value: &Value, query: Option<&str>, family: Option<u8>) -> Value {
    let text = value.to_string();
    let (addr_text, prefix_text) = text.split_once('/').unwrap_or((&text, ""));
    let Ok(addr) = addr_text.parse::<IpAddr>() else {
        return Value::from(false);
    };
    let bits: u32 = if addr.is_ipv4() { 32 } else { 128 };
    if family.is_some_and(|f| (f == 4) != addr.is_ipv4()) {
        return Value::from(false);
    }
    let prefix: u32 = if prefix_text.is_empty() {
        bits
    } else {
        match prefix_text.parse::<u32>() {
            Ok(p) if p <= bits => p,
            _ => return Value::from(false),
        }
    };
    let as_int = match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    };
    let mask: u128 = if prefix == 0 {
        0
    } else {
        (u128::MAX << (128 - prefix)) >> (128 - bits)
    };
    let full: u128 = if bits == 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    };
    let to_addr = |n: u128| -> String {
        if addr.is_ipv4() {
            std::net::Ipv4Addr::from(n as u32).to_string()
        } else {
            std::net::Ipv6Addr::from(n).to_string()
        }
    };
    let network = as_int & mask;
    match query.unwrap_or("") {
        "" => Value::from(text.clone()),
        "address" => Value::from(addr.to_string()),
        "prefix" => Value::from(prefix),
        "netmask" => Value::from(to_addr(mask)),
        "network" => Value::from(to_addr(network)),
        "broadcast" => Value::from(to_addr(network | (!mask & full))),
        "host" => Value::from(format!("{addr}/{prefix}")),
        "net" | "subnet" | "cidr" => Value::from(format!("{}/{prefix}", to_addr(network))),
        "size" => Value::from(1u128 << (bits - prefix)),
        "private" => {
            let private = match addr {
                IpAddr::V4(a) => a.is_private(),
                IpAddr::V6(a) => (a.segments()[0] & 0xfe00) == 0xfc00,
            };
            if private {
                Value::from(text.clone())
            } else {
                Value::from(false)
            }
        }
        "public" => {
            let private = match addr {
                IpAddr::V4(a) => a.is_private() || a.is_loopback() || a.is_link_local(),
                IpAddr::V6(a) => (a.segments()[0] & 0xfe00) == 0xfc00 || a.is_loopback(),
            };
            if private {
                Value::from(false)
            } else {
                Value::from(text.clone())
            }
        }
        _ => Value::from(false),
    }
}
