//! The profile directory of one account on this device (identity.md §4.3):
//! its exclusive lock, the local key and the encrypted local store that
//! holds the seed and everything else.
//!
//! Layout (directory mode 0700, files 0600):
//!
//! | file | holds |
//! | --- | --- |
//! | `lock` | empty; held with an exclusive OS file lock while a [`Profile`] lives |
//! | `profile.key` | the 32-byte local key: plain (hex), or wrapped with Argon2id(passphrase) → XChaCha20-Poly1305 |
//! | `store.sqlite` (+ `-wal`, `-shm`) | the [`LocalStore`]: the seed and its form, messages, … all sealed under the local key |
//!
//! The seed is stored only inside the store, sealed. Without a passphrase
//! the local key file is protected by file permissions alone; with one, by
//! Argon2id (cost parameters are recorded in the file, default
//! [`Argon2Params::PROFILE`]). The passphrase is used as its UTF-8 bytes,
//! without normalization.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use umbra_crypto::aead::{xchacha20_decrypt, xchacha20_encrypt};
use umbra_crypto::kdf::{Argon2Params, KdfError, argon2id};
use umbra_proto::identity::{AccountId, AccountKeys};
use umbra_proto::mnemonic::AccountSeed;
use zeroize::{Zeroize, Zeroizing};

use crate::store::{LocalKey, LocalStore, StoreError};

/// The key file's name.
pub const KEY_FILE: &str = "profile.key";
/// The store database's name.
pub const STORE_FILE: &str = "store.sqlite";
/// The lock file's name.
pub const LOCK_FILE: &str = "lock";
/// The environment variable that overrides the default profile directory.
pub const HOME_ENV: &str = "UMBRA_HOME";

const KEY_FILE_FORMAT: &str = "umbra-profile-key";
const KEY_FILE_VERSION: u32 = 1;
const PROTECTION_NONE: &str = "none";
const PROTECTION_PASSPHRASE: &str = "argon2id-xchacha20poly1305";

/// Why a profile could not be created or opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// There is no profile in the directory.
    #[error("no Umbra profile in {}", dir.display())]
    NoProfile {
        /// The directory.
        dir: PathBuf,
    },
    /// Creating over an existing profile was refused.
    #[error("an Umbra profile already exists in {}", dir.display())]
    AlreadyExists {
        /// The directory.
        dir: PathBuf,
    },
    /// Another process (or another `Profile` in this one) holds the lock.
    #[error("profile {} is in use by another umbra process", dir.display())]
    InUse {
        /// The directory.
        dir: PathBuf,
    },
    /// The passphrase does not unlock the key (or the key file was altered).
    #[error("wrong passphrase")]
    WrongPassphrase,
    /// The profile is passphrase-protected and none was given.
    #[error("this profile is protected by a passphrase; one is required to open it")]
    PassphraseRequired,
    /// A passphrase was given for a profile that has none.
    #[error("this profile has no passphrase; open it without one")]
    NoPassphraseSet,
    /// An empty passphrase was given (omit it instead).
    #[error("the passphrase is empty; give a non-empty passphrase or none")]
    EmptyPassphrase,
    /// The key file cannot be read.
    #[error("{} is invalid: {reason}", path.display())]
    BadKeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The store holds no seed (a damaged or foreign profile).
    #[error("the profile's store holds no account seed")]
    MissingSeed,
    /// No default profile directory can be found.
    #[error("cannot find a home directory for the profile; set {HOME_ENV}")]
    NoHome,
    /// A file operation failed.
    #[error("{context} {}: {source}", path.display())]
    Io {
        /// What was being done.
        context: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The key derivation refused its parameters.
    #[error(transparent)]
    Kdf(#[from] KdfError),
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn io<'a>(
    context: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> ProfileError + 'a {
    move |source| ProfileError::Io {
        context,
        path: path.to_owned(),
        source,
    }
}

/// Argon2id parameters as written in the key file.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct KdfJson {
    memory_kib: u32,
    iterations: u32,
    lanes: u32,
}

/// `profile.key` as JSON. The hex key of an unprotected file is zeroized
/// on drop.
#[derive(Serialize, Deserialize)]
struct KeyFileJson {
    format: String,
    version: u32,
    protection: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    argon2id: Option<KdfJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    salt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nonce: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wrapped_key: Option<String>,
}

impl Drop for KeyFileJson {
    fn drop(&mut self) {
        if let Some(k) = &mut self.key {
            k.zeroize();
        }
    }
}

/// The associated data binding a wrapped key to its KDF parameters.
fn wrap_aad(p: &Argon2Params, salt: &[u8]) -> Vec<u8> {
    let mut aad = b"umbra profile.key v1 argon2id-xchacha20poly1305".to_vec();
    aad.extend_from_slice(&p.memory_kib.to_le_bytes());
    aad.extend_from_slice(&p.iterations.to_le_bytes());
    aad.extend_from_slice(&p.lanes.to_le_bytes());
    aad.extend_from_slice(salt);
    aad
}

