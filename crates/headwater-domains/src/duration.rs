use std::fmt;

use serde::{Deserialize, Deserializer};

use crate::DurationError;

/// A duration written as a number and a unit: `500ms`, `30s`, `5m`, `2h`, `30d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration {
    /// The duration in milliseconds.
    pub millis: u64,
}

impl HumanDuration {
    /// Reads `500ms`, `30s`, `5m`, `2h` or `30d`.
    pub fn parse(s: &str) -> Result<Self, DurationError> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: u64 = num.parse().map_err(|_| DurationError::NotANumber {
            text: s.to_string(),
        })?;
        let factor = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => {
                return Err(DurationError::UnknownUnit {
                    text: s.to_string(),
                    unit: unit.to_string(),
                })
            }
        };
        let millis = n
            .checked_mul(factor)
            .ok_or_else(|| DurationError::TooLong {
                text: s.to_string(),
            })?;
        Ok(HumanDuration { millis })
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.millis)
    }
}

impl serde::Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        HumanDuration::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(
            HumanDuration::parse("30d").map(|d| d.millis),
            Ok(30 * 86_400_000)
        );
        assert_eq!(HumanDuration::parse("5m").map(|d| d.millis), Ok(300_000));
        assert!(HumanDuration::parse("5 weeks").is_err());
        assert!(HumanDuration::parse("m").is_err());
        assert!(matches!(
            HumanDuration::parse("99999999999999999d"),
            Err(DurationError::TooLong { .. })
        ));
    }
}
