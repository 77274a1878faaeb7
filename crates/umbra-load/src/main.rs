//! `umbra-load`: load and fault generator for a local devnet (issue 10). Work in progress.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("umbra-load: not implemented yet")
}
