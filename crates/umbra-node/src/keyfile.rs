//! The node's identity key on disk: a 32-byte Ed25519 seed, generated on
//! first start and written with mode 0600. The X25519 key (onion layers) is
//! derived from it.

use std::io::Write;
use std::path::{Path, PathBuf};

use umbra_crypto::Ed25519Keypair;
use zeroize::Zeroizing;

/// A key file that could not be loaded or created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// Reading or writing failed.
    #[error("node key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file does not hold a 32-byte seed (64 hex characters).
    #[error("node key file {0} must hold a 32-byte Ed25519 seed as 64 hex characters")]
    Malformed(PathBuf),
    /// The file is readable by other users.
    #[error("node key file {0} is readable by group or others; run chmod 600 on it")]
    Permissions(PathBuf),
}

/// Loads an existing key file (no creation).
pub fn load(path: &Path) -> Result<Ed25519Keypair, KeyFileError> {
    if !path.exists() {
        return Err(KeyFileError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "key file not found"),
        });
    }
    load_or_create(path, || [0; 32])
}

/// Loads the node key from `path`, creating it from `fresh_seed` (0600) when absent.
pub fn load_or_create(
    path: &Path,
    fresh_seed: impl FnOnce() -> [u8; 32],
) -> Result<Ed25519Keypair, KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::read_to_string(path).map(Zeroizing::new) {
        Ok(text) => {
            check_permissions(path)?;
            // Decoded in place: `hex::decode` may grow (and copy) its buffer.
            let mut seed = Zeroizing::new([0u8; 32]);
            hex::decode_to_slice(text.trim(), &mut seed[..])
                .map_err(|_| KeyFileError::Malformed(path.to_path_buf()))?;
            Ok(Ed25519Keypair::from_seed(&seed))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            let seed = Zeroizing::new(fresh_seed());
            let hex_seed = Zeroizing::new(hex::encode(*seed));
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts.open(path).map_err(io)?;
            f.write_all(hex_seed.as_bytes()).map_err(io)?;
            f.write_all(b"\n").map_err(io)?;
            f.sync_all().map_err(io)?;
            Ok(Ed25519Keypair::from_seed(&seed))
        }
        Err(e) => Err(io(e)),
    }
}

#[cfg(unix)]
fn check_permissions(path: &Path) -> Result<(), KeyFileError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(KeyFileError::Permissions(path.to_path_buf()));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path) -> Result<(), KeyFileError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_then_reloads_with_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/node.key");
        let a = load_or_create(&path, || [7; 32]).unwrap();
        let b = load_or_create(&path, || panic!("must not generate again")).unwrap();
        assert_eq!(a.public(), b.public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }

    #[test]
    fn loads_hex_with_whitespace_and_refuses_wrong_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let created = load_or_create(&path, || [9; 32]).unwrap();
        // Hand-edited files: surrounding whitespace is accepted.
        std::fs::write(&path, format!("  {}\n\n", hex::encode([9u8; 32]))).unwrap();
        assert_eq!(
            load(&path).unwrap().public(),
            created.public(),
            "the same seed must give the same key"
        );
        for bad in [hex::encode([9u8; 31]), hex::encode([9u8; 33]), "abc".into()] {
            std::fs::write(&path, bad).unwrap();
            assert!(matches!(load(&path), Err(KeyFileError::Malformed(_))));
        }
    }

    #[test]
    fn refuses_garbage_and_loose_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        std::fs::write(&path, "not hex").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            assert!(matches!(
                load_or_create(&path, || [1; 32]),
                Err(KeyFileError::Malformed(_))
            ));
            std::fs::write(&path, hex::encode([1u8; 32])).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(
                load_or_create(&path, || [1; 32]),
                Err(KeyFileError::Permissions(_))
            ));
        }
    }
}
