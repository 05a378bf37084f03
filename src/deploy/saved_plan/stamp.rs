//! What a plan file says it is (`"format"` and `"version"`), read before anything else in
//! it, and the rule that it says each thing once. Both are read straight from the file's
//! bytes into what they fill: nothing builds a tree of the whole document first (a tree of
//! JSON values costs 16 times the text it came from), and an error says where in the file.

use std::{collections::BTreeMap, fmt, marker::PhantomData};

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// The stamp of a plan file; every other field is passed over unread.
#[derive(serde::Deserialize)]
pub(super) struct Stamp {
    pub format: Option<Written>,
    pub version: Option<Written>,
}

/// One value of the stamp, as the file writes it.
pub(super) enum Written {
    Number(u64),
    Text(String),
    /// Anything else, described for the user (`-1`, `1.0`, `a list`).
    Other(String),
}

impl Written {
    pub fn is_text(&self, text: &str) -> bool {
        matches!(self, Written::Text(t) if t == text)
    }

    pub fn number(&self) -> Option<u64> {
        match self {
            Written::Number(n) => Some(*n),
            _ => None,
        }
    }
}

/// The value as the user's message shows it: a text quoted and cut at 40 characters.
impl fmt::Display for Written {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Written::Number(n) => write!(f, "{n}"),
            Written::Text(t) if t.chars().count() > 40 => {
                let start: String = t.chars().take(40).collect();
                write!(f, "{start:?}...")
            }
            Written::Text(t) => write!(f, "{t:?}"),
            Written::Other(what) => f.write_str(what),
        }
    }
}

impl<'de> Deserialize<'de> for Written {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Any;
        impl<'de> Visitor<'de> for Any {
            type Value = Written;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_u64<E>(self, n: u64) -> Result<Written, E> {
                Ok(Written::Number(n))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Written, E> {
                Ok(Written::Other(n.to_string()))
            }
            fn visit_f64<E>(self, n: f64) -> Result<Written, E> {
                Ok(Written::Other(format!("{n:?}")))
            }
            fn visit_bool<E>(self, b: bool) -> Result<Written, E> {
                Ok(Written::Other(b.to_string()))
            }
            fn visit_unit<E>(self) -> Result<Written, E> {
                Ok(Written::Other("null".into()))
            }
            fn visit_str<E>(self, s: &str) -> Result<Written, E> {
                Ok(Written::Text(s.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Written, A::Error> {
                while items.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Written::Other("a list".into()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Written, A::Error> {
                while entries.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Written::Other("an object".into()))
            }
        }
        d.deserialize_any(Any)
    }
}

/// A JSON object read into a map, refusing a key written twice: a map would keep the last
/// one silently, where whoever reads the file may see the first.
pub(super) fn unique_keys<'de, D, K, V>(d: D) -> Result<BTreeMap<K, V>, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de> + Ord + fmt::Display,
    V: Deserialize<'de>,
{
    struct Unique<K, V>(PhantomData<(K, V)>);
    impl<'de, K, V> Visitor<'de> for Unique<K, V>
    where
        K: Deserialize<'de> + Ord + fmt::Display,
        V: Deserialize<'de>,
    {
        type Value = BTreeMap<K, V>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Self::Value, A::Error> {
            let mut map = BTreeMap::new();
            while let Some((key, value)) = entries.next_entry::<K, V>()? {
                if map.contains_key(&key) {
                    return Err(serde::de::Error::custom(format!(
                        "the key \"{key}\" is written twice"
                    )));
                }
                map.insert(key, value);
            }
            Ok(map)
        }
    }
    d.deserialize_map(Unique(PhantomData))
}
