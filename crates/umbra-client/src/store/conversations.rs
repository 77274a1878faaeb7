//! Conversations (approval flags, blocking, disappearing setting, activity:
//! `messages.md` §11, §14.1) and contacts in the local store.

use rusqlite::{Connection, OptionalExtension, Row, params};
use umbra_proto::identity::AccountId;

use super::{
    Contact, Conversation, Disappearing, DisappearingMode, LocalStore, Result, StoreError, to_i64,
    to_u64,
};

/// The columns [`LocalStore::read_conversation`] expects, over
/// `conversations c LEFT JOIN contacts k`.
const CONV_COLUMNS: &str = "c.peer_enc, c.approved_by_us, c.approved_us, c.blocked, c.dm_mode, \
     c.dm_timer, c.active_at, k.name_enc, \
     (SELECT count(*) FROM messages m WHERE m.peer_h = c.peer_h AND m.direction = 0 \
      AND m.read_at IS NULL AND m.deleted = 0)";

/// A conversation row before decryption.
struct RawConversation {
    peer_enc: Vec<u8>,
    approved_by_us: bool,
    approved_us: bool,
    blocked: bool,
    dm_mode: i64,
    dm_timer: i64,
    active_at: i64,
    name_enc: Option<Vec<u8>>,
    unread: i64,
}

impl RawConversation {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawConversation {
            peer_enc: r.get(0)?,
            approved_by_us: r.get(1)?,
            approved_us: r.get(2)?,
            blocked: r.get(3)?,
            dm_mode: r.get(4)?,
            dm_timer: r.get(5)?,
            active_at: r.get(6)?,
            name_enc: r.get(7)?,
            unread: r.get(8)?,
        })
    }
}

/// Which boolean flag of a conversation to set.
#[derive(Clone, Copy)]
enum Flag {
    ApprovedByUs,
    ApprovedUs,
    Blocked,
}

impl LocalStore {
    fn read_conversation(&self, raw: RawConversation) -> Result<Conversation> {
        let peer = self.open_id("conversations.peer", &raw.peer_enc)?;
        let contact_name = raw
            .name_enc
            .map(|n| self.open_string("contacts.name", &n))
            .transpose()?;
        let mode = DisappearingMode::from_code(raw.dm_mode).ok_or(StoreError::Corrupt {
            what: "conversation disappearing mode",
        })?;
        let timer_s = u32::try_from(raw.dm_timer).map_err(|_| StoreError::Corrupt {
            what: "conversation disappearing timer",
        })?;
        Ok(Conversation {
            peer,
            approved_by_us: raw.approved_by_us,
            approved_us: raw.approved_us,
            blocked: raw.blocked,
            disappearing: Disappearing { mode, timer_s },
            last_activity_ms: to_u64(raw.active_at, "conversation activity")?,
            unread: to_u64(raw.unread, "unread count")?,
            is_request: !raw.approved_by_us && contact_name.is_none(),
            contact_name,
        })
    }

    /// Creates the conversation row of `peer` if it does not exist.
    pub(crate) fn ensure_conversation(&self, conn: &Connection, peer: &AccountId) -> Result<()> {
        let peer_h = self.peer_h(peer);
        let exists = conn
            .query_row(
                "SELECT 1 FROM conversations WHERE peer_h = ?1",
                [&peer_h[..]],
                |_| Ok(()),
            )
            .optional()
            .map_err(StoreError::sql("looking up a conversation"))?
            .is_some();
        if !exists {
            conn.execute(
                "INSERT INTO conversations (peer_h, peer_enc) VALUES (?1, ?2)",
                params![&peer_h[..], self.seal_id("conversations.peer", peer)],
            )
            .map_err(StoreError::sql("creating a conversation"))?;
        }
        Ok(())
    }

    fn set_flag(&self, peer: &AccountId, flag: Flag, on: bool) -> Result<()> {
        let column = match flag {
            Flag::ApprovedByUs => "approved_by_us",
            Flag::ApprovedUs => "approved_us",
            Flag::Blocked => "blocked",
        };
        let mut conn = self.conn();
        let tx = conn
            .transaction()
            .map_err(StoreError::sql("starting a transaction"))?;
        self.ensure_conversation(&tx, peer)?;
        tx.execute(
            &format!("UPDATE conversations SET {column} = ?2 WHERE peer_h = ?1"),
            params![&self.peer_h(peer)[..], on],
        )
        .map_err(StoreError::sql("updating a conversation"))?;
        tx.commit()
            .map_err(StoreError::sql("committing a conversation update"))
    }

