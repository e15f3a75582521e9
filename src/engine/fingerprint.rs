//! Fingerprints of secret values, for noticing a changed secret without keeping it: HMAC-SHA256 under a key made
//! at start (random, per process, never written anywhere), so nothing kept could be checked against a guess
//! outside this process. The rule for "is this news" is here too; `secret_watch` does the reading.

use std::collections::HashMap;

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
}
