//! Fingerprints of secret values, for noticing a changed secret without keeping it: HMAC-SHA256 under a key made
//! at start (random, per process, never written anywhere), so nothing kept could be checked against a guess
//! outside this process. The rule for "is this news" is here too, and the `stat` stamps that spare re-reading an
//! unchanged file; `secret_watch` does the reading.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What reading one credential's secret reference gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Read {
    /// Read, with the fingerprint of the value.
    Value([u8; 32]),
    /// Could not be read (the message never holds the value).
    Unavailable,
}

/// One round of reads, for the configuration of `generation`.
pub(super) struct SecretReads {
    pub generation: u64,
    pub reads: Vec<(String, Read)>,
}

/// Whether a new read means "re-probe now": the value changed, or it can be read again after it could not.
/// The first read of a credential is the baseline (`consumers_missing_it`: a probe found it unavailable before
/// any read here, so it is news all the same).
pub(super) fn is_news(before: Option<&Read>, now: &Read, consumers_missing_it: bool) -> bool {
    match (before, now) {
        (_, Read::Unavailable) => false,
        (Some(Read::Value(a)), Read::Value(b)) => a != b,
        (Some(Read::Unavailable), Read::Value(_)) => true,
        (None, Read::Value(_)) => consumers_missing_it,
    }
}

/// The key fingerprints are made with: random, per process, never written anywhere.
pub(super) fn fingerprint_key() -> ring::hmac::Key {
    ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &rand::random::<[u8; 32]>())
}

pub(super) fn fingerprint(key: &ring::hmac::Key, secret: &str) -> [u8; 32] {
    let tag = ring::hmac::sign(key, secret.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// Reads kept per credential.
pub(super) type Reads = HashMap<String, Read>;

/// What a secret file looked like (`stat`) when it was last read, and the fingerprint it read as: an unchanged
/// file is not opened again every round (500 credentials: 500 opens and reads a minute, an eighth of an idle
/// console's CPU at 10,000 integrations).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct FileStamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileStamp {
    /// The stamp, and whether it is settled: changed more than `SETTLED` before `now`. A file written again within
    /// the same timestamp tick as the read would keep its stamp, so only a settled stamp is trusted (git's
    /// "racily clean" rule).
    pub(super) fn of(path: &Path, now: SystemTime) -> Option<(FileStamp, bool)> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok().filter(|m| m.is_file())?;
        let stamp = FileStamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        };
        let changed = stamp.mtime.max(stamp.ctime);
        let settled = now
            .checked_sub(SETTLED)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .is_some_and(|t| (t.as_secs() as i64, t.subsec_nanos() as i64) > changed);
        Some((stamp, settled))
    }
}

const SETTLED: Duration = Duration::from_secs(2);
/// Every this many rounds every file is read whatever its stamp says (a clock set back could reuse a stamp).
pub(super) const READ_ALL_EVERY: u32 = 10;

#[derive(Default)]
pub(super) struct FileStamps {
    pub by_path: HashMap<PathBuf, (FileStamp, [u8; 32])>,
    pub rounds: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_counts_as_a_changed_secret() {
        let key = fingerprint_key();
        let a = Read::Value(fingerprint(&key, "old-secret"));
        let b = Read::Value(fingerprint(&key, "new-secret"));
        let gone = Read::Unavailable;
        let cases = [
            ("first read is the baseline", None, &a, false, false),
            (
                "first read after a probe could not read it",
                None,
                &a,
                true,
                true,
            ),
            ("same value", Some(&a), &a, false, false),
            ("new value", Some(&a), &b, false, true),
            ("readable again", Some(&gone), &a, false, true),
            (
                "now unreadable: the probes say so",
                Some(&a),
                &gone,
                true,
                false,
            ),
        ];
        for (name, before, now, missing, want) in cases {
            assert_eq!(is_news(before, now, missing), want, "{name}");
        }
        // Keyed: another process (another key) gets another fingerprint for the same secret.
        assert_ne!(
            fingerprint(&key, "old-secret"),
            fingerprint(&fingerprint_key(), "old-secret")
        );
    }

    /// A stamp is trusted only once it has settled, and a file rewritten after that (same size, same inode)
    /// no longer matches it, so the next round reads it.
    #[test]
    fn a_settled_stamp_stands_until_the_file_is_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "first-secret-value").unwrap();
        let now = SystemTime::now();
        let (fresh, settled) = FileStamp::of(&path, now).unwrap();
        assert!(!settled, "just written: not trusted yet");
        let later = now + Duration::from_secs(3);
        let (again, settled) = FileStamp::of(&path, later).unwrap();
        assert!(settled && again == fresh);
        // Written long ago, as far as its modification time says (its change time is now).
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(now - Duration::from_secs(3600)).unwrap();
        let (old, settled) = FileStamp::of(&path, later).unwrap();
        assert!(settled);
        std::fs::write(&path, "other-secret-value").unwrap();
        let (rewritten, _) = FileStamp::of(&path, later).unwrap();
        assert!(rewritten != old, "same size and inode, new times");
        assert!(
            FileStamp::of(dir.path(), later).is_none(),
            "not a regular file"
        );
    }
}
