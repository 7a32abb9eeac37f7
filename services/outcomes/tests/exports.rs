//! ExportSdtm and ExportOdm over gRPC on a trial built through the three services' APIs: the
//! datasets hold what was recorded, with doses in protocol units computed by hand from the
//! protocol's table, causality per agent in SUPPAE, the untreated child's null actual arm, a death
//! in DM and DS; the ODM file holds each record's history with its audit records (a dose planned
//! at the cycle's start, then recorded partly given with its reason). An empty trial exports valid
//! files without subject data; bad requests are refused. With `TRIALOPS_SDTM_SAMPLES=DIR` the
//! files are also written to DIR for CI's third-party validators (`scripts/check-sdtm.py`,
//! `scripts/check-odm.py`).

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::Value;
use tonic::Code;
use trialops_platform::backend_tests;
use trialops_proto::dosing::v1 as dpb;
use trialops_proto::enrollment::v1 as epb;
use trialops_proto::outcomes::v1 as pb;

backend_tests!(sdtm_export_of_a_trial_built_through_the_api);

/// The whole ODM file.
async fn export_odm(o: &mut Outcomes, trial: &str) -> Result<String, tonic::Status> {
    let mut stream = o
        .export_odm(pb::ExportOdmRequest { trial_id: trial.into() })
        .await?
        .into_inner();
    let mut content = Vec::new();
    while let Some(chunk) = stream.message().await? {
        content.extend(chunk.content);
    }
    Ok(String::from_utf8(content).unwrap())
}

/// The ItemGroupData elements of one entity, in file order.
fn history<'a>(odm: &'a str, group: &str, key: &str) -> Vec<&'a str> {
    let start = format!("<ItemGroupData ItemGroupOID=\"{group}\" ItemGroupRepeatKey=\"{key}\"");
    odm.match_indices(&start)
        .map(|(at, _)| {
            let rest = &odm[at..];
            &rest[..rest.find("</ItemGroupData>").unwrap()]
        })
        .collect()
}

/// Every file of an export, whole (chunks joined in order).
async fn export(o: &mut Outcomes, trial: &str) -> Result<BTreeMap<String, Vec<u8>>, tonic::Status> {
    let mut stream = o
        .export_sdtm(pb::ExportSdtmRequest { trial_id: trial.into() })
        .await?
        .into_inner();
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut open: Option<String> = None;
    while let Some(chunk) = stream.message().await? {
        if let Some(name) = &open {
            assert_eq!(name, &chunk.file_name, "a file's chunks come together");
        }
        files.entry(chunk.file_name.clone()).or_default().extend(chunk.content);
        open = (!chunk.last_chunk).then_some(chunk.file_name);
    }
    assert!(open.is_none(), "the stream ended inside a file");
    Ok(files)
}

/// A dataset's rows as objects keyed by variable name.
fn rows(files: &BTreeMap<String, Vec<u8>>, name: &str) -> Vec<BTreeMap<String, Value>> {
    let data: Value = serde_json::from_slice(&files[name]).unwrap();
    let columns: Vec<String> = data["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    let rows = data["rows"].as_array().unwrap();
    assert_eq!(data["records"].as_u64().unwrap() as usize, rows.len(), "{name}");
    rows.iter()
        .map(|r| {
            columns
                .iter()
                .cloned()
                .zip(r.as_array().unwrap().iter().cloned())
                .collect()
        })
        .collect()
}

fn text(row: &BTreeMap<String, Value>, name: &str) -> Option<String> {
    row[name].as_str().map(ToOwned::to_owned)
}

/// Writes the export for CI's validators when asked to.
fn keep(files: &BTreeMap<String, Vec<u8>>, label: &str, expect: Value) {
    let Ok(dir) = std::env::var("TRIALOPS_SDTM_SAMPLES") else {
        return;
    };
    let dir = std::path::Path::new(&dir).join(label);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, content) in files {
        std::fs::write(dir.join(name), content).unwrap();
    }
    std::fs::write(dir.with_extension("expect.json"), expect.to_string()).unwrap();
}

