//! Define-XML 2.1: the metadata of the datasets an export writes, from the same [`Domain`]
//! tables the Dataset-JSON files come from. Children are written in the order the schema's
//! sequences require (the schema refuses any other).

use std::io;

use super::tabulation::{Dataset, Domain, Origin, Provenance};
use super::xml::{W, document, text, translated};

const ODM: &str = "http://www.cdisc.org/ns/odm/v1.3";
const DEF: &str = "http://www.cdisc.org/ns/def/v2.1";
const XLINK: &str = "http://www.w3.org/1999/xlink";

/// The SDTM implementation guide the datasets follow.
const SDTMIG: (&str, &str) = ("STD.SDTMIG", "3.4");
/// The controlled-terminology package the CDISC code lists' terms are taken from.
const CT: (&str, &str) = ("STD.CT", "2024-09-27");

/// The terms of a code list.
#[derive(Debug, Clone)]
pub(crate) enum Terms {
    /// Listed; `true` marks a term the sponsor added to a CDISC list.
    Listed(Vec<(String, bool)>),
    /// An external dictionary (name, version).
    External(&'static str, String),
}

/// A code list.
#[derive(Debug, Clone)]
pub(crate) struct CodeList {
    /// OID, for example "CL.NY".
    pub oid: &'static str,
    /// Name.
    pub name: &'static str,
    /// The NCI code of the CDISC code list; `None` for a sponsor list.
    pub nci: Option<&'static str>,
    /// Terms.
    pub terms: Terms,
}

/// A derivation (`MethodDef`) or the reason a variable is empty (`def:CommentDef`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Note {
    /// OID: "MT." for a method, "COM." for a comment.
    pub oid: &'static str,
    /// What it says.
    pub text: &'static str,
}

/// Everything Define-XML describes.
pub(crate) struct Metadata<'a> {
    /// Study name (the trial id) and description (its title).
    pub study_name: &'a str,
    /// The trial's title.
    pub description: &'a str,
    /// The datasets, in file order.
    pub datasets: &'a [Dataset],
    /// Code lists.
    pub codelists: &'a [CodeList],
    /// Methods and comments.
    pub notes: &'a [Note],
}

fn description(w: &mut W, value: &str) -> io::Result<()> {
    translated(w, "Description", value)
}

fn item_group(w: &mut W, dataset: &Dataset) -> io::Result<()> {
    let d: &Domain = dataset.domain;
    let leaf = format!("LF.{}", d.name);
    let mut element = w.create_element("ItemGroupDef").with_attributes([
        ("OID", d.oid().as_str()),
        ("Name", d.name),
        ("Repeating", if d.name == "DM" { "No" } else { "Yes" }),
        ("IsReferenceData", if d.reference { "Yes" } else { "No" }),
        ("SASDatasetName", d.name),
    ]);
    if !d.name.starts_with("SUPP") {
        element = element.with_attribute(("Domain", d.name));
    }
    element
        .with_attributes([
            ("Purpose", "Tabulation"),
            ("def:Structure", d.structure),
            ("def:StandardOID", SDTMIG.0),
            ("def:ArchiveLocationID", leaf.as_str()),
        ])
        .write_inner_content(|w| {
            description(w, d.label)?;
            for (i, v) in d.vars.iter().enumerate() {
                let order = (i + 1).to_string();
                let key = d.keys.iter().position(|k| *k == v.name).map(|p| (p + 1).to_string());
                let mut r = w.create_element("ItemRef").with_attributes([
                    ("ItemOID", d.item_oid(v).as_str()),
                    ("OrderNumber", order.as_str()),
                    ("Mandatory", if v.required { "Yes" } else { "No" }),
                ]);
                if let Some(key) = &key {
                    r = r.with_attribute(("KeySequence", key.as_str()));
                }
                if let (Origin::Derived, Some(method)) = (v.origin, v.note) {
                    r = r.with_attribute(("MethodOID", method));
                }
                r.with_attribute(("Role", v.role)).write_empty()?;
            }
            w.create_element("def:Class")
                .with_attribute(("Name", d.class))
                .write_empty()?;
            let href = d.file_name();
            w.create_element("def:leaf")
                .with_attributes([("ID", leaf.as_str()), ("xlink:href", href.as_str())])
                .write_inner_content(|w| text(w, "def:title", &href))?;
            Ok(())
        })?;
    Ok(())
}

fn items(w: &mut W, dataset: &Dataset) -> io::Result<()> {
    let d = dataset.domain;
    for (i, v) in d.vars.iter().enumerate() {
        let length = dataset.length(i).to_string();
        let mut e = w.create_element("ItemDef").with_attributes([
            ("OID", d.item_oid(v).as_str()),
            ("Name", v.name),
            ("SASFieldName", v.name),
            ("DataType", v.ty.define()),
        ]);
        if matches!(
            v.ty,
            super::tabulation::Type::Text | super::tabulation::Type::Integer | super::tabulation::Type::Decimal
        ) {
            e = e.with_attribute(("Length", length.as_str()));
        }
        if let (Origin::NotAvailable, Some(comment)) = (v.origin, v.note) {
            e = e.with_attribute(("def:CommentOID", comment));
        }
        e.write_inner_content(|w| {
            description(w, v.label)?;
            if let Some(cl) = v.codelist {
                w.create_element("CodeListRef")
                    .with_attribute(("CodeListOID", cl))
                    .write_empty()?;
            }
            let (kind, source) = v.origin.define();
            let mut origin = w.create_element("def:Origin").with_attribute(("Type", kind));
            if let Some(source) = source {
                origin = origin.with_attribute(("Source", source));
            }
            origin.write_empty()?;
            Ok(())
        })?;
    }
    Ok(())
}

