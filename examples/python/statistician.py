"""A statistician's pull with a standard gRPC client (Python grpcio): the response table with
exact confidence intervals, the Kaplan-Meier curves, and the data-monitoring committee report.
Needs all three services (see README):

    python examples/python/statistician.py 127.0.0.1:50051 127.0.0.1:50052 127.0.0.1:50053

It first enrolls and treats two children and records their central-review assessments, so that
there is something to analyse. Exits non-zero if anything does not behave as the contract says.
"""

import sys
import uuid

import grpc

from trialops.dosing.v1 import dosing_pb2 as dpb
from trialops.dosing.v1 import dosing_pb2_grpc
from trialops.enrollment.v1 import enrollment_pb2_grpc
from trialops.outcomes.v1 import outcomes_pb2 as opb
from trialops.outcomes.v1 import outcomes_pb2_grpc

from pharmacy import as_date, dec, enroll_child
from session import today


def treat(dosing, site, subject_id):
    """Plans, starts cycle 1 today and records its first dose as given (evaluability needs a dose)."""
    import datetime
    from google.protobuf.timestamp_pb2 import Timestamp
    now = Timestamp()
    now.GetCurrentTime()
    dosing.CreateTreatmentPlan(dpb.CreateTreatmentPlanRequest(request_id=str(uuid.uuid4()), subject_id=subject_id))
    dosing.StartCycle(dpb.StartCycleRequest(
        request_id=str(uuid.uuid4()), subject_id=subject_id, cycle_number=1, planned_start_date=as_date(datetime.date.today()),
        height_cm=dec("102"), weight_kg=dec("16"), anc_per_ul=dec("1000"), platelets_per_ul=dec("120000"), measured_at=now))
    day = as_date(datetime.date.today())
    worklist = dosing.ListAdministrations(dpb.ListAdministrationsRequest(site_code=site, from_date=day, to_date=day)).administrations
    first = next(a for a in worklist if a.subject_id == subject_id)
    dosing.RecordAdministration(dpb.RecordAdministrationRequest(
        request_id=str(uuid.uuid4()), administration_id=first.administration_id, status=dpb.ADMINISTRATION_STATUS_GIVEN,
        actual_dose=first.prescribed_dose, started_at=now, ended_at=now))


def assess(outcomes, subject_id, after_cycle, primary_mm, avid, mets_mm, curie, marrow):
    scores = [0] * 10
    for i in range(curie):
        scores[i % 10] += 1
    return outcomes.RecordResponseAssessment(opb.RecordResponseAssessmentRequest(
        request_id=str(uuid.uuid4()), subject_id=subject_id, assessed_on=today(), after_cycle=after_cycle,
        assessor=opb.ASSESSOR_CENTRAL_REVIEW, criteria=opb.RESPONSE_CRITERIA_INRC_2017,
        primary_tumour=opb.PrimaryTumour(longest_diameter_mm=dec(primary_mm), avid=avid),
        metastases=opb.Metastases(sum_of_diameters_mm=dec(mets_mm), curie_segment_scores=scores,
                                  all_targets_under_10_mm=(mets_mm == "0")),
        bone_marrow=opb.BoneMarrow(tumour_infiltration_percent=dec(marrow)))).assessment


def main(enrollment_address, dosing_address, outcomes_address):
    enrollment = enrollment_pb2_grpc.EnrollmentServiceStub(grpc.insecure_channel(enrollment_address))
    dosing = dosing_pb2_grpc.DosingServiceStub(grpc.insecure_channel(dosing_address))
    outcomes = outcomes_pb2_grpc.OutcomesServiceStub(grpc.insecure_channel(outcomes_address))
    grpc.channel_ready_future(grpc.insecure_channel(outcomes_address)).result(timeout=30)

    for screening_id, after6 in [("ST-001", ("8", False, "0", 0, "0")), ("ST-002", ("45", True, "38", 9, "25"))]:
        site, subject = enroll_child(enrollment, screening_id)
        treat(dosing, site, subject.subject_id)
        assess(outcomes, subject.subject_id, 0, "50", True, "40", 10, "30")  # baseline
        a = assess(outcomes, subject.subject_id, 6, *after6)
        print("%s arm %s after cycle 6: %s" % (subject.subject_id, subject.arm_code, opb.Response.Name(a.overall_response)))

    # The response table: responders / evaluable per arm with exact (Clopper-Pearson) 95% CIs.
    rates = outcomes.GetResponseRate(opb.GetResponseRateRequest(trial_id="ANBL1221", confidence_level=dec("0.95")))
    for arm in rates.arms:
        print("arm %s: %d/%d responders, rate %s, 95%% CI %s-%s" % (
            arm.arm_code, arm.responders, arm.evaluable, arm.rate.value, arm.ci_lower.value, arm.ci_upper.value))
    assert sum(a.evaluable for a in rates.arms) >= 2

    # Kaplan-Meier curves (EFS) per arm with Greenwood SE and log-log bands, and the log-rank test.
    efs = outcomes.GetSurvivalAnalysis(opb.GetSurvivalAnalysisRequest(trial_id="ANBL1221", endpoint=opb.SURVIVAL_ENDPOINT_EFS))
    for curve in efs.curves:
        median = ("%s days" % curve.median_days.value) if curve.HasField("median_days") else "not reached"
        print("EFS arm %s: %d event times, median %s" % (curve.arm_code, len(curve.points), median))

    report = outcomes.GetTrialReport(opb.GetTrialReportRequest(trial_id="ANBL1221"))
    print("report: %d subjects enrolled, %d treated, overdue reports %d" % (
        sum(c.subjects for c in report.enrollment), sum(e.treated_subjects for e in report.exposure), len(report.overdue_reports)))
    assert sum(e.treated_subjects for e in report.exposure) >= 2


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
