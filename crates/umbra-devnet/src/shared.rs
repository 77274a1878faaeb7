//! A devnet kept running in the background for a whole process (test
//! binaries, benchmark examples): [`background`] starts an in-process
//! devnet on its own Tokio runtime in a dedicated thread and keeps its nodes
//! alive until the process exits, so tests on other runtimes (each
//! `#[tokio::test]` has its own) can share it.

use std::path::PathBuf;

use umbra_proto::network::NetworkConfig;

use crate::{Devnet, DevnetError, DevnetOptions};

/// Starts an `n`-node in-process devnet in `dir` on a 2-worker runtime of
/// its own, in a background thread that keeps it running until the process
/// exits; returns its network configuration once every node is ready.
pub fn background(n: usize, dir: impl Into<PathBuf>) -> Result<NetworkConfig, DevnetError> {
    background_with(n, dir, |_| {})
}

/// [`background`], calling `setup` on the started devnet (inside its
/// runtime) before returning, e.g. to set node policies.
pub fn background_with(
    n: usize,
    dir: impl Into<PathBuf>,
    setup: impl FnOnce(&Devnet) + Send + 'static,
) -> Result<NetworkConfig, DevnetError> {
    start(n, dir.into(), false, setup)
}

/// [`background_with`], also starting the devnet's file server: the
/// returned configuration names it (`file_server`).
pub fn background_with_file_server(
    n: usize,
    dir: impl Into<PathBuf>,
    setup: impl FnOnce(&Devnet) + Send + 'static,
) -> Result<NetworkConfig, DevnetError> {
    start(n, dir.into(), true, setup)
}

fn start(
    n: usize,
    dir: PathBuf,
    file_server: bool,
    setup: impl FnOnce(&Devnet) + Send + 'static,
) -> Result<NetworkConfig, DevnetError> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("umbra-devnet".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(source) => {
                    let _ = tx.send(Err(DevnetError::Io {
                        what: "building the devnet runtime".into(),
                        source,
                    }));
                    return;
                }
            };
            rt.block_on(async move {
                match Devnet::up(DevnetOptions::in_process(n, dir)).await {
                    Ok(mut net) => {
                        let _fs = if file_server {
                            match net.start_file_server().await {
                                Ok(fs) => Some(fs),
                                Err(e) => {
                                    let _ = tx.send(Err(e));
                                    return;
                                }
                            }
                        } else {
                            None
                        };
                        setup(&net);
                        if tx.send(Ok(net.network().clone())).is_err() {
                            return;
                        }
                        // Keep the nodes (tasks of this runtime) alive until
                        // the process exits.
                        let _net = net;
                        std::future::pending::<()>().await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            });
        })
        .map_err(|source| DevnetError::Io {
            what: "spawning the devnet thread".into(),
            source,
        })?;
    rx.recv().map_err(|_| {
        DevnetError::Invalid("the devnet thread ended before the devnet was up".into())
    })?
}
