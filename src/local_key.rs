//! The embedded hub's own encryption key, so that a SQLite hub seals
//! secrets and payloads at rest without anyone having to configure a key.
//!
//! The key lives beside the database file (`encryption.key`, mode 0600):
//! whoever can read the database can usually read the folder too, so this
//! protects backups and copies of the database file, not a compromised host.
//! A production deployment on PostgreSQL configures its keys instead
//! (`HOOKHUB_ENCRYPTION_KEYS`), typically from a secret store.
use anyhow::Context;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The key file's name in the data folder.
pub const FILE_NAME: &str = "encryption.key";

/// The key id sealed values name.
const KEY_ID: &str = "local";

/// The key file of a data folder.
pub fn path_in(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// Reads the key file in `dir`, or creates it with a new random key; the
/// answer is a keyring spec (`id:base64`) and whether it was just created.
pub fn load_or_create(dir: &Path) -> anyhow::Result<(String, bool)> {
    let path = path_in(dir);
    match std::fs::read_to_string(&path) {
        Ok(spec) => return Ok((spec.trim().to_owned(), false)),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("reading {}", path.display()));
        }
        Err(_) => {}
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    let spec = format!("{KEY_ID}:{}", STANDARD.encode(key));
    let mut options = std::fs::OpenOptions::new();
    // create_new: two processes starting at once must not both write a key.
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(mut file) => {
            file.write_all(format!("{spec}\n").as_bytes())
                .and_then(|()| file.sync_all())
                .with_context(|| format!("writing {}", path.display()))?;
            Ok((spec, true))
        }
        // Another process created it first: use its key.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_or_create(dir),
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_a_private_key_once_and_reads_it_back() {
        let dir = std::env::temp_dir().join(format!("hh_key_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (spec, created) = load_or_create(&dir).unwrap();
        assert!(created && spec.starts_with("local:"));
        hookhub_store::cipher::Cipher::from_config(&spec, None).expect("a valid keyring");
        let (again, created) = load_or_create(&dir).unwrap();
        assert_eq!((again.as_str(), created), (spec.as_str(), false));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path_in(&dir)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
