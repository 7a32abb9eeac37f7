//! A tabulation's shape, written once and read twice: each variable's name, label, type, role,
//! origin, code list and derivation feed both its Dataset-JSON column and its Define-XML
//! `ItemDef`, so the two files cannot disagree. Dataset-JSON 1.1 is written here too.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

/// A variable's data type: its Dataset-JSON `dataType` and its Define-XML `DataType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Type {
    /// Character.
    Text,
    /// Whole number (a JSON number).
    Integer,
    /// Exact decimal, kept as a JSON string (Dataset-JSON `decimal`, Define-XML `float`).
    Decimal,
    /// ISO 8601 complete date.
    Date,
    /// ISO 8601 date and time to the second, UTC.
    DateTime,
}

impl Type {
    fn dataset_json(self) -> (&'static str, Option<&'static str>) {
        match self {
            Type::Text => ("string", None),
            Type::Integer => ("integer", None),
            Type::Decimal => ("decimal", Some("decimal")),
            Type::Date => ("date", None),
            Type::DateTime => ("datetime", None),
        }
    }

    /// The Define-XML `DataType`.
    pub(crate) fn define(self) -> &'static str {
        match self {
            Type::Text => "text",
            Type::Integer => "integer",
            Type::Decimal => "float",
            Type::Date => "date",
            Type::DateTime => "datetime",
        }
    }
}

/// Where a variable's values come from (Define-XML `def:Origin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Entered at a site (`Collected`, source Investigator).
    Collected,
    /// Computed by trialops; the variable names its method.
    Derived,
    /// Set by trialops or the sponsor, not collected (`Assigned`, source Sponsor).
    Assigned,
    /// From the protocol definition (`Protocol`).
    Protocol,
    /// Not held by trialops; always null, with a comment saying why (`Not Available`).
    NotAvailable,
}

impl Origin {
    /// `def:Origin` `Type` and `Source`.
    pub(crate) fn define(self) -> (&'static str, Option<&'static str>) {
        match self {
            Origin::Collected => ("Collected", Some("Investigator")),
            Origin::Derived => ("Derived", None),
            Origin::Assigned => ("Assigned", Some("Sponsor")),
            Origin::Protocol => ("Protocol", None),
            Origin::NotAvailable => ("Not Available", None),
        }
    }
}

/// One variable of a domain.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Var {
    /// SDTM name, for example "ARMCD".
    pub name: &'static str,
    /// SDTM label, at most 40 characters.
    pub label: &'static str,
    /// Type.
    pub ty: Type,
    /// SDTM role, for example "Identifier".
    pub role: &'static str,
    /// Core "Req": never null.
    pub required: bool,
    /// Origin.
    pub origin: Origin,
    /// Code list OID the values belong to.
    pub codelist: Option<&'static str>,
    /// Method OID of a derived variable, or comment OID of one not available.
    pub note: Option<&'static str>,
}

/// A variable (see [`Var`]); the rest set with the builder methods below.
pub(crate) const fn var(name: &'static str, label: &'static str, ty: Type, role: &'static str, origin: Origin) -> Var {
    Var {
        name,
        label,
        ty,
        role,
        required: false,
        origin,
        codelist: None,
        note: None,
    }
}

impl Var {
    /// Core "Req".
    pub(crate) const fn req(mut self) -> Var {
        self.required = true;
        self
    }

    /// Values from this code list.
    pub(crate) const fn cl(mut self, codelist: &'static str) -> Var {
        self.codelist = Some(codelist);
        self
    }

    /// Derived by this method, or not available for this comment's reason.
    pub(crate) const fn note(mut self, oid: &'static str) -> Var {
        self.note = Some(oid);
        self
    }
}

/// A domain's metadata.
#[derive(Debug)]
pub(crate) struct Domain {
    /// Dataset name, for example "DM".
    pub name: &'static str,
    /// Label.
    pub label: &'static str,
    /// SDTM class, for example "EVENTS".
    pub class: &'static str,
    /// One record per ...
    pub structure: &'static str,
    /// The key variables, in key order.
    pub keys: &'static [&'static str],
    /// Trial design datasets are reference data.
    pub reference: bool,
    /// Every variable, in order.
    pub vars: &'static [Var],
}

impl Domain {
    /// The file the domain is written to, for example "dm.json".
    pub(crate) fn file_name(&self) -> String {
        format!("{}.json", self.name.to_ascii_lowercase())
    }

    /// `IG.DM`.
    pub(crate) fn oid(&self) -> String {
        format!("IG.{}", self.name)
    }

    /// `IT.DM.ARMCD`.
    pub(crate) fn item_oid(&self, var: &Var) -> String {
        format!("IT.{}.{}", self.name, var.name)
    }
}

