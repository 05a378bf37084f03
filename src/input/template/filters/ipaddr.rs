//! The `ipaddr` family of filters (ansible.utils): addresses and networks, and their parts,
//! with the results ansible.utils gives (a query that does not apply is `None`, a value that
//! is no address `False`; `'10.0.0.5/24' | ipaddr('net')` is `None`, it is not a network).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use minijinja::{Error, ErrorKind, Value, value::ValueKind};

/// An address with its prefix, as netaddr's `IPNetwork` holds it (host bits kept).
#[derive(Debug, Clone, Copy)]
struct Net {
    addr: u128,
    prefix: u32,
    v6: bool,
}

/// How the value was written: an address alone prints as an address, `a/p` as a network.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Written {
    Address,
    Network,
}

impl Net {
    fn bits(self) -> u32 {
        if self.v6 { 128 } else { 32 }
    }

    fn mask(self) -> u128 {
        let host = self.bits() - self.prefix;
        let all = if self.v6 {
            u128::MAX
        } else {
            u128::from(u32::MAX)
        };
        if host >= 128 {
            0
        } else {
            all & !((1u128 << host) - 1)
        }
    }

    fn hostmask(self) -> u128 {
        let all = if self.v6 {
            u128::MAX
        } else {
            u128::from(u32::MAX)
        };
        all & !self.mask()
    }

    fn network(self) -> u128 {
        self.addr & self.mask()
    }

    fn broadcast(self) -> Option<u128> {
        (self.bits() - self.prefix > 1).then(|| self.network() | self.hostmask())
    }

    /// How many addresses the network holds (saturating at `u128::MAX` for `::/0`).
    fn size(self) -> u128 {
        1u128
            .checked_shl(self.bits() - self.prefix)
            .unwrap_or(u128::MAX)
    }

    fn text(self, n: u128) -> String {
        if self.v6 {
            v6_text(n)
        } else {
            Ipv4Addr::from(n as u32).to_string()
        }
    }

    fn ip(self) -> String {
        self.text(self.addr)
    }

    fn with_prefix(self, n: u128) -> String {
        format!("{}/{}", self.text(n), self.prefix)
    }

    /// Not in IANA's special-purpose blocks marked not globally reachable (netaddr's
    /// `is_global`).
    fn is_global(self) -> bool {
        let within = |blocks: &[(u128, u32)]| {
            blocks.iter().any(|&(net, prefix)| {
                let n = Net {
                    addr: net,
                    prefix,
                    v6: self.v6,
                };
                self.addr & n.mask() == net
            })
        };
        if self.v6 {
            !within(V6_NOT_GLOBAL) || within(V6_GLOBAL_EXCEPTIONS)
        } else {
            !within(V4_NOT_GLOBAL) || within(V4_GLOBAL_EXCEPTIONS)
        }
    }

    fn is_multicast(self) -> bool {
        if self.v6 {
            self.addr >> 120 == 0xff
        } else {
            self.addr >> 28 == 0xe
        }
    }

    fn is_loopback(self) -> bool {
        if self.v6 {
            self.addr == 1
        } else {
            self.addr >> 24 == 127
        }
    }
}

/// An IPv6 address as netaddr (the C library's `inet_ntop`) writes it: Rust's form, except
/// that an IPv4-compatible address keeps its dotted tail (`::10.0.0.1`).
fn v6_text(n: u128) -> String {
    if n >> 32 == 0 && n >> 16 != 0 {
        format!("::{}", Ipv4Addr::from(n as u32))
    } else {
        Ipv6Addr::from(n).to_string()
    }
}

const fn v4(a: u8, b: u8, c: u8, d: u8) -> u128 {
    ((a as u128) << 24) | ((b as u128) << 16) | ((c as u128) << 8) | d as u128
}

const fn v6(segments: [u16; 8]) -> u128 {
    let mut n = 0u128;
    let mut i = 0;
    while i < 8 {
        n = (n << 16) | segments[i] as u128;
        i += 1;
    }
    n
}

const V4_NOT_GLOBAL: &[(u128, u32)] = &[
    (v4(0, 0, 0, 0), 8),
    (v4(10, 0, 0, 0), 8),
    (v4(100, 64, 0, 0), 10),
    (v4(127, 0, 0, 0), 8),
    (v4(169, 254, 0, 0), 16),
    (v4(172, 16, 0, 0), 12),
    (v4(192, 0, 0, 0), 24),
    (v4(192, 0, 0, 170), 31),
    (v4(192, 0, 2, 0), 24),
    (v4(192, 168, 0, 0), 16),
    (v4(198, 18, 0, 0), 15),
    (v4(198, 51, 100, 0), 24),
    (v4(203, 0, 113, 0), 24),
    (v4(240, 0, 0, 0), 4),
    (v4(255, 255, 255, 255), 32),
];

