//! Secret references (`{ env = .. }`, `{ file = .. }`, `{ command = [..] }`) and their resolution.
//! A resolved secret only ever lives in a `SecretString`; errors name the reference, never the value.
//!
//! A configuration never contains a secret itself: `client_secret = "..."` is rejected (without echoing the value)
//! and must be one of the three reference forms. Loading a configuration never resolves references; probes resolve
//! them each time they need a new token, so a rotated secret is picked up without a restart.
//!
//! - [`vault`]: authwatch's encrypted secret store (`{ store = .. }`).
//! - [`atomic`]: the atomic 0600 file writer the vault and the rotation sinks write with.

pub mod atomic;
pub mod vault;

use secrecy::SecretString;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use zeroize::Zeroizing;

#[derive(Clone, PartialEq, Eq)]
pub enum SecretRef {
    Env(String),
    File(PathBuf),
    /// argv, run without a shell; trimmed stdout is the secret.
    Command(Vec<String>),
    /// An entry of authwatch's encrypted store (see [`crate::secrets::vault`]), key from `AUTHWATCH_MASTER_KEY`.
    Store(String),
}

/// The three accepted forms, shown whenever a reference is malformed.
pub const REFERENCE_FORMS_HELP: &str = "write a reference instead of the value: \
`{ env = \"VAR_NAME\" }` (an environment variable), \
`{ file = \"/run/secrets/name\" }` (a file holding only the secret), or \
`{ command = [\"pass\", \"show\", \"sfmc/name\"] }` (a program, run without a shell, that prints it)";

/// What is wrong with the shape of a secret reference (shared by the serde impl and the config loader, which
/// reports each problem at its own position). No variant ever carries the secret's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefShapeError {
    /// A plain string (or number, ...) where a reference belongs: the value itself must not be echoed.
    Literal { found: &'static str },
    /// `{}`
    NoKind,
    /// `{ env = .., file = .. }`
    SeveralKinds,
    /// `{ vault = .. }`
    UnknownKind {
        kind: String,
        suggestion: Option<&'static str>,
    },
    /// `{ env = 5 }`, `{ command = "pass show x" }`
    WrongType {
        kind: &'static str,
        expected: &'static str,
    },
    /// `{ env = "" }`, `{ file = "" }`, `{ command = [] }`, `{ command = ["", ..] }`
    Empty { kind: &'static str },
}

impl RefShapeError {
    /// One line. `field` names where the reference is, e.g. "`client_secret` in [[credential]] \"crm\"".
    /// Never contains a secret value.
    pub fn message(&self, field: &str) -> String {
        match self {
            Self::Literal { found } if *found == "string" => format!(
                "{field} must be a secret reference, not the secret itself (the value is not shown here)"
            ),
            Self::Literal { found } => {
                format!(
                    "{field} must be a secret reference table, found {found} (the value is not shown here)"
                )
            }
            Self::NoKind => {
                format!("{field} is an empty table; it needs one of `env`, `file` or `command`")
            }
            Self::SeveralKinds => {
                format!("{field} has more than one of `env`, `file` and `command`; use exactly one")
            }
            Self::UnknownKind { kind, .. } => {
                format!("unknown secret reference kind `{kind}` in {field}")
            }
            Self::WrongType { kind, expected } => format!("`{kind}` in {field} must be {expected}"),
            Self::Empty { kind: "env" } => {
                format!("empty `env` in {field}: name an environment variable")
            }
            Self::Empty { kind: "file" } => {
                format!("empty `file` in {field}: give the path of a file")
            }
            Self::Empty { kind: "store" } => {
                format!("empty `store` in {field}: name an entry of the encrypted store")
            }
            Self::Empty { kind } => {
                format!("empty `{kind}` in {field}: give the program and its arguments")
            }
        }
    }

    pub fn help(&self) -> String {
        match self {
            Self::Literal { .. } => format!(
                "{REFERENCE_FORMS_HELP}; then remove the secret from this file (and from its history/backups)"
            ),
            Self::UnknownKind {
                suggestion: Some(s),
                ..
            } => format!("did you mean `{s}`? The kinds are `env`, `file` and `command`"),
            Self::UnknownKind { suggestion: None, .. } | Self::NoKind | Self::SeveralKinds => {
                REFERENCE_FORMS_HELP.to_string()
            }
            Self::WrongType { kind: "command", .. } => {
                "list the program and each argument separately, e.g. `{ command = [\"pass\", \"show\", \"sfmc/crm\"] }`"
                    .to_string()
            }
            Self::WrongType { .. } => REFERENCE_FORMS_HELP.to_string(),
            Self::Empty { kind: "env" } => "e.g. `{ env = \"CRM_PACKAGE_SECRET\" }`".to_string(),
            Self::Empty { kind: "file" } => "e.g. `{ file = \"/run/secrets/crm\" }`".to_string(),
            Self::Empty { kind: "store" } => {
                "e.g. `{ store = \"crm\" }`, set with `authwatch secret set crm`".to_string()
            }
            Self::Empty { .. } => "e.g. `{ command = [\"pass\", \"show\", \"sfmc/crm\"] }`".to_string(),
        }
    }
}

/// The reference kinds, for "did you mean".
pub const REFERENCE_KINDS: [&str; 4] = ["env", "file", "command", "store"];

fn quote_arg(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env(name) => write!(f, "env:{name}"),
            Self::File(path) => write!(f, "file:{}", path.display()),
            Self::Command(argv) => {
                let shown: Vec<String> = argv.iter().map(|a| quote_arg(a)).collect();
                write!(f, "command:{}", shown.join(" "))
            }
            Self::Store(name) => write!(f, "store:{name}"),
        }
    }
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretRef({self})")
    }
}

