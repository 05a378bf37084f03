//! Standard base64 (RFC 4648, padded), the dialect of `base64 -w0` and `base64 -d`: the
//! encoding of every free-form field between lbctl and its remote scripts, of `!!binary`
//! YAML, and of Ansible's `b64encode` / `b64decode` filters.
//!
//! The `base64` crate does the work; this fixes its dialect in one place. Trailing bits are
//! allowed, as `base64 -d` and Python allow them.

use base64::{
    Engine as _, alphabet,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
};

const STANDARD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

pub fn encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// `None` when `text` is not valid padded base64.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    STANDARD.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::{decode, encode};

    #[test]
    fn round_trips_every_length_and_byte() {
        let bytes: Vec<u8> = (0..=255).collect();
        for len in 0..bytes.len() {
            let encoded = encode(&bytes[..len]);
            assert_eq!(decode(&encoded).as_deref(), Some(&bytes[..len]));
        }
        assert_eq!(encode(b"lbctl"), "bGJjdGw=");
        assert_eq!(decode("bGJjdGw"), None);
        assert_eq!(decode("bG=jdGw="), None);
        // non-zero trailing bits, as `base64 -d` and Python's b64decode accept them
        assert_eq!(decode("bGJjdGx=").as_deref(), Some(&b"lbctl"[..]));
    }
}
