"""A pharmacy system's day with a standard gRPC client (Python grpcio): today's worklist, then
recording a dose, and tomorrow's dose refused as given today. Needs both services (see README):

    python examples/python/pharmacy.py 127.0.0.1:50051 127.0.0.1:50052

It first enrolls a child and starts cycle 1 today so that there is a worklist to show.
Exits non-zero if anything does not behave as the contract says (CI runs it).
"""

import datetime
import sys
import uuid

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from trialops.common.v1 import common_pb2
from trialops.dosing.v1 import dosing_pb2 as dpb
from trialops.dosing.v1 import dosing_pb2_grpc
from trialops.enrollment.v1 import enrollment_pb2 as epb
from trialops.enrollment.v1 import enrollment_pb2_grpc

from session import ELIGIBLE, today


def as_date(d):
    return common_pb2.Date(year=d.year, month=d.month, day=d.day)


def dec(value):
    return common_pb2.Decimal(value=value)


def enroll_child(enrollment, screening_id="PH-001"):
    site = "PH-%s" % uuid.uuid4().hex[:6].upper()
    enrollment.RegisterSite(epb.RegisterSiteRequest(request_id=str(uuid.uuid4()), site_code=site, name="Pharmacy example"))
    enrollment.ScreenSubject(epb.ScreenSubjectRequest(request_id=str(uuid.uuid4()), trial_id="ANBL1221", site_code=site,
                                                      screening_id=screening_id, assessed_on=today(), values=ELIGIBLE))
    subject = enrollment.EnrollSubject(epb.EnrollSubjectRequest(
        request_id=str(uuid.uuid4()), trial_id="ANBL1221", site_code=site, screening_id=screening_id,
        consent=epb.Consent(signed_on=today(), form_version="2.0"),
        strata=[epb.StratumValue(factor_id="prior_therapy", value="no_prior_irinotecan_temozolomide"),
                epb.StratumValue(factor_id="mycn_status", value="not_amplified")])).subject
    return site, subject


def main(enrollment_address, dosing_address):
    enrollment = enrollment_pb2_grpc.EnrollmentServiceStub(grpc.insecure_channel(enrollment_address))
    dosing = dosing_pb2_grpc.DosingServiceStub(grpc.insecure_channel(dosing_address))
    site, subject = enroll_child(enrollment)
    dosing.CreateTreatmentPlan(dpb.CreateTreatmentPlanRequest(request_id=str(uuid.uuid4()), subject_id=subject.subject_id))

    # Dates are UTC, as the services compare them.
    today = datetime.datetime.now(datetime.timezone.utc).date()
    tomorrow = today + datetime.timedelta(days=1)
    measured = Timestamp()
    measured.GetCurrentTime()
    cycle = dosing.StartCycle(dpb.StartCycleRequest(
        request_id=str(uuid.uuid4()), subject_id=subject.subject_id, cycle_number=1,
        planned_start_date=as_date(today), height_cm=dec("102"), weight_kg=dec("16"),
        anc_per_ul=dec("1000"), platelets_per_ul=dec("120000"), measured_at=measured)).cycle
    print("cycle 1 of %s (arm %s): BSA %s m2" % (subject.subject_id, subject.arm_code, cycle.bsa_m2.value))
    for d in cycle.doses:
        print("  %-13s %s" % (d.agent_id, d.formula))

    # The pharmacy's worklist for today and tomorrow, page by page.
    worklist, token = [], ""
    while True:
        page = dosing.ListAdministrations(dpb.ListAdministrationsRequest(
            site_code=site, from_date=as_date(today), to_date=as_date(tomorrow), page_size=50, page_token=token))
        worklist.extend(page.administrations)
        token = page.next_page_token
        if not token:
            break
    print("worklist for %s to %s at %s:" % (today, tomorrow, site))
    for a in worklist:
        print("  %s %-13s %s %s (cycle %d day %d)" % (a.subject_id, a.agent_id, a.prescribed_dose.value, a.dose_unit,
                                                      a.cycle_number, a.cycle_day))
    assert {a.agent_id for a in worklist} >= {"temozolomide", "irinotecan"}

    # The nurse gives today's temozolomide: record it (the same request_id is safe to retry).
    tmz = next(a for a in worklist if a.agent_id == "temozolomide" and a.cycle_day == 1)
    started, ended = Timestamp(), Timestamp()
    started.GetCurrentTime()
    ended.GetCurrentTime()
    request = dpb.RecordAdministrationRequest(
        request_id=str(uuid.uuid4()), administration_id=tmz.administration_id,
        status=dpb.ADMINISTRATION_STATUS_GIVEN, actual_dose=tmz.prescribed_dose, started_at=started, ended_at=ended)
    recorded = dosing.RecordAdministration(request).administration
    again = dosing.RecordAdministration(request).administration
    assert again == recorded
    print("recorded", recorded.agent_id, recorded.actual_dose.value, recorded.dose_unit,
          "deviation flagged:", recorded.deviation_flagged)
    assert recorded.status == dpb.ADMINISTRATION_STATUS_GIVEN and not recorded.deviation_flagged

    # Tomorrow's dose cannot be recorded as given today.
    early = next(a for a in worklist if a.agent_id == "temozolomide" and a.cycle_day == 2)
    try:
        dosing.RecordAdministration(dpb.RecordAdministrationRequest(
            request_id=str(uuid.uuid4()), administration_id=early.administration_id,
            status=dpb.ADMINISTRATION_STATUS_GIVEN, actual_dose=early.prescribed_dose,
            started_at=started, ended_at=ended))
        raise AssertionError("tomorrow's dose was recorded as given today")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.FAILED_PRECONDITION, e
        print("refused as it should be:", e.details())


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
