//! SDTM (SDTMIG 3.4) domains derived from the three services' records: DM, DS, EX, EC, AE, SUPPAE,
//! RS and the trial design domains TS, TA and TE. Each domain's variables are declared once
//! below; `docs/SDTM_MAPPING.md` says in words where each comes from, and the Define-XML carries
//! the same derivations as methods.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use trialops_domain::outcomes::inrc::Response;
use trialops_domain::outcomes::safety::Attribution;
use trialops_domain::protocol::{DoseBasis, Protocol, Seriousness};
use trialops_proto::common::v1 as common;
use trialops_proto::dosing::v1 as dpb;
use trialops_proto::enrollment::v1 as epb;

use super::define::{CodeList, Note, Terms};
use super::tabulation::{Dataset, Domain, Origin, Type, Value, var};

use Origin::{Assigned, Collected, Derived, NotAvailable, Protocol as FromProtocol};
use Type::{Date, DateTime as Dtm, Decimal as Dec, Integer, Text};

/// An adverse event as the export reads it.
#[derive(Debug, Clone)]
pub(crate) struct AdverseEvent {
    /// Identifier (AESPID).
    pub id: String,
    /// Subject.
    pub subject_id: String,
    /// CTCAE term.
    pub term: String,
    /// Grade 1-5.
    pub grade: i32,
    /// Onset.
    pub onset_on: NaiveDate,
    /// Resolution, if resolved.
    pub resolved_on: Option<NaiveDate>,
    /// Attribution per agent id, in agent id order.
    pub attributions: Vec<(String, Attribution)>,
    /// Seriousness criteria met.
    pub seriousness: Vec<Seriousness>,
}

/// A response assessment as the export reads it (after any re-derivation).
#[derive(Debug, Clone)]
pub(crate) struct Assessment {
    /// Identifier (RSSPID).
    pub id: String,
    /// Subject.
    pub subject_id: String,
    /// Date.
    pub assessed_on: NaiveDate,
    /// After this cycle (0 = baseline).
    pub after_cycle: i32,
    /// Central review rather than the site.
    pub central: bool,
    /// Primary tumour, metastases, bone marrow and overall responses (None at baseline).
    pub responses: [Option<Response>; 4],
}

/// Everything the SDTM domains are derived from.
pub(crate) struct Input<'a> {
    /// The protocol definition.
    pub protocol: &'a Protocol,
    /// Each protocol version cycles were dosed under, by version: their doses' protocol units
    /// and levels come from it.
    pub versions: BTreeMap<String, Protocol>,
    /// Enrolled subjects.
    pub subjects: Vec<epb::Subject>,
    /// Every status change of the trial's subjects, oldest first.
    pub status_changes: Vec<epb::StatusChange>,
    /// Each site's country (ISO 3166-1 alpha-3), by site code; empty when not recorded.
    pub countries: BTreeMap<String, String>,
    /// Administrations recorded (any status but planned).
    pub administrations: Vec<dpb::Administration>,
    /// Every cycle started, with its dose calculations.
    pub cycles: Vec<dpb::Cycle>,
    /// Adverse events.
    pub adverse_events: Vec<AdverseEvent>,
    /// Response assessments.
    pub assessments: Vec<Assessment>,
    /// Death dates from follow-up, by subject.
    pub deaths: BTreeMap<String, NaiveDate>,
    /// The primary endpoint's best overall response of each evaluable subject (None: no central
    /// review assessment in the evaluation window).
    pub best: BTreeMap<String, Option<Response>>,
}

// ------------------------------------------------------------------------------------------------
// Metadata

const ID: &str = "Identifier";
const TOPIC: &str = "Topic";
const TIMING: &str = "Timing";
const RECORD: &str = "Record Qualifier";
const SYNONYM: &str = "Synonym Qualifier";
const GROUPING: &str = "Grouping Qualifier";
const RESULT: &str = "Result Qualifier";
const VARIABLE: &str = "Variable Qualifier";
const RULE: &str = "Rule";

const STUDYID: super::tabulation::Var = var("STUDYID", "Study Identifier", Text, ID, FromProtocol).req();
const DOMAIN: super::tabulation::Var = var("DOMAIN", "Domain Abbreviation", Text, ID, Assigned).req();
const USUBJID: super::tabulation::Var = var("USUBJID", "Unique Subject Identifier", Text, ID, Assigned).req();

/// Demographics.
pub(crate) static DM: Domain = Domain {
    name: "DM",
    label: "Demographics",
    class: "SPECIAL PURPOSE",
    structure: "One record per subject",
    keys: &["STUDYID", "USUBJID"],
    reference: false,
    vars: &[
        STUDYID,
        DOMAIN,
        USUBJID,
        var("SUBJID", "Subject Identifier for the Study", Text, TOPIC, Assigned).req(),
        var("RFSTDTC", "Subject Reference Start Date/Time", Date, RECORD, Derived).note("MT.RFSTDTC"),
        var("RFENDTC", "Subject Reference End Date/Time", Date, RECORD, Derived).note("MT.RFENDTC"),
        var("RFXSTDTC", "Date/Time of First Study Treatment", Dtm, RECORD, Derived).note("MT.RFXSTDTC"),
        var("RFXENDTC", "Date/Time of Last Study Treatment", Dtm, RECORD, Derived).note("MT.RFXENDTC"),
        var("RFICDTC", "Date/Time of Informed Consent", Date, RECORD, Collected),
        var("DTHDTC", "Date/Time of Death", Date, RECORD, Collected),
        var("DTHFL", "Subject Death Flag", Text, RECORD, Derived)
            .cl("CL.NY")
            .note("MT.DTHFL"),
        var("SITEID", "Study Site Identifier", Text, RECORD, Assigned).req(),
        var("AGE", "Age", Integer, RECORD, NotAvailable).note("COM.NOTCOLL"),
        var("AGEU", "Age Units", Text, VARIABLE, NotAvailable).note("COM.NOTCOLL"),
        var("SEX", "Sex", Text, RECORD, Assigned)
            .req()
            .cl("CL.SEX")
            .note("COM.SEX"),
        var("ARMCD", "Planned Arm Code", Text, RECORD, Assigned),
        var("ARM", "Description of Planned Arm", Text, SYNONYM, Assigned),
        var("ACTARMCD", "Actual Arm Code", Text, RECORD, Derived).note("MT.ACTARM"),
        var("ACTARM", "Description of Actual Arm", Text, SYNONYM, Derived).note("MT.ACTARM"),
        var("ARMNRS", "Reason Arm and/or Actual Arm is Null", Text, RECORD, Derived)
            .cl("CL.ARMNULRS")
            .note("MT.ACTARM"),
        var("COUNTRY", "Country", Text, RECORD, Assigned).req().cl("CL.COUNTRY"),
    ],
};