fn codelist(w: &mut W, cl: &CodeList) -> io::Result<()> {
    let mut e =
        w.create_element("CodeList")
            .with_attributes([("OID", cl.oid), ("Name", cl.name), ("DataType", "text")]);
    if cl.nci.is_some() {
        e = e.with_attribute(("def:StandardOID", CT.0));
    }
    e.write_inner_content(|w| {
        match &cl.terms {
            Terms::Listed(terms) => {
                for (term, extended) in terms {
                    let mut item = w
                        .create_element("EnumeratedItem")
                        .with_attribute(("CodedValue", term.as_str()));
                    if *extended {
                        item = item.with_attribute(("def:ExtendedValue", "Yes"));
                    }
                    item.write_empty()?;
                }
            }
            Terms::External(dictionary, version) => {
                w.create_element("ExternalCodeList")
                    .with_attributes([("Dictionary", *dictionary), ("Version", version.as_str())])
                    .write_empty()?;
            }
        }
        if let Some(code) = cl.nci {
            w.create_element("Alias")
                .with_attributes([("Context", "nci:ExtCodeID"), ("Name", code)])
                .write_empty()?;
        }
        Ok(())
    })?;
    Ok(())
}

/// The Define-XML 2.1 document.
pub(crate) fn define_xml(meta: &Metadata<'_>, provenance: &Provenance) -> io::Result<Vec<u8>> {
    let created = provenance.created();
    let file_oid = format!("{}.DEFINE", provenance.metadata_version_oid);
    document(|w| {
        w.create_element("ODM")
            .with_attributes([
                ("xmlns", ODM),
                ("xmlns:def", DEF),
                ("xmlns:xlink", XLINK),
                ("ODMVersion", "1.3.2"),
                ("FileType", "Snapshot"),
                ("FileOID", file_oid.as_str()),
                ("CreationDateTime", created.as_str()),
                ("Originator", "trialops"),
                ("SourceSystem", "trialops"),
                ("SourceSystemVersion", provenance.version),
                ("def:Context", "Submission"),
            ])
            .write_inner_content(|w| {
                w.create_element("Study")
                    .with_attribute(("OID", provenance.study_oid.as_str()))
                    .write_inner_content(|w| {
                        w.create_element("GlobalVariables").write_inner_content(|w| {
                            text(w, "StudyName", meta.study_name)?;
                            text(w, "StudyDescription", meta.description)?;
                            text(w, "ProtocolName", meta.study_name)
                        })?;
                        let name = format!("SDTM tabulation of {}", meta.study_name);
                        w.create_element("MetaDataVersion")
                            .with_attributes([
                                ("OID", provenance.metadata_version_oid.as_str()),
                                ("Name", name.as_str()),
                                ("def:DefineVersion", "2.1.0"),
                            ])
                            .write_inner_content(|w| metadata_version(w, meta))?;
                        Ok(())
                    })?;
                Ok(())
            })?;
        Ok(())
    })
}

fn metadata_version(w: &mut W, meta: &Metadata<'_>) -> io::Result<()> {
    w.create_element("def:Standards").write_inner_content(|w| {
        w.create_element("def:Standard")
            .with_attributes([
                ("OID", SDTMIG.0),
                ("Name", "SDTMIG"),
                ("Type", "IG"),
                ("Version", SDTMIG.1),
                ("Status", "Final"),
            ])
            .write_empty()?;
        w.create_element("def:Standard")
            .with_attributes([
                ("OID", CT.0),
                ("Name", "CDISC/NCI"),
                ("Type", "CT"),
                ("PublishingSet", "SDTM"),
                ("Version", CT.1),
                ("Status", "Final"),
            ])
            .write_empty()?;
        Ok(())
    })?;
    for dataset in meta.datasets {
        item_group(w, dataset)?;
    }
    for dataset in meta.datasets {
        items(w, dataset)?;
    }
    for cl in meta.codelists {
        codelist(w, cl)?;
    }
    for method in meta.notes.iter().filter(|n| n.oid.starts_with("MT.")) {
        w.create_element("MethodDef")
            .with_attributes([("OID", method.oid), ("Name", method.oid), ("Type", "Computation")])
            .write_inner_content(|w| description(w, method.text))?;
    }
    for comment in meta.notes.iter().filter(|n| n.oid.starts_with("COM.")) {
        w.create_element("def:CommentDef")
            .with_attribute(("OID", comment.oid))
            .write_inner_content(|w| description(w, comment.text))?;
    }
    Ok(())
}
