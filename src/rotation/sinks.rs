//! Where a new secret is written: the credential's own secret reference.
//!
//! - `{ file = .. }`: atomic (temp file in the same directory + rename), mode 0600; the previous content is kept
//!   as `<path>.prev` (0600) until the rotation completes.
//! - `{ store = .. }`: the encrypted store; the previous value is kept in the store until completion.
//! - `{ command = [..] }` with `client_secret_update = { command = [..] }`: the update program gets the secret on
//!   stdin only (never argv or environment).
//! - `{ env = .. }` (and a command without an update command): authwatch cannot write it; the operator updates
//!   it by hand and confirms.

use crate::config::Credential;
use crate::secrets::SecretRef;
use crate::secrets::atomic::write_atomic;
use crate::secrets::vault::Vault;
use secrecy::{ExposeSecret, SecretString};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use zeroize::Zeroizing;

/// Vault entry holding the pending (staged) secret of a rotation.
pub fn pending_name(credential: &str) -> String {
    format!("rotation:{credential}:pending")
}

/// Vault entry holding the previous secret while a rotation is promoted.
pub fn previous_name(credential: &str) -> String {
    format!("rotation:{credential}:previous")
}

/// `<path>.prev`
pub fn prev_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".prev");
    PathBuf::from(p)
}

/// How the new secret reaches the consumers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    File(PathBuf),
    Store(String),
    Command {
        update: Vec<String>,
    },
    /// authwatch cannot write it: what the operator must update by hand.
    Manual {
        what: String,
    },
}

impl Sink {
    pub fn for_credential(cred: &Credential) -> Sink {
        match &cred.client_secret {
            SecretRef::File(p) => Sink::File(p.clone()),
            SecretRef::Store(n) => Sink::Store(n.clone()),
            SecretRef::Command(argv) => match &cred.client_secret_update {
                Some(update) => Sink::Command {
                    update: update.clone(),
                },
                None => Sink::Manual {
                    what: format!(
                        "the secret behind `{}` (no client_secret_update command is configured)",
                        argv.join(" ")
                    ),
                },
            },
            SecretRef::Env(var) => Sink::Manual {
                what: format!(
                    "environment variable {var} of every process that uses {} (and of authwatch itself)",
                    cred.id
                ),
            },
        }
    }

    pub fn writable(&self) -> bool {
        !matches!(self, Sink::Manual { .. })
    }

    pub fn describe(&self) -> String {
        match self {
            Sink::File(p) => format!("file {}", p.display()),
            Sink::Store(n) => format!("encrypted store entry `{n}`"),
            Sink::Command { update } => format!("update command `{}`", update.join(" ")),
            Sink::Manual { what } => format!("by hand: {what}"),
        }
    }
}

/// Run `argv` (no shell) with `secret` on stdin; nothing of the secret goes to argv or the environment.
/// It runs in a process group of its own: on timeout the whole group is killed (a script's children too).
/// Ok and Err both say the exit status and the first line of stderr (sanitized), for the audit trail.
async fn run_update(
    argv: &[String],
    secret: &SecretString,
    timeout: Duration,
) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let shown = argv.join(" ");
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| "client_secret_update command is empty".to_string())?;
    let mut child = crate::secrets::child_command(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run update command `{shown}`: {e}"))?;
    let group = child.id();
    let mut stderr = child.stderr.take();
    let run = async {
        if let Some(mut stdin) = child.stdin.take() {
            let mut line = Zeroizing::new(secret.expose_secret().as_bytes().to_vec());
            line.push(b'\n');
            stdin
                .write_all(&line)
                .await
                .map_err(|e| format!("cannot pass the secret to `{shown}`: {e}"))?;
            drop(stdin);
        }
        let mut err = Vec::new();
        if let Some(pipe) = stderr.as_mut() {
            let _ = pipe.take(64 * 1024).read_to_end(&mut err).await;
        }
        let status = child
            .wait()
            .await
            .map_err(|e| format!("update command `{shown}`: {e}"))?;
        Ok::<_, String>((status, err))
    };
    let (status, err) = match tokio::time::timeout(timeout, run).await {
        Ok(r) => r?,
        Err(_) => {
            crate::secrets::kill_group(group);
            return Err(format!(
                "update command `{shown}` did not finish in {}: killed with its process group",
                crate::duration::format_duration(timeout)
            ));
        }
    };
    let first = String::from_utf8_lossy(&err)
        .lines()
        .find(|l| !l.trim().is_empty())
        .map(|l| crate::rotation::safety::sanitize(l, &[secret]))
        .unwrap_or_default();
    let said = if first.is_empty() {
        String::new()
    } else {
        format!("; stderr: {first}")
    };
    if status.success() {
        Ok(format!("update command `{shown}` exited 0{said}"))
    } else {
        Err(format!("update command `{shown}` failed ({status}){said}"))
    }
}