const V4_GLOBAL_EXCEPTIONS: &[(u128, u32)] = &[(v4(192, 0, 0, 9), 32), (v4(192, 0, 0, 10), 32)];

const V6_NOT_GLOBAL: &[(u128, u32)] = &[
    (1, 128),
    (0, 128),
    (v6([0, 0, 0, 0, 0, 0xffff, 0, 0]), 96),
    (v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0]), 48),
    (v6([0x100, 0, 0, 0, 0, 0, 0, 0]), 64),
    (v6([0x2001, 0, 0, 0, 0, 0, 0, 0]), 23),
    (v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0]), 32),
    (v6([0x2002, 0, 0, 0, 0, 0, 0, 0]), 16),
    (v6([0xfc00, 0, 0, 0, 0, 0, 0, 0]), 7),
    (v6([0xfe80, 0, 0, 0, 0, 0, 0, 0]), 10),
];

const V6_GLOBAL_EXCEPTIONS: &[(u128, u32)] = &[
    (v6([0x2001, 1, 0, 0, 0, 0, 0, 1]), 128),
    (v6([0x2001, 1, 0, 0, 0, 0, 0, 2]), 128),
    (v6([0x2001, 3, 0, 0, 0, 0, 0, 0]), 32),
    (v6([0x2001, 4, 0x112, 0, 0, 0, 0, 0]), 48),
    (v6([0x2001, 0x20, 0, 0, 0, 0, 0, 0]), 28),
    (v6([0x2001, 0x30, 0, 0, 0, 0, 0, 0]), 28),
];

/// An address as a number: IPv4 when it fits (and the filter allows it), else IPv6.
fn from_number(n: u128, prefix: Option<u32>, family: Option<u8>) -> Option<Net> {
    let fits_v4 = n <= u128::from(u32::MAX) && family != Some(6);
    let v6 = !fits_v4;
    let bits = if v6 { 128 } else { 32 };
    let prefix = prefix.unwrap_or(bits);
    (prefix <= bits).then_some(Net {
        addr: n,
        prefix,
        v6,
    })
}

/// Reads a value as ansible.utils does: a number is an address; `a` an address, `a/p` a
/// network (host bits kept); `n/p` a numeric network. A number stands for `address/prefix`
/// where a query gives the value back.
fn parse(value: &Value, family: Option<u8>) -> Option<(Net, Written, Value)> {
    let text = match value.kind() {
        ValueKind::Number => value.to_string(),
        ValueKind::String => value.as_str().unwrap_or_default().to_string(),
        _ => return None,
    };
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let n = from_number(text.parse().ok()?, None, family)?;
        return Some((n, Written::Address, Value::from(n.with_prefix(n.addr))));
    }
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text.as_str(), None),
    };
    let written = if prefix.is_some() {
        Written::Network
    } else {
        Written::Address
    };
    let prefix: Option<u32> = match prefix {
        Some(p) => Some(p.parse().ok()?),
        None => None,
    };
    let mut normalized = value.clone();
    let net = match addr.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => Net {
            addr: u128::from(u32::from(a)),
            prefix: prefix.unwrap_or(32),
            v6: false,
        },
        Ok(IpAddr::V6(a)) => Net {
            addr: u128::from(a),
            prefix: prefix.unwrap_or(128),
            v6: true,
        },
        Err(_) if prefix.is_some() && addr.bytes().all(|b| b.is_ascii_digit()) => {
            let n = from_number(addr.parse().ok()?, prefix, None)?;
            normalized = Value::from(n.with_prefix(n.addr));
            n
        }
        Err(_) => return None,
    };
    (net.prefix <= net.bits()).then_some((net, written, normalized))
}

