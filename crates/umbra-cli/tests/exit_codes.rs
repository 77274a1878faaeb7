//! `umbra` exit codes (documented in `umbra --help`): bad input is 2, an
//! unreachable network is 3, and nothing is left half-written.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn umbra(home: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_umbra"))
        .arg("--home")
        .arg(home)
        .args(args)
        .output()
        .expect("run umbra");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn input_and_network_errors_have_distinct_codes() {
    let dir = tempfile::tempdir().unwrap();
    // A network whose only seed node is a closed local port: nothing answers.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let registry = umbra_crypto::Ed25519Keypair::from_seed(&[1; 32]).public();
    let seed = umbra_crypto::Ed25519Keypair::from_seed(&[2; 32]).public();
    let network = format!(
        r#"{{"name":"dead","registry_keys":["{}"],"threshold":1,"seed_nodes":[{{"ip":"127.0.0.1","port_https":{closed},"pubkey_ed25519":"{}"}}]}}"#,
        hex::encode(registry.as_bytes()),
        hex::encode(seed.as_bytes())
    );
    let net_file = dir.path().join("network.json");
    std::fs::write(&net_file, network).unwrap();
    let home = dir.path().join("home");
    let (code, err) = umbra(
        &home,
        &["account", "create", "--network", net_file.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");

    let (code, err) = umbra(&home, &["send", "not-an-account", "hi"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.starts_with("umbra: error:") && err.lines().count() == 1,
        "{err}"
    );
    let group = format!("03{}", "ab".repeat(32));
    let (code, err) = umbra(&home, &["send", &group, "hi"]);
    assert_eq!(code, 2, "{err}");

    let peer = format!("05{}", "cd".repeat(32));
    let (code, err) = umbra(&home, &["send", &peer, "hi"]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("node list") || err.contains("path") || err.contains("failed"),
        "{err}"
    );
    // The failed send is recorded as failed, not as sent.
    let out = Command::new(env!("CARGO_BIN_EXE_umbra"))
        .arg("--home")
        .arg(&home)
        .args(["--json", "messages", &peer])
        .output()
        .unwrap();
    assert!(out.status.success());
    let line: serde_json::Value =
        serde_json::from_slice(out.stdout.split(|&b| b == b'\n').next().unwrap()).unwrap();
    assert_eq!(line["status"], "failed");

    let help = Command::new(env!("CARGO_BIN_EXE_umbra"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("Exit codes"));
}
