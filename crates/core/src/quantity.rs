//! Kubernetes resource quantities (`4Gi`, `500m`, `1e3`): parsing and canonical form.
//!
//! The rules are those of Kubernetes' `resource.Quantity`: a signed decimal number followed by a
//! binary-SI suffix (`Ki` .. `Ei`), a decimal-SI suffix (`n`, `u`, `m`, ``, `k` .. `E`) or a decimal
//! exponent (`e3`, `E-2`). Values are kept with nano precision (finer values round up), and
//! [`Quantity::canonical`] renders them the way Kubernetes serialises them, so that what this
//! server writes into an object is what a real API server would store.

use std::fmt;

/// The error texts Kubernetes uses, so messages read the same as from a real cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error(
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )]
    FormatWrong,
    #[error("unable to parse quantity's suffix")]
    Suffix,
    #[error("unable to parse numeric part of quantity")]
    Numeric,
}

/// How a quantity was written, which decides how its canonical form is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    BinarySi,
    DecimalSi,
    DecimalExponent,
}

/// A parsed quantity: its value in nano units and the format of its suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity {
    nanos: i128,
    format: Format,
}

const NANOS_PER_UNIT: i128 = 1_000_000_000;
/// Largest magnitude accepted, far above any real resource amount, so arithmetic cannot overflow.
const MAX_NANOS: i128 = 10i128.pow(36);

impl Quantity {
    /// Parses a quantity the way Kubernetes does.
    pub fn parse(text: &str) -> Result<Quantity, QuantityError> {
        let (negative, number, suffix) = split(text)?;
        let (base, exponent, format) = interpret_suffix(suffix).ok_or(QuantityError::Suffix)?;

        let (int_part, frac_part) = match number.split_once('.') {
            Some((i, f)) => (i, f),
            None => (number, ""),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(QuantityError::Numeric);
        }
        // Value as an exact fraction digits / 10^scale.
        let digits: String = format!("{int_part}{frac_part}");
        let digits = digits.trim_start_matches('0');
        let mut scale: i32 = frac_part.len() as i32;
        let mut mantissa: i128 = 0;
        for (i, c) in digits.chars().enumerate() {
            if i >= 38 {
                // More significant digits than nano precision can ever use: keep the magnitude.
                scale -= 1;
                continue;
            }
            mantissa = mantissa * 10 + i128::from(c as u8 - b'0');
        }
        // Multiply by base^exponent, expressed as a power of ten or of two.
        let nanos =
            scaled_to_nanos(mantissa, scale, base, exponent).ok_or(QuantityError::Numeric)?;
        Ok(Quantity {
            nanos: if negative { -nanos } else { nanos },
            format,
        })
    }

    /// The value in nano units (1 = 1e-9).
    pub fn nanos(&self) -> i128 {
        self.nanos
    }

    /// The format the quantity was written in.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The canonical text Kubernetes writes for this value (`8192Mi` -> `8Gi`, `1000m` -> `1`).
    pub fn canonical(&self) -> String {
        if self.nanos == 0 {
            return "0".to_string();
        }
        let sign = if self.nanos < 0 { "-" } else { "" };
        let magnitude = self.nanos.abs();
        let mut format = self.format;
        if format == Format::BinarySi
            && (magnitude < 1024 * NANOS_PER_UNIT || magnitude % NANOS_PER_UNIT != 0)
        {
            format = Format::DecimalSi;
        }
        match format {
            Format::BinarySi => {
                let mut value = magnitude / NANOS_PER_UNIT;
                let mut power = 0;
                while power < 6 && value % 1024 == 0 {
                    value /= 1024;
                    power += 1;
                }
                let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][power];
                format!("{sign}{value}{suffix}")
            }
            Format::DecimalSi | Format::DecimalExponent => {
                // Smallest integer mantissa with an exponent that is a multiple of three.
                let mut value = magnitude;
                let mut exponent: i32 = -9;
                while value % 1000 == 0 && exponent < 18 {
                    value /= 1000;
                    exponent += 3;
                }
                let suffix = if format == Format::DecimalExponent {
                    if exponent == 0 {
                        String::new()
                    } else {
                        format!("e{exponent}")
                    }
                } else {
                    match exponent {
                        -9 => "n",
                        -6 => "u",
                        -3 => "m",
                        0 => "",
                        3 => "k",
                        6 => "M",
                        9 => "G",
                        12 => "T",
                        15 => "P",
                        _ => "E",
                    }
                    .to_string()
                };
                format!("{sign}{value}{suffix}")
            }
        }
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

/// Parses `text` and returns its canonical form.
pub fn canonicalize(text: &str) -> Result<String, QuantityError> {
    Quantity::parse(text).map(|q| q.canonical())
}

/// Splits `[+-]?[0-9.]+` from the suffix `[eEinumkKMGTP]*[-+]?[0-9]*`.
fn split(text: &str) -> Result<(bool, &str, &str), QuantityError> {
    let (negative, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        Some(_) => (false, text),
        None => return Err(QuantityError::FormatWrong),
    };
    let number_len = rest
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b'.')
        .count();
    if number_len == 0 {
        return Err(QuantityError::FormatWrong);
    }
    let (number, suffix) = rest.split_at(number_len);
    if number.bytes().filter(|b| *b == b'.').count() > 1 {
        return Err(QuantityError::Numeric);
    }
    let letters = suffix
        .bytes()
        .take_while(|b| b"eEinumkKMGTP".contains(b))
        .count();
    let mut tail = &suffix[letters..];
    if let Some(stripped) = tail.strip_prefix(['+', '-']) {
        tail = stripped;
    }
    if !tail.bytes().all(|b| b.is_ascii_digit()) {
        return Err(QuantityError::FormatWrong);
    }
    Ok((negative, number, suffix))
}

