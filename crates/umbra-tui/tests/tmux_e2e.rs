//! End to end through a real terminal (issue 7, acceptance): two
//! `umbra chat` instances in tmux on a process devnet. Alice pastes Bob's
//! account ID and types a message; Bob's screen shows it (a request) within
//! 10 s; Bob opens it and replies; the reply appears on Alice's screen.
//!
//! Needs `tmux` and the `umbra` binary beside this test's target directory
//! (`cargo test --workspace` builds it); skipped with a message otherwise.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `umbra` binary of this build (target/<profile>/umbra).
fn umbra_bin() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?.parent()?;
    let bin = dir.join("umbra");
    bin.is_file().then_some(bin)
}

fn have_tmux() -> bool {
    Command::new("tmux")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

struct Devnet {
    umbra: PathBuf,
    child: Child,
    dir: PathBuf,
}

impl Devnet {
    fn up(umbra: &Path, dir: &Path) -> Devnet {
        let stderr = std::fs::File::create(dir.with_extension("stderr")).expect("stderr file");
        let mut child = Command::new(umbra)
            .args(["devnet", "up", "--nodes", "6", "--dir"])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("umbra devnet up");
        let stdout = child.stdout.take().expect("stdout");
        let net = Devnet {
            umbra: umbra.to_owned(),
            child,
            dir: dir.to_owned(),
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("ready:") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(90))
            .expect("`umbra devnet up` became ready");
        net
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = Command::new(&self.umbra)
            .args(["devnet", "down", "--dir"])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private tmux server (its own socket) with one session per user.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn start(&self, name: &str, command: &str) {
        self.cmd(&[
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            "100",
            "-y",
            "30",
            command,
        ]);
    }

    fn keys(&self, name: &str, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", name];
        args.extend_from_slice(keys);
        self.cmd(&args);
    }

    fn text(&self, name: &str, text: &str) {
        self.cmd(&["send-keys", "-t", name, "-l", text]);
    }

    fn screen(&self, name: &str) -> String {
        self.cmd(&["capture-pane", "-p", "-t", name])
    }

    /// Waits until `name`'s screen shows `what`; returns the time it took.
    fn wait_for(&self, name: &str, what: &str, timeout: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let s = self.screen(name);
            if s.contains(what) {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < timeout,
                "{name}'s screen did not show {what:?} within {timeout:?}:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn create_account(umbra: &Path, home: &Path, network: &Path) -> String {
    let out = Command::new(umbra)
        .arg("--home")
        .arg(home)
        .args(["--json", "account", "create", "--network"])
        .arg(network)
        .output()
        .expect("umbra account create");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let start = text.find("\"account_id\":\"").expect("account_id") + 14;
    text[start..start + 66].to_string()
}

#[test]
fn two_chats_exchange_messages_through_tmux() {
    let Some(umbra) = umbra_bin() else {
        eprintln!("skipped: the umbra binary is not built (run cargo test --workspace)");
        return;
    };
    if !have_tmux() {
        eprintln!("skipped: tmux is not installed (apt-get install -y tmux)");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let devnet = tmp.path().join("devnet");
    let _net = Devnet::up(&umbra, &devnet);
    let network = devnet.join("network.json");
    let alice_home = tmp.path().join("alice");
    let bob_home = tmp.path().join("bob");
    let _alice = create_account(&umbra, &alice_home, &network);
    let bob = create_account(&umbra, &bob_home, &network);

    let tmux = Tmux {
        socket: format!("umbra-tui-e2e-{}", std::process::id()),
    };
    for (name, home) in [("alice", &alice_home), ("bob", &bob_home)] {
        // `sleep` keeps the pane (and an error message) after exit.
        tmux.start(
            name,
            &format!(
                "{} --home {} chat; sleep 60",
                umbra.display(),
                home.display()
            ),
        );
    }
    tmux.wait_for("alice", "Conversations (0)", Duration::from_secs(20));
    tmux.wait_for("bob", "Conversations (0)", Duration::from_secs(20));

    // Alice: new conversation by pasting Bob's ID, then a message.
    tmux.keys("alice", &["n"]);
    tmux.wait_for("alice", "Paste the account ID", Duration::from_secs(5));
    tmux.text("alice", &bob);
    tmux.keys("alice", &["Enter"]);
    tmux.wait_for("alice", "Message (Enter send", Duration::from_secs(5));
    tmux.text("alice", "hello bob via tmux");
    tmux.keys("alice", &["Enter"]);
    // Shown at once, before the network answers.
    tmux.wait_for("alice", "hello bob via tmux [s", Duration::from_secs(2));
    let sent = Instant::now();
    tmux.wait_for(
        "alice",
        "hello bob via tmux [sent]",
        Duration::from_secs(30),
    );

    // Bob sees a message request within 10 s and opens it.
    tmux.wait_for(
        "bob",
        "Message requests (1)",
        Duration::from_secs(10).saturating_sub(sent.elapsed()),
    );
    tmux.keys("bob", &["Enter"]);
    tmux.wait_for("bob", "hello bob via tmux", Duration::from_secs(5));
    // Replying accepts the request.
    tmux.text("bob", "hi alice");
    tmux.keys("bob", &["Enter"]);
    tmux.wait_for("bob", "hi alice [sent]", Duration::from_secs(30));
    let took = tmux.wait_for("alice", ": hi alice", Duration::from_secs(10));
    eprintln!("Bob's reply showed on Alice's screen after {took:?}");

    // Both quit cleanly.
    for name in ["alice", "bob"] {
        tmux.keys(name, &["Escape"]);
        tmux.keys(name, &["q"]);
    }
}
