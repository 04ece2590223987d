//! `google.protobuf.Timestamp` with the proto3 JSON form protojson writes: RFC 3339 in UTC with a
//! `Z`, fractional seconds only when non-zero (3, 6 or 9 digits), e.g. `"2023-09-25T10:48:35Z"`.

use std::fmt;

use jiff::SignedDuration;
use jiff::civil::DateTime;
use jiff::fmt::StdFmtWrite;
use jiff::fmt::temporal::{DateTimePrinter, Pieces};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer, ser};

/// A point in time: seconds and nanoseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Message)]
pub struct Timestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// The Unix epoch as a civil date and time in UTC.
const EPOCH: DateTime = DateTime::constant(1970, 1, 1, 0, 0, 0, 0);

impl Timestamp {
    /// A whole-second timestamp.
    pub fn from_seconds(seconds: i64) -> Self {
        Timestamp { seconds, nanos: 0 }
    }

    /// The civil date and time in UTC, when the year is within -9999..=9999.
    fn to_datetime(self) -> Option<DateTime> {
        let since_epoch = SignedDuration::from_secs(self.seconds)
            .checked_add(SignedDuration::from_nanos(self.nanos.into()))?;
        EPOCH.checked_add(since_epoch).ok()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(datetime) = self.to_datetime() else {
            return write!(f, "{self:?}");
        };
        let digits = match datetime.subsec_nanosecond() {
            0 => 0,
            nanos if nanos % 1_000_000 == 0 => 3,
            nanos if nanos % 1_000 == 0 => 6,
            _ => 9,
        };
        DateTimePrinter::new()
            .precision(Some(digits))
            .print_datetime(&datetime, StdFmtWrite(&mut *f))
            .map_err(|_| fmt::Error)?;
        f.write_str("Z")
    }
}

impl std::str::FromStr for Timestamp {
    type Err = String;

    /// Parses RFC 3339, `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, with jiff's Temporal
    /// (ISO 8601) parser, which also takes its variants (e.g. a space for `T`, `±HH` offsets).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || format!("invalid google.protobuf.Timestamp value {text:?}");
        let pieces = Pieces::parse(text).map_err(|_| error())?;
        let (Some(time), Some(offset), None) = (
            pieces.time(),
            pieces.to_numeric_offset(),
            pieces.time_zone_annotation(),
        ) else {
            return Err(error());
        };
        let since_epoch = pieces.date().to_datetime(time).duration_since(EPOCH)
            - SignedDuration::from_secs(offset.seconds().into());
        let (seconds, nanos) = (since_epoch.as_secs(), since_epoch.subsec_nanos());
        Ok(if nanos < 0 {
            Timestamp {
                seconds: seconds - 1,
                nanos: nanos + 1_000_000_000,
            }
        } else {
            Timestamp { seconds, nanos }
        })
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.to_datetime().is_none() {
            return Err(ser::Error::custom(format!(
                "google.protobuf.Timestamp {self:?} is out of range"
            )));
        }
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TimestampVisitor;
        impl Visitor<'_> for TimestampVisitor {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 timestamp string")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Timestamp, E> {
                value.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(TimestampVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::Timestamp;

    #[test]
    fn renders_like_protojson() {
        let cases = [
            (
                Timestamp::from_seconds(1_695_638_915),
                "2023-09-25T10:48:35Z",
            ),
            (Timestamp::from_seconds(-1), "1969-12-31T23:59:59Z"),
            (
                Timestamp::from_seconds(-62_135_596_800),
                "0001-01-01T00:00:00Z",
            ),
            (Timestamp::from_seconds(0), "1970-01-01T00:00:00Z"),
            (
                Timestamp {
                    seconds: 0,
                    nanos: 5_000_000,
                },
                "1970-01-01T00:00:00.005Z",
            ),
            (
                Timestamp {
                    seconds: 0,
                    nanos: 5_000,
                },
                "1970-01-01T00:00:00.000005Z",
            ),
            (
                Timestamp {
                    seconds: 0,
                    nanos: 5,
                },
                "1970-01-01T00:00:00.000000005Z",
            ),
            (Timestamp::from_seconds(951_782_400), "2000-02-29T00:00:00Z"),
        ];
        for (timestamp, text) in cases {
            assert_eq!(timestamp.to_string(), text);
            assert_eq!(text.parse::<Timestamp>(), Ok(timestamp));
        }
    }

    #[test]
    fn parses_offsets_and_rejects_garbage() {
        assert_eq!(
            "2023-09-25T12:48:35+02:00".parse::<Timestamp>(),
            Ok(Timestamp::from_seconds(1_695_638_915))
        );
        for bad in [
            "",
            "2023-09-25",
            "2023-13-25T10:48:35Z",
            "2023-09-25T10:48:35",
            "x023-09-25T10:48:35Z",
        ] {
            assert!(bad.parse::<Timestamp>().is_err(), "{bad}");
        }
    }
}
