//! The blob store of the file server (spec `attachments.md` §4.3–§4.5):
//! opaque blobs as files on disk named by their content-hash ID, a small
//! JSON sidecar with upload and expiry times, a total size cap, and a sweep
//! that deletes expired files. Times are unix seconds (fractional allowed)
//! passed in by the caller.
//!
//! Concurrency: the index (which files exist, their sizes and expiries,
//! and the bytes in use) sits behind one mutex, while blobs are written
//! and deleted outside it. An ID whose files are being written or deleted
//! is *busy*; only the call that made it busy touches `blobs/<id>` or
//! `meta/<id>.json`, and every other call on that ID waits until it is
//! done. So a second upload of bytes already being stored waits for the
//! first and then refreshes the file the first recorded: the space is
//! reserved once, and a failing writer deletes only its own files (or the
//! expired copy it was replacing, already uncounted).
//! Every write goes through a temporary file with a name unique to the
//! writer, renamed into place; leftovers from a crash are deleted at open.
//! A store is acknowledged only after its blob and sidecar are on disk
//! (synced there unless durability was turned off for benchmarks).

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use serde_json::json;
use umbra_proto::attachment::server::{file_id, is_file_id};

/// A store failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The ID is unknown or expired.
    #[error("unknown or expired file")]
    NotFound,
    /// Storing would exceed the total size cap.
    #[error("store full: {used} + {size} bytes exceeds the {cap}-byte cap")]
    Full {
        /// Bytes in use.
        used: u64,
        /// The upload's size.
        size: u64,
        /// The cap.
        cap: u64,
    },
    /// The file system failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> StoreError {
    move |source| StoreError::Io { what, source }
}

/// What the store knows of one file.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FileMeta {
    /// Blob size in bytes.
    pub size: u64,
    /// Upload time (unix seconds).
    pub uploaded: f64,
    /// Expiry (unix seconds).
    pub expires: f64,
}

struct Inner {
    files: HashMap<String, FileMeta>,
    /// Bytes of the recorded files plus the bytes reserved by puts in
    /// progress.
    used: u64,
    /// IDs whose files one call is writing or deleting outside the lock.
    busy: HashSet<String>,
}

/// Blobs on disk under `dir/blobs/<id>` with `dir/meta/<id>.json`.
pub struct FileStore {
    dir: PathBuf,
    cap: u64,
    inner: Mutex<Inner>,
    /// Signalled whenever IDs stop being busy.
    idle: Condvar,
    durable: bool,
}

/// Keeps IDs busy until dropped; dropping wakes the calls waiting on them.
struct Busy<'a> {
    store: &'a FileStore,
    ids: Vec<String>,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        if self.ids.is_empty() {
            return;
        }
        let mut inner = self.store.lock();
        for id in &self.ids {
            inner.busy.remove(id);
        }
        drop(inner);
        self.store.idle.notify_all();
    }
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("dir", &self.dir)
            .field("cap", &self.cap)
            .finish_non_exhaustive()
    }
}