/// Disposition.
pub(crate) static DS: Domain = Domain {
    name: "DS",
    label: "Disposition",
    class: "EVENTS",
    structure: "One record per disposition status or protocol milestone per subject",
    keys: &["STUDYID", "USUBJID", "DSSEQ"],
    reference: false,
    vars: &[
        STUDYID,
        DOMAIN,
        USUBJID,
        var("DSSEQ", "Sequence Number", Integer, ID, Derived)
            .req()
            .note("MT.SEQ"),
        var(
            "DSTERM",
            "Reported Term for the Disposition Event",
            Text,
            TOPIC,
            Collected,
        )
        .req(),
        var("DSDECOD", "Standardized Disposition Term", Text, SYNONYM, Derived)
            .req()
            .cl("CL.DSDECOD")
            .note("MT.DSDECOD"),
        var("DSCAT", "Category for Disposition Event", Text, GROUPING, Assigned).cl("CL.DSCAT"),
        var("DSSCAT", "Subcategory for Disposition Event", Text, GROUPING, Assigned),
        var(
            "DSSTDTC",
            "Start Date/Time of Disposition Event",
            Date,
            TIMING,
            Collected,
        ),
    ],
};

/// Exposure.
pub(crate) static EX: Domain = Domain {
    name: "EX",
    label: "Exposure",
    class: "INTERVENTIONS",
    structure: "One record per administration per subject",
    keys: &["STUDYID", "USUBJID", "EXTRT", "EXSTDTC", "EXSEQ"],
    reference: false,
    vars: &[
        STUDYID,
        DOMAIN,
        USUBJID,
        var("EXSEQ", "Sequence Number", Integer, ID, Derived)
            .req()
            .note("MT.SEQ"),
        var("EXSPID", "Sponsor-Defined Identifier", Text, ID, Assigned),
        var("EXTRT", "Name of Treatment", Text, TOPIC, FromProtocol).req(),
        var("EXDOSE", "Dose", Dec, RECORD, Derived).note("MT.EXDOSE"),
        var("EXDOSU", "Dose Units", Text, VARIABLE, FromProtocol).cl("CL.UNIT"),
        var("EXROUTE", "Route of Administration", Text, VARIABLE, FromProtocol).cl("CL.ROUTE"),
        var("EXADJ", "Reason for Dose Adjustment", Text, RECORD, Derived).note("MT.EXADJ"),
        var("EPOCH", "Epoch", Text, TIMING, Assigned).cl("CL.EPOCH"),
        var("VISITNUM", "Visit Number", Integer, TIMING, Collected),
        var("VISIT", "Visit Name", Text, TIMING, Derived).note("MT.VISIT"),
        var("EXSTDTC", "Start Date/Time of Treatment", Dtm, TIMING, Collected),
        var("EXENDTC", "End Date/Time of Treatment", Dtm, TIMING, Collected),
    ],
};

/// Exposure as collected: every administration recorded, in the unit given, missed doses as not
/// occurred.
pub(crate) static EC: Domain = Domain {
    name: "EC",
    label: "Exposure as Collected",
    class: "INTERVENTIONS",
    structure: "One record per administration recorded per subject",
    keys: &["STUDYID", "USUBJID", "ECTRT", "ECSTDTC", "ECSEQ"],
    reference: false,
    vars: &[
        STUDYID,
        DOMAIN,
        USUBJID,
        var("ECSEQ", "Sequence Number", Integer, ID, Derived)
            .req()
            .note("MT.SEQ"),
        var("ECSPID", "Sponsor-Defined Identifier", Text, ID, Assigned),
        var("ECTRT", "Name of Treatment", Text, TOPIC, FromProtocol).req(),
        var("ECMOOD", "Mood", Text, RECORD, Assigned).cl("CL.ECMOOD"),
        var("ECPRESP", "EC Pre-Specified", Text, VARIABLE, Assigned).cl("CL.NY"),
        var("ECOCCUR", "EC Occurrence", Text, RECORD, Derived)
            .cl("CL.NY")
            .note("MT.ECOCCUR"),
        var("ECREASOC", "Reason for Occur Value", Text, RECORD, Collected),
        var("ECDOSE", "Dose", Dec, RECORD, Collected),
        var("ECDOSU", "Dose Units", Text, VARIABLE, FromProtocol).cl("CL.UNIT"),
        var("ECROUTE", "Route of Administration", Text, VARIABLE, FromProtocol).cl("CL.ROUTE"),
        var("EPOCH", "Epoch", Text, TIMING, Assigned).cl("CL.EPOCH"),
        var("VISITNUM", "Visit Number", Integer, TIMING, Collected),
        var("VISIT", "Visit Name", Text, TIMING, Derived).note("MT.VISIT"),
        var("ECSTDTC", "Start Date/Time of Treatment", Dtm, TIMING, Collected),
        var("ECENDTC", "End Date/Time of Treatment", Dtm, TIMING, Collected),
    ],
};

/// Adverse events.
pub(crate) static AE: Domain = Domain {
    name: "AE",
    label: "Adverse Events",
    class: "EVENTS",
    structure: "One record per adverse event per subject",
    keys: &["STUDYID", "USUBJID", "AEDECOD", "AESTDTC", "AESEQ"],
    reference: false,
    vars: &[
        STUDYID,
        DOMAIN,
        USUBJID,
        var("AESEQ", "Sequence Number", Integer, ID, Derived)
            .req()
            .note("MT.SEQ"),
        var("AESPID", "Sponsor-Defined Identifier", Text, ID, Assigned),
        var("AETERM", "Reported Term for the Adverse Event", Text, TOPIC, Collected).req(),
        var("AEDECOD", "Dictionary-Derived Term", Text, SYNONYM, Derived)
            .req()
            .cl("CL.AEDECOD")
            .note("MT.AEDECOD"),
        var("AESER", "Serious Event", Text, RECORD, Derived)
            .cl("CL.NY")
            .note("MT.AESER"),
        var("AEREL", "Causality", Text, RECORD, Derived)
            .cl("CL.AEREL")
            .note("MT.AEREL"),
        var("AEOUT", "Outcome of Adverse Event", Text, RECORD, Derived)
            .cl("CL.OUT")
            .note("MT.AEOUT"),
        var("AESCONG", "Congenital Anomaly or Birth Defect", Text, RECORD, Collected).cl("CL.NY"),
        var(
            "AESDISAB",
            "Persist or Signif Disability/Incapacity",
            Text,
            RECORD,
            Collected,
        )
        .cl("CL.NY"),
        var("AESDTH", "Results in Death", Text, RECORD, Collected).cl("CL.NY"),
        var(
            "AESHOSP",
            "Requires or Prolongs Hospitalization",
            Text,
            RECORD,
            Collected,
        )
        .cl("CL.NY"),
        var("AESLIFE", "Is Life Threatening", Text, RECORD, Collected).cl("CL.NY"),
        var(
            "AESMIE",
            "Other Medically Important Serious Event",
            Text,
            RECORD,
            Collected,
        )
        .cl("CL.NY"),
        var("AETOXGR", "Standard Toxicity Grade", Text, RECORD, Collected).cl("CL.AETOXGR"),
        var("AESTDTC", "Start Date/Time of Adverse Event", Date, TIMING, Collected),
        var("AEENDTC", "End Date/Time of Adverse Event", Date, TIMING, Collected),
    ],
};

/// The variables of a supplemental qualifiers dataset, with its QVAL.
const fn supplemental(qval: crate::export::tabulation::Var) -> [crate::export::tabulation::Var; 9] {
    [
        STUDYID,
        var("RDOMAIN", "Related Domain Abbreviation", Text, ID, Assigned).req(),
        USUBJID,
        var("IDVAR", "Identifying Variable", Text, ID, Assigned),
        var("IDVARVAL", "Identifying Variable Value", Text, ID, Assigned),
        var("QNAM", "Qualifier Variable Name", Text, TOPIC, Assigned).req(),
        var("QLABEL", "Qualifier Variable Label", Text, SYNONYM, Assigned).req(),
        qval,
        var("QORIG", "Origin", Text, RECORD, Assigned).req(),
    ]
}