/// `value | ipmath(amount)` (ansible.utils): the address `amount` further on, or back when it
/// is negative; `a/p` counts from its address `a`. A result past either end of the family's
/// addresses is an error, as netaddr's.
pub(super) fn ipmath(value: &Value, amount: i64) -> Result<Value, Error> {
    let invalid = || {
        Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "You must pass a valid IP address; {} is invalid",
                super::python_str(value)
            ),
        )
    };
    let text = value.as_str().ok_or_else(invalid)?;
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p.parse::<u32>().map_err(|_| invalid())?)),
        None => (text, None),
    };
    let net = match addr.parse::<IpAddr>().map_err(|_| invalid())? {
        IpAddr::V4(a) => Net {
            addr: u128::from(u32::from(a)),
            prefix: prefix.unwrap_or(32),
            v6: false,
        },
        IpAddr::V6(a) => Net {
            addr: u128::from(a),
            prefix: prefix.unwrap_or(128),
            v6: true,
        },
    };
    if net.prefix > net.bits() {
        return Err(invalid());
    }
    let max = if net.v6 {
        u128::MAX
    } else {
        u128::from(u32::MAX)
    };
    let moved = if amount >= 0 {
        net.addr.checked_add(u128::from(amount.unsigned_abs()))
    } else {
        net.addr.checked_sub(u128::from(amount.unsigned_abs()))
    };
    match moved.filter(|&n| n <= max) {
        Some(n) => Ok(Value::from(net.text(n))),
        None => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("ipmath: {text} + {amount} is outside the valid IP address boundary"),
        )),
    }
}

/// `value | ipaddr(query)` (or `ipv4`/`ipv6` with `family`): a list is filtered item by item.
pub(super) fn ipaddr(
    value: &Value,
    query: Option<&str>,
    family: Option<u8>,
) -> Result<Value, Error> {
    let query = query.unwrap_or("");
    if matches!(value.kind(), ValueKind::Seq | ValueKind::Iterable) {
        let mut out = Vec::new();
        for item in value.try_iter()? {
            let r = ipaddr(&item, Some(query), family)?;
            if r.is_true() {
                out.push(r);
            }
        }
        return Ok(Value::from(out));
    }
    let Some((v, written, value)) = parse(value, family) else {
        return Ok(Value::from(false));
    };
    let value = &value;
    if family.is_some_and(|f| (f == 6) != v.v6) {
        return Ok(Value::from(false));
    }
    let none = Value::from(());
    let text = |s: String| Value::from(s);
    let multi = v.size() > 1;
    let is_network_address = v.addr == v.network();
    Ok(match query {
        "" => match written {
            Written::Address => text(v.ip()),
            Written::Network => text(v.with_prefix(v.addr)),
        },
        "address" | "ip" => {
            if !multi || !is_network_address || v.broadcast().is_none() || v.v6 {
                text(v.ip())
            } else {
                none
            }
        }
        "host" => {
            if !multi || !is_network_address || v.broadcast().is_none() {
                text(v.with_prefix(v.addr))
            } else {
                none
            }
        }
        "address/prefix" | "host/prefix" | "gateway" | "gw" | "hostnet" | "router" => {
            if v.size() > 2 && (is_network_address || Some(v.addr) == v.broadcast()) {
                Value::from(false)
            } else {
                text(v.with_prefix(v.addr))
            }
        }
        "prefix" => Value::from(v.prefix),
        "netmask" => text(v.text(v.mask())),
        "hostmask" | "wildcard" => text(v.text(v.hostmask())),
        "network" | "network_id" => text(v.text(v.network())),
        "broadcast" => match v.broadcast() {
            Some(b) if v.size() > 2 => text(v.text(b)),
            _ => none,
        },
        "net" => {
            if multi && is_network_address {
                text(v.with_prefix(v.network()))
            } else {
                none
            }
        }
        "subnet" | "network/prefix" => text(v.with_prefix(v.network())),
        "cidr" => text(v.with_prefix(v.addr)),
        "network_netmask" => text(format!("{} {}", v.text(v.network()), v.text(v.mask()))),
        "network_wildcard" => text(format!("{} {}", v.text(v.network()), v.text(v.hostmask()))),
        "size" => Value::from(v.size()),
        "size_usable" => Value::from(match v.size() {
            1 => 0,
            2 => 2,
            n => n - 2,
        }),
        "type" => text(
            if multi && is_network_address {
                "network"
            } else {
                "address"
            }
            .into(),
        ),
        "version" => Value::from(if v.v6 { 6 } else { 4 }),
        "int" => match written {
            Written::Address => Value::from(v.addr),
            Written::Network => text(format!("{}/{}", v.addr, v.prefix)),
        },
        "first_usable" | "last_usable" if written == Written::Address => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                "ipaddr: not a network address",
            ));
        }
        "first_usable" | "last_usable" => {
            let (first, last) = match v.size() {
                1 => return Ok(none),
                2 => (v.network(), v.network() | v.hostmask()),
                _ => (v.network() + 1, (v.network() | v.hostmask()) - 1),
            };
            text(v.text(if query == "first_usable" { first } else { last }))
        }
        "private" => {
            if v.is_global() {
                none
            } else {
                value.clone()
            }
        }
        "public" => {
            let n = Net {
                prefix: v.bits(),
                ..v
            };
            let mask_like = |x: u128| {
                let all = if v.v6 {
                    u128::MAX
                } else {
                    u128::from(u32::MAX)
                };
                let netmask = (x ^ all).wrapping_add(1);
                let hostmask = x.wrapping_add(1);
                netmask & netmask.wrapping_sub(1) == 0 || hostmask & hostmask.wrapping_sub(1) == 0
            };
            if !n.is_multicast() && n.is_global() && !n.is_loopback() && !mask_like(v.addr) {
                value.clone()
            } else {
                none
            }
        }
        "loopback" | "lo" => {
            if v.is_loopback() {
                value.clone()
            } else {
                none
            }
        }
        "multicast" => {
            if v.is_multicast() {
                value.clone()
            } else {
                none
            }
        }
        "unicast" => {
            if v.is_multicast() {
                none
            } else {
                value.clone()
            }
        }
        "bool" => Value::from(true),
        "wrap" if v.v6 => match written {
            Written::Address => text(format!("[{}]", v.ip())),
            Written::Network => text(format!("[{}]/{}", v.ip(), v.prefix)),
        },
        "wrap" => value.clone(),
        q => index_or_lookup(v, written, value, q)?,
    })
}

