//! Conversions between the common wire types and domain values, each naming the field it
//! reads so a bad value becomes a precise field violation.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use rust_decimal::Decimal;
use trialops_proto::common::v1 as common;
use uuid::Uuid;

use crate::records::idempotency::RequestId;
use crate::wire::error::Violation;
use crate::wire::fields::violation;

/// A value a domain type parsed, or a violation naming `field` with the format it wants.
pub fn parsed<T>(field: &str, result: Result<T, &'static str>) -> Result<T, Violation> {
    result.map_err(|format| violation(field, format))
}

/// Refuses a repeated field of more than `max` entries. Each repeated field of the contracts has
/// such a documented limit, checked before its entries are, so no request makes a service work
/// through, or answer about, an unbounded number of entries.
pub fn at_most(field: &str, count: usize, max: usize) -> Result<(), Violation> {
    if count > max {
        return Err(violation(field, format!("at most {max} entries; {count} were sent")));
    }
    Ok(())
}

/// A client-chosen request id: a UUID in its canonical text form.
pub fn request_id(field: &str, text: &str) -> Result<RequestId, Violation> {
    if text.is_empty() {
        return Err(violation(
            field,
            "required: a UUID chosen by the client for this operation",
        ));
    }
    Uuid::parse_str(text).map(RequestId::new).map_err(|_| {
        violation(
            field,
            "must be a UUID, for example 0f8fad5b-d9cb-469f-a165-70867728950e",
        )
    })
}

/// An exact decimal.
pub fn decimal(field: &str, value: Option<&common::Decimal>) -> Result<Decimal, Violation> {
    let Some(value) = value else {
        return Err(violation(field, "required"));
    };
    let text = value.value.trim();
    let plain = !text.is_empty() && text.chars().all(|c| c.is_ascii_digit() || c == '.' || c == '-');
    if !plain {
        return Err(violation(
            field,
            format!("{text:?} is not a decimal like \"17.5\" (no exponent, no separators)"),
        ));
    }
    Decimal::from_str_exact(text).map_err(|_| violation(field, format!("{text:?} is not a decimal like \"17.5\"")))
}

/// The wire form of a decimal, normalized (no trailing zeros after the point).
pub fn to_decimal(value: Decimal) -> common::Decimal {
    common::Decimal {
        value: value.normalize().to_string(),
    }
}

/// A calendar date.
pub fn date(field: &str, value: Option<&common::Date>) -> Result<NaiveDate, Violation> {
    let Some(d) = value else {
        return Err(violation(field, "required"));
    };
    if !(1900..=9999).contains(&d.year) {
        return Err(violation(field, "year must be from 1900 to 9999"));
    }
    let month = u32::try_from(d.month).unwrap_or(0);
    let day = u32::try_from(d.day).unwrap_or(0);
    NaiveDate::from_ymd_opt(d.year, month, day).ok_or_else(|| {
        violation(
            field,
            format!("{}-{:02}-{:02} is not a calendar date", d.year, d.month, d.day),
        )
    })
}

/// The latest date a site may give for something that has happened: tomorrow in UTC, since a
/// site's local date may be one day ahead of UTC's.
pub fn latest_site_date() -> NaiveDate {
    let today = crate::clock::now().date_naive();
    today.checked_add_days(chrono::Days::new(1)).unwrap_or(today)
}

/// A calendar date on which something happened at a site: not after [`latest_site_date`].
pub fn past_date(field: &str, value: Option<&common::Date>) -> Result<NaiveDate, Violation> {
    let date = date(field, value)?;
    if date > latest_site_date() {
        return Err(violation(field, "must not be in the future"));
    }
    Ok(date)
}

/// The wire form of a date.
pub fn to_date(value: NaiveDate) -> common::Date {
    common::Date {
        year: value.year(),
        month: value.month() as i32,
        day: value.day() as i32,
    }
}

/// The wire form of an instant.
pub fn to_timestamp(value: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: value.timestamp(),
        nanos: value.timestamp_subsec_nanos() as i32,
    }
}

/// A required instant, not more than five minutes in the future (clock skew), kept to the
/// microsecond as the databases store it: finer digits are dropped, so the response that
/// returns the instant and every later read agree.
pub fn timestamp(field: &str, value: Option<&prost_types::Timestamp>) -> Result<DateTime<Utc>, Violation> {
    let Some(t) = value else {
        return Err(violation(field, "required"));
    };
    let nanos = u32::try_from(t.nanos).map_err(|_| violation(field, "nanos must be 0 to 999,999,999"))?;
    let instant =
        DateTime::<Utc>::from_timestamp(t.seconds, nanos).ok_or_else(|| violation(field, "not a valid instant"))?;
    if instant > crate::clock::now() + chrono::Duration::minutes(5) {
        return Err(violation(field, "must not be in the future"));
    }
    Ok(chrono::SubsecRound::trunc_subsecs(instant, 6))
}