/// Supplemental qualifiers of AE: causality per agent.
pub(crate) static SUPPAE: Domain = Domain {
    name: "SUPPAE",
    label: "Supplemental Qualifiers for AE",
    class: "RELATIONSHIP",
    structure: "One record per supplemental qualifier per related parent domain record",
    keys: &["STUDYID", "RDOMAIN", "USUBJID", "IDVAR", "IDVARVAL", "QNAM"],
    reference: false,
    vars: &supplemental(var("QVAL", "Data Value", Text, RESULT, Collected).req().cl("CL.AEREL")),
};

/// Supplemental qualifiers of EX: the protocol version each dose was given under.
pub(crate) static SUPPEX: Domain = Domain {
    name: "SUPPEX",
    label: "Supplemental Qualifiers for EX",
    class: "RELATIONSHIP",
    structure: "One record per supplemental qualifier per related parent domain record",
    keys: &["STUDYID", "RDOMAIN", "USUBJID", "IDVAR", "IDVARVAL", "QNAM"],
    reference: false,
    vars: &supplemental(
        var("QVAL", "Data Value", Text, RESULT, Derived)
            .req()
            .note("MT.PROTVERS"),
    ),
};

/// Disease response.
pub(crate) static RS: Domain = Domain {
    name: "RS",
    label: "Disease Response and Clin Classification",
    class: "FINDINGS",
    structure: "One record per response assessment per evaluator per visit per subject",
    keys: &["STUDYID", "USUBJID", "RSTESTCD", "RSEVAL", "VISITNUM", "RSSEQ"],
    reference: false,
    vars: &[
        STUDYID,
        DOMAIN,
        USUBJID,
        var("RSSEQ", "Sequence Number", Integer, ID, Derived)
            .req()
            .note("MT.SEQ"),
        var("RSSPID", "Sponsor-Defined Identifier", Text, ID, Assigned),
        var("RSTESTCD", "Assessment Short Name", Text, TOPIC, Assigned)
            .req()
            .cl("CL.RSTESTCD"),
        var("RSTEST", "Assessment Name", Text, SYNONYM, Assigned)
            .req()
            .cl("CL.RSTEST"),
        var("RSCAT", "Category for Assessment", Text, GROUPING, Assigned),
        var("RSORRES", "Result or Finding in Original Units", Text, RESULT, Derived).note("MT.RSORRES"),
        var(
            "RSSTRESC",
            "Character Result/Finding in Std Format",
            Text,
            RESULT,
            Derived,
        )
        .cl("CL.RSRESP")
        .note("MT.RSORRES"),
        var("RSSTAT", "Completion Status", Text, RECORD, Derived)
            .cl("CL.ND")
            .note("MT.BESTRESP"),
        var("RSREASND", "Reason Assessment Not Performed", Text, RECORD, Derived).note("MT.BESTRESP"),
        var("RSEVAL", "Evaluator", Text, RECORD, Assigned).cl("CL.EVAL"),
        var("VISITNUM", "Visit Number", Integer, TIMING, Collected),
        var("RSDTC", "Date/Time of Assessment", Date, TIMING, Collected),
    ],
};

/// Trial summary.
pub(crate) static TS: Domain = Domain {
    name: "TS",
    label: "Trial Summary",
    class: "TRIAL DESIGN",
    structure: "One record per trial summary parameter value",
    keys: &["STUDYID", "TSPARMCD", "TSSEQ"],
    reference: true,
    vars: &[
        STUDYID,
        DOMAIN,
        var("TSSEQ", "Sequence Number", Integer, ID, Derived)
            .req()
            .note("MT.SEQ"),
        var("TSPARMCD", "Trial Summary Parameter Short Name", Text, TOPIC, Assigned)
            .req()
            .cl("CL.TSPARMCD"),
        var("TSPARM", "Trial Summary Parameter", Text, SYNONYM, Assigned).req(),
        var("TSVAL", "Parameter Value", Text, RESULT, FromProtocol),
        var("TSVCDREF", "Name of the Reference Terminology", Text, RESULT, Assigned),
    ],
};

/// Trial arms.
pub(crate) static TA: Domain = Domain {
    name: "TA",
    label: "Trial Arms",
    class: "TRIAL DESIGN",
    structure: "One record per planned Element per Arm",
    keys: &["STUDYID", "ARMCD", "TAETORD"],
    reference: true,
    vars: &[
        STUDYID,
        DOMAIN,
        var("ARMCD", "Planned Arm Code", Text, TOPIC, FromProtocol).req(),
        var("ARM", "Description of Planned Arm", Text, SYNONYM, FromProtocol).req(),
        var(
            "TAETORD",
            "Planned Order of Element within Arm",
            Integer,
            TIMING,
            FromProtocol,
        )
        .req(),
        var("ETCD", "Element Code", Text, RECORD, FromProtocol).req(),
        var("ELEMENT", "Description of Element", Text, SYNONYM, FromProtocol),
        var("TABRANCH", "Branch", Text, RULE, FromProtocol),
        var("TATRANS", "Transition Rule", Text, RULE, FromProtocol),
        var("EPOCH", "Epoch", Text, TIMING, FromProtocol).req().cl("CL.EPOCH"),
    ],
};

/// Trial elements.
pub(crate) static TE: Domain = Domain {
    name: "TE",
    label: "Trial Elements",
    class: "TRIAL DESIGN",
    structure: "One record per planned Element",
    keys: &["STUDYID", "ETCD"],
    reference: true,
    vars: &[
        STUDYID,
        DOMAIN,
        var("ETCD", "Element Code", Text, TOPIC, FromProtocol).req(),
        var("ELEMENT", "Description of Element", Text, SYNONYM, FromProtocol).req(),
        var("TESTRL", "Rule for Start of Element", Text, RULE, FromProtocol).req(),
        var("TEENRL", "Rule for End of Element", Text, RULE, FromProtocol),
        var("TEDUR", "Planned Duration of Element", Text, TIMING, FromProtocol),
    ],
};

const RESPONSES: [&str; 7] = ["CR", "PR", "MR", "SD", "PD", "MD", "NOT INVOLVED"];
/// RS tests: (code, name, CDISC term or sponsor extension).
const RS_TESTS: [(&str, &str, bool); 5] = [
    ("PTRESP", "Primary Tumor Response", false),
    ("METRESP", "Metastatic Soft Tissue and Bone Response", false),
    ("BMRESP", "Bone Marrow Response", false),
    ("OVRLRESP", "Overall Response", true),
    ("BESTRESP", "Best Overall Response", true),
];
const TS_PARAMETERS: [(&str, &str); 8] = [
    ("TITLE", "Trial Title"),
    ("REGID", "Registry Identifier"),
    ("STYPE", "Study Type"),
    ("RANDOM", "Trial is Randomized"),
    ("NARMS", "Planned Number of Arms"),
    ("STRATFCT", "Stratification Factor"),
    ("TRT", "Investigational Therapy or Treatment"),
    ("ACTSUB", "Actual Number of Subjects"),
];
const DISPOSITIONS: [&str; 5] = [
    "INFORMED CONSENT OBTAINED",
    "RANDOMIZED",
    "DEATH",
    "WITHDRAWAL BY SUBJECT",
    "OTHER",
];
const EPOCHS: [&str; 3] = ["SCREENING", "TREATMENT", "FOLLOW-UP"];

