//! Regulatory exports: the trial's SDTM tabulation as CDISC Dataset-JSON 1.1 files with a
//! Define-XML 2.1, from records the API layer gathers ([`sdtm::Input`]). Pure: no I/O here.

pub(crate) mod define;
pub(crate) mod odm;
pub(crate) mod sdtm;
pub(crate) mod tabulation;
mod xml;

use chrono::{DateTime, Utc};

use tabulation::Provenance;

/// One file of an export.
#[derive(Debug, Clone)]
pub(crate) struct File {
    /// Name, for example "dm.json".
    pub name: String,
    /// Media type.
    pub media_type: &'static str,
    /// Content (UTF-8).
    pub content: Vec<u8>,
}

/// The SDTM tabulation: one Dataset-JSON file per domain, then `define.xml`.
pub(crate) fn sdtm(input: &sdtm::Input<'_>, created: DateTime<Utc>) -> anyhow::Result<Vec<File>> {
    let protocol = input.protocol;
    let provenance = Provenance {
        study_oid: protocol.trial.id.clone(),
        metadata_version_oid: format!("MDV.{}.SDTM", protocol.trial.id),
        created,
        version: env!("CARGO_PKG_VERSION"),
    };
    let datasets = sdtm::datasets(input);
    let (units, routes) = sdtm::units_and_routes(protocol);
    let codelists = sdtm::codelists(input, &units, &routes);
    let mut files = datasets
        .iter()
        .map(|d| {
            Ok(File {
                name: d.domain.file_name(),
                media_type: "application/json",
                content: tabulation::dataset_json(d, &provenance)?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let meta = define::Metadata {
        study_name: &protocol.trial.id,
        description: &protocol.trial.title,
        datasets: &datasets,
        codelists: &codelists,
        notes: sdtm::NOTES,
    };
    files.push(File {
        name: "define.xml".to_owned(),
        media_type: "application/xml",
        content: define::define_xml(&meta, &provenance)?,
    });
    Ok(files)
}
