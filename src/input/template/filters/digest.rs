//! Ansible's digests of a value: `hash` (`hash('sha256')`; SHA-1 unless told), `checksum` and
//! `sha1`, `md5`, and `to_uuid` (a UUID of version 5, in Ansible's namespace unless told). A
//! value that is not text is digested as Python prints it (`{{ 123 | md5 }}` is `md5("123")`).
//! The digests are RustCrypto's.

use md5::Md5;
use minijinja::{Error, ErrorKind, Value};
use sha1::Sha1;
use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};

use super::python::{printable, python_str};

/// The namespace of Ansible's `to_uuid` (`UUID_NAMESPACE_ANSIBLE`).
const ANSIBLE_NAMESPACE: [u8; 16] = [
    0x36, 0x1e, 0x6d, 0x51, 0xfa, 0xec, 0x44, 0x4a, 0x90, 0x79, 0x34, 0x13, 0x86, 0xda, 0x8e, 0x2e,
];

/// Python's `hashlib` names lbctl does not digest with, which Ansible would (the others are
/// unknown to both).
const NOT_HERE: &[&str] = &[
    "blake2b",
    "blake2s",
    "sha3_224",
    "sha3_256",
    "sha3_384",
    "sha3_512",
    "sha512_224",
    "sha512_256",
    "shake_128",
    "shake_256",
    "md5-sha1",
    "sm3",
    "ripemd160",
];

/// `value | hash(kind)`: the hex digest of the value's text.
pub(super) fn hash(value: &Value, kind: Option<&str>) -> Result<String, Error> {
    printable(value)?;
    let text = python_str(value);
    let bytes = text.as_bytes();
    let kind = kind.unwrap_or("sha1");
    Ok(match kind.to_ascii_lowercase().as_str() {
        "md5" => hex(&Md5::digest(bytes)),
        "sha1" => hex(&Sha1::digest(bytes)),
        "sha224" => hex(&Sha224::digest(bytes)),
        "sha256" => hex(&Sha256::digest(bytes)),
        "sha384" => hex(&Sha384::digest(bytes)),
        "sha512" => hex(&Sha512::digest(bytes)),
        known if NOT_HERE.contains(&known) => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!(
                    "hash type {kind} is not supported by lbctl (md5, sha1, sha224, sha256, sha384 and sha512 are)"
                ),
            ));
        }
        _ => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("unsupported hash type {kind}"),
            ));
        }
    })
}

/// `value | to_uuid(namespace=...)`: Python's `uuid.uuid5(namespace, text)`.
pub(super) fn to_uuid(value: &Value, namespace: Option<&str>) -> Result<String, Error> {
    printable(value)?;
    let namespace = match namespace {
        None => ANSIBLE_NAMESPACE,
        Some(text) => parse_uuid(text).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!(
                    "Invalid value '{text}' for 'namespace': badly formed hexadecimal UUID string"
                ),
            )
        })?,
    };
    let mut sha = Sha1::new();
    sha.update(namespace);
    sha.update(python_str(value).as_bytes());
    let digest = sha.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    // version 5, and the variant of RFC 4122
    bytes[6] = (bytes[6] & 0x0f) | 0x50;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex(&bytes);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

/// A UUID as Python's `uuid.UUID(text)` reads it: 32 hex digits, hyphens anywhere, in braces
/// or after `urn:uuid:` if at all.
fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let text = text.replace("urn:", "").replace("uuid:", "");
    let digits: Vec<u8> = text
        .trim_matches(|c| c == '{' || c == '}')
        .bytes()
        .filter(|b| *b != b'-')
        .collect();
    if digits.len() != 32 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut bytes = [0u8; 16];
    for (byte, pair) in bytes.iter_mut().zip(digits.chunks(2)) {
        let pair = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
