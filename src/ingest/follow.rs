//! Tailing the files of a log source: every file matching the glob, across rotation, resumable.
//!
//! One OS thread per source polls every [`FollowOptions::poll_interval`] (250 ms): it expands the glob,
//! `stat`s each file and reads what was appended since the last poll. Files are tracked by identity
//! (device + inode + a hash of the first line), not by name:
//! - **rename rotation** (`app.log` -> `app.log.1`, new `app.log`): the old file is still open; it is read to its
//!   end, kept for [`FollowOptions::rotated_grace`] to catch late writes, then a last unterminated line (if any) is
//!   taken as complete and the file is closed. The new file is read from 0.
//! - **copy-truncate**: the size shrank below the offset, or the first line changed -> restart at 0.
//! - **inode reuse**: the first-line hash differs -> a new file, read from 0.
//!
//! Only complete lines (ending in `\n`) are consumed; a partial last line waits for its newline.
//!
//! # Exactly once across restarts
//! Each [`Batch`] carries the events of a run of complete lines and the [`Offsets`] just after them. Store both in
//! one transaction; on start pass the stored offsets back ([`Follower::with_offsets`]): a file whose identity
//! matches resumes there. A stored file that is no longer at its path (rotated while authwatch was down) is looked
//! for by identity in the same directory and finished first, so the lines written between shutdown and rotation
//! are not lost.
//!
//! Offsets of a rotated file are reported under the name it was found at (e.g. `app.log.1`), so a store keyed by
//! `(source, path)` never has the rotated file overwrite the live one. A file that was deleted has no name: its
//! batches have `offset: None` (nothing left to resume).

use super::matcher::Matcher;
use super::parse::{Line, LineParser, strip_eol};
use crate::config::LogSourceConfig;
use crate::model::AuthEvent;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::os::unix::fs::{DirEntryExt, FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// Bytes of the first line that go into [`FileIdentity::head`].
const HEAD_LEN: usize = 4096;

/// Which file this is, whatever its name: device, inode, and a hash (FNV-1a 64) of its first line (at most
/// 4096 bytes), None until the file has a complete first line. Stored as text: `dev:ino:hash` (`-` for None).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileIdentity {
    pub dev: u64,
    pub ino: u64,
    pub head: Option<u64>,
}

impl FileIdentity {
    /// Same file: same device and inode, and the same first line when both know it.
    pub fn same_file(&self, other: &FileIdentity) -> bool {
        self.dev == other.dev
            && self.ino == other.ino
            && match (self.head, other.head) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

impl std::fmt::Display for FileIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.head {
            Some(h) => write!(f, "{}:{}:{h:016x}", self.dev, self.ino),
            None => write!(f, "{}:{}:-", self.dev, self.ino),
        }
    }
}

impl std::str::FromStr for FileIdentity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("bad file identity {s:?}: expected dev:ino:hash");
        let mut it = s.split(':');
        let dev = it.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
        let ino = it.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
        let head = match it.next().ok_or_else(bad)? {
            "-" => None,
            h => Some(u64::from_str_radix(h, 16).map_err(|_| bad())?),
        };
        if it.next().is_some() {
            return Err(bad());
        }
        Ok(FileIdentity { dev, ino, head })
    }
}

/// Where reading a file stopped: everything before `offset` has been delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offsets {
    pub path: PathBuf,
    pub identity: FileIdentity,
    pub offset: u64,
}

/// Health of one log source, for the console.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "message")]
pub enum SourceStatus {
    /// Not polled yet.
    Starting,
    /// At least one file matches and is readable.
    Ok,
    /// No file matches the glob (yet), or its directory does not exist: a warning that clears when one appears.
    WaitingForFile,
    /// A file or directory cannot be read (permissions, I/O error); retried every poll.
    Error(String),
}

impl std::fmt::Display for SourceStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceStatus::Starting => f.write_str("starting"),
            SourceStatus::Ok => f.write_str("ok"),
            SourceStatus::WaitingForFile => f.write_str("waiting for file"),
            SourceStatus::Error(m) => write!(f, "error: {m}"),
        }
    }
}

