//! Drawing `umbra chat` (issue 7): a pure `draw(frame, &App)` — it reads the
//! state and paints the frame, nothing else. Screens: the conversation list
//! (unread counts, message requests apart), the open conversation (sender,
//! time, delivery state, disappearing timer, typing) with its compose line,
//! settings (with what each one reveals), the account ID as text and QR
//! code, a new-conversation prompt and help. A footer always shows the keys.
//!
//! Times are shown as UTC `HH:MM` (a pure function of the timestamp: no
//! time-zone database read while drawing).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use umbra_client::store::{Conversation, Direction, DisappearingMode, Message, MessageStatus};

use crate::app::{App, Screen, Setting, disappearing_text};

/// `HH:MM` (UTC) of a unix time in ms.
pub fn clock(ms: u64) -> String {
    let min = (ms / 60_000) % (24 * 60);
    format!("{:02}:{:02}", min / 60, min % 60)
}

/// A delivery state as shown.
pub fn status_text(s: MessageStatus) -> &'static str {
    match s {
        MessageStatus::Sending => "sending",
        MessageStatus::Sent => "sent",
        MessageStatus::Failed => "failed",
        MessageStatus::Delivered => "delivered",
        MessageStatus::Read => "read",
    }
}

/// The key bindings of a screen, for the footer.
pub fn footer_keys(app: &App) -> &'static str {
    match app.screen {
        Screen::List => {
            "↑↓ select  Enter open  n new  s settings  a account  r refresh  ? help  q quit"
        }
        Screen::Conversation => {
            "Enter send  Alt-Enter newline  PgUp/PgDn scroll  /help  Esc back  F1 help"
        }
        Screen::Settings => "↑↓ select  Space toggle  Esc back  ? help",
        Screen::Account => "Esc back  ? help",
        Screen::NewConversation => "paste or type an account ID  Enter open  Esc cancel",
        Screen::Help => "Esc close",
    }
}

/// Draws the whole UI.
pub fn draw(frame: &mut Frame, app: &App) {
    let [title, body, status, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let net = match &app.offline {
        Some(_) => "offline (retrying)",
        None => "online",
    };
    let screen = match app.screen {
        Screen::List => "Conversations",
        Screen::Conversation => "Conversation",
        Screen::Settings => "Settings",
        Screen::Account => "Account",
        Screen::NewConversation => "New conversation",
        Screen::Help => "Help",
    };
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled("Umbra", Style::new().add_modifier(Modifier::BOLD)),
            Span::raw(format!(" · {screen} · {net}")),
        ])),
        title,
    );
    match app.screen {
        Screen::List => draw_list(frame, app, body),
        Screen::Conversation => draw_conversation(frame, app, body),
        Screen::Settings => draw_settings(frame, app, body),
        Screen::Account => draw_account(frame, app, body),
        Screen::NewConversation => draw_new(frame, app, body),
        Screen::Help => draw_help(frame, body),
    }
    let line = match (&app.status, &app.offline) {
        (Some(s), _) => s.clone(),
        (None, Some(e)) => format!("poll failed: {e}"),
        (None, None) => String::new(),
    };
    frame.render_widget(
        Paragraph::new(line).style(Style::new().add_modifier(Modifier::ITALIC)),
        status,
    );
    frame.render_widget(
        Paragraph::new(footer_keys(app)).style(Style::new().add_modifier(Modifier::REVERSED)),
        footer,
    );
}

fn conv_line(app: &App, c: &Conversation, selected: bool) -> Line<'static> {
    let marker = if selected { "> " } else { "  " };
    let mut spans = vec![
        Span::raw(marker),
        Span::styled(
            app.name_of(&c.peer),
            if c.unread > 0 {
                Style::new().add_modifier(Modifier::BOLD)
            } else {
                Style::new()
            },
        ),
    ];
    if c.unread > 0 {
        spans.push(Span::raw(format!("  ({} unread)", c.unread)));
    }
    if c.disappearing.mode != DisappearingMode::Off {
        spans.push(Span::raw(format!(
            "  ⏱ {}",
            disappearing_text(c.disappearing)
        )));
    }
    if c.last_activity_ms > 0 {
        spans.push(Span::raw(format!("  {}", clock(c.last_activity_ms))));
    }
    let line = Line::from(spans);
    if selected {
        line.style(Style::new().add_modifier(Modifier::REVERSED))
    } else {
        line
    }
}