/// Serializes the key file for `key`, wrapped when a passphrase is given.
fn encode_key_file(
    key: &LocalKey,
    passphrase: Option<&str>,
    kdf: Argon2Params,
) -> Result<Zeroizing<Vec<u8>>, ProfileError> {
    let json = match passphrase {
        None => KeyFileJson {
            format: KEY_FILE_FORMAT.into(),
            version: KEY_FILE_VERSION,
            protection: PROTECTION_NONE.into(),
            key: Some(hex::encode(key.as_bytes())),
            argon2id: None,
            salt: None,
            nonce: None,
            wrapped_key: None,
        },
        Some(pw) => {
            let salt = umbra_crypto::random_bytes::<16>();
            let nonce = umbra_crypto::random_bytes::<24>();
            let kek = argon2id(pw.as_bytes(), &salt, &kdf)?;
            let wrapped = xchacha20_encrypt(&kek, &nonce, key.as_bytes(), &wrap_aad(&kdf, &salt));
            KeyFileJson {
                format: KEY_FILE_FORMAT.into(),
                version: KEY_FILE_VERSION,
                protection: PROTECTION_PASSPHRASE.into(),
                key: None,
                argon2id: Some(KdfJson {
                    memory_kib: kdf.memory_kib,
                    iterations: kdf.iterations,
                    lanes: kdf.lanes,
                }),
                salt: Some(hex::encode(salt)),
                nonce: Some(hex::encode(nonce)),
                wrapped_key: Some(hex::encode(wrapped)),
            }
        }
    };
    let mut out = serde_json::to_vec_pretty(&json).map_err(|e| ProfileError::BadKeyFile {
        path: PathBuf::from(KEY_FILE),
        reason: e.to_string(),
    })?;
    out.push(b'\n');
    Ok(Zeroizing::new(out))
}

/// A parsed key file, before unlocking.
struct KeyFile {
    path: PathBuf,
    json: KeyFileJson,
}

impl KeyFile {
    fn read(path: &Path) -> Result<KeyFile, ProfileError> {
        let bytes = Zeroizing::new(fs::read(path).map_err(io("reading", path))?);
        let bad = |reason: &str| ProfileError::BadKeyFile {
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        let json: KeyFileJson =
            serde_json::from_slice(&bytes).map_err(|_| bad("not a profile key file (bad JSON)"))?;
        if json.format != KEY_FILE_FORMAT {
            return Err(bad("not a profile key file"));
        }
        if json.version != KEY_FILE_VERSION {
            return Err(bad("unsupported key file version; upgrade umbra"));
        }
        if json.protection != PROTECTION_NONE && json.protection != PROTECTION_PASSPHRASE {
            return Err(bad("unknown protection"));
        }
        Ok(KeyFile {
            path: path.to_owned(),
            json,
        })
    }

    fn protected(&self) -> bool {
        self.json.protection == PROTECTION_PASSPHRASE
    }

    fn bad(&self, reason: &str) -> ProfileError {
        ProfileError::BadKeyFile {
            path: self.path.clone(),
            reason: reason.to_owned(),
        }
    }

    fn hex_field(
        &self,
        v: Option<&String>,
        name: &str,
    ) -> Result<Zeroizing<Vec<u8>>, ProfileError> {
        let s = v.ok_or_else(|| self.bad(&format!("missing {name}")))?;
        hex::decode(s)
            .map(Zeroizing::new)
            .map_err(|_| self.bad(&format!("{name} is not hex")))
    }

    fn unlock(&self, passphrase: Option<&str>) -> Result<LocalKey, ProfileError> {
        let to_key = |b: &[u8]| -> Result<LocalKey, ProfileError> {
            let arr: [u8; 32] = b
                .try_into()
                .map_err(|_| self.bad("the key is not 32 bytes"))?;
            Ok(LocalKey::from_bytes(arr))
        };
        match (self.protected(), passphrase) {
            (false, Some(_)) => Err(ProfileError::NoPassphraseSet),
            (true, None) => Err(ProfileError::PassphraseRequired),
            (false, None) => to_key(&self.hex_field(self.json.key.as_ref(), "key")?),
            (true, Some(pw)) => {
                let k = self
                    .json
                    .argon2id
                    .ok_or_else(|| self.bad("missing argon2id parameters"))?;
                let params = Argon2Params {
                    memory_kib: k.memory_kib,
                    iterations: k.iterations,
                    lanes: k.lanes,
                };
                let salt = self.hex_field(self.json.salt.as_ref(), "salt")?;
                let nonce = self.hex_field(self.json.nonce.as_ref(), "nonce")?;
                let wrapped = self.hex_field(self.json.wrapped_key.as_ref(), "wrapped_key")?;
                let kek = argon2id(pw.as_bytes(), &salt, &params)?;
                let plain = Zeroizing::new(
                    xchacha20_decrypt(&kek, &nonce, &wrapped, &wrap_aad(&params, &salt))
                        .map_err(|_| ProfileError::WrongPassphrase)?,
                );
                to_key(&plain)
            }
        }
    }
}

/// Writes `bytes` to `path` atomically (a temporary file of its own in the
/// same directory, mode 0600, fsync, rename), so that two writers of one
/// profile (the daemon and a CLI command) never rename each other's file.
fn write_private_atomic(path: &Path, bytes: &[u8]) -> Result<(), ProfileError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    // tempfile creates the file with mode 0600 and removes it if dropped.
    let mut tmp = tempfile::Builder::new()
        .prefix(".umbra-write")
        .tempfile_in(dir)
        .map_err(io("creating a temporary file in", dir))?;
    tmp.write_all(bytes).map_err(io("writing", tmp.path()))?;
    tmp.as_file().sync_all().map_err(io("syncing", path))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .map_err(io("replacing", path))?;
    if let Ok(d) = File::open(dir) {
        // Best effort: persist the rename itself.
        let _ = d.sync_all();
    }
    Ok(())
}

