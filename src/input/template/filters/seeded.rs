//! Ansible's `random` and `shuffle` with a seed (`{{ 60 | random(seed=inventory_hostname) }}`,
//! the idiom for a value that differs between hosts and stays the same between runs): the same
//! numbers and orders as Ansible, which draws them from Python's `random.Random(seed)`, a
//! Mersenne Twister (MT19937) seeded as Python seeds it.
//!
//! Without a seed, Ansible draws from the system's randomness: every run would render other
//! files, and every plan show a change. lbctl refuses that and says to give a seed.

use minijinja::{
    Error, ErrorKind, Value,
    value::{Kwargs, ValueKind},
};
use sha2::{Digest, Sha512};

use super::python::defined;

/// `end | random(start, step, seed=...)`: a number of `range(start, end, step)`, or an item
/// of a list (a character of a text).
pub(super) fn random(
    end: Value,
    start: Option<Value>,
    step: Option<Value>,
    kw: Kwargs,
) -> Result<Value, Error> {
    let start = super::positional_or_keyword(start, &kw, "start")?;
    let step = super::positional_or_keyword(step, &kw, "step")?;
    let seed: Option<Value> = kw.get("seed")?;
    kw.assert_all_used()?;
    defined(&end)?;
    let mut twister = seeded("random", seed.as_ref())?;
    // as Ansible: a start or step that is not true (none, 0) is the default one
    let given = |v: Option<Value>| v.filter(Value::is_true);
    let (start, step) = (given(start), given(step));
    if let Some(end) = integer(&end)? {
        let start = start.map(|v| whole(&v, "start")).transpose()?.unwrap_or(0);
        let step = step.map(|v| whole(&v, "step")).transpose()?.unwrap_or(1);
        return twister.randrange(start, end, step).map(Value::from);
    }
    let items = sequence(&end)
        .ok_or_else(|| invalid("random can only be used on sequences and integers".into()))?;
    if start.is_some() || step.is_some() {
        return Err(invalid(
            "start and step can only be used with integer values".into(),
        ));
    }
    if items.is_empty() {
        return Err(invalid("Cannot choose from an empty sequence".into()));
    }
    let index = twister.below(items.len() as u64) as usize;
    Ok(items[index].clone())
}

/// `list | shuffle(seed=...)`: the items (a text's characters, a mapping's keys) in the order
/// Python's `Random(seed).shuffle` leaves them.
pub(super) fn shuffle(value: Value, kw: Kwargs) -> Result<Value, Error> {
    let seed: Option<Value> = kw.get("seed")?;
    kw.assert_all_used()?;
    defined(&value)?;
    let Some(mut items) = super::lists::items_of(&value) else {
        // Ansible gives back what it could not make a list of
        return Ok(value);
    };
    if items.len() < 2 {
        // one order only: no seed needed
        return Ok(Value::from(items));
    }
    // as Ansible: a seed that is not true (none, '', 0) is no seed
    let mut twister = seeded("shuffle", seed.as_ref().filter(|s| s.is_true()))?;
    for i in (1..items.len()).rev() {
        let j = twister.below(i as u64 + 1) as usize;
        items.swap(i, j);
    }
    Ok(Value::from(items))
}

/// The twister for `filter`'s seed: a text or a whole number, as Python takes them.
fn seeded(filter: &str, seed: Option<&Value>) -> Result<Twister, Error> {
    let Some(seed) = seed.filter(|s| !s.is_none()) else {
        return Err(invalid(format!(
            "{filter} without a seed gives other values on every run, so every plan would show a change: give it one, as in `{filter}(seed=inventory_hostname)`"
        )));
    };
    if let Some(text) = seed.as_str() {
        // Python: the text's UTF-8 bytes followed by their SHA-512, read as one big-endian
        // integer
        let mut bytes = text.as_bytes().to_vec();
        bytes.extend_from_slice(&Sha512::digest(text.as_bytes()));
        return Ok(Twister::from_key(&words(&bytes)));
    }
    let number = match seed.kind() {
        ValueKind::Bool => Some(i128::from(seed.is_true())),
        ValueKind::Number if seed.is_integer() => i128::try_from(seed.clone()).ok(),
        _ => None,
    };
    let number = number.ok_or_else(|| {
        invalid(format!(
            "{filter}(seed=...) takes a text or a whole number here, not {seed}"
        ))
    })?;
    Ok(Twister::from_key(&words(
        &number.unsigned_abs().to_be_bytes(),
    )))
}

/// A non-negative integer, given as big-endian bytes, as the 32-bit words Python seeds its
/// twister with: least significant first, and as many as its bits need (one for zero).
fn words(big_endian: &[u8]) -> Vec<u32> {
    let mut words: Vec<u32> = big_endian
        .rchunks(4)
        .map(|chunk| {
            chunk
                .iter()
                .fold(0u32, |word, byte| (word << 8) | u32::from(*byte))
        })
        .collect();
    while words.len() > 1 && words.last() == Some(&0) {
        words.pop();
    }
    if words.is_empty() {
        words.push(0);
    }
    words
}

