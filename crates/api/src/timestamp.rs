//! `google.protobuf.Timestamp` with the proto3 JSON form protojson writes: RFC 3339 in UTC with a
//! `Z`, fractional seconds only when non-zero (3, 6 or 9 digits), e.g. `"2023-09-25T10:48:35Z"`.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time: seconds and nanoseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Message)]
pub struct Timestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl Timestamp {
    /// A whole-second timestamp.
    pub fn from_seconds(seconds: i64) -> Self {
        Timestamp { seconds, nanos: 0 }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.seconds.div_euclid(86_400);
        let second_of_day = self.seconds.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
            second_of_day / 3600,
            second_of_day / 60 % 60,
            second_of_day % 60
        )?;
        let nanos = self.nanos;
        if nanos != 0 {
            if nanos % 1_000_000 == 0 {
                write!(f, ".{:03}", nanos / 1_000_000)?;
            } else if nanos % 1_000 == 0 {
                write!(f, ".{:06}", nanos / 1_000)?;
            } else {
                write!(f, ".{nanos:09}")?;
            }
        }
        f.write_str("Z")
    }
}

impl std::str::FromStr for Timestamp {
    type Err = String;

    /// Parses RFC 3339: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || format!("invalid google.protobuf.Timestamp value {text:?}");
        let bytes = text.as_bytes();
        if bytes.len() < 20
            || bytes[4] != b'-'
            || bytes[7] != b'-'
            || !matches!(bytes[10], b'T' | b't')
            || bytes[13] != b':'
            || bytes[16] != b':'
        {
            return Err(error());
        }
        let number = |range: std::ops::Range<usize>| -> Result<i64, String> {
            let part = &text[range];
            if part.bytes().all(|b| b.is_ascii_digit()) {
                part.parse().map_err(|_| error())
            } else {
                Err(error())
            }
        };
        let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
        let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
        if !(1..=12).contains(&month)
            || !(1..=31).contains(&day)
            || hour > 23
            || minute > 59
            || second > 59
        {
            return Err(error());
        }
        let mut rest = &text[19..];
        let mut nanos: i64 = 0;
        if let Some(fraction) = rest.strip_prefix('.') {
            let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 || digits > 9 {
                return Err(error());
            }
            nanos = fraction[..digits].parse::<i64>().map_err(|_| error())?
                * 10i64.pow(9 - digits as u32);
            rest = &fraction[digits..];
        }
        let offset = match rest {
            "Z" | "z" => 0,
            _ => {
                let sign = match rest.as_bytes().first() {
                    Some(b'+') => 1,
                    Some(b'-') => -1,
                    _ => return Err(error()),
                };
                let tail = &rest[1..];
                if tail.len() != 5 || tail.as_bytes()[2] != b':' {
                    return Err(error());
                }
                let hours: i64 = tail[0..2].parse().map_err(|_| error())?;
                let minutes: i64 = tail[3..5].parse().map_err(|_| error())?;
                sign * (hours * 3600 + minutes * 60)
            }
        };
        let seconds =
            days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
                - offset;
        Ok(Timestamp {
            seconds,
            nanos: nanos as i32,
        })
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
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