fn draw_list(frame: &mut Frame, app: &App, area: Rect) {
    let req_height = if app.requests.is_empty() {
        3
    } else {
        (app.requests.len() as u16 + 2).min(area.height / 2).max(3)
    };
    let [convs, reqs] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(req_height)]).areas(area);
    let mut lines: Vec<Line> = app
        .conversations
        .iter()
        .enumerate()
        .map(|(i, c)| conv_line(app, c, i == app.selected))
        .collect();
    if lines.is_empty() {
        lines.push(Line::from(
            "  No conversations yet. Press n and paste an account ID to start one.",
        ));
    }
    // Keep the selection visible.
    let inner = convs.height.saturating_sub(2) as usize;
    let skip = if app.selected < app.conversations.len() && app.selected >= inner {
        app.selected + 1 - inner
    } else {
        0
    };
    frame.render_widget(
        Paragraph::new(lines.into_iter().skip(skip).collect::<Vec<_>>()).block(
            Block::new()
                .borders(Borders::ALL)
                .title(format!(" Conversations ({}) ", app.conversations.len())),
        ),
        convs,
    );
    let n = app.conversations.len();
    let mut rlines: Vec<Line> = app
        .requests
        .iter()
        .enumerate()
        .map(|(i, c)| conv_line(app, c, n + i == app.selected))
        .collect();
    if rlines.is_empty() {
        rlines.push(Line::from("  No message requests."));
    }
    frame.render_widget(
        Paragraph::new(rlines).block(
            Block::new()
                .borders(Borders::ALL)
                .title(format!(" Message requests ({}) ", app.requests.len())),
        ),
        reqs,
    );
}

/// Splits `text` into lines of at most `width` characters (on newlines, then by length).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut out = Vec::new();
    for line in text.split('\n') {
        let chars: Vec<char> = line.chars().collect();
        if chars.is_empty() {
            out.push(String::new());
        }
        for chunk in chars.chunks(width) {
            out.push(chunk.iter().collect());
        }
    }
    out
}

fn message_lines(app: &App, m: &Message, width: usize) -> Vec<Line<'static>> {
    let who = if m.direction == Direction::Out {
        "me".to_string()
    } else {
        app.name_of(&m.author)
    };
    let head = format!("{} {who}: ", clock(m.timestamp_ms));
    let mut meta = String::new();
    if m.direction == Direction::Out {
        meta.push_str(&format!(" [{}]", status_text(m.status)));
    }
    if m.disappearing.mode != DisappearingMode::Off && !m.deleted {
        match m.expires_at_ms {
            Some(e) => meta.push_str(&format!(
                " ⏱ {}",
                crate::app::duration_text(
                    u32::try_from(e.saturating_sub(m.timestamp_ms.max(app.now_ms)) / 1000)
                        .unwrap_or(u32::MAX)
                )
            )),
            None => meta.push_str(" ⏱"),
        }
    }
    if m.direction == Direction::Out && !m.deleted {
        meta.push_str(&format!(" #{}", m.timestamp_ms));
    }
    let text_style = if m.deleted {
        Style::new().add_modifier(Modifier::ITALIC)
    } else {
        Style::new()
    };
    let body = wrap(
        m.display_text(),
        width.saturating_sub(head.chars().count()).max(10),
    );
    let indent = " ".repeat(head.chars().count());
    let n = body.len();
    body.into_iter()
        .enumerate()
        .map(|(i, t)| {
            let mut spans = vec![
                Span::styled(
                    if i == 0 { head.clone() } else { indent.clone() },
                    Style::new().add_modifier(Modifier::DIM),
                ),
                Span::styled(t, text_style),
            ];
            if i + 1 == n {
                spans.push(Span::styled(
                    meta.clone(),
                    Style::new().add_modifier(Modifier::DIM),
                ));
            }
            Line::from(spans)
        })
        .collect()
}