fn listed(terms: &[&str]) -> Terms {
    Terms::Listed(terms.iter().map(|t| ((*t).to_owned(), false)).collect())
}

/// The code lists the variables name.
pub(crate) fn codelists(input: &Input<'_>, units: &BTreeSet<String>, routes: &BTreeSet<String>) -> Vec<CodeList> {
    let protocol = input.protocol;
    let sponsor = |oid, name, terms| CodeList {
        oid,
        name,
        nci: None,
        terms,
    };
    let cdisc = |oid, name, nci, terms| CodeList {
        oid,
        name,
        nci: Some(nci),
        terms,
    };
    let set = |s: &BTreeSet<String>| Terms::Listed(s.iter().map(|t| (t.clone(), false)).collect());
    let mut tests: Vec<(String, bool)> = RS_TESTS.iter().map(|(c, _, cdisc)| ((*c).to_owned(), !cdisc)).collect();
    let mut names: Vec<(String, bool)> = RS_TESTS.iter().map(|(_, n, cdisc)| ((*n).to_owned(), !cdisc)).collect();
    tests.sort();
    names.sort();
    let mut out = vec![
        cdisc("CL.NY", "No Yes Response", "C66742", listed(&["N", "Y"])),
        cdisc("CL.SEX", "Sex", "C66731", listed(&["U"])),
        sponsor("CL.ARMNULRS", "Arm Null Reason", listed(&["ASSIGNED, NOT TREATED"])),
        sponsor("CL.DSDECOD", "Standardized Disposition Term", listed(&DISPOSITIONS)),
        cdisc(
            "CL.DSCAT",
            "Category for Disposition Event",
            "C74558",
            listed(&["DISPOSITION EVENT", "PROTOCOL MILESTONE"]),
        ),
        cdisc("CL.UNIT", "Unit", "C71620", set(units)),
        cdisc("CL.ROUTE", "Route of Administration", "C66729", set(routes)),
        CodeList {
            oid: "CL.COUNTRY",
            name: "Country",
            nci: None,
            terms: Terms::External("ISO 3166-1 alpha-3", "2020".to_owned()),
        },
        sponsor("CL.EPOCH", "Epoch", listed(&EPOCHS)),
        sponsor(
            "CL.AEDECOD",
            "CTCAE Term",
            Terms::External("CTCAE", protocol.outcomes.ctcae_version.clone()),
        ),
        sponsor(
            "CL.AEREL",
            "Causality (NCI attribution)",
            listed(&[
                "DEFINITE",
                "MULTIPLE",
                "NOT RELATED",
                "POSSIBLE",
                "PROBABLE",
                "UNLIKELY",
            ]),
        ),
        cdisc(
            "CL.OUT",
            "Outcome of Event",
            "C66768",
            listed(&["FATAL", "NOT RECOVERED/NOT RESOLVED", "RECOVERED/RESOLVED"]),
        ),
        sponsor("CL.ECMOOD", "Mood", listed(&["PERFORMED"])),
        sponsor("CL.AETOXGR", "CTCAE Grade", listed(&["1", "2", "3", "4", "5"])),
        sponsor("CL.RSTESTCD", "Response Assessment Short Name", Terms::Listed(tests)),
        sponsor("CL.RSTEST", "Response Assessment Name", Terms::Listed(names)),
        sponsor("CL.RSRESP", "INRC 2017 Response", listed(&RESPONSES)),
        cdisc("CL.ND", "Not Done", "C66789", listed(&["NOT DONE"])),
        cdisc(
            "CL.EVAL",
            "Evaluator",
            "C78735",
            listed(&["INDEPENDENT ASSESSOR", "INVESTIGATOR"]),
        ),
        cdisc(
            "CL.TSPARMCD",
            "Trial Summary Parameter Test Code",
            "C66738",
            listed(&TS_PARAMETERS.map(|(c, _)| c)),
        ),
    ];
    out.sort_by_key(|c| c.oid);
    out
}

/// The derivations and the reasons some variables are empty.
pub(crate) const NOTES: &[Note] = &[
    Note {
        oid: "MT.SEQ",
        text: "1, 2, ... per subject (per trial in TS) in the dataset's sort order.",
    },
    Note {
        oid: "MT.RFSTDTC",
        text: "Date of enrollment and randomization (EnrollSubject), the origin of every time-to-event analysis.",
    },
    Note {
        oid: "MT.RFENDTC",
        text: "Date the subject went off study or withdrew consent (ChangeSubjectStatus); null while on study.",
    },
    Note {
        oid: "MT.RFXSTDTC",
        text: "Earliest start of an administration recorded as given or partially given, UTC.",
    },
    Note {
        oid: "MT.RFXENDTC",
        text: "Latest end (or start, when no end was recorded) of an administration given or partially given, UTC.",
    },
    Note {
        oid: "MT.DTHFL",
        text: "Y when a follow-up recorded the subject dead; null otherwise.",
    },
    Note {
        oid: "MT.ACTARM",
        text: "The randomized arm when at least one dose was given (arms cannot be switched); otherwise \
            null, with ARMNRS ASSIGNED, NOT TREATED.",
    },
    Note {
        oid: "MT.DSDECOD",
        text: "INFORMED CONSENT OBTAINED and RANDOMIZED for the milestones; DEATH for a death recorded at \
            follow-up; WITHDRAWAL BY SUBJECT for withdrawn consent; OTHER for the end of protocol \
            therapy or of study, whose reason is recorded in free text (DSTERM).",
    },
    Note {
        oid: "MT.EXDOSE",
        text: "The protocol dose of the cycle's dose level in protocol units (per m2, or per kg when the \
            small-child rule applied: the per-m2 dose divided by the protocol's divisor), under the \
            protocol version the cycle was dosed under (SUPPEX PROTVERS), times the dose given divided \
            by the dose prescribed; to 4 decimals.",
    },
    Note {
        oid: "MT.PROTVERS",
        text: "The protocol version in force on day 1 of the dose's cycle, which dosed it (a protocol \
            amendment takes effect from its effective date; earlier cycles keep the version they were \
            dosed under).",
    },
    Note {
        oid: "MT.EXADJ",
        text: "DOSE REDUCED TO LEVEL n when the cycle used a reduced dose level; PARTIALLY GIVEN with the \
            recorded reason; DOSE DEVIATION when the given dose differed from the prescribed one \
            beyond the protocol tolerance. Joined with '; '.",
    },
    Note {
        oid: "MT.ECOCCUR",
        text: "Y for an administration recorded as given or partially given; N for one held or not given (with \
            its reason in ECREASOC and no dose).",
    },
    Note {
        oid: "MT.VISIT",
        text: "CYCLE n, from the cycle number.",
    },
    Note {
        oid: "MT.AEDECOD",
        text: "The CTCAE term as recorded (each CTCAE term is a MedDRA Lowest Level Term); coding to a \
            MedDRA Preferred Term needs the MedDRA dictionary, which trialops does not hold.",
    },
    Note {
        oid: "MT.AESER",
        text: "Y when any seriousness criterion was recorded, N otherwise.",
    },
    Note {
        oid: "MT.AEREL",
        text: "The attribution (NCI scale; UNRELATED as NOT RELATED) when one agent was assessed; \
            MULTIPLE when several were, each in SUPPAE as AERELn in agent order; null when none was.",
    },
    Note {
        oid: "MT.AEOUT",
        text: "FATAL for grade 5; RECOVERED/RESOLVED when a resolution date is recorded; NOT \
            RECOVERED/NOT RESOLVED otherwise.",
    },
    Note {
        oid: "MT.RSORRES",
        text: "The component and overall responses derived by INRC 2017 from the recorded measurements; \
            the overall response after any recorded override.",
    },
    Note {
        oid: "MT.BESTRESP",
        text: "BESTRESP: the best central-review overall response (CR > PR > MR > SD > PD) among \
            assessments after cycles 1 to the protocol's primary evaluation cycle, for each subject \
            who received protocol therapy; NOT DONE when there is none.",
    },
    Note {
        oid: "COM.NOTCOLL",
        text: "Not collected: the protocol definition collects no age or birth date.",
    },
    Note {
        oid: "COM.SEX",
        text: "Not collected by the protocol definition: U (unknown) for every subject.",
    },
];