/// The events of one run of complete lines of one file, and where reading continues.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Log source name.
    pub source: String,
    /// The file (its current name, which for a rotated file may differ from the glob's).
    pub path: PathBuf,
    /// The 401/403 lines, in file order.
    pub events: Vec<AuthEvent>,
    /// Store this with the events (one transaction). None: the file was deleted, nothing to resume.
    pub offset: Option<Offsets>,
    /// Lines in this batch (all of them, not only 401/403).
    pub lines: u64,
    pub malformed: u64,
    /// Events with `integration: None`.
    pub unmatched: u64,
}

/// What a follower sends.
#[derive(Debug, Clone, PartialEq)]
pub enum FollowUpdate {
    Batch(Batch),
    /// Sent on every change (and once after the first poll).
    Status {
        source: String,
        status: SourceStatus,
    },
}

/// Where to start in a file that is there at start-up and has no stored offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartAt {
    /// Read the whole file (backfill).
    #[default]
    Beginning,
    /// Only lines appended from now on (files with a stored row for their path are still read whole: they
    /// appeared while authwatch was down).
    End,
}

#[derive(Debug, Clone)]
pub struct FollowOptions {
    pub poll_interval: Duration,
    pub start_at: StartAt,
    /// How long a rotated file is still read for late writes.
    pub rotated_grace: Duration,
    /// Most bytes read (and lines put in one batch) per read call.
    pub max_batch_bytes: usize,
}

impl Default for FollowOptions {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_millis(250),
            start_at: StartAt::Beginning,
            rotated_grace: Duration::from_secs(2),
            max_batch_bytes: 1 << 20,
        }
    }
}

/// Tails the files of one log source. Build, then [`Follower::spawn`].
pub struct Follower {
    source: LogSourceConfig,
    matcher: Arc<Matcher>,
    offsets: Vec<Offsets>,
    opts: FollowOptions,
}

impl Follower {
    pub fn new(source: LogSourceConfig, matcher: Arc<Matcher>) -> Self {
        Self {
            source,
            matcher,
            offsets: Vec::new(),
            opts: FollowOptions::default(),
        }
    }

    /// Offsets stored from earlier runs (all of this source's rows).
    pub fn with_offsets(mut self, offsets: impl IntoIterator<Item = Offsets>) -> Self {
        self.offsets.extend(offsets);
        self
    }

    pub fn with_options(mut self, opts: FollowOptions) -> Self {
        self.opts = opts;
        self
    }

    /// Start polling on a dedicated thread. Updates go to `tx`; the follower stops when the handle is stopped or
    /// dropped, or when `tx`'s receiver is dropped.
    pub fn spawn(self, tx: mpsc::Sender<FollowUpdate>) -> FollowerHandle {
        let (stop_tx, stop_rx) = std_mpsc::channel::<()>();
        let (status_tx, status_rx) = watch::channel(SourceStatus::Starting);
        let name = format!("authwatch-follow-{}", self.source.name);
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                let mut w = Worker {
                    parser: LineParser::new(&self.source),
                    source: self.source,
                    matcher: self.matcher,
                    stored: self.offsets,
                    opts: self.opts,
                    files: Vec::new(),
                    tx,
                    stop: stop_rx,
                    status_tx,
                    status: SourceStatus::Starting,
                    first_poll: true,
                    buf: Vec::new(),
                };
                w.run();
            })
            .expect("spawn follower thread");
        FollowerHandle {
            stop: Some(stop_tx),
            thread: Some(thread),
            status: status_rx,
        }
    }
}

/// Controls a running [`Follower`].
pub struct FollowerHandle {
    stop: Option<std_mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    status: watch::Receiver<SourceStatus>,
}

impl FollowerHandle {
    pub fn status(&self) -> SourceStatus {
        self.status.borrow().clone()
    }

    /// Ask the thread to stop (it does within a poll interval, or as soon as a pending send can give up).
    pub fn stop(&mut self) {
        self.stop.take();
    }

