//! What a registry instance keeps on disk, in its data directory:
//!
//! - `records/<key hex>.rec`: the latest self-signed record of each candidate
//!   node (written by an authenticated submission or by the operator);
//! - `admitted`: the node keys the operator admitted, one hex key a line;
//! - `current`: the newest threshold-signed document this instance holds;
//! - `lock`: the document of the next epoch this instance signed (§ agreement).
//!
//! The operator commands (`umbra-registry add-node`, `remove-node`, `admit`)
//! edit the same files; a running instance re-reads them every round, so no
//! admin port is needed. Writes go through a temporary file and a rename.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use umbra_crypto::Ed25519Public;
use umbra_proto::swarm::NodeRecord;

/// A data-directory operation that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A file could not be read or written.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A record is malformed or not validly self-signed.
    #[error("node record refused: {0}")]
    Record(#[from] umbra_proto::swarm::RegistryError),
    /// A key is not 64 hex characters.
    #[error("not a 64-hex Ed25519 key: {0}")]
    BadKey(String),
}

/// The candidate records and operator decisions of one data directory.
#[derive(Debug, Clone)]
pub struct CandidateStore {
    dir: PathBuf,
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io { what, path, source }
}

/// Writes `bytes` to `path` atomically (temporary file, then rename). Each
/// call has its own temporary file: two writers of the same path (a node's
/// own submission racing one made for it) must not rename each other's
/// file away.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp.{}.{n}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(io("writing", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io("renaming into", path))
}

/// The operator's admissions and removals as read at one moment.
#[derive(Debug, Clone)]
pub struct Admission {
    admitted: BTreeSet<Ed25519Public>,
    removed: BTreeSet<Ed25519Public>,
    auto_admit: bool,
}

impl Admission {
    /// Admitted by the operator, or, with `auto_admit`, any node the
    /// operator has not removed.
    pub fn contains(&self, key: &Ed25519Public) -> bool {
        self.admitted.contains(key) || (self.auto_admit && !self.removed.contains(key))
    }
}

/// The keys listed in `path`, one hex key per line (none if it is missing).
fn read_keys(path: &Path) -> BTreeSet<Ed25519Public> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| parse_key(l).ok())
        .collect()
}

/// Writes `keys` to `path`, one hex key per line.
fn write_keys(path: &Path, keys: &BTreeSet<Ed25519Public>) -> Result<(), StoreError> {
    let text: String = keys
        .iter()
        .map(|k| format!("{}\n", hex::encode(k.as_bytes())))
        .collect();
    write_atomic(path, text.as_bytes())
}

/// Parses a 64-hex Ed25519 key.
pub fn parse_key(text: &str) -> Result<Ed25519Public, StoreError> {
    let mut k = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut k).map_err(|_| StoreError::BadKey(text.into()))?;
    Ok(Ed25519Public::from_bytes(k))
}

