//! Strict decimal fields for protocol files: only a string such as "17.5" is accepted. A TOML
//! float (17.5) is refused, because it would have passed through binary floating point.

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, de::Error};

fn parse<E: Error>(text: &str) -> Result<Decimal, E> {
    Decimal::from_str_exact(text.trim())
        .map_err(|_| E::custom(format!("{text:?} is not an exact decimal (write it like \"17.5\")")))
}

/// A required decimal written as a string.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    parse(&String::deserialize(d)?)
}

/// An optional decimal written as a string.
pub mod option {
    use super::*;

    /// Deserializes an optional decimal string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        Option::<String>::deserialize(d)?.map(|s| parse(&s)).transpose()
    }
}

/// A list of decimals written as strings.
pub fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Decimal>, D::Error> {
    Vec::<String>::deserialize(d)?.iter().map(|s| parse(s)).collect()
}

/// A map of names to decimals written as strings.
pub fn map<'de, D: Deserializer<'de>>(d: D) -> Result<std::collections::BTreeMap<String, Decimal>, D::Error> {
    std::collections::BTreeMap::<String, String>::deserialize(d)?
        .into_iter()
        .map(|(k, v)| parse(&v).map(|v| (k, v)))
        .collect()
}
