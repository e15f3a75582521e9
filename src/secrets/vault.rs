//! authwatch's own encrypted secret store: `client_secret = { store = "NAME" }`.
//!
//! - One file (default `$XDG_STATE_HOME/authwatch/secrets.vault`, or `$AUTHWATCH_VAULT`), mode 0600, written
//!   atomically (temp file + rename) under an exclusive lock (`<file>.lock`).
//! - Each entry is encrypted with AES-256-GCM under the key in `AUTHWATCH_MASTER_KEY`: exactly 64 hexadecimal
//!   characters (32 bytes), e.g. from `openssl rand -hex 32`. The entry name is the associated data, so an entry
//!   cannot be moved to another name.
//! - Every encryption uses a fresh random 96-bit nonce from the OS generator; a nonce already present in the file
//!   is never used again (checked before writing).
//! - There is no way to print a secret: `authwatch secret set NAME` only writes (from stdin).

use aes_gcm::aead::{Aead, Generate, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

pub const MASTER_KEY_ENV: &str = "AUTHWATCH_MASTER_KEY";
pub const VAULT_PATH_ENV: &str = "AUTHWATCH_VAULT";
const FORMAT: &str = "authwatch-vault-1";

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(
        "{MASTER_KEY_ENV} is not set: the encrypted store needs a key of 64 hex characters (e.g. `openssl rand -hex 32`)"
    )]
    NoKey,
    #[error(
        "{MASTER_KEY_ENV} is malformed: it must be exactly 64 hexadecimal characters (32 bytes), e.g. from `openssl rand -hex 32`"
    )]
    BadKey,
    #[error("no place for the encrypted store: set {VAULT_PATH_ENV}, XDG_STATE_HOME or HOME")]
    NoPath,
    #[error("encrypted store {}: {reason}", path.display())]
    Io { path: PathBuf, reason: String },
    #[error("encrypted store {} is not an authwatch store (or is damaged)", path.display())]
    Corrupt { path: PathBuf },
    #[error(
        "cannot decrypt `{name}` in {}: wrong {MASTER_KEY_ENV}, or the entry was tampered with",
        path.display()
    )]
    Decrypt { path: PathBuf, name: String },
    #[error("no secret named `{name}` in the encrypted store {}: add it with `authwatch secret set {name}`", path.display())]
    Missing { path: PathBuf, name: String },
    #[error("invalid secret name `{0}`: use letters, digits, '.', '_', '-', ':' or '/'")]
    BadName(String),
}

/// The 256-bit key. Never printed.
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    /// 64 hex characters (surrounding whitespace ignored).
    pub fn parse(text: &str) -> Result<MasterKey, VaultError> {
        let text = text.trim();
        if text.len() != 64 {
            return Err(VaultError::BadKey);
        }
        let mut key = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text, &mut key[..]).map_err(|_| VaultError::BadKey)?;
        Ok(MasterKey(key))
    }

    /// From `AUTHWATCH_MASTER_KEY`; None when unset or empty.
    pub fn from_env() -> Result<Option<MasterKey>, VaultError> {
        match std::env::var(MASTER_KEY_ENV) {
            Ok(v) if !v.trim().is_empty() => {
                let v = Zeroizing::new(v);
                MasterKey::parse(&v).map(Some)
            }
            _ => Ok(None),
        }
    }
}

/// Default location: `$AUTHWATCH_VAULT`, else `$XDG_STATE_HOME/authwatch/secrets.vault`.
pub fn default_path() -> Option<PathBuf> {
    std::env::var_os(VAULT_PATH_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| crate::logging::state_dir().map(|d| d.join("secrets.vault")))
}

#[derive(Serialize, Deserialize, Default)]
struct FileData {
    format: String,
    entries: BTreeMap<String, Entry>,
}

#[derive(Serialize, Deserialize, Clone)]
struct Entry {
    nonce: String,
    ciphertext: String,
}

pub struct Vault {
    path: PathBuf,
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Vault({})", self.path.display())
    }
}

pub fn check_name(name: &str) -> Result<(), VaultError> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-:/".contains(c));
    if ok {
        Ok(())
    } else {
        Err(VaultError::BadName(name.chars().take(60).collect()))
    }
}

impl Vault {
    pub fn new(path: PathBuf, key: &MasterKey) -> Vault {
        let cipher = Aes256Gcm::new_from_slice(&key.0[..]).expect("32-byte key");
        Vault { path, cipher }
    }

    /// The key from the environment and the default path; None when no key is set.
    pub fn from_env() -> Result<Option<Vault>, VaultError> {
        let Some(key) = MasterKey::from_env()? else {
            return Ok(None);
        };
        let path = default_path().ok_or(VaultError::NoPath)?;
        Ok(Some(Vault::new(path, &key)))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, e: impl std::fmt::Display) -> VaultError {
        VaultError::Io {
            path: self.path.clone(),
            reason: e.to_string(),
        }
    }