/// Why a reference could not be resolved. No message ever contains the secret (nor a command's stdout).
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable {name} is not set")]
    EnvUnset { name: String },
    #[error("environment variable {name} is empty")]
    EnvEmpty { name: String },
    #[error("environment variable {name} is not valid UTF-8")]
    EnvNotUnicode { name: String },
    #[error("cannot read secret file {}: {}", path.display(), kind_text(*kind))]
    FileRead { path: PathBuf, kind: io::ErrorKind },
    #[error("secret file {} is empty", path.display())]
    FileEmpty { path: PathBuf },
    #[error("secret file {} is not valid UTF-8", path.display())]
    FileNotUtf8 { path: PathBuf },
    #[error("secret command is empty")]
    CommandEmpty,
    #[error("cannot run secret command `{command}`: {}", kind_text(*kind))]
    CommandSpawn {
        command: String,
        kind: io::ErrorKind,
    },
    #[error("secret command `{command}` did not finish within {}", crate::duration::format_duration(*timeout))]
    CommandTimeout { command: String, timeout: Duration },
    #[error(
        "secret command `{command}` failed ({status}){}",
        stderr_suffix(stderr)
    )]
    CommandFailed {
        command: String,
        status: String,
        /// First line of stderr, truncated to about 200 characters.
        stderr: Option<String>,
    },
    #[error("secret command `{command}` printed nothing on stdout")]
    CommandNoOutput { command: String },
    #[error("secret command `{command}` printed something that is not valid UTF-8")]
    CommandNotUtf8 { command: String },
    #[error("{0}")]
    Store(String),
}

fn stderr_suffix(stderr: &Option<String>) -> String {
    match stderr {
        Some(line) => format!(": {line}"),
        None => String::new(),
    }
}

/// Short, human wording for the io error kinds people hit with secret files and commands.
fn kind_text(kind: io::ErrorKind) -> String {
    match kind {
        io::ErrorKind::NotFound => "not found".to_string(),
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        io::ErrorKind::IsADirectory => "is a directory".to_string(),
        other => other.to_string(),
    }
}

const STDERR_MAX_CHARS: usize = 200;

fn first_line_truncated(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    // Command output is outside text: known secrets redacted, control and bidi characters escaped.
    let line = crate::sanitize::clean(line);
    let mut out: String = line.chars().take(STDERR_MAX_CHARS).collect();
    if line.chars().count() > STDERR_MAX_CHARS {
        out.push('…');
    }
    Some(out)
}

impl SecretRef {
    /// Resolve the reference. `timeout` bounds a `command` reference.
    pub async fn resolve(&self, timeout: Duration) -> Result<SecretString, SecretError> {
        let value = self.resolve_value(timeout).await?;
        // Known from now on: an outside string echoing it is stored and shown as `[redacted]`.
        crate::sanitize::Redactor::global().add(secrecy::ExposeSecret::expose_secret(&value));
        Ok(value)
    }

    /// Resolve the reference on this thread when that cannot block: `env`, `store` and a regular `file`. None
    /// for a `command` or a file that is not a regular one (a FIFO waits for a writer): [`Self::resolve`] them.
    /// For a periodic round over many credentials, all in one blocking task (one task per file costs two
    /// thread wake-ups each).
    pub fn resolve_now(&self) -> Option<Result<SecretString, SecretError>> {
        let value = match self {
            Self::Env(name) => resolve_env(name),
            Self::Store(name) => {
                crate::secrets::vault::resolve(name).map_err(|e| SecretError::Store(e.to_string()))
            }
            Self::File(path) => resolve_regular_file(path)?,
            Self::Command(_) => return None,
        };
        if let Ok(v) = &value {
            crate::sanitize::Redactor::global().add(secrecy::ExposeSecret::expose_secret(v));
        }
        Some(value)
    }