/// Numbers the temporary files of this process, so no two writers share one.
static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Writes `data` to `path` through a temporary file next to it (named
/// `<name>.<n>.tmp`, unique to this call), synced first when `durable`. On
/// failure the temporary file is deleted and `path` is left as it was.
fn write_atomic(path: &Path, data: &[u8], durable: bool) -> std::io::Result<()> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.tmp", TMP_SEQ.fetch_add(1, Ordering::Relaxed)));
    let tmp = path.with_file_name(name);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        if durable {
            f.sync_data()?;
        }
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

impl FileStore {
    /// Opens (creating) the store in `dir` with a total cap of `cap` bytes,
    /// loading the sidecars of files already there. Blobs without a valid
    /// sidecar, sidecars without a blob and leftover temporary files are
    /// deleted.
    pub fn open(dir: &Path, cap: u64) -> Result<Self, StoreError> {
        let blobs = dir.join("blobs");
        let meta = dir.join("meta");
        std::fs::create_dir_all(&blobs).map_err(io("creating the blob directory"))?;
        std::fs::create_dir_all(&meta).map_err(io("creating the meta directory"))?;
        let mut files = HashMap::new();
        let mut used = 0u64;
        for entry in std::fs::read_dir(&blobs).map_err(io("listing blobs"))? {
            let entry = entry.map_err(io("listing blobs"))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let parsed = is_file_id(&name)
                .then(|| std::fs::read(meta.join(format!("{name}.json"))).ok())
                .flatten()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .and_then(|v| Some((v["uploaded"].as_f64()?, v["expires"].as_f64()?)));
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            match parsed {
                Some((uploaded, expires)) => {
                    used += size;
                    files.insert(
                        name,
                        FileMeta {
                            size,
                            uploaded,
                            expires,
                        },
                    );
                }
                None => {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        for entry in std::fs::read_dir(&meta).map_err(io("listing metadata"))? {
            let entry = entry.map_err(io("listing metadata"))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let known = name
                .strip_suffix(".json")
                .is_some_and(|id| files.contains_key(id));
            if !known {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(FileStore {
            dir: dir.to_path_buf(),
            cap,
            inner: Mutex::new(Inner {
                files,
                used,
                busy: HashSet::new(),
            }),
            idle: Condvar::new(),
            durable: true,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (every
        // mutation is a single insert/remove), so poisoning is ignored.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Locks the index once no other call has `id` busy.
    fn lock_idle(&self, id: &str) -> MutexGuard<'_, Inner> {
        let mut inner = self.lock();
        while inner.busy.contains(id) {
            inner = self.idle.wait(inner).unwrap_or_else(|p| p.into_inner());
        }
        inner
    }

    /// Marks `ids` busy (the caller holds the lock and checked they were
    /// not) until the returned guard drops.
    fn make_busy(&self, inner: &mut Inner, ids: Vec<String>) -> Busy<'_> {
        inner.busy.extend(ids.iter().cloned());
        Busy { store: self, ids }
    }

    fn blob_path(&self, id: &str) -> PathBuf {
        self.dir.join("blobs").join(id)
    }

    fn meta_path(&self, id: &str) -> PathBuf {
        self.dir.join("meta").join(format!("{id}.json"))
    }

    /// Whether each upload is synced to disk before it is acknowledged
    /// (the default). Off only for benchmarks on slow disks.
    pub fn set_durable(&mut self, on: bool) {
        self.durable = on;
    }

    fn write_meta(&self, id: &str, m: &FileMeta) -> Result<(), StoreError> {
        let j = json!({"uploaded": m.uploaded, "expires": m.expires});
        write_atomic(&self.meta_path(id), j.to_string().as_bytes(), self.durable)
            .map_err(io("writing metadata"))
    }

    /// Stores `data` (its ID is its content hash) to expire at
    /// `now + ttl`. The same bytes again refresh the expiry; if they are
    /// being stored right now, this waits for that store and then refreshes
    /// it. Returns the ID and the expiry once the blob and its sidecar are
    /// on disk.
    pub fn put(&self, data: &[u8], now: f64, ttl: u64) -> Result<(String, f64), StoreError> {
        let id = file_id(data);
        let expires = now + ttl as f64;
        let size = data.len() as u64;
        let mut inner = self.lock_idle(&id);
        if let Some(m) = inner.files.get_mut(&id)
            && m.expires > now
        {
            m.expires = expires;
            let m = *m;
            let busy = self.make_busy(&mut inner, vec![id.clone()]);
            drop(inner);
            self.write_meta(&id, &m)?;
            drop(busy);
            return Ok((id, expires));
        }
        // An expired entry the sweep has not reached yet is replaced.
        let old = inner.files.get(&id).map_or(0, |m| m.size);
        let used = inner.used - old;
        if used + size > self.cap {
            return Err(StoreError::Full {
                used,
                size,
                cap: self.cap,
            });
        }
        // Reserve the space, then write outside the lock with the ID busy.
        inner.used = used + size;
        inner.files.remove(&id);
        let busy = self.make_busy(&mut inner, vec![id.clone()]);
        drop(inner);
        let meta = FileMeta {
            size,
            uploaded: now,
            expires,
        };
        let written = write_atomic(&self.blob_path(&id), data, self.durable)
            .map_err(io("writing the blob"))
            .and_then(|()| self.write_meta(&id, &meta));
        if written.is_err() {
            // Still busy: whatever is at these paths is this call's (or the
            // expired file it replaced, already uncounted).
            let _ = std::fs::remove_file(self.blob_path(&id));
            let _ = std::fs::remove_file(self.meta_path(&id));
        }
        let mut inner = self.lock();
        let result = match written {
            Ok(()) => {
                inner.files.insert(id.clone(), meta);
                Ok((id, expires))
            }
            Err(e) => {
                inner.used -= size;
                Err(e)
            }
        };
        // Recorded before the ID stops being busy, so a waiting put of the
        // same bytes finds the entry and refreshes it.
        drop(inner);
        drop(busy);
        result
    }

    /// The metadata of a live file.
    pub fn info(&self, id: &str, now: f64) -> Result<FileMeta, StoreError> {
        self.lock()
            .files
            .get(id)
            .filter(|m| m.expires > now)
            .copied()
            .ok_or(StoreError::NotFound)
    }

    /// The bytes of a live file.
    pub fn get(&self, id: &str, now: f64) -> Result<Vec<u8>, StoreError> {
        self.info(id, now)?;
        std::fs::read(self.blob_path(id)).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StoreError::NotFound,
            _ => StoreError::Io {
                what: "reading the blob",
                source: e,
            },
        })
    }

    /// Sets a live file's expiry to `now + ttl`.
    pub fn extend(&self, id: &str, now: f64, ttl: u64) -> Result<f64, StoreError> {
        let mut inner = self.lock_idle(id);
        let m = inner
            .files
            .get_mut(id)
            .filter(|m| m.expires > now)
            .ok_or(StoreError::NotFound)?;
        m.expires = now + ttl as f64;
        let m = *m;
        let busy = self.make_busy(&mut inner, vec![id.to_string()]);
        drop(inner);
        self.write_meta(id, &m)?;
        drop(busy);
        Ok(m.expires)
    }

    /// Deletes every file expired at `now` (skipping busy ones, which the
    /// next sweep sees); returns how many.
    pub fn sweep(&self, now: f64) -> usize {
        let mut inner = self.lock();
        let expired: Vec<String> = inner
            .files
            .iter()
            .filter(|(id, m)| m.expires <= now && !inner.busy.contains(*id))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &expired {
            if let Some(m) = inner.files.remove(id) {
                inner.used -= m.size;
            }
        }
        // Busy while deleting, so a put of the same bytes cannot write its
        // new blob before the old one is gone.
        let busy = self.make_busy(&mut inner, expired);
        drop(inner);
        for id in &busy.ids {
            let _ = std::fs::remove_file(self.blob_path(id));
            let _ = std::fs::remove_file(self.meta_path(id));
        }
        busy.ids.len()
    }

    /// Bytes in use.
    pub fn used(&self) -> u64 {
        self.lock().used
    }

    /// The directory holding the blobs.
    pub fn blob_dir(&self) -> PathBuf {
        self.dir.join("blobs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_extend_sweep_cap_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let s = FileStore::open(dir.path(), 100).unwrap();
        let (id, exp) = s.put(b"hello", 1000.0, 60).unwrap();
        assert_eq!(exp, 1060.0);
        assert_eq!(s.get(&id, 1001.0).unwrap(), b"hello");
        // Same bytes: same ID, refreshed expiry, no double counting.
        let (id2, exp2) = s.put(b"hello", 1030.0, 60).unwrap();
        assert_eq!((id2.as_str(), exp2), (id.as_str(), 1090.0));
        assert_eq!(s.used(), 5);
        assert_eq!(s.extend(&id, 1050.0, 100).unwrap(), 1150.0);
        assert!(matches!(
            s.put(&[1u8; 96], 1000.0, 60),
            Err(StoreError::Full {
                used: 5,
                size: 96,
                cap: 100
            })
        ));
        drop(s);
        let s = FileStore::open(dir.path(), 100).unwrap();
        assert_eq!(s.info(&id, 1100.0).unwrap().size, 5);
        assert!(matches!(s.get(&id, 1150.0), Err(StoreError::NotFound)));
        assert!(matches!(
            s.extend(&id, 1150.0, 60),
            Err(StoreError::NotFound)
        ));
        assert_eq!(s.sweep(1150.0), 1);
        assert_eq!(s.used(), 0);
        assert!(!dir.path().join("blobs").join(&id).exists());
        assert!(matches!(s.get("nope", 0.0), Err(StoreError::NotFound)));
    }

    /// The names in `dir/<sub>`, sorted.
    fn names(dir: &Path, sub: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir.join(sub))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// 16 threads put the same bytes at once (a barrier releases them
    /// together), for several rounds: every put succeeds with the one ID,
    /// the store records one file counted once, the blob reads back, no
    /// temporary file is left, and the sweep at expiry brings `used` to 0.
    #[test]
    fn concurrent_puts_of_the_same_bytes_store_and_count_one_file() {
        const THREADS: usize = 16;
        let dir = tempfile::tempdir().unwrap();
        let s = FileStore::open(dir.path(), 1 << 30).unwrap();
        for round in 0..8u8 {
            let data = vec![round; 256 * 1024];
            let size = data.len() as u64;
            let barrier = std::sync::Barrier::new(THREADS);
            let results: Vec<Result<(String, f64), StoreError>> = std::thread::scope(|sc| {
                let handles: Vec<_> = (0..THREADS)
                    .map(|_| {
                        sc.spawn(|| {
                            barrier.wait();
                            s.put(&data, 1000.0, 60)
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let id = file_id(&data);
            for r in &results {
                let (got, exp) = r.as_ref().unwrap();
                assert_eq!((got.as_str(), *exp), (id.as_str(), 1060.0), "round {round}");
            }
            assert_eq!(s.lock().files.len(), 1, "round {round}");
            assert_eq!(s.used(), size, "round {round}: counted once");
            assert_eq!(s.get(&id, 1001.0).unwrap(), data, "round {round}");
            assert_eq!(
                names(dir.path(), "blobs"),
                vec![id.clone()],
                "round {round}"
            );
            assert_eq!(names(dir.path(), "meta"), vec![format!("{id}.json")]);
            assert_eq!(s.sweep(1060.0), 1, "round {round}");
            assert_eq!(s.used(), 0, "round {round}: the sweep releases it all");
            assert!(names(dir.path(), "blobs").is_empty(), "round {round}");
            assert!(names(dir.path(), "meta").is_empty(), "round {round}");
        }
    }

    /// A put of bytes whose old copy has expired races the sweep that
    /// deletes it among 200 other expired files (so the sweep is still
    /// deleting when the put lands): whatever order they take, the new file
    /// is readable and counted exactly once.
    #[test]
    fn put_racing_the_sweep_of_its_expired_copy_keeps_a_readable_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = FileStore::open(dir.path(), 1 << 30).unwrap();
        s.set_durable(false);
        for round in 0..4u8 {
            for i in 0..200u16 {
                s.put(&[round, (i >> 8) as u8, i as u8, 1], 1000.0, 60)
                    .unwrap();
            }
            let data = vec![round; 1024];
            s.put(&data, 1000.0, 60).unwrap();
            let barrier = std::sync::Barrier::new(2);
            let (put, swept) = std::thread::scope(|sc| {
                let p = sc.spawn(|| {
                    barrier.wait();
                    s.put(&data, 2000.0, 60)
                });
                let w = sc.spawn(|| {
                    barrier.wait();
                    s.sweep(2000.0)
                });
                (p.join().unwrap(), w.join().unwrap())
            });
            let (id, exp) = put.unwrap();
            assert_eq!(exp, 2060.0, "round {round}");
            assert!((200..=201).contains(&swept), "round {round}: {swept}");
            assert_eq!(s.used(), data.len() as u64, "round {round}");
            assert_eq!(s.get(&id, 2001.0).unwrap(), data, "round {round}");
            assert_eq!(s.sweep(2060.0), 1, "round {round}");
            assert_eq!(s.used(), 0, "round {round}");
        }
    }

    /// Temporary files left by a crash and sidecars without a blob are
    /// deleted at open; recorded files are kept.
    #[test]
    fn open_deletes_leftover_temporary_files_and_orphan_sidecars() {
        let dir = tempfile::tempdir().unwrap();
        let s = FileStore::open(dir.path(), 100).unwrap();
        let (id, _) = s.put(b"kept", 1000.0, 60).unwrap();
        drop(s);
        let orphan = file_id(b"orphan");
        for (sub, name) in [
            ("blobs", format!("{orphan}.7.tmp")),
            ("meta", format!("{orphan}.json.8.tmp")),
            ("meta", format!("{orphan}.json")),
        ] {
            std::fs::write(dir.path().join(sub).join(name), b"x").unwrap();
        }
        let s = FileStore::open(dir.path(), 100).unwrap();
        assert_eq!(names(dir.path(), "blobs"), vec![id.clone()]);
        assert_eq!(names(dir.path(), "meta"), vec![format!("{id}.json")]);
        assert_eq!(
            (s.used(), s.get(&id, 1001.0).unwrap()),
            (4, b"kept".to_vec())
        );
    }
}