/// A decimal within an inclusive physical range (a measurement outside it is a typing error).
pub fn decimal_in(
    field: &str,
    value: Option<&common::Decimal>,
    min: Decimal,
    max: Decimal,
    unit: &str,
) -> Result<Decimal, Violation> {
    let d = decimal(field, value)?;
    if d < min || d > max {
        return Err(violation(
            field,
            format!("{d} {unit} is outside the plausible range {min} to {max} {unit}"),
        ));
    }
    Ok(d)
}

/// The version an etag names (etags are the decimal version numbers this service issues).
pub fn etag(field: &str, text: &str) -> Result<i32, Violation> {
    if text.is_empty() {
        return Err(violation(field, "required: the etag last read"));
    }
    text.parse::<i32>()
        .map_err(|_| violation(field, "not an etag this service issued"))
}

/// A required free-text field (a reason, a name): trimmed, 1 to `max` characters.
pub fn text(field: &str, value: &str, max: usize) -> Result<String, Violation> {
    let value = value.trim();
    if value.is_empty() {
        return Err(violation(field, "required"));
    }
    if value.chars().count() > max {
        return Err(violation(field, format!("at most {max} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(violation(field, "must not contain control characters"));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Option<common::Decimal> {
        Some(common::Decimal { value: s.to_owned() })
    }

    #[test]
    fn decimals_are_exact_and_strict() {
        assert_eq!(decimal("f", dec("17.5").as_ref()).ok(), Some(Decimal::new(175, 1)));
        assert_eq!(
            decimal("f", dec("0.10").as_ref())
                .map(|d| d.to_string())
                .ok()
                .as_deref(),
            Some("0.10")
        );
        for bad in ["", "1e3", "1,5", "NaN", "12 mg", "--1"] {
            assert!(decimal("weight_kg", dec(bad).as_ref()).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            decimal("weight_kg", None).err().map(|v| v.field).as_deref(),
            Some("weight_kg")
        );
        assert_eq!(to_decimal(Decimal::new(17500, 3)).value, "17.5");
    }

    #[test]
    fn dates_must_exist() {
        let d = |y, m, day| Some(common::Date { year: y, month: m, day });
        assert_eq!(
            date("f", d(2024, 2, 29).as_ref()).ok(),
            NaiveDate::from_ymd_opt(2024, 2, 29)
        );
        assert!(date("f", d(2023, 2, 29).as_ref()).is_err());
        assert!(date("f", d(2023, 13, 1).as_ref()).is_err());
        assert!(date("f", d(0, 1, 1).as_ref()).is_err());
    }

    #[test]
    fn request_ids_are_uuids() {
        assert!(request_id("request_id", "0f8fad5b-d9cb-469f-a165-70867728950e").is_ok());
        assert!(request_id("request_id", "retry-1").is_err());
        assert!(request_id("request_id", "").is_err());
    }
}

/// An exact decimal as the stores keep it: canonical text ("17.5", never "17.50" or a float).
pub fn to_stored(value: Decimal) -> String {
    value.normalize().to_string()
}

/// A decimal the store kept, read back. A malformed one is never read as some number: it is an
/// internal error naming the column (the store was written by something else, or damaged).
pub fn from_stored(column: &'static str, text: &str) -> Result<Decimal, crate::AppError> {
    text.parse()
        .map_err(|_| crate::AppError::internal(anyhow::anyhow!("stored decimal in {column} is malformed: {text:?}")))
}

#[cfg(test)]
mod stored_tests {
    use super::*;

    #[test]
    fn stored_decimals_round_trip_and_malformed_ones_fail() {
        assert_eq!(to_stored(Decimal::new(1750, 2)), "17.5");
        assert_eq!(to_stored(Decimal::new(750, 0)), "750");
        assert_eq!(from_stored("cycles.bsa_m2", "0.62").ok(), Some(Decimal::new(62, 2)));
        for bad in ["", "1,5", "abc", "1.2.3"] {
            assert!(from_stored("cycles.bsa_m2", bad).is_err(), "{bad:?} read as a number");
        }
    }
}
