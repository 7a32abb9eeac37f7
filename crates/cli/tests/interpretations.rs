//! docs/CLINICAL_INTERPRETATIONS.md names, for every clinical interpretation, the tests that hold
//! it: each named test must exist, so the table cannot point at nothing.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

#[test]
fn every_interpretation_names_tests_that_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let doc = std::fs::read_to_string(root.join("docs/CLINICAL_INTERPRETATIONS.md")).unwrap();
    let rows: Vec<&str> = doc
        .lines()
        .filter(|l| l.starts_with("| ") && l.chars().nth(2).is_some_and(|c| c.is_ascii_digit()))
        .collect();
    assert!(rows.len() >= 19, "only {} interpretations found", rows.len());
    for row in rows {
        let tests = row.trim_end_matches('|').rsplit('|').next().unwrap_or_default();
        let named: Vec<&str> = tests.split('`').skip(1).step_by(2).collect();
        assert!(!named.is_empty(), "no test named in: {row}");
        for test in named {
            let (file, function) = test
                .split_once("::")
                .unwrap_or_else(|| panic!("not file::test: {test}"));
            let source = std::fs::read_to_string(root.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert!(
                source.contains(&format!("fn {function}(")),
                "{file} has no test {function} (named in docs/CLINICAL_INTERPRETATIONS.md)"
            );
        }
    }
}
