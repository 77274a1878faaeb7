//! The blob store of the file server (spec `attachments.md` §4.3–§4.5):
//! opaque blobs as files on disk named by their content-hash ID, a small
//! JSON sidecar with upload and expiry times, a total size cap, and a sweep
//! that deletes expired files. Times are unix seconds (fractional allowed)
//! passed in by the caller.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

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
    used: u64,
}

/// Blobs on disk under `dir/blobs/<id>` with `dir/meta/<id>.json`.
pub struct FileStore {
    dir: PathBuf,
    cap: u64,
    inner: Mutex<Inner>,
    durable: bool,
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("dir", &self.dir)
            .field("cap", &self.cap)
            .finish_non_exhaustive()
    }
}

fn write_atomic(path: &Path, data: &[u8], durable: bool) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(data)?;
    if durable {
        f.sync_data()?;
    }
    std::fs::rename(&tmp, path)
}

impl FileStore {
    /// Opens (creating) the store in `dir` with a total cap of `cap` bytes,
    /// loading the sidecars of files already there. Blobs without a valid
    /// sidecar and leftover temporary files are deleted.
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
        Ok(FileStore {
            dir: dir.to_path_buf(),
            cap,
            inner: Mutex::new(Inner { files, used }),
            durable: true,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (every
        // mutation is a single insert/remove), so poisoning is ignored.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
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
    /// `now + ttl`. The same bytes again refresh the expiry. Returns the ID
    /// and the expiry.
    pub fn put(&self, data: &[u8], now: f64, ttl: u64) -> Result<(String, f64), StoreError> {
        let id = file_id(data);
        let expires = now + ttl as f64;
        let size = data.len() as u64;
        {
            let mut inner = self.lock();
            if let Some(m) = inner.files.get_mut(&id)
                && m.expires > now
            {
                m.expires = expires;
                let m = *m;
                drop(inner);
                self.write_meta(&id, &m)?;
                return Ok((id, expires));
            }
            let old = inner.files.get(&id).map_or(0, |m| m.size);
            let used = inner.used - old;
            if used + size > self.cap {
                return Err(StoreError::Full {
                    used,
                    size,
                    cap: self.cap,
                });
            }
            // Reserve the space before writing outside the lock.
            inner.used = used + size;
            inner.files.remove(&id);
        }
        let meta = FileMeta {
            size,
            uploaded: now,
            expires,
        };
        let written = write_atomic(&self.blob_path(&id), data, self.durable)
            .map_err(io("writing the blob"))
            .and_then(|()| self.write_meta(&id, &meta));
        let mut inner = self.lock();
        match written {
            Ok(()) => {
                inner.files.insert(id.clone(), meta);
                Ok((id, expires))
            }
            Err(e) => {
                inner.used -= size;
                let _ = std::fs::remove_file(self.blob_path(&id));
                Err(e)
            }
        }
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
        let m = {
            let mut inner = self.lock();
            let m = inner
                .files
                .get_mut(id)
                .filter(|m| m.expires > now)
                .ok_or(StoreError::NotFound)?;
            m.expires = now + ttl as f64;
            *m
        };
        self.write_meta(id, &m)?;
        Ok(m.expires)
    }

    /// Deletes every file expired at `now`; returns how many.
    pub fn sweep(&self, now: f64) -> usize {
        let expired: Vec<(String, u64)> = {
            let mut inner = self.lock();
            let ids: Vec<(String, u64)> = inner
                .files
                .iter()
                .filter(|(_, m)| m.expires <= now)
                .map(|(id, m)| (id.clone(), m.size))
                .collect();
            for (id, size) in &ids {
                inner.files.remove(id);
                inner.used -= size;
            }
            ids
        };
        for (id, _) in &expired {
            let _ = std::fs::remove_file(self.blob_path(id));
            let _ = std::fs::remove_file(self.meta_path(id));
        }
        expired.len()
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
}