impl CandidateStore {
    /// The store of data directory `dir` (created if missing).
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir.join("records")).map_err(io("creating", dir))?;
        Ok(CandidateStore {
            dir: dir.to_path_buf(),
        })
    }

    fn record_path(&self, key: &Ed25519Public) -> PathBuf {
        self.dir
            .join("records")
            .join(format!("{}.rec", hex::encode(key.as_bytes())))
    }

    fn admitted_path(&self) -> PathBuf {
        self.dir.join("admitted")
    }

    /// Stores a candidate's record after checking its self-signature,
    /// replacing an older record of the same node.
    pub fn put_record(&self, record: &NodeRecord) -> Result<(), StoreError> {
        record.verify()?;
        write_atomic(&self.record_path(&record.ed25519), &record.encode())
    }

    /// Every stored candidate record that parses and verifies.
    pub fn records(&self) -> BTreeMap<Ed25519Public, NodeRecord> {
        let mut out = BTreeMap::new();
        let Ok(entries) = std::fs::read_dir(self.dir.join("records")) else {
            return out;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.extension().and_then(|x| x.to_str()) != Some("rec") {
                continue;
            }
            match std::fs::read(&path)
                .ok()
                .and_then(|b| NodeRecord::parse(&b).ok())
            {
                Some(r) if r.verify().is_ok() => {
                    out.insert(r.ed25519, r);
                }
                _ => {
                    tracing::warn!(file = %path.display(), "ignoring an unusable candidate record")
                }
            }
        }
        out
    }

    /// The keys the operator admitted.
    pub fn admitted(&self) -> BTreeSet<Ed25519Public> {
        read_keys(&self.admitted_path())
    }

    fn write_admitted(&self, keys: &BTreeSet<Ed25519Public>) -> Result<(), StoreError> {
        write_keys(&self.admitted_path(), keys)
    }

    fn removed_path(&self) -> PathBuf {
        self.dir.join("removed")
    }

    /// The keys the operator removed and has not admitted since: an
    /// instance with `auto_admit` does not take them back when they submit
    /// their record again.
    pub fn removed(&self) -> BTreeSet<Ed25519Public> {
        read_keys(&self.removed_path())
    }

    /// Which records this instance may vote for (health permitting), read
    /// once: see [`Admission::contains`].
    pub fn admission(&self, auto_admit: bool) -> Admission {
        Admission {
            admitted: self.admitted(),
            removed: self.removed(),
            auto_admit,
        }
    }

    /// [`Admission::contains`] for one key.
    pub fn is_admitted(&self, key: &Ed25519Public, auto_admit: bool) -> bool {
        self.admission(auto_admit).contains(key)
    }

    /// Admits `key` (operator step), also lifting an earlier removal.
    pub fn admit(&self, key: Ed25519Public) -> Result<(), StoreError> {
        let mut keys = self.admitted();
        keys.insert(key);
        self.write_admitted(&keys)?;
        let mut removed = self.removed();
        if removed.remove(&key) {
            write_keys(&self.removed_path(), &removed)?;
        }
        Ok(())
    }

    /// Removes a node: withdraws its admission, deletes its record and
    /// remembers the removal (so `auto_admit` does not take the node back).
    /// It drops out of this instance's votes at once.
    pub fn remove(&self, key: &Ed25519Public) -> Result<(), StoreError> {
        let mut removed = self.removed();
        if removed.insert(*key) {
            write_keys(&self.removed_path(), &removed)?;
        }
        let mut keys = self.admitted();
        keys.remove(key);
        self.write_admitted(&keys)?;
        match std::fs::remove_file(self.record_path(key)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("removing", &self.record_path(key))(e)),
        }
    }

    /// Adds and admits a record (operator step).
    pub fn add_node(&self, record: &NodeRecord) -> Result<(), StoreError> {
        self.put_record(record)?;
        self.admit(record.ed25519)
    }

    /// Reads a document file (`current`, `lock`), if present.
    pub fn read_doc(&self, name: &str) -> Option<Vec<u8>> {
        std::fs::read(self.dir.join(name)).ok()
    }

    /// Writes a document file.
    pub fn write_doc(&self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        write_atomic(&self.dir.join(name), bytes)
    }

    /// Deletes a document file.
    pub fn remove_doc(&self, name: &str) {
        let _ = std::fs::remove_file(self.dir.join(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use umbra_crypto::Ed25519Keypair;

    #[test]
    fn concurrent_writes_of_one_path_all_succeed() {
        // A node's own submission and one made for it can store the same
        // record at once; with a shared temporary name one rename failed.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.rec");
        let writers: Vec<_> = (0..8u8)
            .map(|w| {
                let path = path.clone();
                std::thread::spawn(move || (0..50).all(|_| write_atomic(&path, &[w; 64]).is_ok()))
            })
            .collect();
        for w in writers {
            assert!(w.join().unwrap());
        }
        assert_eq!(std::fs::read(&path).unwrap().len(), 64);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn records_admission_and_removal() {
        let dir = tempfile::tempdir().unwrap();
        let s = CandidateStore::open(dir.path()).unwrap();
        let k = Ed25519Keypair::from_seed(&[3; 32]);
        let r = NodeRecord::sign(&k, Ipv4Addr::LOCALHOST, 4000, [0, 1, 0]).unwrap();
        s.put_record(&r).unwrap();
        assert_eq!(s.records().get(&k.public()), Some(&r));
        assert!(s.admitted().is_empty());
        s.admit(k.public()).unwrap();
        assert!(s.admitted().contains(&k.public()));
        let mut bad = r.clone();
        bad.https_port = 4001;
        assert!(matches!(s.put_record(&bad), Err(StoreError::Record(_))));
        s.remove(&k.public()).unwrap();
        assert!(s.records().is_empty() && s.admitted().is_empty());
        assert!(parse_key("zz").is_err());
    }

    #[test]
    fn a_removed_node_is_not_auto_admitted_again() {
        let dir = tempfile::tempdir().unwrap();
        let s = CandidateStore::open(dir.path()).unwrap();
        let (k, other) = (
            Ed25519Keypair::from_seed(&[3; 32]),
            Ed25519Keypair::from_seed(&[4; 32]),
        );
        let r = NodeRecord::sign(&k, Ipv4Addr::LOCALHOST, 4000, [0, 1, 0]).unwrap();
        s.put_record(&r).unwrap();
        assert!(s.is_admitted(&k.public(), true));
        assert!(!s.is_admitted(&k.public(), false));
        s.remove(&k.public()).unwrap();
        // The node submits its record again, as running nodes do.
        s.put_record(&r).unwrap();
        assert!(!s.is_admitted(&k.public(), true), "auto_admit took it back");
        assert!(s.is_admitted(&other.public(), true));
        // Survives a reopen; the operator's admission lifts it.
        let s = CandidateStore::open(dir.path()).unwrap();
        assert!(!s.is_admitted(&k.public(), true));
        s.admit(k.public()).unwrap();
        assert!(s.is_admitted(&k.public(), true) && s.removed().is_empty());
    }
}
