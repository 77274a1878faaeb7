//! `umbra-vectors FILE...`: checks vector files and prints one line per
//! vector, then `N passed, M failed`. Exits 1 when any vector fails.

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || args.iter().any(|a| a == "-h" || a == "--help") {
        eprintln!("usage: umbra-vectors FILE.json [FILE.json ...]");
        eprintln!(
            "Checks umbra-vectors/1 files against the Umbra library; prints one line per vector and a total."
        );
        return if args.is_empty() {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
    }
    let paths: Vec<&Path> = args.iter().map(Path::new).collect();
    let totals = umbra_vectors::check_files(&paths, |v| match &v.result {
        Ok(()) => println!("ok   {}", v.id),
        Err(why) => println!("FAIL {}: {why}", v.id),
    });
    println!("{} passed, {} failed", totals.passed, totals.failed);
    if totals.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
