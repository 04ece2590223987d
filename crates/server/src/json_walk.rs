//! One pass over a JSON body before it is decoded, keeping nothing: refuses an object that names
//! a member twice (as protojson does, instead of letting the last one win) and a body with more
//! values than its size justifies.
//!
//! Decoded, every JSON value costs a hundred bytes or more (a `serde_json::Value`, a map entry, a
//! `String`), so a body of tiny members (`{"a":"b","c":"d",...}`) would take ten times its size in
//! memory or more. Bounding the number of values to one per [`BYTES_PER_VALUE`] bytes of the body
//! limit keeps the largest accepted request within about three times its size.

use std::cell::Cell;
use std::collections::HashSet;

use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};

/// Bytes of the body limit per JSON value allowed.
pub const BYTES_PER_VALUE: usize = 128;
/// Values always allowed, whatever the body limit.
pub const MIN_VALUES: usize = 1024;

/// The most values a body may hold under a body limit of `max_body_bytes`.
pub fn max_values(max_body_bytes: usize) -> usize {
    (max_body_bytes / BYTES_PER_VALUE).max(MIN_VALUES)
}

/// Why a body was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// More than `limit` values (every member value and array element counts, at any depth).
    TooManyValues { limit: usize },
    /// Not JSON, or a repeated member; serde_json's text.
    Invalid(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::TooManyValues { limit } => write!(
                f,
                "request body has more than {limit} JSON values (one per {BYTES_PER_VALUE} bytes of the body limit)"
            ),
            Refused::Invalid(text) => f.write_str(text),
        }
    }
}

/// Walks the first JSON value of `bytes`. An empty or truncated body is not refused here (the
/// decoder that follows reports it in its own words).
pub fn check(bytes: &[u8], max_values: usize) -> Result<(), Refused> {
    let remaining = Cell::new(max_values);
    let exceeded = Cell::new(false);
    let walk = Walk {
        remaining: &remaining,
        exceeded: &exceeded,
    };
    match walk.deserialize(&mut serde_json::Deserializer::from_slice(bytes)) {
        Ok(()) => Ok(()),
        Err(_) if exceeded.get() => Err(Refused::TooManyValues { limit: max_values }),
        Err(error) if error.is_eof() => Ok(()),
        Err(error) => Err(Refused::Invalid(error.to_string())),
    }
}

#[derive(Clone, Copy)]
struct Walk<'a> {
    remaining: &'a Cell<usize>,
    exceeded: &'a Cell<bool>,
}

impl Walk<'_> {
    /// Counts one value; fails once the budget is spent.
    fn count<E: serde::de::Error>(self) -> Result<(), E> {
        match self.remaining.get().checked_sub(1) {
            Some(left) => {
                self.remaining.set(left);
                Ok(())
            }
            None => {
                self.exceeded.set(true);
                Err(E::custom("too many values"))
            }
        }
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
        // Nothing is kept, so counting each element once read still stops a flood at the budget.
        while items.next_element_seed(self)?.is_some() {
            self.count::<A::Error>()?;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut members: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = members.next_key::<String>()? {
            self.count::<A::Error>()?;
            if seen.contains(&key) {
                return Err(serde::de::Error::custom(format_args!(
                    "duplicate field {}",
                    kuberay_core::names::quote_bounded(&key)
                )));
            }
            members.next_value_seed(self)?;
            seen.insert(key);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_counted_at_any_depth() {
        // 3 members, 2 elements, 1 nested member.
        let body = br#"{"a": 1, "b": [1, {"c": "x"}], "d": null}"#;
        assert_eq!(check(body, 6), Ok(()));
        assert_eq!(check(body, 5), Err(Refused::TooManyValues { limit: 5 }));
        assert_eq!(check(b"[]", 0), Ok(()));
        assert_eq!(check(b"{}", 0), Ok(()));
    }

    #[test]
    fn repeated_members_are_refused() {
        let refused = check(br#"{"a": {"b": 1, "b": 2}}"#, 100).unwrap_err();
        assert!(
            refused.to_string().contains("duplicate field \"b\""),
            "{refused}"
        );
    }

    #[test]
    fn empty_and_truncated_bodies_are_left_to_the_decoder() {
        assert_eq!(check(b"", 10), Ok(()));
        assert_eq!(check(br#"{"a": "#, 10), Ok(()));
        assert!(matches!(check(b"{]", 10), Err(Refused::Invalid(_))));
    }

    #[test]
    fn the_limit_follows_the_body_limit() {
        assert_eq!(max_values(4 * 1024 * 1024), 32_768);
        assert_eq!(max_values(1000), MIN_VALUES);
    }
}