// ------------------------------------------------------------------------------------------------
// Values

fn day(d: Option<&common::Date>) -> Option<NaiveDate> {
    d.and_then(|d| NaiveDate::from_ymd_opt(d.year, u32::try_from(d.month).ok()?, u32::try_from(d.day).ok()?))
}

fn instant(t: Option<&prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)))
}

fn date_value(d: Option<NaiveDate>) -> Value {
    d.map_or(Value::Null, |d| Value::Text(d.format("%Y-%m-%d").to_string()))
}

fn datetime_value(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| Value::Text(t.format("%Y-%m-%dT%H:%M:%S").to_string()))
}

fn decimal(d: Option<&common::Decimal>) -> Option<Decimal> {
    d.and_then(|d| Decimal::from_str(&d.value).ok())
}

fn yes_no(flag: bool) -> Value {
    Value::text(if flag { "Y" } else { "N" })
}

fn response_term(r: Response) -> &'static str {
    match r {
        Response::Cr => "CR",
        Response::Pr => "PR",
        Response::Mr => "MR",
        Response::Sd => "SD",
        Response::Pd => "PD",
        Response::Md => "MD",
        Response::NotInvolved => "NOT INVOLVED",
    }
}

fn attribution_term(a: Attribution) -> &'static str {
    match a {
        Attribution::Unrelated => "NOT RELATED",
        Attribution::Unlikely => "UNLIKELY",
        Attribution::Possible => "POSSIBLE",
        Attribution::Probable => "PROBABLE",
        Attribution::Definite => "DEFINITE",
    }
}

/// A protocol route as the CDISC ROUTE term.
pub(crate) fn route_term(route: &str) -> String {
    match route.trim().to_ascii_uppercase().as_str() {
        "PO" | "ORAL" => "ORAL".to_owned(),
        "IV" | "INTRAVENOUS" => "INTRAVENOUS".to_owned(),
        "SC" | "SUBCUTANEOUS" => "SUBCUTANEOUS".to_owned(),
        "IM" | "INTRAMUSCULAR" => "INTRAMUSCULAR".to_owned(),
        "IT" | "INTRATHECAL" => "INTRATHECAL".to_owned(),
        other => other.to_owned(),
    }
}

/// The protocol dose unit of a dose level, for example "mg/m2".
fn protocol_unit(unit: &str, basis: DoseBasis, small_child: bool) -> String {
    match (basis, small_child) {
        (DoseBasis::PerM2, false) => format!("{unit}/m2"),
        (DoseBasis::PerM2, true) | (DoseBasis::PerKg, _) => format!("{unit}/kg"),
        (DoseBasis::Flat, _) => unit.to_owned(),
    }
}

/// Numbers each subject's rows 1, 2, ... in the column `seq` (rows already sorted by subject in
/// column `subject`).
fn number(rows: &mut [Vec<Value>], subject: usize, seq: usize) {
    let mut last: Option<Value> = None;
    let mut n = 0;
    for row in rows.iter_mut() {
        if last.as_ref() != Some(&row[subject]) {
            n = 0;
            last = Some(row[subject].clone());
        }
        n += 1;
        row[seq] = Value::Int(n);
    }
}

fn sort_key(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Text(s) | Value::Decimal(s) => s.clone(),
        Value::Int(i) => format!("{i:020}"),
    }
}

// ------------------------------------------------------------------------------------------------
// Domains

struct Exposure {
    first: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
}

fn given(a: &dpb::Administration) -> bool {
    matches!(
        dpb::AdministrationStatus::try_from(a.status),
        Ok(dpb::AdministrationStatus::Given | dpb::AdministrationStatus::PartiallyGiven)
    )
}

/// Each treated subject's first start and last end of a dose given, in one pass.
fn exposures<'a>(input: &'a Input<'_>) -> BTreeMap<&'a str, Exposure> {
    let mut out: BTreeMap<&str, Exposure> = BTreeMap::new();
    for a in input.administrations.iter().filter(|a| given(a)) {
        let start = instant(a.started_at.as_ref());
        let end = instant(a.ended_at.as_ref()).or(start);
        let x = out.entry(a.subject_id.as_str()).or_insert(Exposure {
            first: None,
            last: None,
        });
        x.first = match (x.first, start) {
            (Some(f), Some(s)) => Some(f.min(s)),
            (f, s) => f.or(s),
        };
        x.last = match (x.last, end) {
            (Some(l), Some(e)) => Some(l.max(e)),
            (l, e) => l.or(e),
        };
    }
    out
}

fn dm(input: &Input<'_>, study: &str) -> Vec<Vec<Value>> {
    let arm_name = |code: &str| {
        input
            .protocol
            .arms
            .iter()
            .find(|a| a.code == code)
            .map(|a| a.name.clone())
            .unwrap_or_default()
    };
    let exposures = exposures(input);
    let none = Exposure {
        first: None,
        last: None,
    };
    input
        .subjects
        .iter()
        .map(|s| {
            let x = exposures.get(s.subject_id.as_str()).unwrap_or(&none);
            let treated = x.first.is_some();
            let ended = matches!(
                epb::SubjectStatus::try_from(s.status),
                Ok(epb::SubjectStatus::OffStudy | epb::SubjectStatus::Withdrawn)
            );
            let death = input.deaths.get(&s.subject_id).copied();
            vec![
                Value::text(study),
                Value::text("DM"),
                Value::text(&s.subject_id),
                Value::text(&s.subject_id),
                date_value(instant(s.enrolled_at.as_ref()).map(|t| t.date_naive())),
                date_value(if ended {
                    day(s.status_effective_on.as_ref())
                } else {
                    None
                }),
                datetime_value(x.first),
                datetime_value(x.last),
                date_value(day(s.consent.as_ref().and_then(|c| c.signed_on.as_ref()))),
                date_value(death),
                if death.is_some() { Value::text("Y") } else { Value::Null },
                Value::text(&s.site_code),
                Value::Null,
                Value::Null,
                Value::text("U"),
                Value::text(&s.arm_code),
                Value::text(arm_name(&s.arm_code)),
                if treated { Value::text(&s.arm_code) } else { Value::Null },
                if treated {
                    Value::text(arm_name(&s.arm_code))
                } else {
                    Value::Null
                },
                if treated {
                    Value::Null
                } else {
                    Value::text("ASSIGNED, NOT TREATED")
                },
                Value::opt(input.countries.get(&s.site_code)),
            ]
        })
        .collect()
}

