//! Messages in the local store: insertion with de-duplication by
//! (conversation, author, `T`) and by swarm hash (`messages.md` §7, §9),
//! status, read state and receipts (§12), unsend (§10) and local expiry of
//! disappearing messages (§14.3).

use rusqlite::{Connection, OptionalExtension, Row, params};
use umbra_proto::identity::AccountId;

use super::{
    Direction, Disappearing, DisappearingMode, LocalStore, Message, MessageId, MessageStatus,
    NewMessage, Result, StoreError, to_i64, to_u64,
};

/// The columns [`RawMessage::from_row`] reads.
const MSG_COLUMNS: &str = "id, peer_h, direction, author_enc, timestamp_ms, received_at, body_enc, \
     status, hash_enc, dm_mode, dm_timer, exp_start, expires_at, read_at, deleted";

/// A message row before decryption.
struct RawMessage {
    id: i64,
    direction: i64,
    author_enc: Vec<u8>,
    timestamp_ms: i64,
    received_at: i64,
    body_enc: Option<Vec<u8>>,
    status: i64,
    hash_enc: Option<Vec<u8>>,
    dm_mode: i64,
    dm_timer: i64,
    exp_start: Option<i64>,
    expires_at: Option<i64>,
    read_at: Option<i64>,
    deleted: bool,
}

impl RawMessage {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawMessage {
            id: r.get(0)?,
            direction: r.get(2)?,
            author_enc: r.get(3)?,
            timestamp_ms: r.get(4)?,
            received_at: r.get(5)?,
            body_enc: r.get(6)?,
            status: r.get(7)?,
            hash_enc: r.get(8)?,
            dm_mode: r.get(9)?,
            dm_timer: r.get(10)?,
            exp_start: r.get(11)?,
            expires_at: r.get(12)?,
            read_at: r.get(13)?,
            deleted: r.get(14)?,
        })
    }
}

fn opt_u64(v: Option<i64>, what: &'static str) -> Result<Option<u64>> {
    v.map(|x| to_u64(x, what)).transpose()
}

fn opt_i64(v: Option<u64>, what: &'static str) -> Result<Option<i64>> {
    v.map(|x| to_i64(x, what)).transpose()
}

impl LocalStore {
    fn dedup_h(&self, peer: &AccountId, author: &AccountId, ts_ms: u64) -> [u8; 32] {
        let mut data = Vec::with_capacity(33 + 33 + 8);
        data.extend_from_slice(&peer.to_bytes());
        data.extend_from_slice(&author.to_bytes());
        data.extend_from_slice(&ts_ms.to_be_bytes());
        self.crypt().index("message", &data)
    }

    fn hash_h(&self, hash: &str) -> [u8; 32] {
        self.crypt().index("swarm hash", hash.as_bytes())
    }

    fn read_message(&self, peer: AccountId, raw: RawMessage) -> Result<Message> {
        let corrupt = |what| StoreError::Corrupt { what };
        let text = match &raw.body_enc {
            Some(b) => self.open_string("messages.body", b)?,
            None => String::new(),
        };
        Ok(Message {
            id: MessageId(raw.id),
            peer,
            direction: Direction::from_code(raw.direction).ok_or(corrupt("message direction"))?,
            author: self.open_id("messages.author", &raw.author_enc)?,
            timestamp_ms: to_u64(raw.timestamp_ms, "message timestamp")?,
            received_at_ms: to_u64(raw.received_at, "message receive time")?,
            text,
            status: MessageStatus::from_code(raw.status).ok_or(corrupt("message status"))?,
            hash: raw
                .hash_enc
                .map(|h| self.open_string("messages.hash", &h))
                .transpose()?,
            disappearing: Disappearing {
                mode: DisappearingMode::from_code(raw.dm_mode)
                    .ok_or(corrupt("message disappearing mode"))?,
                timer_s: u32::try_from(raw.dm_timer)
                    .map_err(|_| corrupt("message disappearing timer"))?,
            },
            expiration_start_ms: opt_u64(raw.exp_start, "message expiration start")?,
            expires_at_ms: opt_u64(raw.expires_at, "message expiry")?,
            read_at_ms: opt_u64(raw.read_at, "message read time")?,
            deleted: raw.deleted,
        })
    }

