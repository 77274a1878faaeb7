//! A checker for `umbra-vectors/1` files (schema in `test-vectors/README.md`).
//!
//! [`check_files`] reads any number of vector files, runs every vector's
//! operation through the Umbra library and compares the result with the
//! vector's `expected` object. Categories live in the `checks` modules, one
//! per vector file of the spec; each declares its input keys, its output keys
//! and the function that runs the operation. An unknown category, a
//! malformed vector, a duplicate id, a wrong result, or an operation that
//! refuses a positive vector (or accepts a negative one) is a failure.

mod checks;
mod input;

use std::collections::HashSet;
use std::path::Path;

use serde_json::{Map, Value};

pub use input::{Input, Malformed};

/// Why an operation did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The vector itself breaks the schema (missing key, bad hex, …): always a failure.
    #[error("malformed vector: {0}")]
    Malformed(#[from] Malformed),
    /// The library refused the input: a pass for a negative vector.
    #[error("refused: {0}")]
    Refused(String),
}

impl CheckError {
    /// Wraps a library error as a refusal.
    pub fn refused(e: impl std::fmt::Display) -> Self {
        CheckError::Refused(e.to_string())
    }
}

/// The result object of one operation.
pub type Output = Map<String, Value>;

/// One category: its key sets and the operation.
pub struct Category {
    /// Category name as in the `category` field.
    pub name: &'static str,
    /// The exact input key set.
    pub inputs: &'static [&'static str],
    /// The exact output key set of a positive vector, or `None` when it varies
    /// (the operation's output is then compared as a whole).
    pub outputs: Option<&'static [&'static str]>,
    /// Runs the operation.
    pub run: fn(&Input) -> Result<Output, CheckError>,
}

/// Every category this checker knows.
pub fn categories() -> Vec<&'static Category> {
    checks::ALL.iter().flat_map(|c| c.iter()).collect()
}

/// The verdict on one vector.
#[derive(Debug)]
pub struct Verdict {
    /// The vector id (or a placeholder when it has none).
    pub id: String,
    /// `Ok(())` when the vector passed, else why it failed.
    pub result: Result<(), String>,
}

/// Checks one vector object.
pub fn check_vector(v: &Value) -> Verdict {
    let id = v
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("<no id>")
        .to_string();
    Verdict {
        result: check_vector_inner(v),
        id,
    }
}

fn check_vector_inner(v: &Value) -> Result<(), String> {
    let obj = v.as_object().ok_or("vector is not an object")?;
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    if keys != ["category", "expected", "id", "input", "origin", "source"] {
        return Err(format!(
            "vector keys are {keys:?}, expected the six schema keys"
        ));
    }
    let id = obj["id"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or("id is not a non-empty string")?;
    let _ = id;
    match obj["origin"].as_str() {
        Some("upstream" | "derived") => {}
        _ => return Err("origin must be \"upstream\" or \"derived\"".into()),
    }
    let source = obj["source"].as_str().ok_or("source is not a string")?;
    if !source.contains('/') || !source.contains(':') {
        return Err(format!("source {source:?} is not owner/repo:path"));
    }
    let name = obj["category"].as_str().ok_or("category is not a string")?;
    let cat = categories()
        .into_iter()
        .find(|c| c.name == name)
        .ok_or_else(|| format!("unknown category {name:?}"))?;
    let input = obj["input"].as_object().ok_or("input is not an object")?;
    let mut in_keys: Vec<&str> = input.keys().map(String::as_str).collect();
    in_keys.sort_unstable();
    let mut want: Vec<&str> = cat.inputs.to_vec();
    want.sort_unstable();
    if in_keys != want {
        return Err(format!(
            "input keys {in_keys:?} differ from the category's {want:?}"
        ));
    }
    let expected = obj["expected"]
        .as_object()
        .ok_or("expected is not an object")?;
    let negative = expected.contains_key("error");
    if negative {
        if expected.len() != 1 || !expected["error"].is_string() {
            return Err("a negative vector's expected must be exactly {\"error\": string}".into());
        }
    } else if let Some(outs) = cat.outputs {
        let mut e_keys: Vec<&str> = expected.keys().map(String::as_str).collect();
        e_keys.sort_unstable();
        let mut want: Vec<&str> = outs.to_vec();
        want.sort_unstable();
        if e_keys != want {
            return Err(format!(
                "expected keys {e_keys:?} differ from the category's {want:?}"
            ));
        }
    }
    let result = (cat.run)(&Input::new(input));
    match (negative, result) {
        (_, Err(CheckError::Malformed(m))) => Err(format!("malformed input: {m}")),
        (true, Err(CheckError::Refused(_))) => Ok(()),
        (true, Ok(out)) => Err(format!("expected a refusal, got {}", Value::Object(out))),
        (false, Err(CheckError::Refused(why))) => Err(format!("refused a positive vector: {why}")),
        (false, Ok(out)) => compare(expected, &out),
    }
}

/// Exact comparison: the same keys, each value equal (numbers by value).
fn compare(expected: &Map<String, Value>, got: &Output) -> Result<(), String> {
    for (k, want) in expected {
        match got.get(k) {
            None => return Err(format!("output has no {k:?}")),
            Some(have) if !json_eq(want, have) => {
                return Err(format!("{k}: expected {want}, got {have}"));
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = got.keys().find(|k| !expected.contains_key(*k)) {
        return Err(format!("output has {extra:?}, which expected lacks"));
    }
    Ok(())
}

fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            match (x.as_u64(), y.as_u64(), x.as_i64(), y.as_i64()) {
                (Some(p), Some(q), _, _) => p == q,
                (_, _, Some(p), Some(q)) => p == q,
                _ => x.as_f64() == y.as_f64(),
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// The totals of a run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Vectors that passed.
    pub passed: usize,
    /// Vectors that failed (including malformed files and duplicate ids).
    pub failed: usize,
}

/// Checks every vector of every file, calling `report` once per vector (or
/// once per unreadable file), and returns the totals.
pub fn check_files(paths: &[&Path], mut report: impl FnMut(&Verdict)) -> Totals {
    let mut totals = Totals::default();
    let mut seen = HashSet::new();
    for path in paths {
        let verdicts = match load(path) {
            Ok(vectors) => vectors
                .iter()
                .map(|v| {
                    let mut verdict = check_vector(v);
                    if verdict.result.is_ok() && !seen.insert(verdict.id.clone()) {
                        verdict.result = Err("duplicate vector id".into());
                    }
                    verdict
                })
                .collect(),
            Err(e) => vec![Verdict {
                id: path.display().to_string(),
                result: Err(e),
            }],
        };
        for v in &verdicts {
            if v.result.is_ok() {
                totals.passed += 1;
            } else {
                totals.failed += 1;
            }
            report(v);
        }
    }
    totals
}

fn load(path: &Path) -> Result<Vec<Value>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read file: {e}"))?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
    let obj = doc.as_object().ok_or("file is not a JSON object")?;
    if obj.len() != 2 || obj.get("schema").and_then(Value::as_str) != Some("umbra-vectors/1") {
        return Err(
            "file must be exactly {\"schema\": \"umbra-vectors/1\", \"vectors\": [...]}".into(),
        );
    }
    obj.get("vectors")
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| "\"vectors\" is not an array".into())
}
