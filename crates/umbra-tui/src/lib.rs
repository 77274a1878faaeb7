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
//! loop never awaits the network: a key press is drawn at once.
#![warn(missing_docs)]

pub mod app;
pub mod net;
pub mod ui;

use std::io::Stdout;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossterm::event::{DisableBracketedPaste, EnableBracketedPaste, Event, EventStream};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use futures::StreamExt;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tokio::sync::mpsc;
use umbra_client::client::Client;

use crate::app::{App, Cmd};
use crate::net::Net;

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

/// Runs `umbra chat` inside an existing tokio runtime.
pub async fn run_async(client: Arc<Client>) -> Result<(), TuiError> {
    let (_guard, mut terminal) = setup_terminal()?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let net = Net::new(Arc::clone(&client), tx);
    let (mut app, first) = App::new(client.account_id(), now_ms());
    app.settings = net.settings();
    let dispatch = |cmds: Vec<Cmd>| {
        for c in cmds {
            net.spawn(c);
        }
    };
    dispatch(first);
    let mut events = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_millis(TICK_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        terminal.draw(|f| ui::draw(f, &app))?;
        if app.quit {
            break;
        }
        let cmds = tokio::select! {
            ev = events.next() => match ev {
                Some(Ok(Event::Key(k))) => app.on_key(k),
                Some(Ok(Event::Paste(s))) => app.on_paste(&s),
                Some(Ok(_)) => Vec::new(),
                Some(Err(e)) => return Err(e.into()),
                None => break,
            },
            Some(ev) = rx.recv() => app.on_event(ev),
            _ = tick.tick() => app.on_tick(now_ms()),
        };
        dispatch(cmds);
    }
    Ok(())
}