    async fn resolve_value(&self, timeout: Duration) -> Result<SecretString, SecretError> {
        match self {
            Self::Env(name) => resolve_env(name),
            Self::File(path) => resolve_file(path).await,
            Self::Command(argv) => resolve_command(argv, timeout, &self.to_string()).await,
            Self::Store(name) => {
                let name = name.clone();
                tokio::task::spawn_blocking(move || crate::secrets::vault::resolve(&name))
                    .await
                    .map_err(|e| SecretError::Store(e.to_string()))?
                    .map_err(|e| SecretError::Store(e.to_string()))
            }
        }
    }

    /// `env`, `file` or `command`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Env(_) => "env",
            Self::File(_) => "file",
            Self::Command(_) => "command",
            Self::Store(_) => "store",
        }
    }
}

fn resolve_env(name: &str) -> Result<SecretString, SecretError> {
    match std::env::var(name) {
        Ok(value) => {
            let value = Zeroizing::new(value);
            if value.is_empty() {
                Err(SecretError::EnvEmpty { name: name.into() })
            } else {
                Ok(SecretString::from(value.as_str().to_owned()))
            }
        }
        Err(std::env::VarError::NotPresent) => Err(SecretError::EnvUnset { name: name.into() }),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(SecretError::EnvNotUnicode { name: name.into() })
        }
    }
}

async fn resolve_file(path: &Path) -> Result<SecretString, SecretError> {
    let bytes = Zeroizing::new(
        tokio::fs::read(path)
            .await
            .map_err(|e| file_error(path, e))?,
    );
    file_secret(path, &bytes)
}

/// A regular file read without blocking on it; None when the path is something else (a FIFO, a device).
fn resolve_regular_file(path: &Path) -> Option<Result<SecretString, SecretError>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    // O_NONBLOCK: opening a FIFO with no writer must not wait (it is handed back to the async read).
    let mut file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) => return Some(Err(file_error(path, e))),
    };
    match file.metadata() {
        Ok(m) if m.is_file() => {}
        Ok(_) => return None,
        Err(e) => return Some(Err(file_error(path, e))),
    }
    let mut bytes = Zeroizing::new(Vec::new());
    Some(
        file.read_to_end(&mut bytes)
            .map_err(|e| file_error(path, e))
            .and_then(|_| file_secret(path, &bytes)),
    )
}

fn file_error(path: &Path, e: io::Error) -> SecretError {
    SecretError::FileRead {
        path: path.to_path_buf(),
        kind: e.kind(),
    }
}

/// A secret file's text without its trailing newline; empty or not UTF-8 is an error.
fn file_secret(path: &Path, bytes: &[u8]) -> Result<SecretString, SecretError> {
    let text = std::str::from_utf8(bytes).map_err(|_| SecretError::FileNotUtf8 {
        path: path.to_path_buf(),
    })?;
    let secret = text.trim_end();
    if secret.is_empty() {
        return Err(SecretError::FileEmpty {
            path: path.to_path_buf(),
        });
    }
    Ok(SecretString::from(secret.to_owned()))
}

async fn resolve_command(
    argv: &[String],
    timeout: Duration,
    shown: &str,
) -> Result<SecretString, SecretError> {
    let command = shown.strip_prefix("command:").unwrap_or(shown).to_string();
    let (program, args) = match argv.split_first() {
        Some((p, a)) if !p.is_empty() => (p, a),
        _ => return Err(SecretError::CommandEmpty),
    };
    let child = child_command(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| SecretError::CommandSpawn {
            command: command.clone(),
            kind: e.kind(),
        })?;
    let group = child.id();
    let wait = child.wait_with_output();
    tokio::pin!(wait);
    let output = match tokio::time::timeout(timeout, &mut wait).await {
        Err(_) => {
            // Kill the group before the future (and with it the child) is dropped and reaped.
            kill_group(group);
            return Err(SecretError::CommandTimeout { command, timeout });
        }
        Ok(Err(e)) => {
            return Err(SecretError::CommandSpawn {
                command,
                kind: e.kind(),
            });
        }
        Ok(Ok(output)) => output,
    };
    let stdout = Zeroizing::new(output.stdout);
    if !output.status.success() {
        let status = match output.status.code() {
            Some(code) => format!("exit status {code}"),
            None => {
                use std::os::unix::process::ExitStatusExt as _;
                match output.status.signal() {
                    Some(sig) => format!("killed by signal {sig}"),
                    None => output.status.to_string(),
                }
            }
        };
        return Err(SecretError::CommandFailed {
            command,
            status,
            stderr: first_line_truncated(&output.stderr),
        });
    }
    let text = std::str::from_utf8(&stdout).map_err(|_| SecretError::CommandNotUtf8 {
        command: command.clone(),
    })?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(SecretError::CommandNoOutput { command });
    }
    Ok(SecretString::from(secret.to_owned()))
}

