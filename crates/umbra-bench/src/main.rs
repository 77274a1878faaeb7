//! `umbra-bench`: prints Umbra's benchmark table (issue 10). Work in progress.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("umbra-bench: not implemented yet")
}