fn draw_conversation(frame: &mut Frame, app: &App, area: Rect) {
    let Some(peer) = app.open else {
        return;
    };
    let conv = app.open_conversation();
    let compose_lines = app.compose.split('\n').count() as u16;
    let request = conv.is_some_and(|c| c.is_request);
    let [header, banner, msgs, compose] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(if request { 1 } else { 0 }),
        Constraint::Min(3),
        Constraint::Length((compose_lines + 2).min(8)),
    ])
    .areas(area);
    let mut head = vec![Span::styled(
        app.name_of(&peer),
        Style::new().add_modifier(Modifier::BOLD),
    )];
    if let Some(c) = conv
        && c.disappearing.mode != DisappearingMode::Off
    {
        head.push(Span::raw(format!(
            "  ⏱ disappearing: {}",
            disappearing_text(c.disappearing)
        )));
    }
    if app.is_typing(&peer) {
        head.push(Span::styled(
            "  typing…",
            Style::new().add_modifier(Modifier::ITALIC),
        ));
    }
    frame.render_widget(Paragraph::new(Line::from(head)), header);
    if request {
        frame.render_widget(
            Paragraph::new(if crate::app::is_group(&peer) {
                "Group invite: /accept to join the group, /decline to forget the invite."
            } else {
                "Message request: reply or /accept to accept, /decline to delete, /block to block."
            })
            .style(Style::new().add_modifier(Modifier::BOLD)),
            banner,
        );
    }
    let width = msgs.width.saturating_sub(2) as usize;
    let mut lines: Vec<Line> = Vec::new();
    for m in &app.messages {
        lines.extend(message_lines(app, m, width));
    }
    for p in app.visible_pending() {
        let head = format!("{} me: ", clock(p.queued_at_ms));
        let body = wrap(&p.text, width.saturating_sub(head.len()).max(10));
        let n = body.len();
        for (i, t) in body.into_iter().enumerate() {
            let mut spans = vec![
                Span::styled(
                    if i == 0 {
                        head.clone()
                    } else {
                        " ".repeat(head.len())
                    },
                    Style::new().add_modifier(Modifier::DIM),
                ),
                Span::raw(t),
            ];
            if i + 1 == n {
                spans.push(Span::styled(
                    " [sending]",
                    Style::new().add_modifier(Modifier::DIM),
                ));
            }
            lines.push(Line::from(spans));
        }
    }
    if lines.is_empty() {
        lines.push(Line::from("No messages yet. Type below and press Enter."));
    }
    let visible = msgs.height.saturating_sub(2) as usize;
    let end = lines.len().saturating_sub(app.scroll as usize).max(1);
    let start = end.saturating_sub(visible);
    let shown: Vec<Line> = lines.into_iter().take(end).skip(start).collect();
    frame.render_widget(
        Paragraph::new(shown).block(
            Block::new()
                .borders(Borders::ALL)
                .title(format!(" {peer} ")),
        ),
        msgs,
    );
    let inner_w = compose.width.saturating_sub(2) as usize;
    let compose_text: Vec<Line> = app
        .compose
        .split('\n')
        .map(|l| {
            // Show the end of a long line: the cursor is there.
            let chars: Vec<char> = l.chars().collect();
            let from = chars.len().saturating_sub(inner_w.saturating_sub(1));
            Line::from(chars[from..].iter().collect::<String>())
        })
        .collect();
    let last_len = compose_text.last().map(|l| l.width()).unwrap_or(0) as u16;
    let shown_lines = compose.height.saturating_sub(2) as usize;
    let skip = compose_text.len().saturating_sub(shown_lines);
    let rows = (compose_text.len() - skip) as u16;
    frame.render_widget(
        Paragraph::new(compose_text.into_iter().skip(skip).collect::<Vec<_>>()).block(
            Block::new()
                .borders(Borders::ALL)
                .title(" Message (Enter send · Alt-Enter newline · /help) "),
        ),
        compose,
    );
    frame.set_cursor_position(Position::new(
        compose.x + 1 + last_len,
        compose.y + rows.max(1),
    ));
}

