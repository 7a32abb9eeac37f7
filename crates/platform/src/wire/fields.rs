//! A request's fields parsed together. Each field is parsed on its own, into its typed value or
//! the violations that say why there is none; [`AllFields::all`] then yields every value, or one
//! INVALID_ARGUMENT naming every bad field in the order the fields were given. A value cannot go
//! missing without its violation, so there is no "parsed, yet absent" case to fall back from.
//!
//! ```
//! use trialops_platform::wire::fields::{AllFields, required};
//! use trialops_platform::wire::convert::request_id;
//!
//! let parsed = (request_id("request_id", "not-a-uuid"), required("subject_id", "")).all();
//! let Err(trialops_platform::AppError::InvalidArgument(bad)) = parsed else { panic!() };
//! let fields: Vec<_> = bad.iter().map(|v| v.field.as_str()).collect();
//! assert_eq!(fields, ["request_id", "subject_id"]);
//! ```

use crate::wire::error::{AppError, Violation, Violations};

/// One field's outcome: its value, or why there is none (one or several violations).
pub type Field<T> = Result<T, Violations>;

/// A tuple of field outcomes, collected into all their values or all their violations.
pub trait AllFields: Sized {
    /// The values, in the tuple's order.
    type Values;

    /// Every value, or every violation in the tuple's order (a part of a larger request).
    fn collect(self) -> Field<Self::Values>;

    /// Every value, or INVALID_ARGUMENT naming every violation in the tuple's order.
    fn all(self) -> Result<Self::Values, AppError> {
        Ok(self.collect()?)
    }
}

macro_rules! all_fields {
    ($($value:ident $error:ident),+) => {
        impl<$($value, $error: Into<Violations>),+> AllFields for ($(Result<$value, $error>,)+) {
            type Values = ($($value,)+);

            #[allow(non_snake_case)]
            fn collect(self) -> Field<Self::Values> {
                match self {
                    ($(Ok($value),)+) => Ok(($($value,)+)),
                    ($($value,)+) => {
                        let mut bad = Violations::new();
                        $(if let Err(e) = $value {
                            bad.extend(e.into());
                        })+
                        Err(bad)
                    }
                }
            }
        }
    };
}

all_fields!(A EA);
all_fields!(A EA, B EB);
all_fields!(A EA, B EB, C EC);
all_fields!(A EA, B EB, C EC, D ED);
all_fields!(A EA, B EB, C EC, D ED, E EE);
all_fields!(A EA, B EB, C EC, D ED, E EE, F EF);
all_fields!(A EA, B EB, C EC, D ED, E EE, F EF, G EG);
all_fields!(A EA, B EB, C EC, D ED, E EE, F EF, G EG, H EH);
all_fields!(A EA, B EB, C EC, D ED, E EE, F EF, G EG, H EH, I EI);
all_fields!(A EA, B EB, C EC, D ED, E EE, F EF, G EG, H EH, I EI, J EJ);

/// A field's violation.
pub fn violation(field: impl Into<String>, description: impl Into<String>) -> Violation {
    Violation {
        field: field.into(),
        description: description.into(),
    }
}

/// A condition on a field: `Ok(())`, or the violation naming it.
pub fn ensure(ok: bool, field: &str, description: impl Into<String>) -> Result<(), Violation> {
    if ok { Ok(()) } else { Err(violation(field, description)) }
}

/// A required text field's value (not empty).
pub fn required<'a>(field: &str, text: &'a str) -> Result<&'a str, Violation> {
    ensure(!text.is_empty(), field, "required")?;
    Ok(text)
}

/// An optional part of a request: absent is `Ok(None)`; present, it is parsed by `parse`.
pub fn optional<P, T, E>(part: Option<P>, parse: impl FnOnce(P) -> Result<T, E>) -> Result<Option<T>, E> {
    part.map(parse).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(e: AppError) -> Vec<String> {
        match e {
            AppError::InvalidArgument(list) => list.into_iter().map(|v| v.field).collect(),
            other => panic!("not INVALID_ARGUMENT: {other:?}"),
        }
    }

    #[test]
    fn all_values_when_every_field_parsed() {
        let parsed = (Ok::<_, Violation>(1), required("subject_id", "ANBL1221-0001")).all();
        assert_eq!(parsed.ok(), Some((1, "ANBL1221-0001")));
    }

    #[test]
    fn every_violation_in_field_order() {
        let several: Field<u8> = Err({
            let mut v = Violations::new();
            v.add("strata[0].value", "not a value of this factor");
            v.add("strata[1].factor_id", "not a factor");
            v
        });
        let parsed = (
            ensure(false, "request_id", "required"),
            required("subject_id", "x"),
            several,
            required("reason", ""),
        )
            .all();
        assert_eq!(
            fields(parsed.err().unwrap()),
            ["request_id", "strata[0].value", "strata[1].factor_id", "reason"]
        );
    }

    #[test]
    fn optional_parts() {
        assert_eq!(optional(None::<&str>, |t| required("consent", t)), Ok(None));
        assert_eq!(optional(Some("v2"), |t| required("consent", t)), Ok(Some("v2")));
        assert!(optional(Some(""), |t| required("consent", t)).is_err());
    }
}