/// Keep the current secret and write the new one. `previous` is the current secret as consumers read it.
/// `keep_prev`: the file holds the old secret, keep it in `.prev` (false when it already holds the new one: a
/// repeated promote must never put the new secret into `.prev`).
pub async fn write_new(
    sink: &Sink,
    new: &SecretString,
    vault: Option<&Vault>,
    timeout: Duration,
    keep_prev: bool,
) -> Result<String, String> {
    match sink {
        Sink::File(path) => {
            let prev = prev_path(path);
            if keep_prev {
                let current = Zeroizing::new(
                    std::fs::read(path)
                        .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
                );
                write_atomic(&prev, &current).map_err(|e| {
                    format!("cannot keep the previous secret in {}: {e}", prev.display())
                })?;
                crate::rotation::safety::fault("promote-keep-previous");
            }
            let mut bytes = Zeroizing::new(new.expose_secret().as_bytes().to_vec());
            bytes.push(b'\n');
            write_atomic(path, &bytes)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok(format!(
                "wrote {} (0600, atomically); previous kept in {}",
                path.display(),
                prev.display()
            ))
        }
        Sink::Store(name) => {
            let vault = vault.ok_or_else(|| {
                format!(
                    "{} is needed to write the store",
                    crate::secrets::vault::MASTER_KEY_ENV
                )
            })?;
            vault.set(name, new).map_err(|e| e.to_string())?;
            Ok(format!("wrote encrypted store entry `{name}`"))
        }
        Sink::Command { update } => {
            let done = run_update(update, new, timeout).await?;
            Ok(format!("passed the new secret on stdin: {done}"))
        }
        Sink::Manual { what } => Ok(format!("operator confirmed updating {what}")),
    }
}

/// Put the previous secret back. `previous`: the kept value (needed for store and command sinks).
pub async fn restore(
    sink: &Sink,
    previous: Option<&SecretString>,
    vault: Option<&Vault>,
    timeout: Duration,
) -> Result<String, String> {
    match sink {
        Sink::File(path) => {
            let prev = prev_path(path);
            if !prev.exists() {
                // The previous secret kept elsewhere (encrypted store, memory) is written back; else the
                // file was not changed, which reading it back tells.
                if let Some(previous) = previous {
                    let mut bytes = Zeroizing::new(previous.expose_secret().as_bytes().to_vec());
                    bytes.push(b'\n');
                    write_atomic(path, &bytes)
                        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                    return Ok(format!(
                        "wrote the kept previous secret to {}",
                        path.display()
                    ));
                }
                return Ok(format!(
                    "{} was not changed (no {})",
                    path.display(),
                    prev.display()
                ));
            }
            std::fs::rename(&prev, path).map_err(|e| {
                format!(
                    "cannot restore {} from {}: {e}",
                    path.display(),
                    prev.display()
                )
            })?;
            Ok(format!(
                "restored {} from {}",
                path.display(),
                prev.display()
            ))
        }
        Sink::Store(name) => {
            let vault = vault.ok_or_else(|| {
                format!(
                    "{} is needed to restore the store",
                    crate::secrets::vault::MASTER_KEY_ENV
                )
            })?;
            let previous = previous
                .ok_or_else(|| format!("the previous value of `{name}` was not kept: set it again with `authwatch secret set {name}`"))?;
            vault.set(name, previous).map_err(|e| e.to_string())?;
            Ok(format!("restored encrypted store entry `{name}`"))
        }
        Sink::Command { update } => {
            let previous = previous.ok_or_else(|| {
                format!(
                    "the previous secret was not kept (no {}): put it back with `{}` by hand",
                    crate::secrets::vault::MASTER_KEY_ENV,
                    update.join(" ")
                )
            })?;
            let done = run_update(update, previous, timeout).await?;
            Ok(format!("passed the previous secret back: {done}"))
        }
        Sink::Manual { what } => Ok(format!("put the previous secret back by hand: {what}")),
    }
}

/// Remove the kept previous secret (`path.prev`) once it is provably no longer needed.
pub fn drop_previous(sink: &Sink) -> Option<String> {
    match sink {
        Sink::File(path) => {
            let prev = prev_path(path);
            std::fs::remove_file(&prev)
                .ok()
                .map(|()| format!("removed {}", prev.display()))
        }
        _ => None,
    }
}

/// The previous secret as kept by [`write_new`] (file sink: `path.prev`).
pub fn kept_previous(sink: &Sink) -> Option<SecretString> {
    match sink {
        Sink::File(path) => {
            let bytes = Zeroizing::new(std::fs::read(prev_path(path)).ok()?);
            let text = std::str::from_utf8(&bytes).ok()?.trim_end();
            (!text.is_empty()).then(|| SecretString::from(text.to_owned()))
        }
        _ => None,
    }
}
