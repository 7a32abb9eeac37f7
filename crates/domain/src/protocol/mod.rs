//! Protocol definitions: the model ([`model`]), loading with validation, and the bundled
//! ANBL1221 definition.

pub mod amendment;
mod exact;
pub mod model;
mod validate;

pub use model::*;
pub use validate::TRAINING_MARK;

/// The bundled COG ANBL1221 definition, as shipped in `protocols/anbl1221.toml`.
pub const ANBL1221_TOML: &str = include_str!("../../protocols/anbl1221.toml");

/// The ANBL1221 definition as it stood before the dinutuximab dose revision: version "1.0", with
/// dinutuximab at 25 mg/m²/day (the bundled definition is version "2.0", 17.5 mg/m²/day). The
/// demo starts the trial from it and replays the revision as an amendment.
pub fn anbl1221_before_dose_revision() -> String {
    let revised = "dose_levels = [{ level = 0, dose = \"17.5\" }]";
    ANBL1221_TOML
        .replacen("protocol_version = \"2.0\"", "protocol_version = \"1.0\"", 1)
        .replacen(revised, "dose_levels = [{ level = 0, dose = \"25\" }]", 1)
}

/// One problem found in a protocol definition, naming the field, for example
/// `eligibility[3].rule.compare.variable: unknown variable "anc"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolProblem {
    /// Path of the offending field.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl std::fmt::Display for ProtocolProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// A protocol definition that cannot be used, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid protocol definition: {}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct InvalidProtocol {
    /// The problems, in file order.
    pub problems: Vec<ProtocolProblem>,
}

/// Parses and validates a protocol definition written in TOML.
pub fn load(toml_text: &str) -> Result<Protocol, InvalidProtocol> {
    let protocol: Protocol = toml::from_str(toml_text).map_err(|e| InvalidProtocol {
        problems: vec![ProtocolProblem {
            field: e
                .span()
                .map_or_else(|| "(file)".to_owned(), |s| field_at(toml_text, s.start)),
            message: e.message().to_owned(),
        }],
    })?;
    let problems = validate::check(&protocol);
    if problems.is_empty() {
        Ok(protocol)
    } else {
        Err(InvalidProtocol { problems })
    }
}

/// The bundled ANBL1221 definition.
pub fn anbl1221() -> Result<Protocol, InvalidProtocol> {
    load(ANBL1221_TOML)
}

/// "line L" for a byte offset, so a syntax error points at the line to fix.
fn field_at(text: &str, offset: usize) -> String {
    let line = text[..offset.min(text.len())].matches('\n').count() + 1;
    format!("line {line}")
}
