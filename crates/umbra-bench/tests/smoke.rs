//! Smoke test of the `umbra-bench` binary, so it cannot silently rot: the
//! `crypto` row with a tiny CPU budget must print a table with every
//! primitive and a positive figure for each (debug build, a few seconds).

use std::process::Command;

#[test]
fn crypto_row_prints_every_primitive() -> Result<(), Box<dyn std::error::Error>> {
    let out = Command::new(env!("CARGO_BIN_EXE_umbra-bench"))
        .args(["crypto", "--quick", "--budget-ms", "2"])
        .output()?;
    let stdout = String::from_utf8(out.stdout)?;
    assert!(
        out.status.success(),
        "umbra-bench crypto failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    for what in [
        "X25519 Diffie-Hellman",
        "Ed25519 sign",
        "Ed25519 verify",
        "sealed box seal",
        "sealed box open",
        "XChaCha20-Poly1305",
        "AES-256-GCM",
        "BLAKE2b-256",
    ] {
        let line = stdout
            .lines()
            .find(|l| l.contains(what))
            .ok_or_else(|| format!("no {what} row in:\n{stdout}"))?;
        // "| crypto | what | 12.34 µs/op | 81,000 op/s per core |"
        let figure = line.split('|').nth(3).unwrap_or_default().trim();
        let value: f64 = figure
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .replace(',', "")
            .parse()?;
        assert!(value > 0.0 && value.is_finite(), "{what}: {figure}");
    }
    assert!(stdout.contains("load average"), "{stdout}");
    Ok(())
}

#[test]
fn unknown_subcommand_fails() -> Result<(), Box<dyn std::error::Error>> {
    let out = Command::new(env!("CARGO_BIN_EXE_umbra-bench"))
        .arg("nonsense")
        .output()?;
    assert!(!out.status.success());
    Ok(())
}