/// One cell.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// Missing.
    Null,
    /// Character (also ISO 8601 dates and times).
    Text(String),
    /// Whole number.
    Int(i64),
    /// Exact decimal, as written.
    Decimal(String),
}

impl Value {
    /// Text, or null when empty.
    pub(crate) fn text(s: impl Into<String>) -> Value {
        let s = s.into();
        if s.is_empty() { Value::Null } else { Value::Text(s) }
    }

    /// Text when present.
    pub(crate) fn opt(s: Option<impl Into<String>>) -> Value {
        s.map_or(Value::Null, Value::text)
    }

    fn json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Text(s) | Value::Decimal(s) => serde_json::Value::String(s.clone()),
            Value::Int(i) => serde_json::Value::from(*i),
        }
    }

    /// The value's length as Define-XML counts it (characters; digits of a number).
    fn length(&self) -> usize {
        match self {
            Value::Null => 0,
            Value::Text(s) | Value::Decimal(s) => s.chars().count(),
            Value::Int(i) => i.to_string().len(),
        }
    }
}

/// A domain with its rows, each in the order of the domain's variables.
#[derive(Debug)]
pub(crate) struct Dataset {
    /// The metadata.
    pub domain: &'static Domain,
    /// Rows.
    pub rows: Vec<Vec<Value>>,
}

impl Dataset {
    /// The longest value of a variable, at least 1 (Define-XML and Dataset-JSON `length`).
    pub(crate) fn length(&self, index: usize) -> usize {
        self.rows
            .iter()
            .map(|r| r.get(index).map_or(0, Value::length))
            .max()
            .unwrap_or(0)
            .max(1)
    }
}

/// Where every file of one export says it comes from.
#[derive(Debug, Clone)]
pub(crate) struct Provenance {
    /// `Study/@OID` in Define-XML, the trial id.
    pub study_oid: String,
    /// `MetaDataVersion/@OID` in Define-XML.
    pub metadata_version_oid: String,
    /// When the export was made.
    pub created: DateTime<Utc>,
    /// The trialops version.
    pub version: &'static str,
}

impl Provenance {
    /// `YYYY-MM-DDThh:mm:ssZ`.
    pub(crate) fn created(&self) -> String {
        self.created.to_rfc3339_opts(SecondsFormat::Secs, true)
    }
}

#[derive(Serialize)]
struct SourceSystem {
    name: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Column {
    #[serde(rename = "itemOID")]
    item_oid: String,
    name: &'static str,
    label: &'static str,
    data_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_data_type: Option<&'static str>,
    length: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_sequence: Option<usize>,
}

/// The top level in the order Dataset-JSON 1.1 recommends.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct File {
    #[serde(rename = "datasetJSONCreationDateTime")]
    created: String,
    #[serde(rename = "datasetJSONVersion")]
    version: &'static str,
    #[serde(rename = "fileOID")]
    file_oid: String,
    originator: &'static str,
    source_system: SourceSystem,
    #[serde(rename = "studyOID")]
    study_oid: String,
    #[serde(rename = "metaDataVersionOID")]
    metadata_version_oid: String,
    meta_data_ref: &'static str,
    #[serde(rename = "itemGroupOID")]
    item_group_oid: String,
    records: usize,
    name: &'static str,
    label: &'static str,
    columns: Vec<Column>,
    rows: Vec<Vec<serde_json::Value>>,
}

/// The dataset as a CDISC Dataset-JSON 1.1 file.
pub(crate) fn dataset_json(dataset: &Dataset, provenance: &Provenance) -> Result<Vec<u8>, serde_json::Error> {
    let domain = dataset.domain;
    let file = File {
        created: provenance.created(),
        version: "1.1.0",
        file_oid: format!("{}.{}", provenance.metadata_version_oid, domain.name),
        originator: "trialops",
        source_system: SourceSystem {
            name: "trialops",
            version: provenance.version,
        },
        study_oid: provenance.study_oid.clone(),
        metadata_version_oid: provenance.metadata_version_oid.clone(),
        meta_data_ref: "define.xml",
        item_group_oid: domain.oid(),
        records: dataset.rows.len(),
        name: domain.name,
        label: domain.label,
        columns: domain
            .vars
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let (data_type, target_data_type) = v.ty.dataset_json();
                Column {
                    item_oid: domain.item_oid(v),
                    name: v.name,
                    label: v.label,
                    data_type,
                    target_data_type,
                    length: dataset.length(i),
                    key_sequence: domain.keys.iter().position(|k| *k == v.name).map(|p| p + 1),
                }
            })
            .collect(),
        rows: dataset
            .rows
            .iter()
            .map(|r| r.iter().map(Value::json).collect())
            .collect(),
    };
    serde_json::to_vec(&file)
}
