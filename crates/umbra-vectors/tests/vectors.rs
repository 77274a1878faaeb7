//! Runs the checker over every vector file in `test-vectors/`, and checks
//! that it fails what it must fail.

use std::io::Write;
use std::path::{Path, PathBuf};

fn vector_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-vectors");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("test-vectors/ exists")
        .map(|e| e.expect("readable dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_repository_vector_passes() {
    let files = vector_files();
    assert!(
        files.len() >= 6,
        "expected the six vector files, found {files:?}"
    );
    let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let mut failures = Vec::new();
    let totals = umbra_vectors::check_files(&paths, |v| {
        if let Err(why) = &v.result {
            failures.push(format!("{}: {why}", v.id));
        }
    });
    assert!(
        failures.is_empty(),
        "{} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(totals.passed > 100, "suspiciously few vectors: {totals:?}");
}

fn temp_file(body: &str) -> tempfile_path::TempPath {
    tempfile_path::write(body)
}

/// A tiny temp-file helper so the test needs no extra crate.
mod tempfile_path {
    use super::*;

    pub struct TempPath(pub PathBuf);

    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    pub fn write(body: &str) -> TempPath {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!(
            "umbra-vectors-test-{}-{n}.json",
            std::process::id()
        ));
        let mut f = std::fs::File::create(&p).expect("create temp file");
        f.write_all(body.as_bytes()).expect("write temp file");
        TempPath(p)
    }
}

fn run(body: &str) -> umbra_vectors::Totals {
    let t = temp_file(body);
    umbra_vectors::check_files(&[t.0.as_path()], |_| {})
}

#[test]
fn unknown_category_fails() {
    let t = run(
        r#"{"schema":"umbra-vectors/1","vectors":[{"id":"x/1","category":"no_such_thing","input":{},"expected":{"a":"b"},"origin":"derived","source":"a/b:c"}]}"#,
    );
    assert_eq!(
        t,
        umbra_vectors::Totals {
            passed: 0,
            failed: 1
        }
    );
}

#[test]
fn wrong_schema_fails() {
    let t = run(r#"{"schema":"umbra-vectors/2","vectors":[]}"#);
    assert_eq!(t.failed, 1);
}

#[test]
fn a_mutated_expected_value_fails() {
    // Take every repository vector, flip one hex digit of its first string
    // output, and require the checker to fail it.
    for file in vector_files() {
        let text = std::fs::read_to_string(&file).expect("read vector file");
        let mut doc: serde_json::Value = serde_json::from_str(&text).expect("vector file is JSON");
        let vectors = doc["vectors"].as_array_mut().expect("vectors array");
        let mut mutated = 0;
        for v in vectors.iter_mut() {
            let expected = v["expected"].as_object_mut().expect("expected object");
            if expected.contains_key("error") {
                continue;
            }
            let Some((_, val)) = expected
                .iter_mut()
                .find(|(_, val)| val.as_str().is_some_and(|s| !s.is_empty()))
            else {
                continue;
            };
            let s = val.as_str().expect("string").to_string();
            let mut chars: Vec<char> = s.chars().collect();
            let last = chars.len() - 1;
            chars[last] = if chars[last] == '0' { '1' } else { '0' };
            *val = serde_json::Value::String(chars.into_iter().collect());
            mutated += 1;
        }
        let t = run(&doc.to_string());
        assert_eq!(
            t.passed,
            vectors_len(&doc) - mutated,
            "{}: every mutated vector must fail",
            file.display()
        );
    }
}

fn vectors_len(doc: &serde_json::Value) -> usize {
    doc["vectors"].as_array().map_or(0, Vec::len)
}