fn ds(input: &Input<'_>, study: &str) -> Vec<Vec<Value>> {
    let mut changes: BTreeMap<&str, Vec<&epb::StatusChange>> = BTreeMap::new();
    for c in &input.status_changes {
        changes.entry(c.subject_id.as_str()).or_default().push(c);
    }
    let row = |subject: &str, term: &str, decod: &str, cat: &str, scat: Option<&str>, on: Option<NaiveDate>| {
        vec![
            Value::text(study),
            Value::text("DS"),
            Value::text(subject),
            Value::Null,
            Value::text(term),
            Value::text(decod),
            Value::text(cat),
            Value::opt(scat),
            date_value(on),
        ]
    };
    let mut rows = Vec::new();
    for s in &input.subjects {
        let id = s.subject_id.as_str();
        let consent = day(s.consent.as_ref().and_then(|c| c.signed_on.as_ref()));
        if consent.is_some() {
            rows.push(row(
                id,
                "INFORMED CONSENT OBTAINED",
                "INFORMED CONSENT OBTAINED",
                "PROTOCOL MILESTONE",
                None,
                consent,
            ));
        }
        let enrolled = instant(s.enrolled_at.as_ref()).map(|t| t.date_naive());
        rows.push(row(
            id,
            "RANDOMIZED",
            "RANDOMIZED",
            "PROTOCOL MILESTONE",
            None,
            enrolled,
        ));
        // Every status the subject took, in order; the current one alone when no history is
        // held.
        let current = [(s.status, s.status_reason.as_str(), s.status_effective_on.as_ref())];
        let history: Vec<(i32, &str, Option<&common::Date>)> = match changes.get(id) {
            Some(changes) => changes
                .iter()
                .map(|c| (c.status, c.reason.as_str(), c.effective_on.as_ref()))
                .collect(),
            None => current.to_vec(),
        };
        for (status, reason, on) in history {
            let (fallback, decod, scat) = match epb::SubjectStatus::try_from(status) {
                Ok(epb::SubjectStatus::OffProtocolTherapy) => {
                    ("OFF PROTOCOL THERAPY", "OTHER", "END OF PROTOCOL THERAPY")
                }
                Ok(epb::SubjectStatus::OffStudy) => ("OFF STUDY", "OTHER", "END OF STUDY"),
                Ok(epb::SubjectStatus::Withdrawn) => ("CONSENT WITHDRAWN", "WITHDRAWAL BY SUBJECT", "END OF STUDY"),
                _ => continue,
            };
            let term = if reason.trim().is_empty() { fallback } else { reason };
            rows.push(row(id, term, decod, "DISPOSITION EVENT", Some(scat), day(on)));
        }
        if let Some(death) = input.deaths.get(id) {
            rows.push(row(
                id,
                "DEATH",
                "DEATH",
                "DISPOSITION EVENT",
                Some("END OF STUDY"),
                Some(*death),
            ));
        }
    }
    rows.sort_by_key(|r| (sort_key(&r[2]), sort_key(&r[8])));
    number(&mut rows, 2, 3);
    rows
}

/// EX, and SUPPEX naming each dose's protocol version (the version its cycle was dosed under,
/// whose levels and units give EXDOSE).
fn ex(input: &Input<'_>, study: &str) -> (Vec<Vec<Value>>, Vec<Vec<Value>>) {
    let arm_of: BTreeMap<&str, &str> = input
        .subjects
        .iter()
        .map(|s| (s.subject_id.as_str(), s.arm_code.as_str()))
        .collect();
    let cycles: BTreeMap<(&str, i32), &dpb::Cycle> = input
        .cycles
        .iter()
        .map(|c| ((c.subject_id.as_str(), c.cycle_number), c))
        .collect();
    let mut rows = Vec::new();
    for a in input.administrations.iter().filter(|a| given(a)) {
        let cycle = cycles.get(&(a.subject_id.as_str(), a.cycle_number));
        let version = cycle.map_or("", |c| c.protocol_version.as_str());
        let protocol = input.versions.get(version).unwrap_or(input.protocol);
        let agent = arm_of.get(a.subject_id.as_str()).and_then(|arm| {
            protocol
                .regimens
                .iter()
                .find(|r| r.arm == *arm)
                .and_then(|r| r.agents.iter().find(|g| g.id == a.agent_id))
        });
        let calculation = cycle.and_then(|c| c.doses.iter().find(|d| d.agent_id == a.agent_id));
        let (name, route) = agent.map_or((a.agent_id.to_uppercase(), None), |g| {
            (g.name.to_uppercase(), Some(route_term(&g.route)))
        });
        let level = calculation.map_or(0, |c| c.dose_level);
        let small_child = calculation.is_some_and(|c| c.small_child_rule_applied);
        // The protocol-unit dose of the level, scaled by the share of the prescription given.
        let (dose, unit) = match agent.and_then(|g| g.dose_levels.iter().find(|l| l.level == level).map(|l| (g, l))) {
            Some((g, l)) => {
                let per = if small_child && g.basis == DoseBasis::PerM2 {
                    l.dose / protocol.treatment.small_child_rule.per_kg_divisor
                } else {
                    l.dose
                };
                let share = match (decimal(a.actual_dose.as_ref()), decimal(a.prescribed_dose.as_ref())) {
                    (Some(given), Some(prescribed)) if !prescribed.is_zero() => given / prescribed,
                    _ => Decimal::ONE,
                };
                (
                    Value::Decimal((per * share).round_dp(4).normalize().to_string()),
                    Value::text(protocol_unit(&g.unit, g.basis, small_child)),
                )
            }
            None => (Value::Null, Value::Null),
        };
        let mut adjustments = Vec::new();
        if level < 0 {
            adjustments.push(format!("DOSE REDUCED TO LEVEL {level}"));
        }
        if dpb::AdministrationStatus::try_from(a.status) == Ok(dpb::AdministrationStatus::PartiallyGiven) {
            adjustments.push(if a.reason.trim().is_empty() {
                "PARTIALLY GIVEN".to_owned()
            } else {
                format!("PARTIALLY GIVEN: {}", a.reason.trim())
            });
        }
        if a.deviation_flagged {
            adjustments.push("DOSE DEVIATION".to_owned());
        }
        rows.push(vec![
            Value::text(study),
            Value::text("EX"),
            Value::text(&a.subject_id),
            Value::Null,
            Value::text(&a.administration_id),
            Value::text(name),
            dose,
            unit,
            Value::opt(route),
            Value::text(adjustments.join("; ")),
            Value::text("TREATMENT"),
            Value::Int(i64::from(a.cycle_number)),
            Value::text(format!("CYCLE {}", a.cycle_number)),
            datetime_value(instant(a.started_at.as_ref())),
            datetime_value(instant(a.ended_at.as_ref())),
            // Carried through sorting and numbering for SUPPEX, then taken off.
            Value::text(version),
        ]);
    }
    rows.sort_by_key(|r| (sort_key(&r[2]), sort_key(&r[13]), sort_key(&r[5]), sort_key(&r[4])));
    number(&mut rows, 2, 3);
    let mut supp = Vec::new();
    for row in &mut rows {
        let version = row.pop().unwrap_or(Value::Null);
        if version == Value::Null {
            continue;
        }
        supp.push(vec![
            Value::text(study),
            Value::text("EX"),
            row[2].clone(),
            Value::text("EXSEQ"),
            Value::text(match &row[3] {
                Value::Int(n) => n.to_string(),
                _ => String::new(),
            }),
            Value::text("PROTVERS"),
            Value::text("Protocol Version of Dose"),
            version,
            Value::text("DERIVED"),
        ]);
    }
    (rows, supp)
}

