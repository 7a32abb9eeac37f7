//! The trial report as readable tables or JSON: enrollment by arm and stratum, exposure,
//! grade 3 or higher adverse events, the response table with exact confidence intervals, and a Kaplan-Meier
//! summary of event-free survival.

use comfy_table::{ColumnConstraint, ContentArrangement, Table};
use trialops_proto::outcomes::v1 as opb;

use crate::api::text;

/// A table with a header row, fitted to the output's width (long cells wrap).
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(comfy_table::presets::UTF8_BORDERS_ONLY);
    if let Some(width) = output_width() {
        t.set_width(width);
        t.set_content_arrangement(ContentArrangement::Dynamic);
    }
    t.set_header(header.iter().copied());
    // The first column names the row (a variable, subject, agent, date): never broken, so it
    // can be read and copied whole; the other columns wrap.
    if let Some(first) = t.column_mut(0) {
        first.set_constraint(ColumnConstraint::ContentWidth);
    }
    t
}

/// Prints a line of prose, wrapped at spaces to the output's width (whole in a pipe or a file).
pub fn say(text: impl AsRef<str>) {
    let text = text.as_ref();
    let Some(width) = output_width().map(usize::from) else {
        println!("{text}");
        return;
    };
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            println!("{line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    println!("{line}");
}

/// The width tables fit: `COLUMNS` when set, else the terminal's when standard output is one;
/// `None` (full width, nothing wrapped) for pipes and files, so scripts see whole cells.
pub fn output_width() -> Option<u16> {
    if let Some(columns) = std::env::var("COLUMNS").ok().and_then(|c| c.trim().parse::<u16>().ok()) {
        return Some(columns.max(20));
    }
    terminal_size::terminal_size_of(std::io::stdout()).map(|(terminal_size::Width(w), _)| w)
}

/// Percent with one decimal from a proportion's text ("0.5294" -> "52.9%").
fn percent(proportion: &str) -> String {
    proportion
        .parse::<f64>()
        .map(|p| format!("{:.1}%", p * 100.0))
        .unwrap_or_default()
}

/// The survival probability of a curve at `day` (the last point at or before it).
fn survival_at(curve: &opb::SurvivalCurve, day: i32) -> String {
    curve
        .points
        .iter()
        .take_while(|p| p.day <= day)
        .last()
        .map(|p| percent(&text(p.survival.as_ref())))
        .unwrap_or_else(|| "100.0%".to_owned())
}

/// Prints the report.
pub fn print(report: &opb::GetTrialReportResponse, efs: &opb::GetSurvivalAnalysisResponse) {
    if report.training {
        println!(
            "TRAINING trial {}: practice data, never a production trial's\n",
            report.trial_id
        );
    }
    println!("Enrollment by arm and stratum");
    let mut t = table(&["stratum", "arm", "subjects"]);
    for row in &report.enrollment {
        t.add_row(vec![
            row.stratum.clone(),
            row.arm_code.clone(),
            row.subjects.to_string(),
        ]);
    }
    println!("{t}\n");

    println!("Exposure");
    let mut t = table(&["arm", "treated", "cycles started", "median cycles"]);
    for row in &report.exposure {
        t.add_row(vec![
            row.arm_code.clone(),
            row.treated_subjects.to_string(),
            row.cycles_started.to_string(),
            text(row.median_cycles.as_ref()),
        ]);
    }
    println!("{t}\n");

    println!("Doses delivered by protocol version");
    let mut t = table(&["arm", "agent", "protocol version", "subjects", "cycles", "delivered"]);
    for arm in &report.exposure {
        for row in &arm.agents {
            t.add_row(vec![
                arm.arm_code.clone(),
                row.agent_id.clone(),
                row.protocol_version.clone(),
                row.subjects.to_string(),
                row.cycles.to_string(),
                format!("{} {}", text(row.delivered_total.as_ref()), row.dose_unit),
            ]);
        }
    }
    println!("{t}\n");

    println!("Grade >= 3 adverse events");
    let mut t = table(&["CTCAE term", "arm", "events", "subjects"]);
    for row in &report.severe_events {
        t.add_row(vec![
            row.ctcae_term.clone(),
            row.arm_code.clone(),
            row.events.to_string(),
            row.subjects.to_string(),
        ]);
    }
    println!("{t}\n");

    println!("Best central-review response after cycles 1-6 (INRC 2017), exact 95% CI");
    let mut t = table(&[
        "arm",
        "CR",
        "PR",
        "MR",
        "SD",
        "PD",
        "NA",
        "responders",
        "rate",
        "95% CI",
    ]);
    for row in &report.responses {
        let rate = row.rate.clone().unwrap_or_default();
        t.add_row(vec![
            row.arm_code.clone(),
            row.cr.to_string(),
            row.pr.to_string(),
            row.mr.to_string(),
            row.sd.to_string(),
            row.pd.to_string(),
            row.not_assessed.to_string(),
            format!("{}/{}", rate.responders, rate.evaluable),
            percent(&text(rate.rate.as_ref())),
            format!(
                "{} - {}",
                percent(&text(rate.ci_lower.as_ref())),
                percent(&text(rate.ci_upper.as_ref()))
            ),
        ]);
    }
    println!("{t}\n");

    if !report.randomized_in_error.is_empty() {
        println!("Randomized in error (kept above, intention to treat; left out per protocol)");
        let mut t = table(&["subject", "arm", "reason"]);
        for row in &report.randomized_in_error {
            t.add_row(vec![row.subject_id.clone(), row.arm_code.clone(), row.reason.clone()]);
        }
        println!("{t}\n");
        println!("Per protocol: responders / evaluable");
        let mut t = table(&["arm", "responders", "rate"]);
        for row in &report.per_protocol_responses {
            let rate = row.rate.clone().unwrap_or_default();
            t.add_row(vec![
                row.arm_code.clone(),
                format!("{}/{}", rate.responders, rate.evaluable),
                percent(&text(rate.rate.as_ref())),
            ]);
        }
        println!("{t}\n");
    }

    if !report.emergency_unblindings.is_empty() {
        println!("Emergency unblindings");
        let mut t = table(&["subject", "site", "arm", "when (UTC)", "by", "reason"]);
        for u in &report.emergency_unblindings {
            t.add_row(vec![
                u.subject_id.clone(),
                u.site_code.clone(),
                u.arm_code.clone(),
                instant(u.unblinded_at.as_ref()),
                format!("{} ({})", u.unblinded_by, u.unblinded_by_role),
                u.reason.clone(),
            ]);
        }
        println!("{t}\n");
    }

    println!("Event-free survival (Kaplan-Meier)");
    let mut t = table(&["arm", "events", "deaths", "median days", "EFS 1 year", "EFS 2 years"]);
    for row in &report.survival {
        let curve = efs.curves.iter().find(|c| c.arm_code == row.arm_code);
        let median = text(row.efs_median_days.as_ref());
        t.add_row(vec![
            row.arm_code.clone(),
            row.efs_events.to_string(),
            row.deaths.to_string(),
            if median.is_empty() {
                "not reached".into()
            } else {
                median
            },
            curve.map(|c| survival_at(c, 365)).unwrap_or_default(),
            curve.map(|c| survival_at(c, 730)).unwrap_or_default(),
        ]);
    }
    println!("{t}");
    println!("log-rank p = {}", text(efs.log_rank_p_value.as_ref()));
    if !report.overdue_reports.is_empty() {
        println!("\n{} expedited reports overdue", report.overdue_reports.len());
    }
}

/// The report as JSON, with `run` (what the replay did) beside it.
pub fn json(
    report: &opb::GetTrialReportResponse,
    efs: &opb::GetSurvivalAnalysisResponse,
    run: &serde_json::Value,
) -> serde_json::Value {
    let rows = |rows: &[opb::ArmResponseTable]| -> Vec<serde_json::Value> {
        rows.iter()
            .map(|r| {
                let rate = r.rate.clone().unwrap_or_default();
                serde_json::json!({
                    "arm": r.arm_code, "cr": r.cr, "pr": r.pr, "mr": r.mr, "sd": r.sd, "pd": r.pd,
                    "not_assessed": r.not_assessed,
                    "responders": rate.responders, "evaluable": rate.evaluable,
                    "rate": text(rate.rate.as_ref()),
                    "ci_lower": text(rate.ci_lower.as_ref()), "ci_upper": text(rate.ci_upper.as_ref()),
                })
            })
            .collect()
    };
    let responses = rows(&report.responses);
    serde_json::json!({
        "trial_id": report.trial_id,
        "training": report.training,
        "run": run,
        "enrollment": report.enrollment.iter().map(|e| serde_json::json!({
            "stratum": e.stratum, "arm": e.arm_code, "subjects": e.subjects,
        })).collect::<Vec<_>>(),
        "exposure": report.exposure.iter().map(|e| serde_json::json!({
            "arm": e.arm_code, "treated": e.treated_subjects, "cycles_started": e.cycles_started,
            "median_cycles": text(e.median_cycles.as_ref()),
            "by_protocol_version": e.agents.iter().map(|a| serde_json::json!({
                "agent": a.agent_id, "protocol_version": a.protocol_version, "subjects": a.subjects,
                "cycles": a.cycles, "delivered": text(a.delivered_total.as_ref()), "unit": a.dose_unit,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "severe_adverse_events": report.severe_events.iter().map(|e| serde_json::json!({
            "ctcae_term": e.ctcae_term, "arm": e.arm_code, "events": e.events, "subjects": e.subjects,
        })).collect::<Vec<_>>(),
        "responses": responses,
        "per_protocol_responses": rows(&report.per_protocol_responses),
        "randomized_in_error": report.randomized_in_error.iter().map(|r| serde_json::json!({
            "subject_id": r.subject_id, "arm": r.arm_code, "reason": r.reason,
        })).collect::<Vec<_>>(),
        "emergency_unblindings": report.emergency_unblindings.iter().map(|u| serde_json::json!({
            "subject_id": u.subject_id, "site_code": u.site_code, "arm": u.arm_code, "reason": u.reason,
            "unblinded_by": u.unblinded_by, "unblinded_by_role": u.unblinded_by_role,
            "unblinded_at": instant(u.unblinded_at.as_ref()),
        })).collect::<Vec<_>>(),
        "survival": report.survival.iter().map(|s| serde_json::json!({
            "arm": s.arm_code, "efs_events": s.efs_events, "deaths": s.deaths,
            "efs_median_days": text(s.efs_median_days.as_ref()),
            "os_median_days": text(s.os_median_days.as_ref()),
        })).collect::<Vec<_>>(),
        "efs_log_rank_p_value": text(efs.log_rank_p_value.as_ref()),
        "overdue_reports": report.overdue_reports.len(),
    })
}

/// An instant from the wire as RFC 3339 UTC to the microsecond (empty when absent).
pub fn instant(t: Option<&prost_types::Timestamp>) -> String {
    t.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_default()
}
