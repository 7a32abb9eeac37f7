//! The reason codes have one source, the contracts' reason enums (`CommonReason`,
//! `EnrollmentReason`, `DosingReason`, `OutcomesReason`), and everything else that names them is
//! checked against it here:
//! - every code is asserted by at least one test, so a refusal cannot ship, or stay, untested
//!   (a code that is declared and never returned must go);
//! - each RPC's "Reasons:" sentence names only its package's codes, and every code is named by
//!   some RPC;
//! - the README's reason tables list exactly the enums' codes, with the RPCs those sentences name.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use prost::Message;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `UPPER_SNAKE` of an enum name: `DosingReason` → `DOSING_REASON`.
fn upper_snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// The reason codes each contract package declares (`common`, `enrollment`, ...), read from the
/// compiled descriptor set, as sent: the value's name without the enum's prefix.
fn declared() -> BTreeMap<String, Vec<String>> {
    let set = prost_types::FileDescriptorSet::decode(trialops_proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut out = BTreeMap::new();
    for file in set.file.iter().filter(|f| f.package().starts_with("trialops.")) {
        let package = file.package().split('.').nth(1).unwrap_or_default().to_owned();
        for e in file.enum_type.iter().filter(|e| e.name().ends_with("Reason")) {
            let prefix = format!("{}_", upper_snake(e.name()));
            let codes: Vec<String> = e
                .value
                .iter()
                .filter(|v| v.number() != 0)
                .map(|v| {
                    v.name()
                        .strip_prefix(&prefix)
                        .unwrap_or_else(|| panic!("{} lacks the prefix {prefix}", v.name()))
                        .to_owned()
                })
                .collect();
            assert!(
                out.insert(package.clone(), codes).is_none(),
                "{package}: two reason enums"
            );
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// Codes every test must assert: every service's, and the common ones a client branches on
/// beyond the status code itself.
#[test]
fn every_declared_reason_code_is_asserted_by_a_test() {
    let declared = declared();
    assert_eq!(
        declared.keys().map(String::as_str).collect::<Vec<_>>(),
        ["common", "dosing", "enrollment", "outcomes"],
    );
    let mut codes: BTreeMap<&str, &str> = BTreeMap::new();
    for (package, list) in &declared {
        assert!(list.len() >= 5, "{package}: only {} reason codes", list.len());
        for code in list {
            codes.insert(code, package);
        }
    }
    assert!(codes.len() >= 36, "only {} codes found", codes.len());

    let root = workspace();
    let mut files = Vec::new();
    for dir in [
        "crates/platform/src",
        "services/enrollment/tests",
        "services/dosing/tests",
        "services/outcomes/tests",
        "crates/cli/tests",
    ] {
        rust_files(&root.join(dir), &mut files);
    }
    let this = Path::new(file!()).file_name();
    let tests: String = files
        .iter()
        .filter(|f| f.file_name() != this)
        .map(|f| read(f))
        .collect();
    let untested: Vec<String> = codes
        .iter()
        .filter(|(code, _)| !tests.contains(&format!("\"{code}\"")))
        .map(|(code, package)| format!("{package}: {code}"))
        .collect();
    assert!(untested.is_empty(), "reason codes no test asserts: {untested:?}");
}

/// Each RPC's "Reasons:" sentence in its package's .proto: `(rpc, codes)`.
fn reasons_sentences(package: &str) -> Vec<(String, Vec<String>)> {
    let text = read(&workspace().join(format!("proto/trialops/{package}/v1/{package}.proto")));
    let mut out = Vec::new();
    let mut comment = String::new();
    for line in text.lines() {
        if let Some(c) = line.trim().strip_prefix("//") {
            comment.push(' ');
            comment.push_str(c.trim());
            continue;
        }
        if let Some(rpc) = line.trim().strip_prefix("rpc ").and_then(|r| r.split('(').next()) {
            let sentences: Vec<&str> = comment.split("Reasons: ").skip(1).collect();
            assert!(sentences.len() <= 1, "{rpc}: two Reasons sentences");
            if let Some(sentence) = sentences.first() {
                let listed = sentence
                    .trim()
                    .strip_suffix('.')
                    .unwrap_or_else(|| panic!("{rpc}: {sentence:?}"));
                out.push((rpc.to_owned(), listed.split(", ").map(str::to_owned).collect()));
            }
        }
        comment.clear();
    }
    out
}

#[test]
fn each_rpcs_reasons_sentence_names_its_packages_codes_and_every_code_is_named() {
    for (package, codes) in declared().iter().filter(|(p, _)| *p != "common") {
        let sentences = reasons_sentences(package);
        assert!(
            sentences.len() >= 3,
            "{package}: only {} RPCs name reasons",
            sentences.len()
        );
        let mut named = BTreeSet::new();
        for (rpc, listed) in &sentences {
            for code in listed {
                assert!(
                    codes.contains(code),
                    "{package} {rpc}: {code} is not a {package} reason"
                );
                named.insert(code.clone());
            }
        }
        let unnamed: Vec<&String> = codes.iter().filter(|c| !named.contains(*c)).collect();
        assert!(unnamed.is_empty(), "{package}: no RPC names {unnamed:?}");
    }
}

/// The README's reason tables: for each `(`XReason`)` heading, the rows' codes and the RPCs
/// named in the row.
fn readme_tables() -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let readme = read(&workspace().join("README.md"));
    let section = readme
        .split("\n## Reason codes\n")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .unwrap_or_else(|| panic!("README has no \"## Reason codes\" section"));
    let mut out: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let mut current = None;
    for line in section.lines() {
        if let Some(name) = line.split("(`").nth(1).and_then(|r| r.split("Reason`)").next())
            && line.starts_with("**")
        {
            current = Some(name.to_lowercase());
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let Some(code) = cells
            .get(1)
            .and_then(|c| c.strip_prefix('`'))
            .and_then(|c| c.strip_suffix('`'))
        else {
            continue;
        };
        let package = current
            .clone()
            .unwrap_or_else(|| panic!("a reason row before any heading: {line}"));
        let rpcs = if cells.len() > 5 {
            cells[3].split(", ").map(|r| r.trim_matches('`').to_owned()).collect()
        } else {
            Vec::new()
        };
        let table = out.entry(package).or_default();
        assert!(
            table.insert(code.to_owned(), rpcs).is_none(),
            "README lists {code} twice"
        );
    }
    out
}

#[test]
fn the_readme_reason_tables_are_the_contracts_enums() {
    let declared = declared();
    let tables = readme_tables();
    assert_eq!(
        tables.keys().collect::<Vec<_>>(),
        declared.keys().collect::<Vec<_>>(),
        "one README table per reason enum"
    );
    for (package, codes) in &declared {
        let table = &tables[package];
        let listed: BTreeSet<&String> = table.keys().collect();
        let expected: BTreeSet<&String> = codes.iter().collect();
        assert_eq!(listed, expected, "README table of {package}");
        if package == "common" {
            continue;
        }
        let mut by_code: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (rpc, listed) in reasons_sentences(package) {
            for code in listed {
                by_code.entry(code).or_default().push(rpc.clone());
            }
        }
        for (code, rpcs) in table {
            assert_eq!(
                rpcs,
                by_code.get(code).unwrap_or(&Vec::new()),
                "README: the RPCs giving {package} {code}"
            );
        }
    }
}
