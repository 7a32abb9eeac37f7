#!/usr/bin/env python3
"""Validates every FHIR resource in a folder (as `crates/cli/tests/fhir.rs` writes them with
TRIALOPS_FHIR_SAMPLES=DIR) against the FHIR R4 models of the PyPI package `fhir.resources`
(6.4.x, the last release modelling R4 4.0.1 itself), Bundles with each entry's resource.

`fhir.resources` checks structure, types and cardinality but not the codes of required value
sets, so those this facade uses are checked here against the R4 specification's lists.
Exits 1 naming every file that does not validate, and when a resource kind the facade serves was
not seen at all (so a test that stops fetching one cannot pass unnoticed).

Usage: check-fhir.py DIR
"""

import json
import pathlib
import sys

import fhir.resources
from fhir.resources import get_fhir_model_class

# Codes of required bindings (hl7.org/fhir/R4, each element's value set).
REQUIRED_CODES = {
    ("ResearchSubject", "status"): {
        "candidate", "eligible", "follow-up", "ineligible", "not-registered", "off-study",
        "on-study", "on-study-intervention", "on-study-observation", "pending-on-study",
        "potential-candidate", "screening", "withdrawn",
    },
    ("ResearchStudy", "status"): {
        "active", "administratively-completed", "approved", "closed-to-accrual",
        "closed-to-accrual-and-intervention", "completed", "disapproved", "in-review",
        "temporarily-closed-to-accrual", "temporarily-closed-to-accrual-and-intervention",
        "withdrawn",
    },
    ("CapabilityStatement", "status"): {"draft", "active", "retired", "unknown"},
    ("MedicationAdministration", "status"): {
        "in-progress", "not-done", "on-hold", "completed", "entered-in-error", "stopped", "unknown",
    },
    ("AdverseEvent", "actuality"): {"actual", "potential"},
    ("Observation", "status"): {
        "registered", "preliminary", "final", "amended", "corrected", "cancelled",
        "entered-in-error", "unknown",
    },
    ("CapabilityStatement", "kind"): {"instance", "capability", "requirements"},
    ("Bundle", "type"): {
        "document", "message", "transaction", "transaction-response", "batch", "batch-response",
        "history", "searchset", "collection",
    },
}
# CodeableConcepts with required bindings: each coding of that system must use one of the codes.
REQUIRED_CONCEPTS = {
    ("AdverseEvent", "severity"): (
        "http://terminology.hl7.org/CodeSystem/adverse-event-severity", {"mild", "moderate", "severe"}),
    ("AdverseEvent", "outcome"): (
        "http://terminology.hl7.org/CodeSystem/adverse-event-outcome",
        {"resolved", "recovering", "ongoing", "resolvedWithSequelae", "fatal", "unknown"}),
}
# Codes of electronic signatures (Provenance): the participant types (extensible binding) and the
# ASTM E1762 signature types trialops uses, each with the display the R4 code system gives.
PARTICIPANT_TYPES = {"verifier", "attester", "legal"}
SIGNATURE_TYPES = {
    "1.2.840.10065.1.12.1.1": "Author's Signature",
    "1.2.840.10065.1.12.1.5": "Verification Signature",
    "1.2.840.10065.1.12.1.13": "Review Signature",
}
ISSUE_CODES = {
    "invalid", "structure", "required", "value", "invariant", "security", "login", "unknown",
    "expired", "forbidden", "suppressed", "processing", "not-supported", "duplicate",
    "multiple-matches", "not-found", "deleted", "too-long", "code-invalid", "extension",
    "too-costly", "business-rule", "conflict", "transient", "lock-error", "no-store",
    "exception", "timeout", "incomplete", "throttled", "informational",
}
# What the facade serves; each must be among the samples.
EXPECTED = {
    "CapabilityStatement", "Bundle", "OperationOutcome", "ResearchStudy", "ResearchSubject",
    "MedicationAdministration", "AdverseEvent", "Observation", "Provenance",
}


def problems(resource):
    """Every problem of one resource (and, for a Bundle, of its entries)."""
    kind = resource.get("resourceType", "")
    found = []
    try:
        get_fhir_model_class(kind).parse_obj(resource)
    except Exception as error:  # the models raise pydantic's ValidationError, or KeyError for a kind
        found.append(f"{kind}: {error}")
    for (of, field), codes in REQUIRED_CODES.items():
        if kind == of and resource.get(field) not in codes:
            found.append(f"{kind}.{field} {resource.get(field)!r} is not an R4 code")
    for (of, field), (system, codes) in REQUIRED_CONCEPTS.items():
        if kind != of or field not in resource:
            continue
        codings = [c for c in resource[field].get("coding", []) if c.get("system") == system]
        if not codings or any(c.get("code") not in codes for c in codings):
            found.append(f"{kind}.{field} {resource[field]!r} has no R4 code of {system}")
    if kind == "OperationOutcome":
        for issue in resource.get("issue", []):
            if issue.get("code") not in ISSUE_CODES:
                found.append(f"OperationOutcome.issue.code {issue.get('code')!r} is not an R4 code")
    if kind == "Provenance":
        for agent in resource.get("agent", []):
            codes = [c.get("code") for c in agent.get("type", {}).get("coding", [])]
            if not codes or any(c not in PARTICIPANT_TYPES for c in codes):
                found.append(f"Provenance.agent.type {codes!r} is not a participant type trialops uses")
        for signature in resource.get("signature", []):
            for coding in signature.get("type", []):
                if (coding.get("system") != "urn:iso-astm:E1762-95:2013"
                        or SIGNATURE_TYPES.get(coding.get("code")) != coding.get("display")):
                    found.append(f"Provenance.signature.type {coding!r} is not an ASTM E1762 code with its display")
    if kind == "Bundle":
        for entry in resource.get("entry", []):
            found.extend(problems(entry["resource"]))
    return found


def kinds(resource):
    yield resource.get("resourceType")
    for entry in resource.get("entry", []):
        yield from kinds(entry["resource"])


def main():
    folder = pathlib.Path(sys.argv[1])
    files = sorted(folder.glob("*.json"))
    failed, seen = 0, set()
    for path in files:
        resource = json.loads(path.read_text())
        seen.update(kinds(resource))
        for problem in problems(resource):
            failed += 1
            print(f"FAIL {path.name}: {problem}")
    missing = EXPECTED - seen
    if missing:
        failed += 1
        print(f"FAIL no sample of {', '.join(sorted(missing))}")
    print(f"{len(files)} files, kinds {sorted(k for k in seen if k)}: "
          f"{'valid FHIR R4' if not failed else f'{failed} problems'} (fhir.resources {fhir.resources.__version__})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