/// `(base, exponent, format)` of a suffix, or `None` when it is not one Kubernetes knows.
fn interpret_suffix(suffix: &str) -> Option<(u32, i32, Format)> {
    let found = match suffix {
        "Ki" => (2, 10, Format::BinarySi),
        "Mi" => (2, 20, Format::BinarySi),
        "Gi" => (2, 30, Format::BinarySi),
        "Ti" => (2, 40, Format::BinarySi),
        "Pi" => (2, 50, Format::BinarySi),
        "Ei" => (2, 60, Format::BinarySi),
        "n" => (10, -9, Format::DecimalSi),
        "u" => (10, -6, Format::DecimalSi),
        "m" => (10, -3, Format::DecimalSi),
        "" => (10, 0, Format::DecimalSi),
        "k" => (10, 3, Format::DecimalSi),
        "M" => (10, 6, Format::DecimalSi),
        "G" => (10, 9, Format::DecimalSi),
        "T" => (10, 12, Format::DecimalSi),
        "P" => (10, 15, Format::DecimalSi),
        "E" => (10, 18, Format::DecimalSi),
        _ => {
            let exponent = suffix.strip_prefix(['e', 'E'])?;
            if exponent.is_empty() || exponent.len() > 6 {
                return None;
            }
            let exponent: i32 = exponent.parse().ok()?;
            (10, exponent, Format::DecimalExponent)
        }
    };
    Some(found)
}

/// `mantissa / 10^scale * base^exponent` in nano units, rounded up; `None` when out of range.
fn scaled_to_nanos(mantissa: i128, scale: i32, base: u32, exponent: i32) -> Option<i128> {
    // Work with an exact fraction num / den.
    let mut num: i128 = mantissa;
    let mut den: i128 = 1;
    let mut ten_power = 9 - scale; // to nano units
    if base == 10 {
        ten_power += exponent;
    } else {
        // Binary exponents are always positive multiples of ten here.
        num = num.checked_mul(1i128.checked_shl(exponent as u32)?)?;
    }
    if ten_power >= 0 {
        for _ in 0..ten_power {
            num = num.checked_mul(10)?;
            if num > MAX_NANOS {
                return None;
            }
        }
    } else {
        for _ in 0..(-ten_power) {
            den = den.checked_mul(10)?;
            if den > MAX_NANOS {
                // Smaller than a nano unit: rounds up to one nano when non-zero.
                return Some(if num == 0 { 0 } else { 1 });
            }
        }
    }
    let value = num / den + i128::from(num % den != 0);
    (value <= MAX_NANOS).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms_match_kubernetes() {
        for (input, expected) in [
            ("2", "2"),
            ("4Gi", "4Gi"),
            ("10Gi", "10Gi"),
            ("100Gi", "100Gi"),
            ("300m", "300m"),
            ("512Mi", "512Mi"),
            ("150Mi", "150Mi"),
            ("8G", "8G"),
            ("8192Mi", "8Gi"),
            ("1024Mi", "1Gi"),
            ("1.5Gi", "1536Mi"),
            ("2000M", "2G"),
            ("1000", "1k"),
            ("1000m", "1"),
            ("0.5", "500m"),
            ("0", "0"),
            ("0Gi", "0"),
            ("512", "512"),
            ("0.5Ki", "512"),
            ("1Ki", "1Ki"),
            ("1e3", "1e3"),
            ("1500", "1500"),
            ("-2Gi", "-2Gi"),
            ("+4", "4"),
            ("1.0001", "1000100u"),
            ("0.1n", "1n"),
        ] {
            assert_eq!(
                canonicalize(input).as_deref(),
                Ok(expected),
                "input {input}"
            );
        }
    }

    #[test]
    fn invalid_quantities_are_rejected_with_kubernetes_texts() {
        assert_eq!(Quantity::parse("4GB"), Err(QuantityError::FormatWrong));
        assert_eq!(Quantity::parse("4Mk"), Err(QuantityError::Suffix));
        assert_eq!(Quantity::parse("4gi"), Err(QuantityError::FormatWrong));
        assert_eq!(Quantity::parse("4e"), Err(QuantityError::Suffix));
        assert_eq!(Quantity::parse("4 Gi"), Err(QuantityError::FormatWrong));
        assert_eq!(Quantity::parse("Gi"), Err(QuantityError::FormatWrong));
        assert_eq!(Quantity::parse(""), Err(QuantityError::FormatWrong));
        assert_eq!(Quantity::parse("4Gi!"), Err(QuantityError::FormatWrong));
        assert_eq!(Quantity::parse("1.2.3"), Err(QuantityError::Numeric));
        assert_eq!(
            QuantityError::Suffix.to_string(),
            "unable to parse quantity's suffix"
        );
    }

    #[test]
    fn values_are_exact() {
        assert_eq!(
            Quantity::parse("1Ki").unwrap().nanos(),
            1024 * NANOS_PER_UNIT
        );
        assert_eq!(Quantity::parse("250m").unwrap().nanos(), 250_000_000);
        assert_eq!(
            Quantity::parse("1e-3").unwrap().format(),
            Format::DecimalExponent
        );
    }
}
