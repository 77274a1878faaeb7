//! `umbra-tui`: `umbra chat`, the terminal chat UI of issue 7, built like the
//! best terminal messengers (gurk-rs):
//!
//! | module | owns |
//! | --- | --- |
//! | [`app`] | the state machine: no I/O; keys, ticks and network events in, [`app::Cmd`]s out |
//! | [`ui`] | a pure `draw(frame, &App)` |
//! | [`net`] | background tasks running commands against the client, reporting [`app::NetEvent`]s |
//!
//! [`run`] owns the terminal: raw mode, the alternate screen and bracketed
//! paste, restored on exit, on error and on panic; and the event loop, a
//! `tokio::select!` over terminal events, network events and a tick. The
//! loop never awaits the network: a key press is drawn at once. One turn
//! of the loop is [`step`] (an input into the app), [`dispatch`] (its
//! commands into background tasks) and a draw; `tests/responsive.rs` runs
//! exactly these against a devnet with stopped nodes.
//!
//! ## Notifications
//!
//! Off by default. Three settings, in the profile's store and on the
//! settings screen:
//!
//! - `ui.notify_command`: a program run on each new incoming message (at
//!   most three per poll), e.g. `notify-send Umbra`. It is split on
//!   whitespace into the program and fixed arguments (no shell, no
//!   quoting); the sender's short ID is appended as one argument.
//! - `ui.notify_text` (`true`/`false`): also append the message text as
//!   one more argument. Off unless the user opts in: the command may show
//!   the text on screen or log it.
//! - `ui.bell` (`true`/`false`): ring the terminal bell (`BEL`).
//!
//! Never for our own messages (sync copies, Note to Self) or blocked peers.
//!
//! ## Groups (issue 8)
//!
//! A group is a conversation whose peer is the group's `03` ID, listed as
//! `# NAME` (names from the client's groups and pending invites, loaded with
//! each snapshot); each message shows its author (contact name or short
//! ID). Enter sends with `send_group_text`; a group invite is a message
//! request, `/accept` joins (`accept_group_invite`), `/decline` forgets it.
//! `/group create NAME [ID…]` anywhere; in a group `/group add ID…`,
//! `remove ID…`, `leave`, `rename NAME`, `info` (members by `05` ID or
//! contact name), `/unsend` (own messages, `unsend_group`). No typing
//! indicators, blocking or 1:1 timers in groups. `tests/groups.rs` runs these through the real network side.
#![warn(missing_docs)]

pub mod app;
pub mod net;
pub mod ui;

use std::io::Stdout;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::io::Write;

use crossterm::event::{DisableBracketedPaste, EnableBracketedPaste, Event, EventStream, KeyEvent};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use futures::StreamExt;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tokio::sync::mpsc;
use umbra_client::client::Client;

use crate::app::{App, Cmd, NetEvent};
use crate::net::Net;

/// One input to the app.
#[derive(Debug, Clone)]
pub enum Input {
    /// A key press.
    Key(KeyEvent),
    /// Pasted text.
    Paste(String),
    /// A network result.
    Net(NetEvent),
    /// A tick at this wall-clock time (ms).
    Tick(u64),
}

/// Feeds one input to the app: the commands it asks for (no I/O).
pub fn step(app: &mut App, input: Input) -> Vec<Cmd> {
    match input {
        Input::Key(k) => app.on_key(k),
        Input::Paste(s) => app.on_paste(&s),
        Input::Net(ev) => app.on_event(ev),
        Input::Tick(now) => app.on_tick(now),
    }
}

/// Starts each command in the background (never waits for it); returns
/// whether one of them asks for the terminal bell, which the caller rings.
pub fn dispatch(net: &Net, cmds: Vec<Cmd>) -> bool {
    let mut bell = false;
    for c in cmds {
        if let Cmd::Notify { bell: true, .. } = &c {
            bell = true;
        }
        net.spawn(c);
    }
    bell
}

/// How often the loop ticks (polling, typing timeouts, timers), ms.
pub const TICK_MS: u64 = 250;

/// A failure of the terminal UI.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TuiError {
    /// The terminal could not be set up, drawn or read.
    #[error("terminal: {0}")]
    Terminal(#[from] std::io::Error),
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Puts the terminal back as it was (idempotent).
fn restore_terminal() {
    let _ = disable_raw_mode();
    let _ = execute!(
        std::io::stdout(),
        DisableBracketedPaste,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

/// Restores the terminal when dropped (normal exit and errors).
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

fn setup_terminal() -> Result<(TerminalGuard, Terminal<CrosstermBackend<Stdout>>), TuiError> {
    // On panic, restore first so the message is readable.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        hook(info);
    }));
    enable_raw_mode()?;
    let guard = TerminalGuard;
    execute!(
        std::io::stdout(),
        EnterAlternateScreen,
        EnableBracketedPaste
    )?;
    let terminal = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
    Ok((guard, terminal))
}

/// Runs `umbra chat` on `client` until the user quits (own tokio runtime).
pub fn run(client: Client) -> Result<(), TuiError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let client = Arc::new(client);
    let r = rt.block_on(run_async(Arc::clone(&client)));
    // Keep the guards and the registry for the next start.
    let _ = rt.block_on(client.persist());
    // Pending network tasks are abandoned on exit.
    rt.shutdown_timeout(Duration::from_millis(500));
    r
}

/// Aborts its task when dropped (the TUI's timers end with the TUI).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `umbra chat` inside an existing tokio runtime.
pub async fn run_async(client: Arc<Client>) -> Result<(), TuiError> {
    let (_guard, mut terminal) = setup_terminal()?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let net = Net::new(Arc::clone(&client), tx);
    let (mut app, first) = App::new(client.account_id(), now_ms());
    app.settings = net.settings();
    dispatch(&net, first);
    // Batched read receipts (`messages.md` §12) go out about once a second
    // when their window has passed, not only on the next poll or read;
    // failures are retried on the next tick (the poll reports network errors).
    let _receipt_timer = AbortOnDrop(tokio::spawn({
        let client = Arc::clone(&client);
        async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let _ = client.flush_receipts().await;
            }
        }
    }));
    let mut events = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_millis(TICK_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        terminal.draw(|f| ui::draw(f, &app))?;
        if app.quit {
            break;
        }
        let input = tokio::select! {
            ev = events.next() => match ev {
                Some(Ok(Event::Key(k))) => Input::Key(k),
                Some(Ok(Event::Paste(s))) => Input::Paste(s),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
                None => break,
            },
            Some(ev) = rx.recv() => Input::Net(ev),
            _ = tick.tick() => Input::Tick(now_ms()),
        };
        if dispatch(&net, step(&mut app, input)) {
            // Best effort: a bell that cannot be written is not an error.
            let backend = terminal.backend_mut();
            let _ = backend.write_all(b"\x07").and_then(|()| backend.flush());
        }
    }
    Ok(())
}