// ---------------------------------------------------------------------------------------------------------------
// Child processes (secret commands, rotation update commands): no secret of ours in their environment, and
// a process group of their own so a timeout kills a script's children too.

/// Environment variables named by `{ env = .. }` references of every configuration loaded in this process.
static CHILD_SCRUB: std::sync::Mutex<std::collections::BTreeSet<String>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// Remember `names` (a loaded configuration's `{ env = .. }` references): no child process gets them.
/// The set only grows: removing one more variable from a child's environment is harmless.
pub fn scrub_from_children(names: impl IntoIterator<Item = String>) {
    let mut set = CHILD_SCRUB.lock().unwrap_or_else(|e| e.into_inner());
    set.extend(names);
}

/// A command for `program` that runs without the master key and without any variable a secret reference
/// names, in a process group of its own (end it with [`kill_group`]), killed if its handle is dropped.
pub fn child_command(program: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(program);
    // The master key decrypts the pending and previous secrets: no child process gets it.
    cmd.env_remove(vault::MASTER_KEY_ENV);
    for name in CHILD_SCRUB.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        cmd.env_remove(name);
    }
    cmd.process_group(0).kill_on_drop(true);
    cmd
}

/// SIGKILL the process group led by `leader` (a child spawned by [`child_command`]), grandchildren included.
pub fn kill_group(leader: Option<u32>) {
    if let Some(pid) = leader.and_then(|p| libc::pid_t::try_from(p).ok()) {
        // SAFETY: killpg only sends a signal; the group was created for this child (process_group(0)).
        unsafe {
            libc::killpg(pid, libc::SIGKILL);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// serde: the map form only. Every error path avoids serde's default messages, which would echo the value.

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RefVisitor)
    }
}

struct RefVisitor;

fn shape_err<E: de::Error>(e: RefShapeError) -> E {
    E::custom(format!(
        "{}; {}",
        e.message("the secret reference"),
        e.help()
    ))
}

