//! Every reason code a service declares is asserted by at least one test. The declared codes are
//! read from each service's `error.rs` (and the platform's idempotency refusal); a code that no
//! test file names as a string fails here, so a refusal cannot ship, or stay, untested. A code
//! that is declared and never returned must go.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `pub const NAME: &str = "NAME";` declarations of a file.
fn declared(path: &Path) -> Vec<String> {
    read(path)
        .lines()
        .filter_map(|line| line.trim().strip_prefix("pub const "))
        .filter_map(|rest| rest.split_once(": &str = \""))
        .filter_map(|(name, value)| value.strip_suffix("\";").filter(|v| *v == name))
        .map(str::to_owned)
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_declared_reason_code_is_asserted_by_a_test() {
    let root = workspace();
    let mut codes: BTreeMap<String, &str> = BTreeMap::new();
    for service in ["enrollment", "dosing", "outcomes"] {
        let found = declared(&root.join(format!("services/{service}/src/error.rs")));
        assert!(found.len() >= 5, "{service}: no reason codes parsed from error.rs");
        codes.extend(found.into_iter().map(|c| (c, service)));
    }
    let idempotency = read(&root.join("crates/platform/src/idempotency.rs"));
    assert!(idempotency.contains("\"REQUEST_ID_REUSED\""));
    codes.insert("REQUEST_ID_REUSED".into(), "platform");
    assert!(codes.len() >= 30, "only {} codes found", codes.len());

    let mut files = Vec::new();
    for dir in [
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
        .map(|(code, service)| format!("{service}: {code}"))
        .collect();
    assert!(untested.is_empty(), "reason codes no test asserts: {untested:?}");
}