    /// Stop and wait for the thread. Blocks: call from a blocking context (or `spawn_blocking`).
    pub fn join(mut self) {
        self.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for FollowerHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Tracked {
    /// Current name.
    path: PathBuf,
    /// None: deleted, or rotated to a name we could not find.
    offsets_path: Option<PathBuf>,
    file: File,
    id: FileIdentity,
    offset: u64,
    /// Size at the last poll, to re-check the first line only when it changed.
    last_size: u64,
    /// Lines consumed since `line_base`.
    line_no: u64,
    line_base: u64,
    warned: bool,
    /// Inside a line longer than `max_batch_bytes`: skipping to its end.
    skipping: bool,
    /// Left the glob at this instant (rotated or deleted).
    retiring_since: Option<Instant>,
    seen: bool,
}

struct Worker {
    source: LogSourceConfig,
    parser: LineParser,
    matcher: Arc<Matcher>,
    stored: Vec<Offsets>,
    opts: FollowOptions,
    files: Vec<Tracked>,
    tx: mpsc::Sender<FollowUpdate>,
    stop: std_mpsc::Receiver<()>,
    status_tx: watch::Sender<SourceStatus>,
    status: SourceStatus,
    first_poll: bool,
    buf: Vec<u8>,
}

enum Stop {
    Yes,
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Hash of the first line (up to HEAD_LEN bytes), None while the first line is incomplete and shorter.
fn head_hash(file: &File) -> std::io::Result<Option<u64>> {
    let mut buf = [0u8; HEAD_LEN];
    let mut n = 0;
    while n < HEAD_LEN {
        match file.read_at(&mut buf[n..], n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(match memchr::memchr(b'\n', &buf[..n]) {
        Some(i) => Some(fnv1a(&buf[..i])),
        None if n == HEAD_LEN => Some(fnv1a(&buf)),
        None => None,
    })
}

fn identity(file: &File, md: &std::fs::Metadata) -> std::io::Result<FileIdentity> {
    Ok(FileIdentity {
        dev: md.dev(),
        ino: md.ino(),
        head: head_hash(file)?,
    })
}

/// The name a file with this device+inode has in `dir`, if any.
fn find_by_inode(dir: &Path, dev: u64, ino: u64) -> Option<PathBuf> {
    let rd = std::fs::read_dir(dir).ok()?;
    for entry in rd.flatten() {
        if entry.ino() != ino {
            continue;
        }
        let path = entry.path();
        if let Ok(md) = std::fs::metadata(&path)
            && md.dev() == dev
            && md.ino() == ino
            && md.is_file()
        {
            return Some(path);
        }
    }
    None
}

impl Worker {
    fn run(&mut self) {
        loop {
            if matches!(self.poll(), Err(Stop::Yes)) {
                return;
            }
            match self.stop.recv_timeout(self.opts.poll_interval) {
                Err(std_mpsc::RecvTimeoutError::Timeout) => {}
                _ => return,
            }
        }
    }

    /// Send, giving up only when stopped or the receiver is gone (a full channel just waits).
    fn send(&self, mut msg: FollowUpdate) -> Result<(), Stop> {
        loop {
            match self.tx.try_send(msg) {
                Ok(()) => return Ok(()),
                Err(mpsc::error::TrySendError::Closed(_)) => return Err(Stop::Yes),
                Err(mpsc::error::TrySendError::Full(m)) => {
                    msg = m;
                    match self.stop.recv_timeout(Duration::from_millis(10)) {
                        Err(std_mpsc::RecvTimeoutError::Timeout) => {}
                        _ => return Err(Stop::Yes),
                    }
                }
            }
        }
    }

    fn set_status(&mut self, status: SourceStatus) -> Result<(), Stop> {
        if status == self.status {
            return Ok(());
        }
        match &status {
            SourceStatus::Error(m) => {
                tracing::warn!(source = %self.source.name, "log source error: {m}")
            }
            SourceStatus::WaitingForFile => tracing::warn!(
                source = %self.source.name,
                path = %self.source.path,
                "log source: no file matches yet, waiting"
            ),
            _ => tracing::info!(source = %self.source.name, "log source {status}"),
        }
        self.status = status.clone();
        self.status_tx.send_replace(status.clone());
        self.send(FollowUpdate::Status {
            source: self.source.name.clone(),
            status,
        })
    }

    fn poll(&mut self) -> Result<(), Stop> {
        let mut errors: Vec<String> = Vec::new();
        let mut matched = 0usize;
        let now = Instant::now();
        for f in &mut self.files {
            f.seen = false;
        }

        let paths: Vec<PathBuf> = match glob::glob(&self.source.path) {
            Ok(it) => it
                .filter_map(|r| match r {
                    Ok(p) => Some(p),
                    Err(e) => {
                        if e.error().kind() != std::io::ErrorKind::NotFound {
                            errors.push(format!("{}: {}", e.path().display(), e.error()));
                        }
                        None
                    }
                })
                .collect(),
            Err(e) => {
                errors.push(format!("invalid glob {:?}: {}", self.source.path, e.msg));
                Vec::new()
            }
        };

        for path in paths {
            let md = match std::fs::metadata(&path) {
                Ok(md) if md.is_file() => md,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    errors.push(format!("{}: {e}", path.display()));
                    continue;
                }
            };
            matched += 1;
            if let Some(i) = self
                .files
                .iter()
                .position(|f| f.id.dev == md.dev() && f.id.ino == md.ino())
            {
                let f = &mut self.files[i];
                f.seen = true;
                f.retiring_since = None;
                f.path = path.clone();
                f.offsets_path = Some(path);
                if let Err(e) = check_rewritten(f, md.len(), &self.source.name) {
                    errors.push(format!("{}: {e}", f.path.display()));
                }
                continue;
            }
            match self.open_new(&path, &md) {
                Ok(t) => self.files.push(t),
                Err(e) => errors.push(format!("{}: {e}", path.display())),
            }
        }

        if self.first_poll {
            self.recover_rotated();
            self.first_poll = false;
        }

        // Files that left the glob: rotated away or deleted.
        for f in &mut self.files {
            if !f.seen && f.retiring_since.is_none() {
                f.retiring_since = Some(now);
                let dir = f.path.parent().unwrap_or(Path::new("."));
                f.offsets_path = find_by_inode(dir, f.id.dev, f.id.ino);
                if let Some(p) = &f.offsets_path {
                    f.path = p.clone();
                }
                tracing::debug!(source = %self.source.name, path = %f.path.display(), "file rotated away; finishing it");
            }
        }

        // Read everything new.
        let mut i = 0;
        while i < self.files.len() {
            let last_call = self.files[i]
                .retiring_since
                .is_some_and(|t| now.duration_since(t) >= self.opts.rotated_grace);
            if let Err(e) = self.read_file(i, last_call) {
                match e {
                    ReadErr::Stop => return Err(Stop::Yes),
                    ReadErr::Io(e) => errors.push(format!("{}: {e}", self.files[i].path.display())),
                }
            }
            if last_call {
                self.files.remove(i);
            } else {
                i += 1;
            }
        }

        let status = if let Some(first) = errors.first() {
            let more = if errors.len() > 1 {
                format!(" (and {} more)", errors.len() - 1)
            } else {
                String::new()
            };
            SourceStatus::Error(format!("{first}{more}"))
        } else if matched == 0 {
            SourceStatus::WaitingForFile
        } else {
            SourceStatus::Ok
        };
        self.set_status(status)
    }

    fn open_new(&mut self, path: &Path, md: &std::fs::Metadata) -> std::io::Result<Tracked> {
        let file = File::open(path)?;
        // Re-stat the opened file: the name may have moved between stat and open.
        let md_open = file.metadata()?;
        let md = if md_open.ino() == md.ino() {
            md
        } else {
            &md_open
        };
        let id = identity(&file, md)?;
        let size = md.len();
        let stored = self
            .stored
            .iter()
            .position(|o| o.identity.same_file(&id))
            .map(|i| self.stored.swap_remove(i));
        let offset = match stored {
            Some(o) if o.offset <= size => o.offset,
            Some(_) => 0, // truncated while we were away
            // "From the end" is for files we never saw; a path with a stored row holds a file created while
            // we were down (rotation): it is read whole.
            None if self.first_poll
                && self.opts.start_at == StartAt::End
                && !self.stored.iter().any(|o| o.path == path) =>
            {
                last_line_end(&file, size)?
            }
            None => 0,
        };
        tracing::debug!(source = %self.source.name, path = %path.display(), offset, "following file");
        Ok(Tracked {
            path: path.to_path_buf(),
            offsets_path: Some(path.to_path_buf()),
            file,
            id,
            offset,
            last_size: size,
            line_no: 0,
            line_base: offset,
            warned: false,
            skipping: false,
            retiring_since: None,
            seen: true,
        })
    }

    /// Stored files that are not at a glob path any more (rotated while we were down): finish them.
    fn recover_rotated(&mut self) {
        let stored = std::mem::take(&mut self.stored);
        for o in stored {
            if self.files.iter().any(|f| f.id.same_file(&o.identity)) {
                continue;
            }
            let dir = o.path.parent().unwrap_or(Path::new("."));
            let candidate = match std::fs::metadata(&o.path) {
                Ok(md) if md.dev() == o.identity.dev && md.ino() == o.identity.ino => {
                    Some(o.path.clone())
                }
                _ => find_by_inode(dir, o.identity.dev, o.identity.ino),
            };
            let Some(path) = candidate else { continue };
            let Ok(file) = File::open(&path) else {
                continue;
            };
            let Ok(md) = file.metadata() else { continue };
            let Ok(id) = identity(&file, &md) else {
                continue;
            };
            if !id.same_file(&o.identity) || o.offset > md.len() {
                continue;
            }
            tracing::info!(source = %self.source.name, path = %path.display(), "finishing rotated file from stored offset");
            self.files.push(Tracked {
                path: path.clone(),
                offsets_path: Some(path),
                file,
                id,
                offset: o.offset,
                last_size: md.len(),
                line_no: 0,
                line_base: o.offset,
                warned: false,
                skipping: false,
                retiring_since: Some(Instant::now()),
                seen: false,
            });
        }
    }

    fn read_file(&mut self, i: usize, last_call: bool) -> Result<(), ReadErr> {
        let max = self.opts.max_batch_bytes.max(HEAD_LEN);
        let mut buf = std::mem::take(&mut self.buf);
        let r = self.read_file_with(i, last_call, max, &mut buf);
        self.buf = buf;
        r
    }

    fn read_file_with(
        &mut self,
        i: usize,
        last_call: bool,
        max: usize,
        buf: &mut Vec<u8>,
    ) -> Result<(), ReadErr> {
        loop {
            let f = &mut self.files[i];
            let size = f.file.metadata().map_err(ReadErr::Io)?.len();
            let active = f.retiring_since.is_none();
            if size < f.offset {
                if !active {
                    return Ok(()); // truncated after rotation: nothing more of ours
                }
                restart(f, &self.source.name).map_err(ReadErr::Io)?;
                continue;
            }
            if size <= f.offset {
                return Ok(());
            }
            if f.id.head.is_none() {
                f.id.head = head_hash(&f.file).map_err(ReadErr::Io)?;
            }
            let want = ((size - f.offset) as usize).min(max);
            buf.resize(want, 0);
            let mut n = 0;
            while n < want {
                match f.file.read_at(&mut buf[n..want], f.offset + n as u64) {
                    Ok(0) => break,
                    Ok(k) => n += k,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(ReadErr::Io(e)),
                }
            }
            if n == 0 {
                return Ok(());
            }
            // Copy-truncate between the poll's stat and this read: what we read belongs to a new file if the
            // first line changed. (Checked after the read: a rewrite after it leaves our bytes valid.)
            if active && f.offset > 0 && head_hash(&f.file).map_err(ReadErr::Io)? != f.id.head {
                restart(f, &self.source.name).map_err(ReadErr::Io)?;
                continue;
            }
            let data = &buf[..n];
            let end = match memchr::memrchr(b'\n', data) {
                Some(j) => j + 1,
                None if n == max => {
                    // A line longer than max: skip it, counted as malformed once its end is found.
                    f.skipping = true;
                    f.offset += n as u64;
                    continue;
                }
                None if last_call && n as u64 == size - f.offset => n,
                None => return Ok(()), // partial line: wait for its newline
            };
            let batch = self.lines_to_batch(i, &buf[..end]);
            let f = &mut self.files[i];
            f.offset += end as u64;
            f.last_size = f.last_size.max(f.offset);
            let offset = f.offsets_path.clone().map(|path| Offsets {
                path,
                identity: f.id,
                offset: f.offset,
            });
            let batch = Batch { offset, ..batch };
            self.send(FollowUpdate::Batch(batch))
                .map_err(|_| ReadErr::Stop)?;
        }
    }

    fn lines_to_batch(&mut self, i: usize, data: &[u8]) -> Batch {
        let now = Utc::now();
        let f = &mut self.files[i];
        let mut batch = Batch {
            source: self.source.name.clone(),
            path: f.path.clone(),
            events: Vec::new(),
            offset: None,
            lines: 0,
            malformed: 0,
            unmatched: 0,
        };
        let mut start = 0usize;
        while start < data.len() {
            let end = memchr::memchr(b'\n', &data[start..]).map_or(data.len(), |j| start + j + 1);
            let raw = &data[start..end];
            let line_offset = f.line_base_offset(start);
            start = end;
            f.line_no += 1;
            batch.lines += 1;
            if f.skipping {
                f.skipping = false;
                batch.malformed += 1;
                warn_malformed(&self.source.name, f, line_offset, None);
                continue;
            }
            match self.parser.parse(raw) {
                Line::OtherStatus => {}
                Line::Malformed => {
                    batch.malformed += 1;
                    warn_malformed(
                        &self.source.name,
                        f,
                        line_offset,
                        Some(strip_eol(raw).len()),
                    );
                }
                Line::Event(ev) => {
                    let mut ev = super::auth_event(&ev, &self.matcher, &self.source.name, now);
                    ev.origin.location = Some(crate::sanitize::clean(&line_label(f)));
                    if ev.integration.is_none() {
                        batch.unmatched += 1;
                    }
                    batch.events.push(ev);
                }
            }
        }
        batch
    }
}

impl Tracked {
    fn line_base_offset(&self, within: usize) -> u64 {
        self.offset + within as u64
    }
}

enum ReadErr {
    Stop,
    Io(std::io::Error),
}

/// `path line N`, or `path line N after byte B` when reading started mid-file (lines before B are not counted).
fn line_label(f: &Tracked) -> String {
    if f.line_base == 0 {
        format!("{} line {}", f.path.display(), f.line_no)
    } else {
        format!(
            "{} line {} after byte {}",
            f.path.display(),
            f.line_no,
            f.line_base
        )
    }
}

/// One sample per file and run: position and length only, never the content (it may hold a secret).
fn warn_malformed(source: &str, f: &mut Tracked, offset: u64, len: Option<usize>) {
    if f.warned {
        return;
    }
    f.warned = true;
    let line = if f.line_base == 0 {
        format!("line {}", f.line_no)
    } else {
        format!("line {} after byte {}", f.line_no, f.line_base)
    };
    match len {
        Some(len) => tracing::warn!(
            source,
            path = %f.path.display(),
            offset,
            len,
            "skipping malformed log line ({line}, {len} bytes); further ones in this file are only counted"
        ),
        None => tracing::warn!(
            source,
            path = %f.path.display(),
            offset,
            "skipping over-long log line ({line}); further malformed lines in this file are only counted"
        ),
    }
}

/// Copy-truncate and rewrite detection for a file still at its path.
fn check_rewritten(f: &mut Tracked, size: u64, source: &str) -> std::io::Result<()> {
    let mut rewritten = size < f.offset;
    if !rewritten && size != f.last_size {
        let head = head_hash(&f.file)?;
        match (f.id.head, head) {
            (Some(old), Some(new)) if old != new => rewritten = true,
            (None, Some(new)) => f.id.head = Some(new),
            _ => {}
        }
    }
    f.last_size = size;
    if rewritten {
        restart(f, source)?;
    }
    Ok(())
}

fn restart(f: &mut Tracked, source: &str) -> std::io::Result<()> {
    tracing::info!(source, path = %f.path.display(), "file was truncated or rewritten; reading it from the start");
    f.offset = 0;
    f.line_no = 0;
    f.line_base = 0;
    f.skipping = false;
    f.id.head = head_hash(&f.file)?;
    Ok(())
}

/// Offset just after the last `\n` before `size` (0 if none): where "from the end" starts.
fn last_line_end(file: &File, size: u64) -> std::io::Result<u64> {
    let mut pos = size;
    let mut buf = [0u8; 8192];
    while pos > 0 {
        let n = (pos as usize).min(buf.len());
        let start = pos - n as u64;
        file.read_exact_at(&mut buf[..n], start)?;
        if let Some(j) = memchr::memrchr(b'\n', &buf[..n]) {
            return Ok(start + j as u64 + 1);
        }
        pos = start;
    }
    Ok(0)
}
