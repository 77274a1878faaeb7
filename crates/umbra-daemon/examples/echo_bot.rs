//! An echo bot on the daemon API (`docs/API.md`, "Example: an echo bot"):
//! it subscribes to events and answers every incoming message with
//! `echo: <text>`.
//!
//! Run `umbra daemon` first, then:
//! `cargo run -p umbra-daemon --example echo_bot -- PROFILE/daemon.sock`
//! (without an argument it uses `$UMBRA_HOME/daemon.sock`).

use std::path::{Path, PathBuf};

use serde_json::json;
use umbra_daemon::{CallError, Connection};

/// Echoes every incoming message to its sender until the daemon stops.
pub async fn echo_bot(socket: &Path) -> Result<(), CallError> {
    let mut conn = Connection::connect(socket).await?;
    conn.subscribe().await?;
    while let Some(event) = conn.next_event().await? {
        if event["type"] == "message" && event["direction"] == "in" {
            let text = format!("echo: {}", event["text"].as_str().unwrap_or_default());
            if let Err(e) = conn
                .call("send", json!({"to": event["peer"], "text": text}))
                .await
            {
                eprintln!("echo_bot: could not reply: {e}");
            }
        }
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let socket = match std::env::args_os().nth(1) {
        Some(p) => PathBuf::from(p),
        None => match std::env::var_os("UMBRA_HOME") {
            Some(home) => umbra_daemon::socket_path(Path::new(&home)),
            None => return Err("usage: echo_bot PROFILE/daemon.sock (or set UMBRA_HOME)".into()),
        },
    };
    echo_bot(&socket).await?;
    Ok(())
}