/// Creates `dir` (and missing parents) with mode 0700.
fn create_private_dir(dir: &Path) -> Result<(), ProfileError> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir).map_err(io("creating directory", dir))
}

/// Opens the lock file and takes the exclusive lock, or reports the
/// profile in use.
///
/// `File::try_lock` (an OS advisory lock: `flock` on Unix, `LockFileEx` on
/// Windows) is stable since Rust 1.89; the workspace still declares 1.88.
#[allow(clippy::incompatible_msrv)]
fn take_lock(dir: &Path) -> Result<File, ProfileError> {
    let path = dir.join(LOCK_FILE);
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let f = opts
        .open(&path)
        .map_err(io("opening the lock file", &path))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(fs::TryLockError::WouldBlock) => Err(ProfileError::InUse {
            dir: dir.to_owned(),
        }),
        Err(fs::TryLockError::Error(e)) => Err(ProfileError::Io {
            context: "locking",
            path,
            source: e,
        }),
    }
}

/// Warns when a secret file is readable by others.
fn check_private(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = fs::metadata(path)
            && m.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                file = %path.display(),
                "profile file is accessible by other users; it should be mode 0600"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// One account's profile: its keys and its local store, locked for this
/// process while the value lives.
pub struct Profile {
    dir: PathBuf,
    seed: AccountSeed,
    keys: AccountKeys,
    local_key: LocalKey,
    protected: bool,
    store: LocalStore,
    // Declared last: dropped (unlocked) after the store is closed.
    _lock: File,
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile")
            .field("dir", &self.dir)
            .field("account_id", &self.keys.account_id())
            .field("protected", &self.protected)
            .finish_non_exhaustive()
    }
}

impl Profile {
    /// Creates a new profile in `dir` (created with mode 0700 if missing)
    /// for the account `seed`, its local key protected by `passphrase` when
    /// given (Argon2id with [`Argon2Params::PROFILE`]). Refuses a directory
    /// that already holds a profile.
    pub fn create(
        dir: &Path,
        seed: &AccountSeed,
        passphrase: Option<&str>,
    ) -> Result<Profile, ProfileError> {
        Self::create_with_kdf(dir, seed, passphrase, Argon2Params::PROFILE)
    }

    /// As [`Profile::create`], with given Argon2id costs (tests use cheap
    /// ones; they are recorded in the key file).
    pub fn create_with_kdf(
        dir: &Path,
        seed: &AccountSeed,
        passphrase: Option<&str>,
        kdf: Argon2Params,
    ) -> Result<Profile, ProfileError> {
        if passphrase.is_some_and(str::is_empty) {
            return Err(ProfileError::EmptyPassphrase);
        }
        kdf.validate()?;
        create_private_dir(dir)?;
        let lock = take_lock(dir)?;
        let key_path = dir.join(KEY_FILE);
        let store_path = dir.join(STORE_FILE);
        if key_path.exists() || store_path.exists() {
            return Err(ProfileError::AlreadyExists {
                dir: dir.to_owned(),
            });
        }
        let local_key = LocalKey::generate();
        let result = (|| {
            let store = LocalStore::open(&store_path, &local_key)?;
            store.set_account_seed(seed)?;
            store.checkpoint()?;
            // The key file is written last: a profile without it is no
            // profile, so a crash before this point leaves none behind.
            let bytes = encode_key_file(&local_key, passphrase, kdf)?;
            write_private_atomic(&key_path, &bytes)?;
            Ok(store)
        })();
        let store = match result {
            Ok(s) => s,
            Err(e) => {
                for f in [&key_path, &store_path] {
                    let _ = fs::remove_file(f);
                }
                for suffix in ["-wal", "-shm"] {
                    let mut p = store_path.clone().into_os_string();
                    p.push(suffix);
                    let _ = fs::remove_file(PathBuf::from(p));
                }
                return Err(e);
            }
        };
        Ok(Profile {
            dir: dir.to_owned(),
            seed: seed.clone(),
            keys: seed.keys(),
            local_key,
            protected: passphrase.is_some(),
            store,
            _lock: lock,
        })
    }

