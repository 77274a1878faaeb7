//! `umbra-fileserver`: runs the attachment file server (spec
//! `attachments.md` §4) on a data directory, with an Ed25519 identity kept
//! in `<data>/key` (created on first start, mode 0600).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use umbra_crypto::Ed25519Keypair;
use umbra_fileserver::{FileServerConfig, start};
use zeroize::Zeroizing;

/// Umbra's attachment file server, reached through onion requests.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Data directory (blobs, metadata, key).
    #[arg(long)]
    data: PathBuf,
    /// HTTP listen address.
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// Total storage cap in bytes.
    #[arg(long, default_value_t = 10_000_000_000)]
    max_total_bytes: u64,
    /// Print the server's Ed25519 public key and exit.
    #[arg(long)]
    print_key: bool,
}

fn load_or_create_key(data: &std::path::Path) -> anyhow::Result<Ed25519Keypair> {
    std::fs::create_dir_all(data).context("creating the data directory")?;
    let path = data.join("key");
    let seed: Zeroizing<[u8; 32]> = match std::fs::read(&path) {
        Ok(b) => Zeroizing::new(
            b.as_slice()
                .try_into()
                .context("the key file must hold a 32-byte seed")?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let seed = Zeroizing::new(umbra_crypto::random_bytes::<32>());
            write_private(&path, &seed[..]).context("writing the key file")?;
            seed
        }
        Err(e) => return Err(e).context("reading the key file"),
    };
    Ok(Ed25519Keypair::from_seed(&seed))
}

#[cfg(unix)]
fn write_private(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)
}

#[cfg(not(unix))]
fn write_private(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, data)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let keys = load_or_create_key(&args.data)?;
    if args.print_key {
        println!("{}", hex::encode(keys.public().as_bytes()));
        return Ok(());
    }
    let mut config = FileServerConfig::new(args.data.join("files"), args.listen);
    config.max_total_bytes = args.max_total_bytes;
    let handle = start(&config, &keys).await?;
    println!(
        "file server on http://{} key {}",
        handle.addr,
        hex::encode(keys.public().as_bytes())
    );
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    handle.stop().await;
    Ok(())
}