/// `end` as a whole number when it is one (Python's `int`, `bool` included); an error when it
/// is one too large here.
fn integer(end: &Value) -> Result<Option<i64>, Error> {
    match end.kind() {
        ValueKind::Bool => Ok(Some(i64::from(end.is_true()))),
        ValueKind::Number if end.is_integer() => whole(end, "the end").map(Some),
        _ => Ok(None),
    }
}

fn whole(value: &Value, what: &str) -> Result<i64, Error> {
    if value.kind() == ValueKind::Bool {
        return Ok(i64::from(value.is_true()));
    }
    value
        .as_i64()
        .filter(|_| value.is_integer())
        .ok_or_else(|| {
            invalid(format!(
                "random: {what} must be a whole number in 64 bits, not {value}"
            ))
        })
}

/// The items of a list, or the characters of a text (not a mapping's keys: Python's `choice`
/// indexes what it is given).
fn sequence(value: &Value) -> Option<Vec<Value>> {
    match value.kind() {
        ValueKind::Map => None,
        _ => super::lists::items_of(value),
    }
}

/// Python's `a // b`: rounded down.
fn floor_div(a: i128, b: i128) -> i128 {
    let q = a / b;
    if a % b != 0 && (a < 0) != (b < 0) {
        q - 1
    } else {
        q
    }
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, message)
}

/// MT19937, the generator of Python's `random` module, and the draws Python makes with it.
struct Twister {
    state: Box<[u32; N]>,
    next: usize,
}

const N: usize = 624;
const M: usize = 397;

impl Twister {
    /// Seeded with `key` (the reference implementation's `init_by_array`).
    fn from_key(key: &[u32]) -> Twister {
        let mut mt = Box::new([0u32; N]);
        mt[0] = 19_650_218;
        for i in 1..N {
            mt[i] = 1_812_433_253u32
                .wrapping_mul(mt[i - 1] ^ (mt[i - 1] >> 30))
                .wrapping_add(i as u32);
        }
        let (mut i, mut j) = (1usize, 0usize);
        for _ in 0..N.max(key.len()) {
            mt[i] = (mt[i] ^ (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..N - 1 {
            mt[i] = (mt[i] ^ (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1_566_083_941))
                .wrapping_sub(i as u32);
            i += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
        }
        mt[0] = 0x8000_0000;
        Twister { state: mt, next: N }
    }

    fn next_u32(&mut self) -> u32 {
        if self.next >= N {
            let mt = &mut self.state;
            for k in 0..N {
                let y = (mt[k] & 0x8000_0000) | (mt[(k + 1) % N] & 0x7fff_ffff);
                mt[k] = mt[(k + M) % N] ^ (y >> 1) ^ if y & 1 == 1 { 0x9908_b0df } else { 0 };
            }
            self.next = 0;
        }
        let mut y = self.state[self.next];
        self.next += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// Python's `getrandbits(bits)`, for 1 to 64 bits.
    fn bits(&mut self, bits: u32) -> u64 {
        if bits <= 32 {
            return u64::from(self.next_u32() >> (32 - bits));
        }
        let low = u64::from(self.next_u32());
        let high = u64::from(self.next_u32() >> (64 - bits));
        low | (high << 32)
    }

    /// Python's `_randbelow(n)`: a number below `n` (at least 1), drawn until one is.
    fn below(&mut self, n: u64) -> u64 {
        let bits = u64::BITS - n.leading_zeros();
        loop {
            let r = self.bits(bits);
            if r < n {
                return r;
            }
        }
    }

    /// Python's `randrange(start, stop, step)`, its errors included.
    fn randrange(&mut self, start: i64, stop: i64, step: i64) -> Result<i64, Error> {
        let (start, stop, step) = (i128::from(start), i128::from(stop), i128::from(step));
        let width = stop - start;
        let n = match step {
            1 if width > 0 => width,
            1 => {
                return Err(invalid(format!(
                    "empty range for randrange() ({start}, {stop}, {width})"
                )));
            }
            0 => return Err(invalid("zero step for randrange()".into())),
            s if s > 0 => floor_div(width + s - 1, s),
            s => floor_div(width + s + 1, s),
        };
        if n <= 0 {
            return Err(invalid("empty range for randrange()".into()));
        }
        let n = u64::try_from(n).map_err(|_| invalid("random: the range is too wide".into()))?;
        let drawn = start + step * i128::from(self.below(n));
        i64::try_from(drawn).map_err(|_| invalid("random: the range is too wide".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::Twister;

    /// The reference implementation's own check: seeded with the key [0x123, 0x234, 0x345,
    /// 0x456], its first outputs.
    #[test]
    fn the_twister_is_the_reference_one() {
        let mut t = Twister::from_key(&[0x123, 0x234, 0x345, 0x456]);
        let first: Vec<u32> = (0..5).map(|_| t.next_u32()).collect();
        assert_eq!(
            first,
            [
                1_067_595_299,
                955_945_823,
                477_289_528,
                4_107_218_783,
                4_228_976_476
            ]
        );
    }
}