impl<'de> Visitor<'de> for RefVisitor {
    type Value = SecretRef;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a secret reference: { env = \"..\" }, { file = \"..\" } or { command = [\"..\"] }",
        )
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<SecretRef, E> {
        Err(shape_err(RefShapeError::Literal { found: "string" }))
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<SecretRef, E> {
        Err(shape_err(RefShapeError::Literal { found: "string" }))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<SecretRef, E> {
        Err(shape_err(RefShapeError::Literal { found: "a boolean" }))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<SecretRef, E> {
        Err(shape_err(RefShapeError::Literal { found: "a number" }))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<SecretRef, E> {
        Err(shape_err(RefShapeError::Literal { found: "a number" }))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<SecretRef, E> {
        Err(shape_err(RefShapeError::Literal { found: "a number" }))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<SecretRef, A::Error> {
        Err(shape_err(RefShapeError::Literal { found: "an array" }))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SecretRef, A::Error> {
        let mut found: Option<SecretRef> = None;
        let mut several = false;
        while let Some(key) = map.next_key::<String>()? {
            let value = match key.as_str() {
                "env" => {
                    let name: String = map.next_value().map_err(|_: A::Error| {
                        shape_err(RefShapeError::WrongType {
                            kind: "env",
                            expected: "a string",
                        })
                    })?;
                    if name.trim().is_empty() {
                        return Err(shape_err(RefShapeError::Empty { kind: "env" }));
                    }
                    SecretRef::Env(name)
                }
                "file" => {
                    let path: String = map.next_value().map_err(|_: A::Error| {
                        shape_err(RefShapeError::WrongType {
                            kind: "file",
                            expected: "a string",
                        })
                    })?;
                    if path.trim().is_empty() {
                        return Err(shape_err(RefShapeError::Empty { kind: "file" }));
                    }
                    SecretRef::File(PathBuf::from(path))
                }
                "command" => {
                    let argv: Vec<String> = map.next_value().map_err(|_: A::Error| {
                        shape_err(RefShapeError::WrongType {
                            kind: "command",
                            expected: "an array of strings",
                        })
                    })?;
                    if argv.first().is_none_or(|p| p.trim().is_empty()) {
                        return Err(shape_err(RefShapeError::Empty { kind: "command" }));
                    }
                    SecretRef::Command(argv)
                }
                "store" => {
                    let name: String = map.next_value().map_err(|_: A::Error| {
                        shape_err(RefShapeError::WrongType {
                            kind: "store",
                            expected: "a string",
                        })
                    })?;
                    if name.trim().is_empty() {
                        return Err(shape_err(RefShapeError::Empty { kind: "store" }));
                    }
                    SecretRef::Store(name)
                }
                other => {
                    let _: IgnoredAny = map.next_value()?;
                    return Err(shape_err(RefShapeError::UnknownKind {
                        kind: other.to_string(),
                        suggestion: crate::suggest::nearest(other, REFERENCE_KINDS),
                    }));
                }
            };
            several |= found.is_some();
            found = Some(value);
        }
        if several {
            return Err(shape_err(RefShapeError::SeveralKinds));
        }
        found.ok_or_else(|| shape_err(RefShapeError::NoKind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_now_from_a_regular_file_but_not_from_a_fifo_or_a_command() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("crm");
        std::fs::write(&file, "s3cr3t-value-123\n").unwrap();
        let read = SecretRef::File(file.clone())
            .resolve_now()
            .unwrap()
            .unwrap();
        assert_eq!(
            secrecy::ExposeSecret::expose_secret(&read),
            "s3cr3t-value-123"
        );
        std::fs::write(&file, "\n").unwrap();
        assert!(matches!(
            SecretRef::File(file).resolve_now(),
            Some(Err(SecretError::FileEmpty { .. }))
        ));
        assert!(matches!(
            SecretRef::File(dir.path().join("missing")).resolve_now(),
            Some(Err(SecretError::FileRead {
                kind: io::ErrorKind::NotFound,
                ..
            }))
        ));
        // A FIFO nobody writes would block a reader: left to the bounded async read.
        let fifo = dir.path().join("fifo");
        let path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo only creates the node.
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
        assert!(SecretRef::File(fifo).resolve_now().is_none());
        assert!(
            SecretRef::Command(vec!["true".into()])
                .resolve_now()
                .is_none()
        );
    }

    #[test]
    fn display_shows_only_the_reference() {
        assert_eq!(SecretRef::Env("CRM".into()).to_string(), "env:CRM");
        assert_eq!(
            SecretRef::File("/run/secrets/crm".into()).to_string(),
            "file:/run/secrets/crm"
        );
        let cmd = SecretRef::Command(vec!["pass".into(), "show".into(), "sfmc/crm".into()]);
        assert_eq!(cmd.to_string(), "command:pass show sfmc/crm");
        assert_eq!(format!("{cmd:?}"), "SecretRef(command:pass show sfmc/crm)");
        let sh = SecretRef::Command(vec!["sh".into(), "-c".into(), "printf 'x'".into()]);
        assert_eq!(sh.to_string(), r"command:sh -c 'printf '\''x'\'''");
    }

    #[test]
    fn serde_rejects_a_literal_without_echoing_it() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct T {
            s: SecretRef,
        }
        let e = toml::from_str::<T>("s = \"SENTINEL-123\"").unwrap_err();
        assert!(!e.message().contains("SENTINEL"), "{}", e.message());
        assert!(e.message().contains("{ env ="), "{}", e.message());
        let e = toml::from_str::<T>("s = 987654").unwrap_err();
        assert!(!e.message().contains("987654"), "{}", e.message());
        let e = toml::from_str::<T>("s = { vault = \"SENTINEL\" }").unwrap_err();
        assert!(
            e.message()
                .contains("unknown secret reference kind `vault`"),
            "{}",
            e.message()
        );
        assert!(!e.message().contains("SENTINEL"));
        let ok = toml::from_str::<T>("s = { command = [\"pass\", \"show\"] }").unwrap();
        assert_eq!(ok.s.to_string(), "command:pass show");
        assert!(toml::from_str::<T>("s = { command = [] }").is_err());
        assert!(toml::from_str::<T>("s = { env = \"\" }").is_err());
        assert!(toml::from_str::<T>("s = { env = \"A\", file = \"/b\" }").is_err());
    }

    #[test]
    fn suggests_kinds() {
        let suggestion = |kind: &str| crate::suggest::nearest(kind, REFERENCE_KINDS);
        assert_eq!(suggestion("envv"), Some("env"));
        assert_eq!(suggestion("files"), Some("file"));
        assert_eq!(suggestion("vault"), None);
    }
}