const FILES: [&str; 12] = [
    "ae.json",
    "define.xml",
    "dm.json",
    "ds.json",
    "ec.json",
    "ex.json",
    "rs.json",
    "suppae.json",
    "suppex.json",
    "ta.json",
    "te.json",
    "ts.json",
];

async fn sdtm_export_of_a_trial_built_through_the_api(backend: Backend) {
    let protocols = tempfile::tempdir().unwrap();
    bundled_as(protocols.path(), "EMPTY01", |_| None);
    let s = stack_with(backend, Some(protocols.path())).await;
    let mut o = s.outcomes().await;
    let mut d = s.dosing().await;

    // T: treated (cycle 1 at 102 cm and 16 kg, BSA 0.67 m2, per m2 dosing); its first day-1
    // dose given in full. U: enrolled, never treated, then dead.
    let t = s.subject("SCR-T", true).await;
    let u = s.subject("SCR-U", false).await;
    let administrations = d
        .list_subject_administrations(dpb::ListSubjectAdministrationsRequest {
            subject_id: t.subject_id.clone(),
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .administrations;
    let given = administrations
        .iter()
        .find(|a| a.status == dpb::AdministrationStatus::Given as i32)
        .unwrap()
        .clone();
    // A second day-1 dose given in half: the child vomited.
    let half = administrations
        .iter()
        .find(|a| a.cycle_day == 1 && a.status == dpb::AdministrationStatus::Planned as i32)
        .unwrap()
        .clone();
    let prescribed: rust_decimal::Decimal = half.prescribed_dose.clone().unwrap().value.parse().unwrap();
    d.record_administration(dpb::RecordAdministrationRequest {
        request_id: request_id(),
        administration_id: half.administration_id.clone(),
        status: dpb::AdministrationStatus::PartiallyGiven as i32,
        actual_dose: dec(&(prescribed / rust_decimal::Decimal::TWO).to_string()),
        started_at: s.time.ago(1),
        ended_at: s.time.ago(0),
        reason: "vomited".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    // Temozolomide stopped: its doses still planned are closed as not given.
    let plan = d
        .get_treatment_plan(dpb::GetTreatmentPlanRequest {
            subject_id: t.subject_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .plan
        .unwrap();
    d.discontinue_agent(dpb::DiscontinueAgentRequest {
        request_id: request_id(),
        subject_id: t.subject_id.clone(),
        etag: plan.etag,
        agent_id: "temozolomide".into(),
        reason: "hypersensitivity".into(),
    })
    .await
    .unwrap();
    let closed = administrations
        .iter()
        .find(|a| {
            a.agent_id == "temozolomide"
                && a.status == dpb::AdministrationStatus::Planned as i32
                && a.administration_id != half.administration_id
        })
        .unwrap()
        .clone();
    // A serious event attributed to two agents.
    let serious = o
        .record_adverse_event(pb::RecordAdverseEventRequest {
            request_id: request_id(),
            subject_id: t.subject_id.clone(),
            ctcae_term: "Diarrhea".into(),
            grade: 3,
            onset_on: s.time.date(0),
            site_aware_at: s.time.ago(0),
            attributions: vec![
                pb::AgentAttribution {
                    agent_id: "temozolomide".into(),
                    attribution: pb::Attribution::Unrelated as i32,
                },
                pb::AgentAttribution {
                    agent_id: "irinotecan".into(),
                    attribution: pb::Attribution::Possible as i32,
                },
            ],
            seriousness: vec![pb::Seriousness::Hospitalisation as i32],
        })
        .await
        .unwrap()
        .into_inner()
        .adverse_event
        .unwrap();
    // Its report signed by the site's investigator (identity headers: development mode).
    let mut sign = tonic::Request::new(pb::SignAdverseEventRequest {
        request_id: request_id(),
        adverse_event_id: serious.adverse_event_id.clone(),
        meaning: trialops_proto::common::v1::SignatureMeaning::ResponsibleFor as i32,
    });
    for (key, value) in [
        ("x-trialops-actor", "inv-101"),
        ("x-trialops-role", "investigator"),
        ("x-trialops-site", "COG-101"),
        ("x-trialops-name", "Dr. Ada Investigator"),
    ] {
        sign.metadata_mut().insert(key, value.parse().unwrap());
    }
    o.sign_adverse_event(sign).await.unwrap();
    // Baseline and after-cycle-1 assessments by central review and by the site.
    for (after, central, primary, mets, marrow) in [
        (0, true, ("40", true), ("30", 6, false), "20"),
        (0, false, ("40", true), ("30", 6, false), "20"),
        (1, true, ("15", true), ("10", 2, false), "0"),
        (1, false, ("12", true), ("10", 2, false), "0"),
    ] {
        o.record_response_assessment(assessment(&t.subject_id, after, central, primary, mets, marrow))
            .await
            .unwrap();
    }
    o.record_follow_up(pb::RecordFollowUpRequest {
        request_id: request_id(),
        subject_id: u.subject_id.clone(),
        last_contact_on: s.time.date(0),
        vital_status: pb::VitalStatus::Dead as i32,
        progression_on: None,
        second_malignancy_on: None,
    })
    .await
    .unwrap();

    // T's protocol therapy ends, then its follow-up: both are disposition events.
    let mut e = enrollment::connect(&s.set.url(Service::Enrollment)).await;
    let mut etag = t.etag.clone();
    for (status, reason) in [
        (epb::SubjectStatus::OffProtocolTherapy, "progressive disease"),
        (epb::SubjectStatus::OffStudy, "follow-up complete"),
    ] {
        etag = e
            .change_subject_status(epb::ChangeSubjectStatusRequest {
                request_id: request_id(),
                subject_id: t.subject_id.clone(),
                etag: etag.clone(),
                new_status: status as i32,
                reason: reason.into(),
                effective_on: s.time.date(0),
            })
            .await
            .unwrap()
            .into_inner()
            .subject
            .unwrap()
            .etag;
    }

    let files = export(&mut o, "ANBL1221").await.unwrap();
    assert_eq!(files.keys().map(String::as_str).collect::<Vec<_>>(), FILES);
    let today = s.time.day(0).format("%Y-%m-%d").to_string();

    // DM: one record per subject; U has no actual arm, and died today.
    let dm = rows(&files, "dm.json");
    assert_eq!(dm.len(), 2);
    let subject = |id: &str| dm.iter().find(|r| text(r, "USUBJID").as_deref() == Some(id)).unwrap();
    let (dt, du) = (subject(&t.subject_id), subject(&u.subject_id));
    assert_eq!(text(dt, "ARMCD"), Some(t.arm_code.clone()));
    assert_eq!(text(dt, "ACTARMCD"), Some(t.arm_code.clone()));
    assert_eq!(text(dt, "ARMNRS"), None);
    assert_eq!(text(du, "ACTARMCD"), None);
    assert_eq!(text(du, "ARMNRS").as_deref(), Some("ASSIGNED, NOT TREATED"));
    assert_eq!(
        (text(du, "DTHFL").as_deref(), text(du, "DTHDTC")),
        (Some("Y"), Some(today.clone()))
    );
    assert_eq!(text(dt, "DTHFL"), None);
    for r in [dt, du] {
        assert_eq!(text(r, "SITEID").as_deref(), Some("COG-101"));
        assert_eq!(text(r, "COUNTRY").as_deref(), Some("USA"));
        assert_eq!(text(r, "SEX").as_deref(), Some("U"));
        assert_eq!(text(r, "RFSTDTC"), Some(today.clone()));
        assert_eq!(text(r, "RFICDTC"), Some(today.clone()));
    }

    // DS: consent and randomization for both; U's death.
    let ds = rows(&files, "ds.json");
    let decoded = |id: &str| -> Vec<String> {
        ds.iter()
            .filter(|r| text(r, "USUBJID").as_deref() == Some(id))
            .map(|r| text(r, "DSDECOD").unwrap())
            .collect()
    };
    assert_eq!(
        decoded(&t.subject_id),
        ["INFORMED CONSENT OBTAINED", "RANDOMIZED", "OTHER", "OTHER"]
    );
    let ended: Vec<(Option<String>, Option<String>)> = ds
        .iter()
        .filter(|r| text(r, "USUBJID") == Some(t.subject_id.clone()) && text(r, "DSDECOD").as_deref() == Some("OTHER"))
        .map(|r| (text(r, "DSSCAT"), text(r, "DSTERM")))
        .collect();
    assert_eq!(
        ended,
        [
            (
                Some("END OF PROTOCOL THERAPY".to_owned()),
                Some("progressive disease".to_owned())
            ),
            (Some("END OF STUDY".to_owned()), Some("follow-up complete".to_owned())),
        ]
    );
    assert_eq!(text(dt, "RFENDTC"), Some(today.clone()));
    assert_eq!(
        decoded(&u.subject_id),
        ["INFORMED CONSENT OBTAINED", "RANDOMIZED", "DEATH"]
    );

    // EX: the two doses given, in mg/m2 from the protocol's dose table (level 0): irinotecan 50,
    // temozolomide 100, temsirolimus 35; the half dose is half of its level's.
    let level = |agent: &str| match agent {
        "irinotecan" => "50",
        "temozolomide" => "100",
        "temsirolimus" => "35",
        other => panic!("{other} is not given on day 1 of either arm"),
    };
    let halved = |agent: &str| match agent {
        "irinotecan" => "25",
        "temozolomide" => "50",
        "temsirolimus" => "17.5",
        other => panic!("{other}"),
    };
    let ex = rows(&files, "ex.json");
    assert_eq!(ex.len(), 2);
    let dose = |id: &str| ex.iter().find(|r| text(r, "EXSPID").as_deref() == Some(id)).unwrap();
    let full = dose(&given.administration_id);
    assert_eq!(text(full, "EXDOSE").as_deref(), Some(level(&given.agent_id)));
    assert_eq!(text(full, "EXDOSU").as_deref(), Some("mg/m2"));
    assert_eq!(text(full, "EXTRT"), Some(given.agent_id.to_uppercase()));
    assert_eq!(text(full, "EXADJ"), None);
    assert_eq!(full["VISITNUM"], Value::from(1));
    let partial = dose(&half.administration_id);
    assert_eq!(text(partial, "EXDOSE").as_deref(), Some(halved(&half.agent_id)));
    assert!(
        text(partial, "EXADJ").unwrap().starts_with("PARTIALLY GIVEN: vomited"),
        "{partial:?}"
    );
    let route = |agent: &str| if agent == "temozolomide" { "ORAL" } else { "INTRAVENOUS" };
    assert_eq!(text(partial, "EXROUTE").as_deref(), Some(route(&half.agent_id)));
    // SUPPEX: each dose's protocol version, by EXSEQ: the trial's only version, its file's "2.0".
    let suppex = rows(&files, "suppex.json");
    assert_eq!(suppex.len(), ex.len());
    for dose in &ex {
        let seq = dose["EXSEQ"].to_string();
        let found = suppex
            .iter()
            .find(|q| {
                text(q, "USUBJID") == text(dose, "USUBJID") && text(q, "IDVARVAL").as_deref() == Some(seq.as_str())
            })
            .unwrap_or_else(|| panic!("no SUPPEX for EXSEQ {seq}: {suppex:?}"));
        assert_eq!(
            (
                text(found, "IDVAR").as_deref(),
                text(found, "QNAM").as_deref(),
                text(found, "QVAL").as_deref()
            ),
            (Some("EXSEQ"), Some("PROTVERS"), Some("2.0"))
        );
    }

    // EC: every administration recorded, as given (mg) or not: the two doses given and those the
    // discontinuation closed.
    let recorded = d
        .list_subject_administrations(dpb::ListSubjectAdministrationsRequest {
            subject_id: t.subject_id.clone(),
            recorded_only: true,
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .administrations
        .len();
    assert!(recorded > 2, "the discontinuation closed doses: {recorded}");
    let ec = rows(&files, "ec.json");
    assert_eq!(ec.len(), recorded);
    let collected = |id: &str| ec.iter().find(|r| text(r, "ECSPID").as_deref() == Some(id)).unwrap();
    let half_given = collected(&half.administration_id);
    assert_eq!(
        (
            text(half_given, "ECOCCUR"),
            text(half_given, "ECDOSE"),
            text(half_given, "ECDOSU")
        ),
        (
            Some("Y".to_owned()),
            Some((prescribed / rust_decimal::Decimal::TWO).normalize().to_string()),
            Some(half.dose_unit.clone())
        )
    );
    let missed = collected(&closed.administration_id);
    assert_eq!(text(missed, "ECOCCUR").as_deref(), Some("N"));
    assert_eq!(text(missed, "ECDOSE"), None);
    assert_eq!(
        text(missed, "ECREASOC").as_deref(),
        Some("agent discontinued: hypersensitivity")
    );

    // AE with causality per agent: MULTIPLE in AE, each agent in SUPPAE in agent id order.
    let ae = rows(&files, "ae.json");
    assert_eq!(ae.len(), 1);
    let event = &ae[0];
    for (variable, value) in [
        ("AETERM", "Diarrhea"),
        ("AESER", "Y"),
        ("AESHOSP", "Y"),
        ("AESDTH", "N"),
        ("AEREL", "MULTIPLE"),
        ("AETOXGR", "3"),
        ("AEOUT", "NOT RECOVERED/NOT RESOLVED"),
    ] {
        assert_eq!(text(event, variable).as_deref(), Some(value), "{variable}");
    }
    let supp: Vec<(String, String, String)> = rows(&files, "suppae.json")
        .iter()
        .map(|r| {
            (
                text(r, "QNAM").unwrap(),
                text(r, "QLABEL").unwrap(),
                text(r, "QVAL").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        supp,
        [
            (
                "AEREL1".to_owned(),
                "Relationship to IRINOTECAN".to_owned(),
                "POSSIBLE".to_owned()
            ),
            (
                "AEREL2".to_owned(),
                "Relationship to TEMOZOLOMIDE".to_owned(),
                "NOT RELATED".to_owned()
            ),
        ]
    );

    // RS: after cycle 1, four results per assessor (baseline derives none); the best overall
    // response is central review's, and U (untreated) is not evaluable.
    let rs = rows(&files, "rs.json");
    let count = |test: &str, evaluator: &str| {
        rs.iter()
            .filter(|r| text(r, "RSTESTCD").as_deref() == Some(test) && text(r, "RSEVAL").as_deref() == Some(evaluator))
            .count()
    };
    for test in ["PTRESP", "METRESP", "BMRESP", "OVRLRESP"] {
        assert_eq!(count(test, "INDEPENDENT ASSESSOR"), 1, "{test}");
        assert_eq!(count(test, "INVESTIGATOR"), 1, "{test}");
    }
    let central_overall = rs
        .iter()
        .find(|r| {
            text(r, "RSTESTCD").as_deref() == Some("OVRLRESP")
                && text(r, "RSEVAL").as_deref() == Some("INDEPENDENT ASSESSOR")
        })
        .unwrap();
    let best: Vec<_> = rs
        .iter()
        .filter(|r| text(r, "RSTESTCD").as_deref() == Some("BESTRESP"))
        .collect();
    assert_eq!(best.len(), 1);
    assert_eq!(text(best[0], "USUBJID"), Some(t.subject_id.clone()));
    assert_eq!(text(best[0], "RSSTRESC"), text(central_overall, "RSSTRESC"));

    // The design: two arms of three elements, one of each in TE per arm plus screening and
    // follow-up; TS counts the subjects.
    assert_eq!(rows(&files, "ta.json").len(), 6);
    assert_eq!(rows(&files, "te.json").len(), 4);
    let ts = rows(&files, "ts.json");
    let parameter = |code: &str| {
        ts.iter()
            .filter(|r| text(r, "TSPARMCD").as_deref() == Some(code))
            .map(|r| text(r, "TSVAL").unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(parameter("ACTSUB"), ["2"]);
    assert_eq!(parameter("REGID"), ["NCT01767194"]);
    assert_eq!(parameter("NARMS"), ["2"]);

    // define.xml describes each dataset.
    let define = String::from_utf8(files["define.xml"].clone()).unwrap();
    for name in ["DM", "DS", "EX", "EC", "AE", "SUPPAE", "SUPPEX", "RS", "TS", "TA", "TE"] {
        assert!(define.contains(&format!("<ItemGroupDef OID=\"IG.{name}\"")), "{name}");
    }
    let label = format!("{backend:?}").to_lowercase();
    keep(
        &files,
        &format!("{label}-api"),
        serde_json::json!({
            "subjects": 2,
            "administrations_given": 2,
            "administrations_recorded": recorded,
            "adverse_events": 1
        }),
    );

    // ODM: each record's history with who, where, when and why.
    let odm = export_odm(&mut o, "ANBL1221").await.unwrap();
    assert_eq!(odm.matches("<SubjectData ").count(), 2);
    assert!(odm.contains("FileType=\"Transactional\""));
    let dose = history(&odm, "IG.ADMINISTRATION", &half.administration_id);
    assert_eq!(dose.len(), 2, "planned at the cycle's start, then recorded: {dose:?}");
    assert!(dose[0].contains("TransactionType=\"Insert\"") && dose[0].contains("Value=\"planned\""));
    assert!(dose[0].contains("(cycle.started)"), "{}", dose[0]);
    assert!(dose[1].contains("TransactionType=\"Update\""));
    assert!(
        dose[1].contains("<ReasonForChange>vomited</ReasonForChange>"),
        "{}",
        dose[1]
    );
    let halved_mg = (prescribed / rust_decimal::Decimal::TWO).normalize().to_string();
    assert!(
        dose[1].contains(&format!("\"IT.ADMINISTRATION.ACTUAL_DOSE\" Value=\"{halved_mg}\"")),
        "{halved_mg}: {}",
        dose[1]
    );
    assert!(dose[1].contains("Value=\"partially_given\""));
    // The Update holds what changed only: the agent stayed.
    assert!(!dose[1].contains("IT.ADMINISTRATION.AGENT_ID"));
    // A dose the discontinuation closed: planned at the cycle's start, then not given, with the
    // discontinuation's reason and entry.
    let stopped = history(&odm, "IG.ADMINISTRATION", &closed.administration_id);
    assert_eq!(stopped.len(), 2, "{stopped:?}");
    assert!(stopped[0].contains("Value=\"planned\"") && stopped[0].contains("(cycle.started)"));
    assert!(stopped[1].contains("TransactionType=\"Update\"") && stopped[1].contains("Value=\"not_given\""));
    assert!(stopped[1].contains("<ReasonForChange>hypersensitivity</ReasonForChange>"));
    assert!(stopped[1].contains("(plan.agent_discontinued)"), "{}", stopped[1]);
    let agent = history(&odm, "IG.PLAN_AGENT", "temozolomide");
    assert_eq!(
        agent.len(),
        2,
        "as of the plan's creation, then discontinued: {agent:?}"
    );
    assert!(agent[0].contains("(plan.created)") && agent[1].contains("\"IT.PLAN_AGENT.DISCONTINUED\" Value=\"true\""));
    // Each cycle names the protocol version it was dosed under (the trial's only one, "2.0").
    let cycle = odm
        .split("<ItemGroupData ItemGroupOID=\"IG.CYCLE\"")
        .nth(1)
        .and_then(|rest| rest.split("</ItemGroupData>").next())
        .unwrap();
    assert!(cycle.contains("\"IT.CYCLE.PROTOCOL_VERSION\" Value=\"2.0\""), "{cycle}");
    let event = history(&odm, "IG.AE", text(&ae[0], "AESPID").as_deref().unwrap());
    // The event as recorded, then its signature in the context of that version: who signed where,
    // with which meaning and when, the signer's printed name and the meaning defined in AdminData.
    assert_eq!(event.len(), 2);
    assert!(event[1].contains("TransactionType=\"Context\""), "{}", event[1]);
    assert!(!event[1].contains("<ItemData"), "{}", event[1]);
    let signature = &event[1][event[1].find("<Signature>").unwrap()..];
    for part in [
        "<UserRef UserOID=\"USR.INV_101\"/>",
        "<LocationRef LocationOID=\"LOC.COG_101\"/>",
        "<SignatureRef SignatureOID=\"SD.RESPONSIBLE_FOR\"/>",
        "<DateTimeStamp>",
    ] {
        assert!(signature.contains(part), "{part}: {signature}");
    }
    assert!(event[1].contains("(record.signed)</SourceID>"), "{}", event[1]);
    assert!(odm.contains("<FullName>Dr. Ada Investigator</FullName>"));
    let definition = &odm[odm
        .find("<SignatureDef OID=\"SD.RESPONSIBLE_FOR\" Methodology=\"Electronic\">")
        .unwrap()..];
    let definition = &definition[..definition.find("</SignatureDef>").unwrap()];
    assert!(
        definition.contains("<Meaning>Responsible for</Meaning>"),
        "{definition}"
    );
    assert!(
        definition.contains("<LegalReason>Electronic signature under 21 CFR Part 11"),
        "{definition}"
    );
    for item in [
        "\"IT.AE.ATTRIBUTION_IRINOTECAN\" Value=\"possible\"",
        "\"IT.AE.ATTRIBUTION_TEMOZOLOMIDE\" Value=\"unrelated\"",
        "\"IT.AE.SERIOUSNESS\" Value=\"hospitalisation\"",
        "\"IT.AE.GRADE\" Value=\"3\"",
    ] {
        assert!(event[0].contains(item), "{item}: {}", event[0]);
    }
    if let Ok(dir) = std::env::var("TRIALOPS_SDTM_SAMPLES") {
        std::fs::write(std::path::Path::new(&dir).join(format!("{label}-api-odm.xml")), &odm).unwrap();
    }

    // A trial without subjects: valid files, no subject rows, the design still there.
    let empty = export(&mut o, "EMPTY01").await.unwrap();
    assert_eq!(empty.keys().map(String::as_str).collect::<Vec<_>>(), FILES);
    for name in [
        "dm.json",
        "ds.json",
        "ex.json",
        "ec.json",
        "ae.json",
        "suppae.json",
        "suppex.json",
        "rs.json",
    ] {
        assert!(rows(&empty, name).is_empty(), "{name}");
    }
    assert_eq!(rows(&empty, "ta.json").len(), 6);
    keep(
        &empty,
        &format!("{label}-empty"),
        serde_json::json!({
            "subjects": 0,
            "administrations_given": 0,
            "administrations_recorded": 0,
            "adverse_events": 0
        }),
    );

    let empty_odm = export_odm(&mut o, "EMPTY01").await.unwrap();
    assert_eq!(empty_odm.matches("<SubjectData ").count(), 0);
    assert!(empty_odm.contains("<MetaDataVersion "));
    if let Ok(dir) = std::env::var("TRIALOPS_SDTM_SAMPLES") {
        std::fs::write(
            std::path::Path::new(&dir).join(format!("{label}-empty-odm.xml")),
            &empty_odm,
        )
        .unwrap();
    }

    // An unknown trial, and none named.
    let unknown = export(&mut o, "NO-SUCH-TRIAL").await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");
    let unnamed = export(&mut o, "").await.unwrap_err();
    assert_eq!(violated_fields(&unnamed), ["trial_id"]);
    let unknown = export_odm(&mut o, "NO-SUCH-TRIAL").await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");
    let unnamed = export_odm(&mut o, "").await.unwrap_err();
    assert_eq!(violated_fields(&unnamed), ["trial_id"]);
    s.stop().await;
}
