//! Integration tests of `umbra keys …`, run against the real binary.
//!
//! Known answers come from `test-vectors/mnemonic.json` and
//! `test-vectors/identity.json`, loaded at run time (no copies here).
#![allow(
    clippy::unwrap_used,
    reason = "integration test: a panic is a test failure"
)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const UMBRA: &str = env!("CARGO_BIN_EXE_umbra");

fn vectors(file: &str) -> Vec<Value> {
    let path = format!("{}/../../test-vectors/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let doc: Value = serde_json::from_str(&text).unwrap();
    doc["vectors"].as_array().unwrap().clone()
}

fn positive(file: &str, category: &str) -> Vec<Value> {
    let v: Vec<Value> = vectors(file)
        .into_iter()
        .filter(|v| v["category"] == category && v["expected"].get("error").is_none())
        .collect();
    assert!(!v.is_empty(), "no {category} vectors in {file}");
    v
}

fn umbra(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(UMBRA)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

/// Runs a command that must succeed with `--json`; returns the one object.
fn umbra_json(args: &[&str], stdin: Option<&str>) -> serde_json::Map<String, Value> {
    let out = umbra(args, stdin);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?} failed: {stderr}");
    assert_eq!(
        stdout.lines().count(),
        1,
        "one JSON line expected, got {stdout:?}"
    );
    let obj = serde_json::from_str::<Value>(&stdout)
        .unwrap()
        .as_object()
        .unwrap()
        .clone();
    for k in ["account_id", "ed25519_pubkey", "x25519_pubkey"] {
        assert!(obj[k].is_string(), "{k} missing in {stdout}");
    }
    assert!(obj.keys().all(|k| {
        ["account_id", "ed25519_pubkey", "x25519_pubkey", "mnemonic"].contains(&k.as_str())
    }));
    obj
}

/// Runs a command that must fail; returns stderr.
fn umbra_fails(args: &[&str], stdin: Option<&str>) -> String {
    let out = umbra(args, stdin);
    assert!(!out.status.success(), "{args:?} unexpectedly succeeded");
    assert!(out.stdout.is_empty(), "nothing on stdout on error");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn new_then_restore_gives_the_same_account() {
    let new = umbra_json(&["keys", "new", "--json"], None);
    let phrase = new["mnemonic"].as_str().unwrap();
    assert_eq!(phrase.split(' ').count(), 25);
    let id = new["account_id"].as_str().unwrap();
    assert_eq!(id.len(), 66);
    assert!(id.starts_with("05"));

    let restored = umbra_json(&["keys", "restore", "--json", "--mnemonic", phrase], None);
    assert_eq!(restored["account_id"], new["account_id"]);
    assert_eq!(restored["ed25519_pubkey"], new["ed25519_pubkey"]);
    assert_eq!(restored["x25519_pubkey"], new["x25519_pubkey"]);
    assert_eq!(restored["x25519_pubkey"].as_str().unwrap(), &id[2..]);

    // Two new accounts differ.
    let other = umbra_json(&["keys", "new", "--json"], None);
    assert_ne!(other["account_id"], new["account_id"]);
}

#[test]
fn restore_session_phrases_from_the_vectors() {
    for v in positive("mnemonic.json", "session_id_from_phrase") {
        let phrase = v["input"]["phrase"].as_str().unwrap();
        let got = umbra_json(&["keys", "restore", "--json", "--mnemonic", phrase], None);
        assert_eq!(
            got["account_id"], v["expected"]["session_id"],
            "{}",
            v["id"]
        );
        assert_eq!(
            got["ed25519_pubkey"], v["expected"]["ed25519_pk"],
            "{}",
            v["id"]
        );
    }
}

#[test]
fn restore_reads_stdin() {
    for v in positive("mnemonic.json", "session_id_from_phrase") {
        let phrase = v["input"]["phrase"].as_str().unwrap();
        // Upper case, extra whitespace and a trailing newline are fine.
        let typed = format!("  {}\n", phrase.to_uppercase().replace(' ', "\n  "));
        let got = umbra_json(&["keys", "restore", "--json"], Some(&typed));
        assert_eq!(
            got["account_id"], v["expected"]["session_id"],
            "{}",
            v["id"]
        );
    }
}

#[test]
fn restore_human_output_is_labelled() {
    let v = &positive("mnemonic.json", "session_id_from_phrase")[0];
    let phrase = v["input"]["phrase"].as_str().unwrap();
    let out = umbra(&["keys", "restore"], Some(phrase));
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let id = v["expected"]["session_id"].as_str().unwrap();
    assert!(
        stdout.contains(&format!("Account ID:         {id}")),
        "{stdout}"
    );
    assert!(stdout.contains("Ed25519 public key: "), "{stdout}");
    assert!(stdout.contains("X25519 public key:  "), "{stdout}");
    // The phrase the user typed is not echoed back.
    assert!(!stdout.contains(phrase), "{stdout}");
}

#[test]
fn restore_refuses_a_bad_checksum() {
    let v = &positive("mnemonic.json", "session_id_from_phrase")[0];
    let phrase = v["input"]["phrase"].as_str().unwrap();
    let mut words: Vec<&str> = phrase.split(' ').collect();
    // Replace the checksum word with a different seed word.
    let last = words[12];
    words[12] = words
        .iter()
        .take(12)
        .copied()
        .find(|w| w[..3] != last[..3])
        .unwrap();
    let bad = words.join(" ");
    let stderr = umbra_fails(&["keys", "restore", "--mnemonic", &bad], None);
    assert!(
        stderr.contains("checksum word does not match: the phrase has a typo"),
        "{stderr}"
    );
    let stderr = umbra_fails(&["keys", "restore", "--json"], Some(&bad));
    assert!(stderr.contains("checksum word does not match"), "{stderr}");
}

#[test]
fn restore_refuses_other_word_counts_and_unknown_words() {
    let v = &positive("mnemonic.json", "session_id_from_phrase")[0];
    let phrase = v["input"]["phrase"].as_str().unwrap();
    let twelve: Vec<&str> = phrase.split(' ').take(12).collect();
    let stderr = umbra_fails(&["keys", "restore", "--mnemonic", &twelve.join(" ")], None);
    assert!(
        stderr.contains("13 words") && stderr.contains("25 words"),
        "{stderr}"
    );
    assert!(stderr.contains("got 12 words"), "{stderr}");

    let unknown = phrase.replacen(twelve[1], "qqqq", 1);
    let stderr = umbra_fails(&["keys", "restore", "--mnemonic", &unknown], None);
    assert!(
        stderr.contains("word 2 (\"qqqq\") is not in the word list"),
        "{stderr}"
    );

    let stderr = umbra_fails(&["keys", "restore"], Some("\n"));
    assert!(stderr.contains("no recovery phrase"), "{stderr}");
}

#[test]
fn inspect_seeds_from_the_vectors() {
    let mut seen = [false, false];
    for v in positive("identity.json", "ed25519_seed_to_keys") {
        let seed = v["input"]["seed"].as_str().unwrap();
        let got = umbra_json(&["keys", "inspect", "--json", "--seed", seed], None);
        let e = &v["expected"];
        assert_eq!(got["account_id"], e["session_id"], "{}", v["id"]);
        assert_eq!(got["ed25519_pubkey"], e["ed25519_pk"], "{}", v["id"]);
        assert_eq!(got["x25519_pubkey"], e["x25519_pk"], "{}", v["id"]);
        let words = got["mnemonic"].as_str().unwrap().split(' ').count();
        match seed.len() {
            32 => {
                assert_eq!(words, 13);
                seen[0] = true;
            }
            64 => {
                assert_eq!(words, 25);
                seen[1] = true;
            }
            n => panic!("unexpected seed length {n}"),
        }
        // The phrase restores to the same account.
        let back = umbra_json(
            &[
                "keys",
                "restore",
                "--json",
                "--mnemonic",
                got["mnemonic"].as_str().unwrap(),
            ],
            None,
        );
        assert_eq!(back["account_id"], got["account_id"]);
    }
    assert_eq!(seen, [true, true], "vectors cover 16- and 32-byte seeds");
}

#[test]
fn inspect_gives_the_phrase_of_the_vectors() {
    for v in positive("mnemonic.json", "session_id_from_phrase") {
        let seed = v["expected"]["seed"].as_str().unwrap();
        let got = umbra_json(&["keys", "inspect", "--json", "--seed", seed], None);
        assert_eq!(got["mnemonic"], v["input"]["phrase"], "{}", v["id"]);
        assert_eq!(
            got["account_id"], v["expected"]["session_id"],
            "{}",
            v["id"]
        );
    }
    for v in positive("mnemonic.json", "mnemonic_encode") {
        let data = v["input"]["data"].as_str().unwrap();
        if v["input"]["checksum"] == true && data.len() == 32 {
            let got = umbra_json(&["keys", "inspect", "--json", "--seed", data], None);
            assert_eq!(got["mnemonic"], v["expected"]["phrase"], "{}", v["id"]);
        }
    }
}

#[test]
fn inspect_refuses_bad_seeds() {
    let stderr = umbra_fails(&["keys", "inspect", "--seed", "abcd"], None);
    assert!(stderr.contains("32 bytes (or 16"), "{stderr}");
    let stderr = umbra_fails(&["keys", "inspect", "--seed", &"zz".repeat(32)], None);
    assert!(stderr.contains("hexadecimal"), "{stderr}");
}

#[test]
fn new_human_output_shows_the_phrase() {
    let out = umbra(&["keys", "new"], None);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let line = stdout
        .lines()
        .find(|l| l.starts_with("Recovery phrase:"))
        .unwrap();
    assert_eq!(
        line.trim_start_matches("Recovery phrase:")
            .split_whitespace()
            .count(),
        25
    );
    assert!(stdout.starts_with("Account ID:         05"), "{stdout}");
}
