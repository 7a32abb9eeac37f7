#!/usr/bin/env python3
"""Checks an ODM export (`trialops export odm` / ExportOdm) with software trialops did not write,
and against the ODM 1.3.2 rules the schema cannot check.

    check-odm.py FILE [--subjects N]

- FILE validates against the official ODM 1.3.2 schema shipped in the PyPI package `defineutils`;
  the schema is first shown a broken copy (an AuditRecord without its DateTimeStamp) and must
  refuse it.
- Every OID a file refers to resolves: UserOID and LocationOID of each AuditRecord and SiteRef in
  AdminData (the schema never checks them), StudyEventOID, FormOID, ItemGroupOID, ItemOID,
  CodeListOID and MeasurementUnitOID in the metadata.
- Each value of an item with a code list is one of its coded values.
- Audit trail: every ItemGroupData carries an AuditRecord; each entity (subject, study event and
  repeat key, item group and repeat key) starts with an Insert, then only Updates and Contexts, with
  DateTimeStamps that never go back and none after the file's CreationDateTime; each audit log
  entry (SourceID) stands for one change of one entity at most once per entity.
- Electronic signatures: each Context ItemGroupData carries a Signature and no ItemData; every
  Signature's UserOID, LocationOID and SignatureOID (a SignatureDef) resolve, and its time is not
  after the file's CreationDateTime.
- --subjects N: the file holds exactly N subjects.
"""

import argparse
import copy
import os
import sys
from collections import defaultdict
from datetime import datetime

import defineutils
from lxml import etree

O = "{http://www.cdisc.org/ns/odm/v1.3}"
failures = []


def fail(message):
    failures.append(message)


def when(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file")
    parser.add_argument("--subjects", type=int)
    args = parser.parse_args()
    base = os.path.join(os.path.dirname(defineutils.__file__), "validate", "schema", "cdisc-odm-1.3.2")
    xsd = etree.XMLSchema(etree.parse(os.path.join(base, "ODM1-3-2.xsd")))
    doc = etree.parse(args.file)
    if not xsd.validate(doc):
        for error in list(xsd.error_log)[:20]:
            fail(f"schema: {error}")
    broken = copy.deepcopy(doc)
    stamp = broken.find(f".//{O}AuditRecord/{O}DateTimeStamp")
    if stamp is not None:
        stamp.getparent().remove(stamp)
        if xsd.validate(broken):
            fail("the ODM schema accepted an AuditRecord without its DateTimeStamp")
    root = doc.getroot()
    created = when(root.get("CreationDateTime"))

    defined = defaultdict(set)
    for tag in ("User", "Location", "SignatureDef", "StudyEventDef", "FormDef", "ItemGroupDef", "ItemDef", "CodeList", "MeasurementUnit"):
        for e in root.iter(f"{O}{tag}"):
            defined[tag].add(e.get("OID"))
    refs = [
        ("UserRef", "UserOID", "User"),
        ("LocationRef", "LocationOID", "Location"),
        ("SiteRef", "LocationOID", "Location"),
        ("SignatureRef", "SignatureOID", "SignatureDef"),
        ("StudyEventData", "StudyEventOID", "StudyEventDef"),
        ("StudyEventRef", "StudyEventOID", "StudyEventDef"),
        ("FormData", "FormOID", "FormDef"),
        ("FormRef", "FormOID", "FormDef"),
        ("ItemGroupData", "ItemGroupOID", "ItemGroupDef"),
        ("ItemGroupRef", "ItemGroupOID", "ItemGroupDef"),
        ("ItemData", "ItemOID", "ItemDef"),
        ("ItemRef", "ItemOID", "ItemDef"),
        ("CodeListRef", "CodeListOID", "CodeList"),
        ("MeasurementUnitRef", "MeasurementUnitOID", "MeasurementUnit"),
    ]
    for tag, attribute, target in refs:
        missing = {e.get(attribute) for e in root.iter(f"{O}{tag}")} - defined[target]
        if missing:
            fail(f"{tag}/@{attribute} refers to undefined {target}: {sorted(missing)[:5]}")

    terms = {cl.get("OID"): {i.get("CodedValue") for i in cl.iter(f"{O}CodeListItem")} for cl in root.iter(f"{O}CodeList")}
    coded = {}
    for item in root.iter(f"{O}ItemDef"):
        ref = item.find(f"{O}CodeListRef")
        if ref is not None:
            coded[item.get("OID")] = ref.get("CodeListOID")
    for data in root.iter(f"{O}ItemData"):
        codelist = coded.get(data.get("ItemOID"))
        if codelist and data.get("Value") is not None and data.get("Value") not in terms[codelist]:
            fail(f"{data.get('ItemOID')} = {data.get('Value')!r} is not in {codelist}")

    subjects = root.findall(f".//{O}SubjectData")
    keys = [s.get("SubjectKey") for s in subjects]
    if len(keys) != len(set(keys)):
        fail("a subject appears twice")
    if args.subjects is not None and len(keys) != args.subjects:
        fail(f"{len(keys)} subjects, expected {args.subjects}")
    groups = signatures = 0
    for subject in subjects:
        history = defaultdict(list)
        for event in subject.iter(f"{O}StudyEventData"):
            for group in event.iter(f"{O}ItemGroupData"):
                groups += 1
                entity = (
                    event.get("StudyEventOID"),
                    event.get("StudyEventRepeatKey"),
                    group.get("ItemGroupOID"),
                    group.get("ItemGroupRepeatKey"),
                )
                record = group.find(f"{O}AuditRecord")
                if record is None:
                    fail(f"{subject.get('SubjectKey')} {entity}: no AuditRecord")
                    continue
                stamp = when(record.find(f"{O}DateTimeStamp").text)
                if stamp > created:
                    fail(f"{subject.get('SubjectKey')} {entity}: a change after the file was created")
                if group.get("TransactionType") == "Context":
                    signature = group.find(f"{O}Signature")
                    if signature is None or group.find(f"{O}ItemData") is not None:
                        fail(f"{subject.get('SubjectKey')} {entity}: a Context without a Signature, or with items")
                    else:
                        signatures += 1
                        if when(signature.find(f"{O}DateTimeStamp").text) > created:
                            fail(f"{subject.get('SubjectKey')} {entity}: signed after the file was created")
                source = record.find(f"{O}SourceID")
                history[entity].append((group.get("TransactionType"), stamp, source.text if source is not None else None))
        for entity, changes in history.items():
            kinds = [k for k, _, _ in changes]
            if kinds[0] != "Insert" or any(k not in ("Update", "Context") for k in kinds[1:]):
                fail(f"{subject.get('SubjectKey')} {entity}: transactions {kinds}")
            stamps = [s for _, s, _ in changes]
            if stamps != sorted(stamps):
                fail(f"{subject.get('SubjectKey')} {entity}: audit records out of time order")
            sources = [s for _, _, s in changes[1:]]
            if len(sources) != len(set(sources)):
                fail(f"{subject.get('SubjectKey')} {entity}: one audit log entry written twice")
    if failures:
        print(f"ODM export {args.file}: {len(failures)} problem(s)")
        for f in failures[:25]:
            print(f"  - {f}")
        if len(failures) > 25:
            print(f"  ... and {len(failures) - 25} more")
        sys.exit(1)
    print(
        f"ODM export {args.file}: valid ODM 1.3.2, {len(keys)} subjects, {groups} audited item groups, "
        f"{signatures} electronic signatures"
    )


if __name__ == "__main__":
    main()