/// A numeric query (`'1'`, `'-1'`: an address of the network with its prefix), or a network
/// (`'10.0.0.0/8'`: the value when it lies within).
fn index_or_lookup(v: Net, written: Written, value: &Value, query: &str) -> Result<Value, Error> {
    if let Some((within, _, _)) =
        parse(&Value::from(query), None).filter(|(_, w, _)| *w == Written::Network)
    {
        let inside = within.v6 == v.v6
            && v.prefix >= within.prefix
            && v.network() & within.mask() == within.network();
        return Ok(if inside {
            value.clone()
        } else {
            Value::from(())
        });
    }
    let Ok(index) = query.parse::<i128>() else {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("ipaddr: unknown filter type: {query}"),
        ));
    };
    if v.size() == 1 {
        return Ok(Value::from(match written {
            Written::Address => v.ip(),
            Written::Network => v.with_prefix(v.addr),
        }));
    }
    let size = i128::try_from(v.size()).unwrap_or(i128::MAX);
    let at = if index < 0 { size + index } else { index };
    if at < 0 || at >= size {
        return Ok(Value::from(false));
    }
    Ok(Value::from(v.with_prefix(v.network() + at as u128)))
}

/// `value | ipwrap(query)`: IPv6 addresses (of those `ipaddr(query)` keeps) in brackets, for
/// `address:port`; anything else as it is.
pub(super) fn ipwrap(value: &Value, query: Option<&str>) -> Result<Value, Error> {
    let wrap = |item: &Value| -> Result<Value, Error> {
        let kept = ipaddr(item, query, None)?;
        if kept.is_true() {
            ipaddr(&kept, Some("wrap"), None)
        } else {
            Ok(item.clone())
        }
    };
    if matches!(value.kind(), ValueKind::Seq | ValueKind::Iterable) {
        return Ok(Value::from(
            value
                .try_iter()?
                .map(|item| wrap(&item))
                .collect::<Result<Vec<_>, _>>()?,
        ));
    }
    wrap(value)
}

#[cfg(test)]
mod tests {
    use minijinja::Value;

    use super::ipmath;

    #[test]
    fn ipmath_moves_within_the_family_or_says_why_not() {
        let at = |v: &str, n| {
            ipmath(&Value::from(v), n)
                .map(|v| v.to_string())
                .map_err(|e| e.to_string())
        };
        assert_eq!(at("10.0.0.255", 1).as_deref(), Ok("10.0.1.0"));
        assert_eq!(at("10.0.0.5/24", -5).as_deref(), Ok("10.0.0.0"));
        assert_eq!(at("fd00::ffff", 1).as_deref(), Ok("fd00::1:0"));
        let past = at("255.255.255.255", 1).unwrap_err();
        assert!(past.contains("boundary"), "{past}");
        assert!(at("0.0.0.0", -1).is_err());
        assert!(at("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1).is_err());
        for bad in ["lb1", "10.0.0.1/33", "10.0.0.1/x", ""] {
            let e = at(bad, 1).unwrap_err();
            assert!(e.contains("valid IP address"), "{bad}: {e}");
        }
        assert!(ipmath(&Value::from(5), 1).is_err());
    }
}