    /// Opens the profile in `dir`. Errors say which case it is:
    /// [`ProfileError::NoProfile`], [`ProfileError::InUse`],
    /// [`ProfileError::PassphraseRequired`],
    /// [`ProfileError::WrongPassphrase`], [`ProfileError::NoPassphraseSet`].
    pub fn open(dir: &Path, passphrase: Option<&str>) -> Result<Profile, ProfileError> {
        if passphrase.is_some_and(str::is_empty) {
            return Err(ProfileError::EmptyPassphrase);
        }
        let key_path = dir.join(KEY_FILE);
        let store_path = dir.join(STORE_FILE);
        if !key_path.is_file() || !store_path.is_file() {
            return Err(ProfileError::NoProfile {
                dir: dir.to_owned(),
            });
        }
        let lock = take_lock(dir)?;
        check_private(&key_path);
        check_private(&store_path);
        let key_file = KeyFile::read(&key_path)?;
        let local_key = key_file.unlock(passphrase)?;
        let store = LocalStore::open(&store_path, &local_key)?;
        let seed = store.account_seed()?.ok_or(ProfileError::MissingSeed)?;
        Ok(Profile {
            dir: dir.to_owned(),
            keys: seed.keys(),
            seed,
            local_key,
            protected: key_file.protected(),
            store,
            _lock: lock,
        })
    }

    /// Whether `dir` holds a profile (its key file exists).
    pub fn exists(dir: &Path) -> bool {
        dir.join(KEY_FILE).is_file()
    }

    /// Whether the profile in `dir` needs a passphrase to open (so a CLI
    /// knows whether to ask for one).
    pub fn is_passphrase_protected(dir: &Path) -> Result<bool, ProfileError> {
        let key_path = dir.join(KEY_FILE);
        if !key_path.is_file() {
            return Err(ProfileError::NoProfile {
                dir: dir.to_owned(),
            });
        }
        Ok(KeyFile::read(&key_path)?.protected())
    }

    /// The default profile directory: `$UMBRA_HOME` if set; otherwise the
    /// platform data directory — `$XDG_DATA_HOME/umbra` or
    /// `~/.local/share/umbra` on Linux and other Unix systems,
    /// `~/Library/Application Support/umbra` on macOS, `%APPDATA%\umbra` on
    /// Windows.
    pub fn default_dir() -> Result<PathBuf, ProfileError> {
        Self::default_dir_from(|k| std::env::var_os(k))
    }

    /// [`Profile::default_dir`] with the environment given as a lookup
    /// function (for tests).
    pub fn default_dir_from(
        var: impl Fn(&str) -> Option<OsString>,
    ) -> Result<PathBuf, ProfileError> {
        let get = |k: &str| var(k).filter(|v| !v.is_empty());
        if let Some(h) = get(HOME_ENV) {
            return Ok(PathBuf::from(h));
        }
        if cfg!(windows) {
            return get("APPDATA")
                .map(|a| PathBuf::from(a).join("umbra"))
                .ok_or(ProfileError::NoHome);
        }
        if cfg!(target_os = "macos") {
            return get("HOME")
                .map(|h| {
                    PathBuf::from(h)
                        .join("Library")
                        .join("Application Support")
                        .join("umbra")
                })
                .ok_or(ProfileError::NoHome);
        }
        if let Some(x) = get("XDG_DATA_HOME").map(PathBuf::from)
            && x.is_absolute()
        {
            return Ok(x.join("umbra"));
        }
        get("HOME")
            .map(|h| PathBuf::from(h).join(".local").join("share").join("umbra"))
            .ok_or(ProfileError::NoHome)
    }

    /// The profile directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The account keys.
    pub fn keys(&self) -> &AccountKeys {
        &self.keys
    }

    /// The account ID.
    pub fn account_id(&self) -> AccountId {
        self.keys.account_id()
    }

    /// The account seed (and its phrase form).
    pub fn seed(&self) -> &AccountSeed {
        &self.seed
    }

    /// The recovery phrase: 25 words for an Umbra account, 13 for a
    /// restored Session account (identity.md §4).
    pub fn phrase(&self) -> Zeroizing<String> {
        self.seed.phrase()
    }

    /// The local store.
    pub fn store(&self) -> &LocalStore {
        &self.store
    }

    /// Whether the local key is protected by a passphrase.
    pub fn has_passphrase(&self) -> bool {
        self.protected
    }

    /// Sets, changes (`Some`) or removes (`None`) the passphrase by
    /// rewriting `profile.key` atomically; the store is unchanged.
    pub fn change_passphrase(&mut self, new: Option<&str>) -> Result<(), ProfileError> {
        self.change_passphrase_with_kdf(new, Argon2Params::PROFILE)
    }

    /// As [`Profile::change_passphrase`], with given Argon2id costs.
    pub fn change_passphrase_with_kdf(
        &mut self,
        new: Option<&str>,
        kdf: Argon2Params,
    ) -> Result<(), ProfileError> {
        if new.is_some_and(str::is_empty) {
            return Err(ProfileError::EmptyPassphrase);
        }
        kdf.validate()?;
        let bytes = encode_key_file(&self.local_key, new, kdf)?;
        write_private_atomic(&self.dir.join(KEY_FILE), &bytes)?;
        self.protected = new.is_some();
        Ok(())
    }