fn draw_settings(frame: &mut Frame, app: &App, area: Rect) {
    let mut lines = vec![
        Line::from("Privacy settings (all off by default). Space toggles."),
        Line::from(""),
    ];
    for (i, s) in Setting::ALL.iter().enumerate() {
        let selected = i == app.settings_selected;
        let on = app.settings.get(*s);
        let value = match (s, &app.command_input, &app.settings.notify_command) {
            (Setting::NotifyCommand, Some(input), _) => {
                format!("{input}▏ (Enter saves, Esc cancels)")
            }
            (Setting::NotifyCommand, None, Some(cmd)) => cmd.clone(),
            _ if on => "on".to_string(),
            _ => "off".to_string(),
        };
        let line = Line::from(format!(
            "{}[{}] {:<18} {}",
            if selected { "> " } else { "  " },
            if on { "x" } else { " " },
            s.label(),
            value
        ));
        lines.push(if selected {
            line.style(Style::new().add_modifier(Modifier::REVERSED))
        } else {
            line
        });
        lines.push(Line::from(format!("      {}", s.reveals())));
    }
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::new().borders(Borders::ALL).title(" Settings ")),
        area,
    );
}

/// The account ID as a QR code, two modules per character row.
pub fn qr_lines(text: &str) -> Option<Vec<String>> {
    use qrcode::render::unicode::Dense1x2;
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    // Light modules drawn as blocks: scannable on dark terminals.
    let s = code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build();
    Some(s.lines().map(str::to_string).collect())
}

fn draw_account(frame: &mut Frame, app: &App, area: Rect) {
    let id = app.me.to_string();
    let mut lines = vec![
        Line::from("Your account ID (share it so others can message you):"),
        Line::from(""),
        Line::from(Span::styled(
            id.clone(),
            Style::new().add_modifier(Modifier::BOLD),
        )),
        Line::from(""),
    ];
    match qr_lines(&id) {
        Some(qr) if qr.len() as u16 + 6 <= area.height => {
            lines.extend(qr.into_iter().map(Line::from));
        }
        Some(_) => lines.push(Line::from("(enlarge the terminal to see the QR code)")),
        None => lines.push(Line::from("(no QR code)")),
    }
    frame.render_widget(
        Paragraph::new(lines).block(Block::new().borders(Borders::ALL).title(" Account ")),
        area,
    );
}

fn draw_new(frame: &mut Frame, app: &App, area: Rect) {
    let lines = vec![
        Line::from("Paste the account ID (66 hex characters, starting with 05) and press Enter:"),
        Line::from(""),
        Line::from(format!("> {}", app.new_input)),
    ];
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::new()
                .borders(Borders::ALL)
                .title(" New conversation "),
        ),
        area,
    );
    let x = area.x + 3 + app.new_input.chars().count() as u16;
    if x < area.right().saturating_sub(1) {
        frame.set_cursor_position(Position::new(x, area.y + 3));
    }
}

/// The help text.
pub const HELP: &[&str] = &[
    "Conversation list",
    "  ↑/↓ or j/k   select            Enter   open",
    "  n            new conversation  s       settings",
    "  a            account ID + QR   r       poll now",
    "  q / Ctrl-C   quit              ?  F1   this help",
    "Open conversation",
    "  Enter        send              Alt-Enter  newline",
    "  PgUp/PgDn    scroll            Esc        back to the list",
    "  /accept /decline /block /unblock    message requests and blocking",
    "  /unsend <#timestamp>                delete your message for everyone",
    "  /open <timestamp>[:<index>]         open an attachment with the system opener",
    "  /disappearing off | after-read [s] | after-send [s]",
    "  /retry                              resend the last failed message",
    "  /group create NAME [ID…]  (in a group) add ID… | remove ID… | leave | rename NAME | info",
    "Message states: sending → sent → read (read only when both sides enable receipts).",
    "⏱ marks disappearing messages with the time left.",
];

fn draw_help(frame: &mut Frame, area: Rect) {
    frame.render_widget(
        Paragraph::new(HELP.iter().map(|l| Line::from(*l)).collect::<Vec<_>>())
            .block(Block::new().borders(Borders::ALL).title(" Help ")),
        area,
    );
}

#[cfg(test)]
#[path = "ui_tests.rs"]
mod tests;