fn ec(input: &Input<'_>, study: &str) -> Vec<Vec<Value>> {
    let agents: BTreeMap<(&str, &str), &trialops_domain::protocol::Agent> = input
        .protocol
        .regimens
        .iter()
        .flat_map(|r| r.agents.iter().map(move |g| ((r.arm.as_str(), g.id.as_str()), g)))
        .collect();
    let arm_of: BTreeMap<&str, &str> = input
        .subjects
        .iter()
        .map(|s| (s.subject_id.as_str(), s.arm_code.as_str()))
        .collect();
    let mut rows: Vec<Vec<Value>> = input
        .administrations
        .iter()
        .filter(|a| a.status != dpb::AdministrationStatus::Planned as i32)
        .map(|a| {
            let agent = arm_of
                .get(a.subject_id.as_str())
                .and_then(|arm| agents.get(&(*arm, a.agent_id.as_str())));
            let occurred = given(a);
            vec![
                Value::text(study),
                Value::text("EC"),
                Value::text(&a.subject_id),
                Value::Null,
                Value::text(&a.administration_id),
                Value::text(agent.map_or_else(|| a.agent_id.to_uppercase(), |g| g.name.to_uppercase())),
                Value::text("PERFORMED"),
                Value::text("Y"),
                yes_no(occurred),
                if occurred {
                    Value::Null
                } else {
                    Value::text(a.reason.trim())
                },
                match decimal(a.actual_dose.as_ref()).filter(|_| occurred) {
                    Some(d) => Value::Decimal(d.normalize().to_string()),
                    None => Value::Null,
                },
                if occurred {
                    Value::text(&a.dose_unit)
                } else {
                    Value::Null
                },
                Value::opt(agent.map(|g| route_term(&g.route))),
                Value::text("TREATMENT"),
                Value::Int(i64::from(a.cycle_number)),
                Value::text(format!("CYCLE {}", a.cycle_number)),
                datetime_value(instant(a.started_at.as_ref())),
                datetime_value(instant(a.ended_at.as_ref())),
            ]
        })
        .collect();
    rows.sort_by_key(|r| {
        (
            sort_key(&r[2]),
            sort_key(&r[14]),
            sort_key(&r[16]),
            sort_key(&r[5]),
            sort_key(&r[4]),
        )
    });
    number(&mut rows, 2, 3);
    rows
}

fn ae(input: &Input<'_>, study: &str) -> (Vec<Vec<Value>>, Vec<Vec<Value>>) {
    let agent_name = |id: &str| {
        input
            .protocol
            .regimens
            .iter()
            .flat_map(|r| &r.agents)
            .find(|g| g.id == id)
            .map_or_else(|| id.to_uppercase(), |g| g.name.to_uppercase())
    };
    let mut events: Vec<&AdverseEvent> = input.adverse_events.iter().collect();
    events.sort_by(|a, b| (&a.subject_id, a.onset_on, &a.id).cmp(&(&b.subject_id, b.onset_on, &b.id)));
    let (mut rows, mut supp) = (Vec::new(), Vec::new());
    let mut seq = BTreeMap::<&str, i64>::new();
    for e in events {
        let n = seq.entry(e.subject_id.as_str()).or_insert(0);
        *n += 1;
        let serious = !e.seriousness.is_empty();
        let criterion = |c: Seriousness| {
            if serious {
                yes_no(e.seriousness.contains(&c))
            } else {
                Value::Null
            }
        };
        let rel = match e.attributions.as_slice() {
            [] => Value::Null,
            [(_, one)] => Value::text(attribution_term(*one)),
            many => {
                for (i, (agent, a)) in many.iter().enumerate() {
                    let mut label = format!("Relationship to {}", agent_name(agent));
                    label.truncate(40);
                    supp.push(vec![
                        Value::text(study),
                        Value::text("AE"),
                        Value::text(&e.subject_id),
                        Value::text("AESEQ"),
                        Value::text(n.to_string()),
                        Value::text(format!("AEREL{}", i + 1)),
                        Value::text(label),
                        Value::text(attribution_term(*a)),
                        Value::text("CRF"),
                    ]);
                }
                Value::text("MULTIPLE")
            }
        };
        let outcome = if e.grade == 5 {
            "FATAL"
        } else if e.resolved_on.is_some() {
            "RECOVERED/RESOLVED"
        } else {
            "NOT RECOVERED/NOT RESOLVED"
        };
        rows.push(vec![
            Value::text(study),
            Value::text("AE"),
            Value::text(&e.subject_id),
            Value::Int(*n),
            Value::text(&e.id),
            Value::text(&e.term),
            Value::text(&e.term),
            yes_no(serious),
            rel,
            Value::text(outcome),
            criterion(Seriousness::CongenitalAnomaly),
            criterion(Seriousness::Incapacity),
            criterion(Seriousness::Death),
            criterion(Seriousness::Hospitalisation),
            criterion(Seriousness::LifeThreatening),
            criterion(Seriousness::ImportantMedicalEvent),
            Value::text(e.grade.to_string()),
            date_value(Some(e.onset_on)),
            date_value(e.resolved_on),
        ]);
    }
    (rows, supp)
}

fn rs(input: &Input<'_>, study: &str) -> Vec<Vec<Value>> {
    let criteria = "INRC 2017";
    let evaluator = |central: bool| {
        if central {
            "INDEPENDENT ASSESSOR"
        } else {
            "INVESTIGATOR"
        }
    };
    let mut rows = Vec::new();
    for a in &input.assessments {
        for (i, response) in a.responses.iter().enumerate() {
            let Some(response) = response else { continue };
            let (code, name, _) = RS_TESTS[i];
            rows.push(vec![
                Value::text(study),
                Value::text("RS"),
                Value::text(&a.subject_id),
                Value::Null,
                Value::text(&a.id),
                Value::text(code),
                Value::text(name),
                Value::text(criteria),
                Value::text(response_term(*response)),
                Value::text(response_term(*response)),
                Value::Null,
                Value::Null,
                Value::text(evaluator(a.central)),
                Value::Int(i64::from(a.after_cycle)),
                date_value(Some(a.assessed_on)),
            ]);
        }
    }
    let window = input.protocol.assessments.primary_evaluation_after_cycle;
    for (subject, best) in &input.best {
        let (code, name, _) = RS_TESTS[4];
        let result = best.map(response_term);
        rows.push(vec![
            Value::text(study),
            Value::text("RS"),
            Value::text(subject),
            Value::Null,
            Value::Null,
            Value::text(code),
            Value::text(name),
            Value::text(criteria),
            Value::opt(result),
            Value::opt(result),
            if result.is_none() {
                Value::text("NOT DONE")
            } else {
                Value::Null
            },
            if result.is_none() {
                Value::text(format!("NO CENTRAL REVIEW AFTER CYCLES 1 TO {window}"))
            } else {
                Value::Null
            },
            Value::text(evaluator(true)),
            Value::Null,
            Value::Null,
        ]);
    }
    let test_order = |v: &Value| RS_TESTS.iter().position(|(c, _, _)| Value::text(*c) == *v).unwrap_or(9);
    rows.sort_by_key(|r| {
        (
            sort_key(&r[2]),
            r[14] == Value::Null,
            sort_key(&r[14]),
            sort_key(&r[12]),
            test_order(&r[5]),
        )
    });
    number(&mut rows, 2, 3);
    rows
}