    /// Runs a message query and decrypts the rows. `peer` is known to the
    /// caller for peer-scoped queries; otherwise it is looked up per row.
    fn query_messages(
        &self,
        conn: &Connection,
        where_clause: &str,
        params: &[&dyn rusqlite::ToSql],
        peer: Option<&AccountId>,
    ) -> Result<Vec<Message>> {
        let rows: Vec<(Vec<u8>, RawMessage)> = {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {MSG_COLUMNS} FROM messages WHERE {where_clause} \
                     ORDER BY timestamp_ms, id"
                ))
                .map_err(StoreError::sql("reading messages"))?;
            let rows = stmt
                .query_map(params, |r| Ok((r.get(1)?, RawMessage::from_row(r)?)))
                .map_err(StoreError::sql("reading messages"))?;
            rows.collect::<rusqlite::Result<_>>()
                .map_err(StoreError::sql("reading messages"))?
        };
        rows.into_iter()
            .map(|(peer_h, raw)| {
                let peer = match peer {
                    Some(p) => *p,
                    None => self.peer_of(conn, &peer_h)?,
                };
                self.read_message(peer, raw)
            })
            .collect()
    }

    /// The account of a conversation row, by its lookup hash.
    fn peer_of(&self, conn: &Connection, peer_h: &[u8]) -> Result<AccountId> {
        let sealed: Vec<u8> = conn
            .query_row(
                "SELECT peer_enc FROM conversations WHERE peer_h = ?1",
                [peer_h],
                |r| r.get(0),
            )
            .optional()
            .map_err(StoreError::sql("reading a conversation"))?
            .ok_or(StoreError::Corrupt {
                what: "message without a conversation",
            })?;
        self.open_id("conversations.peer", &sealed)
    }

    /// Stores a message; returns its ID, or `None` when it is a duplicate:
    /// a message with the same (conversation, author, `T`) (§7), or with
    /// the same swarm hash, is already stored. On a duplicate by `T` whose
    /// stored copy has no hash yet, the new hash is recorded (e.g. our own
    /// sync copy retrieved after sending).
    ///
    /// Creates the conversation if needed and raises its activity time to
    /// `timestamp_ms`; approval flags are not touched.
    pub fn insert_message(&self, m: &NewMessage) -> Result<Option<MessageId>> {
        let ts = to_i64(m.timestamp_ms, "message timestamp")?;
        let received = to_i64(m.received_at_ms, "message receive time")?;
        let expires_at = opt_i64(m.expires_at_ms, "message expiry")?;
        let exp_start = opt_i64(
            m.expires_at_ms
                .map(|e| e.saturating_sub(m.disappearing.timer_ms())),
            "message expiration start",
        )?;
        let peer_h = self.peer_h(&m.peer);
        let dedup_h = self.dedup_h(&m.peer, &m.author, m.timestamp_ms);
        let hash_h = m.hash.as_deref().map(|h| self.hash_h(h));

        let mut conn = self.conn();
        let tx = conn
            .transaction()
            .map_err(StoreError::sql("starting a transaction"))?;
        let hash_owner: Option<i64> = match &hash_h {
            Some(h) => tx
                .query_row("SELECT id FROM messages WHERE hash_h = ?1", [&h[..]], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(StoreError::sql("looking up a message hash"))?,
            None => None,
        };
        let existing: Option<(i64, bool)> = tx
            .query_row(
                "SELECT id, hash_h IS NOT NULL FROM messages WHERE dedup_h = ?1",
                [&dedup_h[..]],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(StoreError::sql("looking up a message"))?;
        if let Some((id, has_hash)) = existing {
            if let (Some(h), Some(hash), false, None) = (&hash_h, &m.hash, has_hash, hash_owner) {
                tx.execute(
                    "UPDATE messages SET hash_h = ?2, hash_enc = ?3 WHERE id = ?1",
                    params![
                        id,
                        &h[..],
                        self.crypt().seal("messages.hash", hash.as_bytes())
                    ],
                )
                .map_err(StoreError::sql("recording a message hash"))?;
                tx.commit()
                    .map_err(StoreError::sql("committing a message hash"))?;
            }
            return Ok(None);
        }
        if hash_owner.is_some() {
            return Ok(None);
        }
        self.ensure_conversation(&tx, &m.peer)?;
        self.touch_conversation(&tx, &m.peer, m.timestamp_ms)?;
        let timer = if m.disappearing.mode == DisappearingMode::Off {
            0
        } else {
            i64::from(m.disappearing.timer_s)
        };
        tx.execute(
            "INSERT INTO messages (peer_h, dedup_h, hash_h, hash_enc, direction, author_enc, \
             timestamp_ms, received_at, body_enc, status, dm_mode, dm_timer, exp_start, \
             expires_at, read_at, deleted) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, NULL, 0)",
            params![
                &peer_h[..],
                &dedup_h[..],
                hash_h.as_ref().map(|h| &h[..]),
                m.hash
                    .as_deref()
                    .map(|h| self.crypt().seal("messages.hash", h.as_bytes())),
                m.direction.code(),
                self.seal_id("messages.author", &m.author),
                ts,
                received,
                self.crypt().seal("messages.body", m.text.as_bytes()),
                m.status.code(),
                m.disappearing.mode.code(),
                timer,
                exp_start,
                expires_at,
            ],
        )
        .map_err(StoreError::sql("inserting a message"))?;
        let id = tx.last_insert_rowid();
        tx.commit()
            .map_err(StoreError::sql("committing a message"))?;
        Ok(Some(MessageId(id)))
    }

    /// The messages of the conversation with `peer` whose timestamp is at
    /// least `since_ms` (all when `None`), oldest first.
    pub fn messages(&self, peer: &AccountId, since_ms: Option<u64>) -> Result<Vec<Message>> {
        let since = to_i64(since_ms.unwrap_or(0), "since")?;
        let peer_h = self.peer_h(peer);
        let conn = self.conn();
        self.query_messages(
            &conn,
            "peer_h = ?1 AND timestamp_ms >= ?2",
            &[&&peer_h[..], &since],
            Some(peer),
        )
    }

    /// One message by its local ID.
    pub fn message(&self, id: MessageId) -> Result<Option<Message>> {
        let conn = self.conn();
        Ok(self
            .query_messages(&conn, "id = ?1", &[&id.0], None)?
            .into_iter()
            .next())
    }

    /// The message of `author` at timestamp `ts_ms` in the conversation
    /// with `peer` (quotes, receipts, unsend: §7, §10).
    pub fn message_by_author_ts(
        &self,
        peer: &AccountId,
        author: &AccountId,
        ts_ms: u64,
    ) -> Result<Option<Message>> {
        let dedup_h = self.dedup_h(peer, author, ts_ms);
        let conn = self.conn();
        Ok(self
            .query_messages(&conn, "dedup_h = ?1", &[&&dedup_h[..]], Some(peer))?
            .into_iter()
            .next())
    }

    /// The message with swarm hash `hash`.
    pub fn message_by_hash(&self, hash: &str) -> Result<Option<Message>> {
        let hash_h = self.hash_h(hash);
        let conn = self.conn();
        Ok(self
            .query_messages(&conn, "hash_h = ?1", &[&&hash_h[..]], None)?
            .into_iter()
            .next())
    }

    fn update_one(&self, sql: &str, params: &[&dyn rusqlite::ToSql]) -> Result<bool> {
        self.conn()
            .execute(sql, params)
            .map(|n| n > 0)
            .map_err(StoreError::sql("updating a message"))
    }

    /// Sets a message's status; returns whether the message exists.
    pub fn set_status(&self, id: MessageId, status: MessageStatus) -> Result<bool> {
        self.update_one(
            "UPDATE messages SET status = ?2 WHERE id = ?1",
            &[&id.0, &status.code()],
        )
    }

    /// Records a message's swarm hash; returns whether the message exists.
    /// Fails with [`StoreError::HashInUse`] if another message has it.
    pub fn set_hash(&self, id: MessageId, hash: &str) -> Result<bool> {
        let hash_h = self.hash_h(hash);
        let mut conn = self.conn();
        let tx = conn
            .transaction()
            .map_err(StoreError::sql("starting a transaction"))?;
        let owner: Option<i64> = tx
            .query_row(
                "SELECT id FROM messages WHERE hash_h = ?1",
                [&hash_h[..]],
                |r| r.get(0),
            )
            .optional()
            .map_err(StoreError::sql("looking up a message hash"))?;
        if owner.is_some_and(|o| o != id.0) {
            return Err(StoreError::HashInUse);
        }
        let n = tx
            .execute(
                "UPDATE messages SET hash_h = ?2, hash_enc = ?3 WHERE id = ?1",
                params![
                    id.0,
                    &hash_h[..],
                    self.crypt().seal("messages.hash", hash.as_bytes())
                ],
            )
            .map_err(StoreError::sql("recording a message hash"))?;
        tx.commit()
            .map_err(StoreError::sql("committing a message hash"))?;
        Ok(n > 0)
    }

    /// Marks every unread incoming message of the conversation read at
    /// `now_ms` and returns them (to send read receipts, §12). Their
    /// delete-after-read timers start now (§14.3): `expiration_start = now`,
    /// `expires_at = now + timer`, unless a timer is already running.
    pub fn mark_read(&self, peer: &AccountId, now_ms: u64) -> Result<Vec<Message>> {
        let now = to_i64(now_ms, "time")?;
        let peer_h = self.peer_h(peer);
        let mut conn = self.conn();
        let tx = conn
            .transaction()
            .map_err(StoreError::sql("starting a transaction"))?;
        let ids: Vec<i64> = {
            let mut stmt = tx
                .prepare(
                    "SELECT id FROM messages WHERE peer_h = ?1 AND direction = 0 \
                     AND read_at IS NULL AND deleted = 0",
                )
                .map_err(StoreError::sql("listing unread messages"))?;
            let rows = stmt
                .query_map([&peer_h[..]], |r| r.get(0))
                .map_err(StoreError::sql("listing unread messages"))?;
            rows.collect::<rusqlite::Result<_>>()
                .map_err(StoreError::sql("listing unread messages"))?
        };
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            tx.execute(
                "UPDATE messages SET read_at = ?2 WHERE id = ?1",
                params![id, now],
            )
            .map_err(StoreError::sql("marking a message read"))?;
            tx.execute(
                "UPDATE messages SET exp_start = ?2, expires_at = ?2 + dm_timer * 1000 \
                 WHERE id = ?1 AND dm_mode = ?3 AND expires_at IS NULL",
                params![id, now, DisappearingMode::AfterRead.code()],
            )
            .map_err(StoreError::sql("starting a disappearing timer"))?;
            out.extend(self.query_messages(&tx, "id = ?1", &[&id], Some(peer))?);
        }
        tx.commit()
            .map_err(StoreError::sql("committing read marks"))?;
        Ok(out)
    }

    /// Marks our outgoing messages with the given timestamps as read by the
    /// peer (an incoming read receipt, §12); returns how many changed.
    pub fn mark_outgoing_read(&self, peer: &AccountId, timestamps: &[u64]) -> Result<usize> {
        let peer_h = self.peer_h(peer);
        let mut conn = self.conn();
        let tx = conn
            .transaction()
            .map_err(StoreError::sql("starting a transaction"))?;
        let mut changed = 0;
        for &t in timestamps {
            // A timestamp beyond i64 cannot match any stored message.
            let Ok(t) = i64::try_from(t) else { continue };
            changed += tx
                .execute(
                    "UPDATE messages SET status = ?3 WHERE peer_h = ?1 AND direction = 1 \
                     AND timestamp_ms = ?2 AND status != ?3",
                    params![&peer_h[..], t, MessageStatus::Read.code()],
                )
                .map_err(StoreError::sql("marking a message read"))?;
        }
        tx.commit()
            .map_err(StoreError::sql("committing read marks"))?;
        Ok(changed)
    }

    /// Marks one incoming message read at `read_at_ms` (read on another
    /// device, §14.3); returns whether it was unread.
    pub fn mark_message_read(&self, id: MessageId, read_at_ms: u64) -> Result<bool> {
        let at = to_i64(read_at_ms, "read time")?;
        self.update_one(
            "UPDATE messages SET read_at = ?2 WHERE id = ?1 AND read_at IS NULL",
            &[&id.0, &at],
        )
    }

    /// Deletes a message for everyone (unsend, §10): its text is scrubbed
    /// and it is shown as "This message was deleted". Returns whether the
    /// message exists.
    pub fn mark_deleted(&self, id: MessageId) -> Result<bool> {
        self.update_one(
            "UPDATE messages SET body_enc = NULL, deleted = 1 WHERE id = ?1",
            &[&id.0],
        )
    }

    /// Sets a message's disappearing timer (§14.3); returns whether the
    /// message exists.
    pub fn set_expiry(&self, id: MessageId, start_ms: u64, expires_at_ms: u64) -> Result<bool> {
        let start = to_i64(start_ms, "expiration start")?;
        let at = to_i64(expires_at_ms, "expiry")?;
        self.update_one(
            "UPDATE messages SET exp_start = ?2, expires_at = ?3 WHERE id = ?1",
            &[&id.0, &start, &at],
        )
    }

    /// Deletes every message whose `expires_at` is at or before `now_ms`
    /// (their rows, text included, are zeroed in the file by
    /// `secure_delete`) and forgets seen hashes that expired; returns the
    /// number of messages deleted.
    pub fn expire_due(&self, now_ms: u64) -> Result<usize> {
        let now = to_i64(now_ms, "time")?;
        let conn = self.conn();
        let n = conn
            .execute(
                "DELETE FROM messages WHERE expires_at IS NOT NULL AND expires_at <= ?1",
                [now],
            )
            .map_err(StoreError::sql("deleting expired messages"))?;
        let pruned = conn
            .execute("DELETE FROM seen WHERE expiry_ms <= ?1", [now])
            .map_err(StoreError::sql("pruning seen hashes"))?;
        if n > 0 || pruned > 0 {
            Self::truncate_wal(&conn);
        }
        Ok(n)
    }
}
