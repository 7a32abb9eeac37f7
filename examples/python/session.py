"""An enrollment session with a standard gRPC client (Python grpcio), generated from proto/.

Usage (see README): generate the client, start the service, then
    python examples/python/session.py 127.0.0.1:50051

It registers a site, screens two candidates (one eligible, one not), enrolls the eligible one,
shows the refusal of the ineligible one with its google.rpc details, and verifies the audit
trail. It exits non-zero if anything does not behave as the contract says, so CI runs it too.
"""

import datetime
import sys
import time
import uuid

import grpc
from google.rpc import error_details_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from grpc_status import rpc_status

from trialops.common.v1 import common_pb2
from trialops.enrollment.v1 import enrollment_pb2 as pb
from trialops.enrollment.v1 import enrollment_pb2_grpc


def today():
    d = datetime.date.today()
    return common_pb2.Date(year=d.year, month=d.month, day=d.day)


def dec(variable, value):
    return pb.ScreeningValue(variable_id=variable, decimal_value=common_pb2.Decimal(value=value))


def flag(variable, value):
    return pb.ScreeningValue(variable_id=variable, bool_value=value)


ELIGIBLE = [
    flag("histology_confirmed", True),
    pb.ScreeningValue(variable_id="disease_status", choice_value="first_recurrence"),
    dec("measurable_tumour_mm", "23"),
    flag("measurable_tumour_avid", True),
    dec("anc_per_ul", "1200"),
    dec("platelets_per_ul", "150000"),
    flag("platelets_transfusion_independent", True),
    dec("bilirubin_mg_dl", "0.6"),
    dec("bilirubin_uln_mg_dl", "1.0"),
    dec("alt_u_l", "40"),
    flag("creatinine_within_age_sex_limit", True),
    dec("shortening_fraction_percent", "34"),
    dec("performance_score", "80"),
]


def wait_ready(channel, seconds=30):
    grpc.channel_ready_future(channel).result(timeout=seconds)


def main(address):
    channel = grpc.insecure_channel(address)
    wait_ready(channel)
    # grpcio-reflection speaks reflection v1alpha: the service describes itself to it.
    services = ProtoReflectionDescriptorDatabase(channel).get_services()
    assert "trialops.enrollment.v1.EnrollmentService" in services, f"reflection lists {services}"
    api = enrollment_pb2_grpc.EnrollmentServiceStub(channel)

    trials = api.ListTrials(pb.ListTrialsRequest())
    print("trials:", [t.trial_id for t in trials.trials])

    site = "SITE-%s" % uuid.uuid4().hex[:6].upper()
    api.RegisterSite(pb.RegisterSiteRequest(request_id=str(uuid.uuid4()), site_code=site, name="Example Children's Hospital"))
    print("registered site", site)

    ok = api.ScreenSubject(pb.ScreenSubjectRequest(
        request_id=str(uuid.uuid4()), trial_id="ANBL1221", site_code=site,
        screening_id="SCR-001", assessed_on=today(), values=ELIGIBLE)).screening
    print("SCR-001 eligible:", ok.eligible)

    low_anc = [v for v in ELIGIBLE if v.variable_id != "anc_per_ul"] + [dec("anc_per_ul", "600")]
    low = api.ScreenSubject(pb.ScreenSubjectRequest(
        request_id=str(uuid.uuid4()), trial_id="ANBL1221", site_code=site,
        screening_id="SCR-002", assessed_on=today(), values=low_anc)).screening
    for result in low.criteria:
        if result.outcome != pb.CRITERION_OUTCOME_MET:
            print("SCR-002 %s: %s" % (result.criterion_id, result.detail))

    consent = pb.Consent(signed_on=today(), form_version="2.0")
    strata = [pb.StratumValue(factor_id="prior_therapy", value="no_prior_irinotecan_temozolomide"),
              pb.StratumValue(factor_id="mycn_status", value="amplified")]
    request = pb.EnrollSubjectRequest(request_id=str(uuid.uuid4()), trial_id="ANBL1221", site_code=site,
                                      screening_id="SCR-001", consent=consent, strata=strata)
    subject = api.EnrollSubject(request).subject
    print("enrolled", subject.subject_id, "on arm", subject.arm_code)
    again = api.EnrollSubject(request).subject  # a retry with the same request_id
    assert again.subject_id == subject.subject_id and again.arm_code == subject.arm_code

    try:
        api.EnrollSubject(pb.EnrollSubjectRequest(request_id=str(uuid.uuid4()), trial_id="ANBL1221", site_code=site,
                                                  screening_id="SCR-002", consent=consent, strata=strata))
        raise SystemExit("an ineligible candidate was enrolled")
    except grpc.RpcError as err:
        status = rpc_status.from_call(err)
        info = error_details_pb2.ErrorInfo()
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                detail.Unpack(info)
        print("refused:", err.code().name, info.reason, dict(info.metadata))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and info.reason == "SUBJECT_INELIGIBLE"

    try:
        api.GetSubject(pb.GetSubjectRequest(subject_id=""))
        raise SystemExit("an empty subject id was accepted")
    except grpc.RpcError as err:
        status = rpc_status.from_call(err)
        bad = error_details_pb2.BadRequest()
        for detail in status.details:
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                detail.Unpack(bad)
        print("invalid:", [(v.field, v.description) for v in bad.field_violations])
        assert [v.field for v in bad.field_violations] == ["subject_id"]

    verification = api.VerifyAuditTrail(pb.VerifyAuditTrailRequest()).verification
    print("audit trail intact:", verification.intact, "entries:", verification.events_checked)
    assert verification.intact


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:50051")
