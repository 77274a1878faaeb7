//! `cargo bench -p umbra-bench --bench crypto`: the crypto row of the
//! `umbra-bench` table on its own (the per-core bounds the other rows are
//! compared with), through the same code as `umbra-bench crypto`. A plain
//! `harness = false` bench: the measurement is the crate's own thread-CPU
//! timer, so no benchmark framework is pulled into the workspace build.

use umbra_bench::crypto::{CryptoOpts, measure, rows};
use umbra_bench::table::render;

fn main() -> anyhow::Result<()> {
    // `cargo test --benches` passes no `--bench`: run a token budget then.
    let quick = !std::env::args().any(|a| a == "--bench");
    let figures = measure(CryptoOpts::new(quick))?;
    print!("{}", render(&rows(&figures)));
    Ok(())
}