    /// Checkpoints and closes the store, then releases the lock (dropping
    /// the profile does the same without reporting errors).
    pub fn close(self) -> Result<(), ProfileError> {
        let Profile { store, _lock, .. } = self;
        store.close()?;
        drop(_lock);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Direction, Disappearing, MessageStatus, NewMessage};
    use umbra_proto::identity::IdPrefix;
    use umbra_proto::rpc::Namespace;

    const CHEAP: Argon2Params = Argon2Params::INSECURE_TEST;

    fn seed() -> AccountSeed {
        let mut s = [0u8; 32];
        for (i, b) in s.iter_mut().enumerate() {
            *b = 0xA0 ^ (i as u8).wrapping_mul(37);
        }
        AccountSeed::new_umbra(&s)
    }

    fn create(dir: &Path, pw: Option<&str>) -> Profile {
        Profile::create_with_kdf(dir, &seed(), pw, CHEAP).unwrap()
    }

    #[cfg(unix)]
    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn create_then_open_without_passphrase() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("profile");
        assert!(!Profile::exists(&dir));
        let p = create(&dir, None);
        assert!(Profile::exists(&dir));
        assert!(!p.has_passphrase());
        assert_eq!(p.dir(), dir);
        let id = p.account_id();
        assert_eq!(id, seed().keys().account_id());
        assert_eq!(p.keys().account_id(), id);
        assert_eq!(*p.phrase(), *seed().phrase());
        assert_eq!(p.phrase().split_whitespace().count(), 25);
        assert_eq!(p.seed().ed_seed(), seed().ed_seed());
        p.store().set_setting("x", "y").unwrap();
        #[cfg(unix)]
        {
            assert_eq!(mode(&dir), 0o700);
            assert_eq!(mode(&dir.join(KEY_FILE)), 0o600);
            assert_eq!(mode(&dir.join(STORE_FILE)), 0o600);
            assert_eq!(mode(&dir.join(LOCK_FILE)), 0o600);
        }
        p.close().unwrap();