fn ts(input: &Input<'_>, study: &str) -> Vec<Vec<Value>> {
    let p = input.protocol;
    let mut params: Vec<(&str, String, Option<&str>)> = vec![
        ("TITLE", p.trial.title.clone(), None),
        ("REGID", p.trial.registry_id.clone(), Some("ClinicalTrials.gov")),
        ("STYPE", "INTERVENTIONAL".to_owned(), Some("CDISC CT")),
        ("RANDOM", "Y".to_owned(), Some("CDISC CT")),
        ("NARMS", p.arms.len().to_string(), None),
    ];
    params.extend(p.strata.iter().map(|f| ("STRATFCT", f.description.clone(), None)));
    let agents: BTreeSet<String> = p
        .regimens
        .iter()
        .flat_map(|r| &r.agents)
        .map(|g| g.name.to_uppercase())
        .collect();
    params.extend(agents.into_iter().map(|a| ("TRT", a, None)));
    params.push(("ACTSUB", input.subjects.len().to_string(), None));
    let mut rows: Vec<Vec<Value>> = params
        .into_iter()
        .filter(|(_, value, _)| !value.is_empty())
        .map(|(code, value, reference)| {
            let name = TS_PARAMETERS.iter().find(|(c, _)| *c == code).map_or("", |(_, n)| *n);
            vec![
                Value::text(study),
                Value::text("TS"),
                Value::Null,
                Value::text(code),
                Value::text(name),
                Value::text(value),
                Value::opt(reference),
            ]
        })
        .collect();
    // TSSEQ numbers the values of one parameter.
    rows.sort_by_key(|r| sort_key(&r[3]));
    number(&mut rows, 3, 2);
    rows
}

/// Element code of an arm's treatment cycles: CYCn for the n-th arm.
fn cycle_element(index: usize) -> String {
    format!("CYC{}", index + 1)
}

fn ta(input: &Input<'_>, study: &str) -> Vec<Vec<Value>> {
    let p = input.protocol;
    let mut rows = Vec::new();
    for (i, arm) in p.arms.iter().enumerate() {
        let cycle = cycle_element(i);
        let repeat = format!(
            "Repeat every {} days for up to {} cycles while on protocol therapy",
            p.treatment.cycle_length_days, p.treatment.maximum_cycles
        );
        let elements = [
            (
                "SCRN",
                "Screening".to_owned(),
                Some(format!("Randomized to {}", arm.code)),
                None,
                "SCREENING",
            ),
            (
                cycle.as_str(),
                format!("Cycle of {}", arm.name),
                None,
                Some(repeat),
                "TREATMENT",
            ),
            ("FU", "Follow-up".to_owned(), None, None, "FOLLOW-UP"),
        ];
        for (order, (etcd, element, branch, transition, epoch)) in elements.into_iter().enumerate() {
            rows.push(vec![
                Value::text(study),
                Value::text("TA"),
                Value::text(&arm.code),
                Value::text(&arm.name),
                Value::Int(order as i64 + 1),
                Value::text(etcd),
                Value::text(element),
                Value::opt(branch),
                Value::opt(transition),
                Value::text(epoch),
            ]);
        }
    }
    rows
}

fn te(input: &Input<'_>, study: &str) -> Vec<Vec<Value>> {
    let p = input.protocol;
    let mut rows = vec![vec![
        Value::text(study),
        Value::text("TE"),
        Value::text("SCRN"),
        Value::text("Screening"),
        Value::text("Informed consent"),
        Value::text("Randomization"),
        Value::Null,
    ]];
    for (i, arm) in p.arms.iter().enumerate() {
        rows.push(vec![
            Value::text(study),
            Value::text("TE"),
            Value::text(cycle_element(i)),
            Value::text(format!("Cycle of {}", arm.name)),
            Value::text("Day 1 of a cycle"),
            Value::text(format!("{} days after day 1", p.treatment.cycle_length_days)),
            Value::text(format!("P{}D", p.treatment.cycle_length_days)),
        ]);
    }
    rows.push(vec![
        Value::text(study),
        Value::text("TE"),
        Value::text("FU"),
        Value::text("Follow-up"),
        Value::text("Off protocol therapy"),
        Value::text("Off study or death"),
        Value::Null,
    ]);
    rows
}

/// Every SDTM dataset of the trial, in file order, with the units and routes its EX uses.
pub(crate) fn datasets(input: &Input<'_>) -> Vec<Dataset> {
    let study = input.protocol.trial.id.as_str();
    let (ae_rows, suppae_rows) = ae(input, study);
    let (ex_rows, suppex_rows) = ex(input, study);
    vec![
        Dataset {
            domain: &DM,
            rows: dm(input, study),
        },
        Dataset {
            domain: &DS,
            rows: ds(input, study),
        },
        Dataset {
            domain: &EX,
            rows: ex_rows,
        },
        Dataset {
            domain: &SUPPEX,
            rows: suppex_rows,
        },
        Dataset {
            domain: &EC,
            rows: ec(input, study),
        },
        Dataset {
            domain: &AE,
            rows: ae_rows,
        },
        Dataset {
            domain: &SUPPAE,
            rows: suppae_rows,
        },
        Dataset {
            domain: &RS,
            rows: rs(input, study),
        },
        Dataset {
            domain: &TS,
            rows: ts(input, study),
        },
        Dataset {
            domain: &TA,
            rows: ta(input, study),
        },
        Dataset {
            domain: &TE,
            rows: te(input, study),
        },
    ]
}

/// The units (protocol and as given) and CDISC routes the protocol's agents can be given in
/// (the UNIT and ROUTE code lists' terms).
pub(crate) fn units_and_routes(protocol: &Protocol) -> (BTreeSet<String>, BTreeSet<String>) {
    let agents = || protocol.regimens.iter().flat_map(|r| &r.agents);
    let mut units = BTreeSet::new();
    for g in agents() {
        // EX's protocol units and EC's units as given.
        units.insert(g.unit.clone());
        units.insert(protocol_unit(&g.unit, g.basis, false));
        if g.basis == DoseBasis::PerM2 {
            units.insert(protocol_unit(&g.unit, g.basis, true));
        }
    }
    (units, agents().map(|g| route_term(&g.route)).collect())
}