    /// The conversation with `peer`, if it exists (a row exists once a
    /// message was stored in it or any `set_*` was called for it).
    pub fn conversation(&self, peer: &AccountId) -> Result<Option<Conversation>> {
        let raw = self
            .conn()
            .query_row(
                &format!(
                    "SELECT {CONV_COLUMNS} FROM conversations c \
                     LEFT JOIN contacts k ON k.peer_h = c.peer_h WHERE c.peer_h = ?1"
                ),
                [&self.peer_h(peer)[..]],
                RawConversation::from_row,
            )
            .optional()
            .map_err(StoreError::sql("reading a conversation"))?;
        raw.map(|r| self.read_conversation(r)).transpose()
    }

    fn list_conversations(&self, filter: &str) -> Result<Vec<Conversation>> {
        let raws = {
            let conn = self.conn();
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {CONV_COLUMNS} FROM conversations c \
                     LEFT JOIN contacts k ON k.peer_h = c.peer_h WHERE {filter} \
                     ORDER BY c.active_at DESC"
                ))
                .map_err(StoreError::sql("listing conversations"))?;
            let rows = stmt
                .query_map([], RawConversation::from_row)
                .map_err(StoreError::sql("listing conversations"))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .map_err(StoreError::sql("listing conversations"))?
        };
        raws.into_iter()
            .map(|r| self.read_conversation(r))
            .collect()
    }

    /// The conversations to list, newest activity first: every unblocked
    /// conversation that has had a message. Requests are included and
    /// marked [`Conversation::is_request`].
    pub fn conversations(&self) -> Result<Vec<Conversation>> {
        self.list_conversations("c.active_at > 0 AND c.blocked = 0")
    }

    /// The message requests (§11.1): listed conversations that are
    /// requests, newest first.
    pub fn requests(&self) -> Result<Vec<Conversation>> {
        Ok(self
            .conversations()?
            .into_iter()
            .filter(|c| c.is_request)
            .collect())
    }

    /// The blocked accounts.
    pub fn blocked_accounts(&self) -> Result<Vec<AccountId>> {
        Ok(self
            .list_conversations("c.blocked = 1")?
            .into_iter()
            .map(|c| c.peer)
            .collect())
    }

    /// Sets whether we approved the conversation (§11).
    pub fn set_approved_by_us(&self, peer: &AccountId, on: bool) -> Result<()> {
        self.set_flag(peer, Flag::ApprovedByUs, on)
    }

    /// Sets whether the peer approved us (§11).
    pub fn set_approved_us(&self, peer: &AccountId, on: bool) -> Result<()> {
        self.set_flag(peer, Flag::ApprovedUs, on)
    }

    /// Blocks or unblocks `peer` (§11.2). Blocking keeps the conversation
    /// row (it is the block list) but hides it from
    /// [`LocalStore::conversations`]; to also drop its messages, call
    /// [`LocalStore::delete_conversation`] first.
    pub fn set_blocked(&self, peer: &AccountId, on: bool) -> Result<()> {
        self.set_flag(peer, Flag::Blocked, on)
    }

    /// Sets the conversation's disappearing-messages setting (§14.1). `Off`
    /// is stored with timer 0.
    pub fn set_disappearing(&self, peer: &AccountId, d: Disappearing) -> Result<()> {
        let timer = if d.mode == DisappearingMode::Off {
            0
        } else {
            i64::from(d.timer_s)
        };
        let mut conn = self.conn();
        let tx = conn
            .transaction()
            .map_err(StoreError::sql("starting a transaction"))?;
        self.ensure_conversation(&tx, peer)?;
        tx.execute(
            "UPDATE conversations SET dm_mode = ?2, dm_timer = ?3 WHERE peer_h = ?1",
            params![&self.peer_h(peer)[..], d.mode.code(), timer],
        )
        .map_err(StoreError::sql("updating a conversation"))?;
        tx.commit()
            .map_err(StoreError::sql("committing a conversation update"))
    }

    /// Deletes the conversation with `peer` and all its messages (decline,
    /// §11.2); returns the swarm hashes of the deleted messages so the
    /// caller can delete them from its own swarm. The block flag goes too;
    /// the contact entry stays.
    pub fn delete_conversation(&self, peer: &AccountId) -> Result<Vec<String>> {
        let peer_h = self.peer_h(peer);
        let mut conn = self.conn();
        let tx = conn
            .transaction()
            .map_err(StoreError::sql("starting a transaction"))?;
        let sealed_hashes: Vec<Vec<u8>> = {
            let mut stmt = tx
                .prepare("SELECT hash_enc FROM messages WHERE peer_h = ?1 AND hash_enc IS NOT NULL")
                .map_err(StoreError::sql("listing message hashes"))?;
            let rows = stmt
                .query_map([&peer_h[..]], |r| r.get(0))
                .map_err(StoreError::sql("listing message hashes"))?;
            rows.collect::<rusqlite::Result<_>>()
                .map_err(StoreError::sql("listing message hashes"))?
        };
        let hashes = sealed_hashes
            .iter()
            .map(|s| self.open_string("messages.hash", s))
            .collect::<Result<Vec<_>>>()?;
        tx.execute("DELETE FROM messages WHERE peer_h = ?1", [&peer_h[..]])
            .map_err(StoreError::sql("deleting messages"))?;
        tx.execute("DELETE FROM conversations WHERE peer_h = ?1", [&peer_h[..]])
            .map_err(StoreError::sql("deleting a conversation"))?;
        tx.commit()
            .map_err(StoreError::sql("committing a conversation delete"))?;
        Self::truncate_wal(&conn);
        Ok(hashes)
    }

    /// Raises the conversation's activity time to `ts_ms`.
    pub(crate) fn touch_conversation(
        &self,
        conn: &Connection,
        peer: &AccountId,
        ts_ms: u64,
    ) -> Result<()> {
        conn.execute(
            "UPDATE conversations SET active_at = max(active_at, ?2) WHERE peer_h = ?1",
            params![&self.peer_h(peer)[..], to_i64(ts_ms, "timestamp")?],
        )
        .map(drop)
        .map_err(StoreError::sql("updating conversation activity"))
    }

    // ----- contacts -----

    /// Names `id` in the contacts (adding it). A contact's conversation is
    /// never a request (§11).
    pub fn set_contact_name(&self, id: &AccountId, name: &str) -> Result<()> {
        self.conn()
            .execute(
                "INSERT INTO contacts (peer_h, peer_enc, name_enc) VALUES (?1, ?2, ?3)
                 ON CONFLICT (peer_h) DO UPDATE SET name_enc = excluded.name_enc",
                params![
                    &self.peer_h(id)[..],
                    self.seal_id("contacts.peer", id),
                    self.crypt().seal("contacts.name", name.as_bytes())
                ],
            )
            .map(drop)
            .map_err(StoreError::sql("writing a contact"))
    }

    /// Removes `id` from the contacts; returns whether it was there.
    pub fn remove_contact(&self, id: &AccountId) -> Result<bool> {
        self.conn()
            .execute(
                "DELETE FROM contacts WHERE peer_h = ?1",
                [&self.peer_h(id)[..]],
            )
            .map(|n| n > 0)
            .map_err(StoreError::sql("removing a contact"))
    }

    /// The contact name of `id`, if it is a contact.
    pub fn contact_name(&self, id: &AccountId) -> Result<Option<String>> {
        let sealed: Option<Vec<u8>> = self
            .conn()
            .query_row(
                "SELECT name_enc FROM contacts WHERE peer_h = ?1",
                [&self.peer_h(id)[..]],
                |r| r.get(0),
            )
            .optional()
            .map_err(StoreError::sql("reading a contact"))?;
        sealed
            .map(|s| self.open_string("contacts.name", &s))
            .transpose()
    }

    /// All contacts, sorted by name (then account ID).
    pub fn contacts(&self) -> Result<Vec<Contact>> {
        let rows: Vec<(Vec<u8>, Vec<u8>)> = {
            let conn = self.conn();
            let mut stmt = conn
                .prepare("SELECT peer_enc, name_enc FROM contacts")
                .map_err(StoreError::sql("listing contacts"))?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(StoreError::sql("listing contacts"))?;
            rows.collect::<rusqlite::Result<_>>()
                .map_err(StoreError::sql("listing contacts"))?
        };
        let mut out = rows
            .iter()
            .map(|(p, n)| {
                Ok(Contact {
                    id: self.open_id("contacts.peer", p)?,
                    name: self.open_string("contacts.name", n)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        out.sort_by(|a, b| {
            a.name
                .cmp(&b.name)
                .then_with(|| a.id.to_bytes().cmp(&b.id.to_bytes()))
        });
        Ok(out)
    }
}