    fn read(&self) -> Result<FileData, VaultError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => {
                let data: FileData =
                    serde_json::from_slice(&bytes).map_err(|_| VaultError::Corrupt {
                        path: self.path.clone(),
                    })?;
                if data.format != FORMAT {
                    return Err(VaultError::Corrupt {
                        path: self.path.clone(),
                    });
                }
                Ok(data)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FileData {
                format: FORMAT.into(),
                entries: BTreeMap::new(),
            }),
            Err(e) => Err(self.io(e)),
        }
    }

    fn write(&self, data: &FileData) -> Result<(), VaultError> {
        let bytes = serde_json::to_vec_pretty(data).map_err(|e| self.io(e))?;
        super::atomic::write_atomic(&self.path, &bytes).map_err(|e| self.io(e))
    }

    /// Run `f` holding the store's exclusive lock (other authwatch processes wait).
    fn locked<T>(&self, f: impl FnOnce() -> Result<T, VaultError>) -> Result<T, VaultError> {
        use std::os::unix::fs::OpenOptionsExt;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| self.io(e))?;
        }
        let mut lock_path = self.path.clone().into_os_string();
        lock_path.push(".lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| self.io(e))?;
        lock.lock().map_err(|e| self.io(e))?;
        let out = f();
        let _ = lock.unlock();
        out
    }

    fn aad(name: &str) -> Vec<u8> {
        format!("{FORMAT}:{name}").into_bytes()
    }

    fn decrypt(&self, name: &str, entry: &Entry) -> Result<SecretString, VaultError> {
        let bad = || VaultError::Decrypt {
            path: self.path.clone(),
            name: name.to_string(),
        };
        let nonce = hex::decode(&entry.nonce)
            .ok()
            .filter(|n| n.len() == 12)
            .ok_or_else(bad)?;
        let ct = hex::decode(&entry.ciphertext).map_err(|_| bad())?;
        let nonce = Nonce::try_from(&nonce[..]).map_err(|_| bad())?;
        let plain = Zeroizing::new(
            self.cipher
                .decrypt(
                    &nonce,
                    Payload {
                        msg: &ct,
                        aad: &Self::aad(name),
                    },
                )
                .map_err(|_| bad())?,
        );
        let text = std::str::from_utf8(&plain).map_err(|_| bad())?;
        Ok(SecretString::from(text.to_owned()))
    }

    /// The secret named `name`, if any.
    pub fn get(&self, name: &str) -> Result<Option<SecretString>, VaultError> {
        check_name(name)?;
        let data = self.read()?;
        match data.entries.get(name) {
            None => Ok(None),
            Some(e) => self.decrypt(name, e).map(Some),
        }
    }

    /// Like [`get`](Self::get), but a missing entry is an error naming how to add it.
    pub fn require(&self, name: &str) -> Result<SecretString, VaultError> {
        self.get(name)?.ok_or_else(|| VaultError::Missing {
            path: self.path.clone(),
            name: name.to_string(),
        })
    }

    /// Encrypt and store (replacing an entry of the same name).
    pub fn set(&self, name: &str, secret: &SecretString) -> Result<(), VaultError> {
        check_name(name)?;
        self.locked(|| {
            let mut data = self.read()?;
            // The key must match the entries already there: refuse to mix keys in one file.
            if let Some((other, e)) = data.entries.iter().next() {
                self.decrypt(other, e)?;
            }
            let nonce = loop {
                let n = Nonce::generate();
                let text = hex::encode(n);
                if !data.entries.values().any(|e| e.nonce == text) {
                    break n;
                }
            };
            let ct = self
                .cipher
                .encrypt(
                    &nonce,
                    Payload {
                        msg: secret.expose_secret().as_bytes(),
                        aad: &Self::aad(name),
                    },
                )
                .map_err(|_| self.io("encryption failed"))?;
            data.entries.insert(
                name.to_string(),
                Entry {
                    nonce: hex::encode(nonce),
                    ciphertext: hex::encode(&ct),
                },
            );
            self.write(&data)
        })
    }

    /// Remove an entry; false when there was none.
    pub fn remove(&self, name: &str) -> Result<bool, VaultError> {
        check_name(name)?;
        self.locked(|| {
            let mut data = self.read()?;
            let had = data.entries.remove(name).is_some();
            if had {
                self.write(&data)?;
            }
            Ok(had)
        })
    }

    /// Names only (never values).
    pub fn names(&self) -> Result<Vec<String>, VaultError> {
        Ok(self.read()?.entries.keys().cloned().collect())
    }

    /// The nonces in use (for tests that check they are never reused).
    pub fn nonces(&self) -> Result<Vec<String>, VaultError> {
        Ok(self
            .read()?
            .entries
            .values()
            .map(|e| e.nonce.clone())
            .collect())
    }
}

/// Resolve `{ store = "NAME" }` with the key from the environment and the default path.
pub fn resolve(name: &str) -> Result<SecretString, VaultError> {
    let vault = Vault::from_env()?.ok_or(VaultError::NoKey)?;
    vault.require(name)
}
