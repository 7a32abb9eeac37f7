//! Adverse events over gRPC: reporting deadlines, overdue reports.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use tonic::Code;
use trialops_platform::{audit_events, backend_tests};
use trialops_proto::outcomes::v1 as pb;

backend_tests!(adverse_events_have_deadlines_and_overdue_reports,);

async fn adverse_events_have_deadlines_and_overdue_reports(backend: Backend) {
    let s = stack(backend).await;
    let mut o = s.outcomes().await;
    let subject = s.subject("SCR-1", true).await;
    let event = |term: &str, grade: i32, aware_hours_ago: i64, agent: &str| pb::RecordAdverseEventRequest {
        request_id: request_id(),
        subject_id: subject.subject_id.clone(),
        ctcae_term: term.into(),
        grade,
        // Onset on the day the site became aware, but not before the reporting period (from the
        // enrollment today, one day of slack): valid at any time of day.
        onset_on: Some(trialops_platform::wire::convert::to_date(
            s.time.hours_ago(aware_hours_ago).date_naive().max(s.time.day(-1)),
        )),
        site_aware_at: s.time.ago(aware_hours_ago),
        attributions: vec![pb::AgentAttribution {
            agent_id: agent.into(),
            attribution: pb::Attribution::Possible as i32,
        }],
        seriousness: vec![],
    };
    // Grade 4 neutropenia, the site aware for 30 hours: the 24-hour notification is overdue.
    let neutropenia = o
        .record_adverse_event(event("Neutrophil count decreased", 4, 30, "temozolomide"))
        .await
        .unwrap()
        .into_inner()
        .adverse_event
        .unwrap_or_default();
    assert!(neutropenia.expected);
    assert_eq!(neutropenia.cycle_at_onset, 1);
    assert!(neutropenia.agents_at_onset.contains(&"temozolomide".to_owned()));
    let kinds: Vec<_> = neutropenia.obligations.iter().map(|x| x.kind.as_str()).collect();
    assert_eq!(kinds, ["notification_24h", "full_report_5_day"]);

    let overdue = |o: &mut Outcomes, hours: i32| {
        let mut o = o.clone();
        async move {
            o.list_overdue_reports(pb::ListOverdueReportsRequest {
                due_within_hours: hours,
                page_size: 100,
                page_token: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .obligations
            .into_iter()
            .map(|x| x.kind)
            .collect::<Vec<_>>()
        }
    };
    assert_eq!(overdue(&mut o, 0).await, ["notification_24h"]);
    // The trial report lists the same overdue report (found through its trial's adverse events).
    let report = |trial_id: &str| pb::GetTrialReportRequest {
        trial_id: trial_id.into(),
        confidence_level: None,
    };
    let listed = o
        .get_trial_report(report("ANBL1221"))
        .await
        .unwrap()
        .into_inner()
        .overdue_reports;
    let listed: Vec<_> = listed
        .iter()
        .map(|x| (x.obligation_id.as_str(), x.kind.as_str()))
        .collect();
    assert_eq!(
        listed,
        [(neutropenia.obligations[0].obligation_id.as_str(), "notification_24h")]
    );
    assert_eq!(overdue(&mut o, 24 * 5).await, ["notification_24h", "full_report_5_day"]);
    let notice = neutropenia.obligations[0].obligation_id.clone();
    let submit = pb::RecordReportSubmittedRequest {
        request_id: request_id(),
        obligation_id: notice.clone(),
        submitted_at: s.time.ago(0),
    };
    o.record_report_submitted(submit).await.unwrap();
    assert!(overdue(&mut o, 0).await.is_empty());
    let twice = o
        .record_report_submitted(pb::RecordReportSubmittedRequest {
            request_id: request_id(),
            obligation_id: notice,
            submitted_at: s.time.ago(0),
        })
        .await
        .err();
    assert_eq!(twice.map(|e| reason(&e)).as_deref(), Some("REPORT_ALREADY_SUBMITTED"));

    // An unexpected grade 2 event needs no report until its grade rises to 4.
    let seizure = o
        .record_adverse_event(event("Seizure", 2, 1, "irinotecan"))
        .await
        .unwrap()
        .into_inner()
        .adverse_event
        .unwrap_or_default();
    assert!(!seizure.expected && seizure.obligations.is_empty());
    let update = |etag: &str| pb::UpdateAdverseEventRequest {
        request_id: request_id(),
        adverse_event_id: seizure.adverse_event_id.clone(),
        etag: etag.into(),
        grade: 4,
        resolved_on: None,
        reason: "status epilepticus".into(),
    };
    let raised = o
        .update_adverse_event(update(&seizure.etag))
        .await
        .unwrap()
        .into_inner()
        .adverse_event
        .unwrap_or_default();
    assert_eq!(raised.grade, 4);
    let kinds: Vec<_> = raised.obligations.iter().map(|x| x.kind.as_str()).collect();
    // CTEP-AERS grade 4: 24 h + 5 days. No IND report: no seriousness criterion was marked
    // (life-threatening under 21 CFR 312.32 is the investigator's call, not inferred from grade).
    assert_eq!(kinds, ["notification_24h", "full_report_5_day"]);
    assert_eq!(
        o.update_adverse_event(update(&seizure.etag))
            .await
            .err()
            .map(|e| e.code()),
        Some(Code::Aborted)
    );
    let history = audit_events!(o, pb, "adverse_event", seizure.adverse_event_id.clone());
    assert_eq!(
        history.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["adverse_event.recorded", "adverse_event.updated"]
    );
    assert!(history[1].old_value_json.contains("\"grade\":2"));
    assert_eq!(history[1].reason, "status epilepticus");

    let wrong_agent = o
        .record_adverse_event(event("Nausea", 1, 1, "cisplatin"))
        .await
        .expect_err("accepted");
    assert_eq!(violated_fields(&wrong_agent), ["attributions[0].agent_id"]);

    // Read back: the subject's events as recorded, the seizure at its raised grade, one per page.
    let mut listed = Vec::new();
    let mut token = String::new();
    loop {
        let page = o
            .list_adverse_events(pb::ListAdverseEventsRequest {
                subject_id: subject.subject_id.clone(),
                page_size: 1,
                page_token: token,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.adverse_events.len() <= 1);
        listed.extend(page.adverse_events);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    // What identifies each as recorded and updated (the times are stored to the microsecond,
    // and the neutropenia's notification was submitted since it was recorded).
    // In onset order, then by id (both may fall on one day, at any hour the test runs).
    let key = |e: &pb::AdverseEvent| {
        let kinds: Vec<String> = e.obligations.iter().map(|x| x.kind.clone()).collect();
        let d = e.onset_on.unwrap_or_default();
        let onset = (d.year, d.month, d.day);
        (
            onset,
            e.adverse_event_id.clone(),
            e.ctcae_term.clone(),
            e.grade,
            e.etag.clone(),
            kinds,
        )
    };
    let mut expected = vec![key(&neutropenia), key(&raised)];
    expected.sort();
    assert_eq!(listed.iter().map(key).collect::<Vec<_>>(), expected);
    let neutropenia_now = listed
        .iter()
        .find(|e| e.adverse_event_id == neutropenia.adverse_event_id)
        .unwrap();
    let submitted: Vec<bool> = neutropenia_now
        .obligations
        .iter()
        .map(|x| x.submitted_at.is_some())
        .collect();
    assert_eq!(submitted, [true, false], "the 24-hour notification was submitted");
    let one = o
        .get_adverse_event(pb::GetAdverseEventRequest {
            adverse_event_id: seizure.adverse_event_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .adverse_event
        .unwrap_or_default();
    assert_eq!(
        Some(&one),
        listed.iter().find(|e| e.adverse_event_id == seizure.adverse_event_id)
    );
    let unknown = o
        .get_adverse_event(pb::GetAdverseEventRequest {
            adverse_event_id: "no-such-event".into(),
        })
        .await
        .unwrap_err();
    assert_refused(&unknown, Code::NotFound, "NOT_FOUND");
    let bad = o
        .list_adverse_events(pb::ListAdverseEventsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&bad), ["subject_id"]);

    // An instant is kept to the microsecond, as the databases store it: the digits beyond are
    // dropped when the request is read, so the response and every later read agree.
    let mut fine = event("Fatigue", 1, 2, "irinotecan");
    if let Some(t) = fine.site_aware_at.as_mut() {
        t.nanos = 123_456_789;
    }
    let recorded = o
        .record_adverse_event(fine)
        .await
        .unwrap()
        .into_inner()
        .adverse_event
        .unwrap_or_default();
    assert_eq!(recorded.site_aware_at.as_ref().map(|t| t.nanos), Some(123_456_000));
    let read = o
        .get_adverse_event(pb::GetAdverseEventRequest {
            adverse_event_id: recorded.adverse_event_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .adverse_event
        .unwrap_or_default();
    assert_eq!(read, recorded);
    s.stop().await;
}