        assert!(!Profile::is_passphrase_protected(&dir).unwrap());
        let p = Profile::open(&dir, None).unwrap();
        assert_eq!(p.account_id(), id);
        assert_eq!(p.store().setting("x").unwrap().as_deref(), Some("y"));
        drop(p);
        assert!(matches!(
            Profile::open(&dir, Some("pw")),
            Err(ProfileError::NoPassphraseSet)
        ));
    }

    #[test]
    fn create_then_open_with_passphrase() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let p = create(dir, Some("correct horse"));
        assert!(p.has_passphrase());
        let id = p.account_id();
        drop(p);
        assert!(Profile::is_passphrase_protected(dir).unwrap());
        let e = Profile::open(dir, Some("wrong horse")).unwrap_err();
        assert!(matches!(e, ProfileError::WrongPassphrase));
        assert_eq!(e.to_string(), "wrong passphrase");
        assert!(matches!(
            Profile::open(dir, None),
            Err(ProfileError::PassphraseRequired)
        ));
        assert!(matches!(
            Profile::open(dir, Some("")),
            Err(ProfileError::EmptyPassphrase)
        ));
        let p = Profile::open(dir, Some("correct horse")).unwrap();
        assert_eq!(p.account_id(), id);
    }

    #[test]
    fn session_accounts_keep_their_13_word_phrase() {
        let tmp = tempfile::tempdir().unwrap();
        let s = AccountSeed::from_session_seed(&[0x5a; 16]);
        let p = Profile::create_with_kdf(tmp.path(), &s, None, CHEAP).unwrap();
        drop(p);
        let p = Profile::open(tmp.path(), None).unwrap();
        assert_eq!(p.phrase().split_whitespace().count(), 13);
        assert_eq!(p.account_id(), s.keys().account_id());
    }

    #[test]
    fn refuses_existing_and_missing_profiles() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let e = Profile::open(dir, None).unwrap_err();
        assert!(matches!(e, ProfileError::NoProfile { .. }));
        assert!(e.to_string().starts_with("no Umbra profile in "));
        assert!(matches!(
            Profile::is_passphrase_protected(dir),
            Err(ProfileError::NoProfile { .. })
        ));
        assert!(matches!(
            Profile::create_with_kdf(dir, &seed(), Some(""), CHEAP),
            Err(ProfileError::EmptyPassphrase)
        ));
        create(dir, None).close().unwrap();
        let other = AccountSeed::new_umbra(&[1; 32]);
        assert!(matches!(
            Profile::create_with_kdf(dir, &other, None, CHEAP),
            Err(ProfileError::AlreadyExists { .. })
        ));
        // The existing profile is untouched.
        assert_eq!(
            Profile::open(dir, None).unwrap().account_id(),
            seed().keys().account_id()
        );
    }

    #[test]
    fn second_open_is_refused_while_the_first_lives() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let p = create(dir, None);
        let e = Profile::open(dir, None).unwrap_err();
        assert!(matches!(e, ProfileError::InUse { .. }));
        assert!(
            e.to_string()
                .ends_with("is in use by another umbra process")
        );
        // Creating over it reports the lock too, not "already exists".
        assert!(matches!(
            Profile::create_with_kdf(dir, &seed(), None, CHEAP),
            Err(ProfileError::InUse { .. })
        ));
        drop(p);
        let p = Profile::open(dir, None).unwrap();
        assert!(matches!(
            Profile::open(dir, None),
            Err(ProfileError::InUse { .. })
        ));
        p.close().unwrap();
        Profile::open(dir, None).unwrap();
    }

    #[test]
    fn change_passphrase_rewraps_the_key() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut p = create(dir, None);
        p.store().set_setting("k", "v").unwrap();
        p.change_passphrase_with_kdf(Some("one"), CHEAP).unwrap();
        assert!(p.has_passphrase());
        assert!(matches!(
            p.change_passphrase_with_kdf(Some(""), CHEAP),
            Err(ProfileError::EmptyPassphrase)
        ));
        drop(p);
        assert!(matches!(
            Profile::open(dir, None),
            Err(ProfileError::PassphraseRequired)
        ));
        let mut p = Profile::open(dir, Some("one")).unwrap();
        assert_eq!(p.store().setting("k").unwrap().as_deref(), Some("v"));
        p.change_passphrase_with_kdf(Some("two"), CHEAP).unwrap();
        drop(p);
        assert!(matches!(
            Profile::open(dir, Some("one")),
            Err(ProfileError::WrongPassphrase)
        ));
        let mut p = Profile::open(dir, Some("two")).unwrap();
        p.change_passphrase_with_kdf(None, CHEAP).unwrap();
        drop(p);
        assert_eq!(
            Profile::open(dir, None)
                .unwrap()
                .store()
                .setting("k")
                .unwrap()
                .as_deref(),
            Some("v")
        );
        #[cfg(unix)]
        assert_eq!(mode(&dir.join(KEY_FILE)), 0o600);
        let leftovers: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".umbra-write"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }

    #[test]
    fn concurrent_writes_of_one_file_all_succeed() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("settings");
        let writers: Vec<_> = (0..4u8)
            .map(|w| {
                let path = path.clone();
                std::thread::spawn(move || {
                    (0..50).all(|_| write_private_atomic(&path, &[w; 64]).is_ok())
                })
            })
            .collect();
        for w in writers {
            assert!(w.join().unwrap(), "a concurrent write failed");
        }
        let last = fs::read(&path).unwrap();
        assert_eq!(last.len(), 64);
        assert!(last.iter().all(|&b| b == last[0]), "a torn file");
        #[cfg(unix)]
        assert_eq!(mode(&path), 0o600);
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
    }

    #[test]
    fn damaged_key_files_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        create(dir, Some("pw")).close().unwrap();
        let path = dir.join(KEY_FILE);
        let good = fs::read_to_string(&path).unwrap();

        // KDF parameters are bound to the wrapped key.
        let v: serde_json::Value = serde_json::from_str(&good).unwrap();
        let mut changed = v.clone();
        changed["argon2id"]["iterations"] = serde_json::json!(2);
        fs::write(&path, changed.to_string()).unwrap();
        assert!(matches!(
            Profile::open(dir, Some("pw")),
            Err(ProfileError::WrongPassphrase)
        ));
        // Absurd parameters are refused before any work.
        let mut huge = v.clone();
        huge["argon2id"]["memory_kib"] = serde_json::json!(u32::MAX);
        fs::write(&path, huge.to_string()).unwrap();
        assert!(matches!(
            Profile::open(dir, Some("pw")),
            Err(ProfileError::Kdf(KdfError::BadParams(_)))
        ));
        for (bad, reason) in [
            ("not json", "bad JSON"),
            (
                r#"{"format":"x","version":1,"protection":"none"}"#,
                "not a profile key file",
            ),
            (
                r#"{"format":"umbra-profile-key","version":2,"protection":"none"}"#,
                "unsupported",
            ),
            (
                r#"{"format":"umbra-profile-key","version":1,"protection":"rot13"}"#,
                "unknown protection",
            ),
            (
                r#"{"format":"umbra-profile-key","version":1,"protection":"none"}"#,
                "missing key",
            ),
            (
                r#"{"format":"umbra-profile-key","version":1,"protection":"none","key":"zz"}"#,
                "not hex",
            ),
            (
                r#"{"format":"umbra-profile-key","version":1,"protection":"none","key":"abcd"}"#,
                "not 32 bytes",
            ),
        ] {
            fs::write(&path, bad).unwrap();
            match Profile::open(dir, None) {
                Err(ProfileError::BadKeyFile { reason: r, .. }) => {
                    assert!(r.contains(reason), "{bad}: {r}")
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
        // Another valid key: the store says so.
        let other = encode_key_file(&LocalKey::from_bytes([9; 32]), None, CHEAP).unwrap();
        fs::write(&path, &*other).unwrap();
        assert!(matches!(
            Profile::open(dir, None),
            Err(ProfileError::Store(StoreError::WrongKey))
        ));
        // The good file still works.
        fs::write(&path, good).unwrap();
        Profile::open(dir, Some("pw")).unwrap();
    }

    #[test]
    fn default_dir_follows_the_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        assert_eq!(
            Profile::default_dir_from(env(&[("UMBRA_HOME", "/x/u"), ("HOME", "/h")])).unwrap(),
            PathBuf::from("/x/u")
        );
        assert!(matches!(
            Profile::default_dir_from(env(&[])),
            Err(ProfileError::NoHome)
        ));
        if cfg!(all(unix, not(target_os = "macos"))) {
            assert_eq!(
                Profile::default_dir_from(env(&[("UMBRA_HOME", ""), ("HOME", "/h")])).unwrap(),
                PathBuf::from("/h/.local/share/umbra")
            );
            assert_eq!(
                Profile::default_dir_from(env(&[("XDG_DATA_HOME", "/d"), ("HOME", "/h")])).unwrap(),
                PathBuf::from("/d/umbra")
            );
            // A relative XDG_DATA_HOME is ignored (XDG base directory spec).
            assert_eq!(
                Profile::default_dir_from(env(&[("XDG_DATA_HOME", "rel"), ("HOME", "/h")]))
                    .unwrap(),
                PathBuf::from("/h/.local/share/umbra")
            );
        }
        assert!(Profile::default_dir().is_ok() || std::env::var_os("HOME").is_none());
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
    }

    /// Fills a profile with distinctive secrets, closes it and searches
    /// every file of the directory for them.
    fn assert_nothing_in_the_clear(passphrase: Option<&str>) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let p = create(dir, passphrase);
        let me = p.account_id();
        let peer = AccountId::new(IdPrefix::Standard, [0x3c; 32]);
        let phrase = p.phrase().to_string();
        let s = p.store();
        for i in 0..20u64 {
            let (direction, author) = if i % 2 == 0 {
                (Direction::In, peer)
            } else {
                (Direction::Out, me)
            };
            s.insert_message(&NewMessage {
                peer,
                direction,
                author,
                timestamp_ms: 1_000 + i,
                received_at_ms: 2_000 + i,
                text: format!("SECRET-PLAINTEXT-{i}"),
                status: MessageStatus::Sent,
                hash: Some(format!("SECRETHASH{i}")),
                disappearing: Disappearing::OFF,
                expires_at_ms: None,
            })
            .unwrap();
        }
        // Note-to-Self too.
        s.insert_message(&NewMessage {
            peer: me,
            direction: Direction::Out,
            author: me,
            timestamp_ms: 5,
            received_at_ms: 5,
            text: "SECRET-PLAINTEXT-note".into(),
            status: MessageStatus::Sent,
            hash: None,
            disappearing: Disappearing::OFF,
            expires_at_ms: None,
        })
        .unwrap();
        s.set_approved_by_us(&peer, true).unwrap();
        s.set_contact_name(&peer, "SECRET-CONTACT-NAME").unwrap();
        s.set_setting("display_name", "SECRET-SETTING-VALUE")
            .unwrap();
        s.put_blob("guards", b"SECRET-BLOB-GUARDS").unwrap();
        s.mark_seen("SECRETSEEN", 10_000).unwrap();
        s.set_last_hash(Namespace(0), "SECRETNODE", "SECRETLAST")
            .unwrap();
        p.close().unwrap();

        let mut all = Vec::new();
        let mut names = Vec::new();
        for e in fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            names.push(path.file_name().unwrap().to_string_lossy().into_owned());
            all.extend(fs::read(&path).unwrap());
        }
        // The WAL was checkpointed into the database and removed.
        assert!(names.iter().any(|n| n == STORE_FILE), "{names:?}");
        assert!(all.len() > 4096);

        let sd = seed();
        let mut needles: Vec<(String, Vec<u8>)> = vec![
            ("message text".into(), b"SECRET-PLAINTEXT".to_vec()),
            ("contact name".into(), b"SECRET-CONTACT".to_vec()),
            ("setting value".into(), b"SECRET-SETTING".to_vec()),
            ("blob".into(), b"SECRET-BLOB".to_vec()),
            ("swarm hash".into(), b"SECRETHASH".to_vec()),
            ("seen hash".into(), b"SECRETSEEN".to_vec()),
            ("node key".into(), b"SECRETNODE".to_vec()),
            ("last hash".into(), b"SECRETLAST".to_vec()),
            ("seed".into(), sd.ed_seed().to_vec()),
            ("seed hex".into(), hex::encode(sd.ed_seed()).into_bytes()),
            (
                "seed HEX".into(),
                hex::encode_upper(sd.ed_seed()).into_bytes(),
            ),
            ("own id hex".into(), me.to_string().into_bytes()),
            ("own id hex key".into(), hex::encode(me.key()).into_bytes()),
            ("own id bytes".into(), me.key().to_vec()),
            ("peer id hex".into(), peer.to_string().into_bytes()),
            ("peer id bytes".into(), peer.key().to_vec()),
            ("phrase".into(), phrase.clone().into_bytes()),
        ];
        let words: Vec<&str> = phrase.split_whitespace().collect();
        // Single short words can occur by chance (and "key" or "not" are in
        // the SQL schema); adjacent pairs cannot.
        for w in words.windows(2) {
            needles.push((format!("phrase words {w:?}"), w.join(" ").into_bytes()));
        }
        for (what, needle) in &needles {
            assert!(
                !contains(&all, needle),
                "{what} found in the profile directory (passphrase: {})",
                passphrase.is_some()
            );
        }
        // The test can fail: the needles are really what a plaintext store
        // would hold.
        assert!(contains(
            format!("{} SECRET-PLAINTEXT-3", peer).as_bytes(),
            &needles[0].1
        ));
        // And the data is all still there after reopening.
        let p = Profile::open(dir, passphrase).unwrap();
        let msgs = p.store().messages(&peer, None).unwrap();
        assert_eq!(msgs.len(), 20);
        assert_eq!(msgs[3].text, "SECRET-PLAINTEXT-3");
        assert_eq!(msgs[3].hash.as_deref(), Some("SECRETHASH3"));
        assert_eq!(
            p.store().contact_name(&peer).unwrap().as_deref(),
            Some("SECRET-CONTACT-NAME")
        );
        assert_eq!(
            p.store().blob("guards").unwrap().as_deref(),
            Some(&b"SECRET-BLOB-GUARDS"[..])
        );
        assert_eq!(*p.phrase(), phrase);
    }

    #[test]
    fn nothing_in_the_clear_without_passphrase() {
        assert_nothing_in_the_clear(None);
    }

    #[test]
    fn nothing_in_the_clear_with_passphrase() {
        assert_nothing_in_the_clear(Some("SECRET-PASSPHRASE"));
    }

    #[test]
    fn passphrase_key_file_holds_no_key_material() {
        let tmp = tempfile::tempdir().unwrap();
        let p = create(tmp.path(), Some("SECRET-PASSPHRASE"));
        let local = hex::encode(p.local_key.as_bytes());
        drop(p);
        let text = fs::read_to_string(tmp.path().join(KEY_FILE)).unwrap();
        assert!(!text.contains(&local));
        assert!(!text.contains("SECRET-PASSPHRASE"));
        assert!(text.contains(PROTECTION_PASSPHRASE));
        // Without a passphrase the key is there, protected by mode 0600.
        let tmp2 = tempfile::tempdir().unwrap();
        let p = create(tmp2.path(), None);
        let local = hex::encode(p.local_key.as_bytes());
        drop(p);
        let text = fs::read_to_string(tmp2.path().join(KEY_FILE)).unwrap();
        assert!(text.contains(&local));
    }

    #[test]
    fn expire_due_removes_messages_and_their_text() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let p = create(dir, None);
        let peer = AccountId::new(IdPrefix::Standard, [0x3c; 32]);
        let id = p
            .store()
            .insert_message(&NewMessage {
                peer,
                direction: Direction::In,
                author: peer,
                timestamp_ms: 1_000,
                received_at_ms: 1_000,
                text: "EPHEMERAL".into(),
                status: MessageStatus::Delivered,
                hash: Some("h".into()),
                disappearing: Disappearing {
                    mode: crate::store::DisappearingMode::AfterSend,
                    timer_s: 60,
                },
                expires_at_ms: Some(61_000),
            })
            .unwrap()
            .unwrap();
        assert_eq!(p.store().expire_due(60_999).unwrap(), 0);
        assert_eq!(p.store().expire_due(61_000).unwrap(), 1);
        assert_eq!(p.store().message(id).unwrap(), None);
        assert!(p.store().messages(&peer, None).unwrap().is_empty());
        assert_eq!(p.store().message_by_hash("h").unwrap(), None);
        p.close().unwrap();
        let p = Profile::open(dir, None).unwrap();
        assert!(p.store().messages(&peer, None).unwrap().is_empty());
    }

    #[test]
    fn default_kdf_parameters_work() {
        let tmp = tempfile::tempdir().unwrap();
        let p = Profile::create(tmp.path(), &seed(), Some("pw")).unwrap();
        drop(p);
        let text = fs::read_to_string(tmp.path().join(KEY_FILE)).unwrap();
        assert!(text.contains("\"memory_kib\": 65536"), "{text}");
        Profile::open(tmp.path(), Some("pw")).unwrap();
    }

    #[test]
    fn debug_shows_no_secrets() {
        let tmp = tempfile::tempdir().unwrap();
        let p = create(tmp.path(), None);
        let d = format!("{p:?}");
        assert!(d.contains(&format!("{:?}", p.account_id())));
        assert!(!d.contains(&hex::encode(seed().ed_seed())));
        assert!(!d.contains(&hex::encode(p.local_key.as_bytes())));
    }
}
