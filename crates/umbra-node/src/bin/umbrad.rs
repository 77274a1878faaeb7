//! `umbrad`: the Umbra service node. All logic is in
//! [`umbra_node::daemon`]; this binary parses flags and reports errors.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    umbra_node::daemon::run(umbra_node::daemon::DaemonArgs::parse())?;
    Ok(())
}
