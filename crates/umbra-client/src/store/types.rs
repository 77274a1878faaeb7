//! The typed records of the local store: conversations and their
//! disappearing-messages setting (`messages.md` §11, §14.1), messages with
//! their status, expiry and read state (§7, §9, §10, §12, §14.3), and
//! contacts.

use std::fmt;

use umbra_proto::identity::AccountId;

/// The local row ID of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub i64);

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Who sent a message, seen from this account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Received from the peer.
    In,
    /// Sent by this account (from this device or, via a sync copy, another).
    Out,
}

impl Direction {
    pub(crate) fn code(self) -> i64 {
        match self {
            Direction::In => 0,
            Direction::Out => 1,
        }
    }

    pub(crate) fn from_code(c: i64) -> Option<Self> {
        match c {
            0 => Some(Direction::In),
            1 => Some(Direction::Out),
            _ => None,
        }
    }
}

/// The delivery state of a message. Incoming messages are stored as
/// [`MessageStatus::Delivered`]; whether they were read is
/// [`Message::read_at`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageStatus {
    /// Being sent.
    Sending,
    /// Stored by the recipient's swarm.
    Sent,
    /// Sending failed.
    Failed,
    /// Delivered (incoming messages; or outgoing ones known delivered).
    Delivered,
    /// The peer's read receipt arrived (§12).
    Read,
}

impl MessageStatus {
    pub(crate) fn code(self) -> i64 {
        match self {
            MessageStatus::Sending => 0,
            MessageStatus::Sent => 1,
            MessageStatus::Failed => 2,
            MessageStatus::Delivered => 3,
            MessageStatus::Read => 4,
        }
    }

    pub(crate) fn from_code(c: i64) -> Option<Self> {
        Some(match c {
            0 => MessageStatus::Sending,
            1 => MessageStatus::Sent,
            2 => MessageStatus::Failed,
            3 => MessageStatus::Delivered,
            4 => MessageStatus::Read,
            _ => return None,
        })
    }
}

/// The disappearing-messages mode (§14.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DisappearingMode {
    /// Messages do not disappear.
    #[default]
    Off,
    /// Delete after read (DaR).
    AfterRead,
    /// Delete after send (DaS).
    AfterSend,
}

impl DisappearingMode {
    pub(crate) fn code(self) -> i64 {
        match self {
            DisappearingMode::Off => 0,
            DisappearingMode::AfterRead => 1,
            DisappearingMode::AfterSend => 2,
        }
    }

    pub(crate) fn from_code(c: i64) -> Option<Self> {
        Some(match c {
            0 => DisappearingMode::Off,
            1 => DisappearingMode::AfterRead,
            2 => DisappearingMode::AfterSend,
            _ => return None,
        })
    }
}

/// A disappearing-messages setting: a mode and a timer in seconds
/// (`Off` is stored with timer 0). Conversations have one; every message
/// carries the one it was sent with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Disappearing {
    /// The mode.
    pub mode: DisappearingMode,
    /// The timer in seconds (0 when `Off`).
    pub timer_s: u32,
}

impl Disappearing {
    /// Disappearing messages off.
    pub const OFF: Disappearing = Disappearing {
        mode: DisappearingMode::Off,
        timer_s: 0,
    };

    /// The timer in milliseconds.
    pub fn timer_ms(&self) -> u64 {
        u64::from(self.timer_s) * 1000
    }
}

/// A 1:1 conversation and its state (§11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// The other account (our own account for Note-to-Self).
    pub peer: AccountId,
    /// We approved it: we sent a visible message, accepted it, or the peer
    /// is a contact (the latter is folded into [`Conversation::is_request`]).
    pub approved_by_us: bool,
    /// The peer approved us (their accept, or any visible message).
    pub approved_us: bool,
    /// The peer is blocked.
    pub blocked: bool,
    /// The conversation's disappearing-messages setting.
    pub disappearing: Disappearing,
    /// The newest message timestamp seen in it (ms); 0 when it has had no
    /// message yet.
    pub last_activity_ms: u64,
    /// Incoming messages not yet read (deleted ones excluded).
    pub unread: u64,
    /// A message request: not approved by us and the peer is not a contact.
    pub is_request: bool,
    /// The peer's contact name, if set.
    pub contact_name: Option<String>,
}

/// A contact: an account with a local name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// The account.
    pub id: AccountId,
    /// The name given locally.
    pub name: String,
}

/// A message to insert.
///
/// `expiration_start` is derived: with `expires_at_ms` and a timer it is
/// `expires_at_ms − timer × 1000`, which is exactly §14.3's start for
/// outgoing messages and for incoming delete-after-send messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// The conversation (the other account, or our own for Note-to-Self).
    pub peer: AccountId,
    /// In or out.
    pub direction: Direction,
    /// The sender's account (ours for outgoing).
    pub author: AccountId,
    /// The message's timestamp `T` (its identity, §7), ms.
    pub timestamp_ms: u64,
    /// When this device received (or sent) it, ms.
    pub received_at_ms: u64,
    /// The text (for timer updates, the notice shown).
    pub text: String,
    /// The delivery status.
    pub status: MessageStatus,
    /// The swarm hash: of the incoming copy, or of our sync copy.
    pub hash: Option<String>,
    /// The disappearing setting the message carries.
    pub disappearing: Disappearing,
    /// When the message disappears (ms), if its timer is running.
    pub expires_at_ms: Option<u64>,
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Local row ID.
    pub id: MessageId,
    /// The conversation.
    pub peer: AccountId,
    /// In or out.
    pub direction: Direction,
    /// The sender's account.
    pub author: AccountId,
    /// The message's timestamp `T`, ms.
    pub timestamp_ms: u64,
    /// When this device received it, ms.
    pub received_at_ms: u64,
    /// The text; empty once deleted (unsend).
    pub text: String,
    /// The delivery status.
    pub status: MessageStatus,
    /// The swarm hash, if known.
    pub hash: Option<String>,
    /// The disappearing setting the message carries.
    pub disappearing: Disappearing,
    /// When its disappearing timer started (ms).
    pub expiration_start_ms: Option<u64>,
    /// When it disappears (ms).
    pub expires_at_ms: Option<u64>,
    /// When this device read it (incoming messages), ms.
    pub read_at_ms: Option<u64>,
    /// Deleted for everyone (unsend): shown as "This message was deleted".
    pub deleted: bool,
}

impl Message {
    /// What to show for this message: its text, or the deletion notice.
    pub fn display_text(&self) -> &str {
        if self.deleted {
            "This message was deleted"
        } else {
            &self.text
        }
    }
}
