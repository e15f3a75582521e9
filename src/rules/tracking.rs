//! Failure tracking: consecutive failures, pauses, forced probes, credential holds and "confirmed by another
//! consumer". Pure: state + result + settings -> new state + decisions. The engine (live and one-shot) and the
//! restore path all go through here, so "how a failure is counted" lives in one place.

use crate::config::Settings;
use crate::model::{Outcome, Phase, ProbeResult};
use crate::rules::schedule::{self, Next};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// What is known about one integration's recent probes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tracking {
    pub consecutive_auth: u32,
    /// Consecutive cannot-verify results (timeouts, 5xx, throttling).
    pub non_auth_streak: u32,
    /// Start of the current run of auth failures.
    pub failing_since: Option<DateTime<Utc>>,
    pub last_success: Option<DateTime<Utc>>,
    /// No automatic probing until a human acts (or another consumer of the credential succeeds).
    pub paused: bool,
    /// The next probe must not use a cached token.
    pub fresh_next: bool,
    /// A forced probe asked for while one was running.
    pub forced_pending: bool,
}

/// What a probe result means for the credential it used (and so for every other consumer of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialChange {
    None,
    /// The token endpoint asked us to wait (429/503 with Retry-After): no consumer starts a probe before.
    Hold(Duration),
    /// The token endpoint refused the secret until the pause: pause the credential and its confirmed consumers.
    Refused,
    /// The credential works: lift its pause and resume consumers not paused by their own failures.
    Accepted,
}

/// Decisions after one result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Probe again after this delay (jitter applied); None: paused.
    pub next: Option<Duration>,
    pub credential: CredentialChange,
}

/// When a forced probe runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forced {
    Now,
    /// One is running: the forced probe follows it.
    AfterCurrent,
}

impl Tracking {
    /// Count one result and decide the next probe. `rng_unit` in [0, 1) picks the jitter.
    pub fn observe(&mut self, result: &ProbeResult, s: &Settings, rng_unit: f64) -> Decision {
        let outcome = result.outcome;
        if outcome.is_ok() {
            self.consecutive_auth = 0;
            self.non_auth_streak = 0;
            self.failing_since = None;
            self.last_success = Some(result.at);
        } else if outcome.is_auth_failure() {
            self.consecutive_auth = self.consecutive_auth.saturating_add(1);
            self.non_auth_streak = 0;
            self.failing_since.get_or_insert(result.at);
        } else {
            self.non_auth_streak = self.non_auth_streak.saturating_add(1);
        }
        let mut next = schedule::next_after(result, self.consecutive_auth, self.non_auth_streak, s);
        let mut unit = rng_unit;
        if std::mem::take(&mut self.forced_pending) {
            next = Next::After {
                delay: Duration::ZERO,
                fresh_token: true,
            };
            unit = 0.5;
        }
        let next = match next {
            Next::After { delay, fresh_token } => {
                self.paused = false;
                self.fresh_next |= fresh_token;
                Some(schedule::jitter(delay, unit))
            }
            Next::Pause => {
                self.paused = true;
                None
            }
        };
        Decision {
            next,
            credential: self.credential_change(result),
        }
    }

    fn credential_change(&self, result: &ProbeResult) -> CredentialChange {
        match (result.phase, result.outcome) {
            (_, o) if o.is_ok() => CredentialChange::Accepted,
            (Phase::Token, Outcome::RateLimited | Outcome::ServerError) => {
                result.retry_after_secs.map_or(CredentialChange::None, |s| {
                    CredentialChange::Hold(Duration::from_secs(s))
                })
            }
            (Phase::Token, Outcome::AuthRejected) if self.paused => CredentialChange::Refused,
            _ => CredentialChange::None,
        }
    }

    /// The secret could not be resolved: nothing was probed; look again after an interval.
    pub fn secret_unavailable(&self, s: &Settings) -> Duration {
        s.probe_interval
    }

    /// A human asked for a probe with a fresh token, lifting any pause.
    pub fn force(&mut self, in_flight: bool) -> Forced {
        self.paused = false;
        self.fresh_next = true;
        if in_flight {
            self.forced_pending = true;
            Forced::AfterCurrent
        } else {
            Forced::Now
        }
    }

    /// Another consumer's refusal paused the credential. One already refused here (and not waiting for its
    /// own answer) is confirmed by it: pause it now rather than leave it "confirming" with no probe coming.
    /// Returns whether it paused.
    pub fn confirmed_by_other(&mut self, in_flight: bool) -> bool {
        let pause = !in_flight && self.consecutive_auth > 0 && !self.paused;
        self.paused |= pause;
        pause
    }

    /// Another consumer of the credential succeeded: resume if the pause was not earned by our own failures.
    /// Returns whether it resumed (probe it now).
    pub fn resumed_by_other(&mut self, s: &Settings) -> bool {
        let resume = self.paused && self.consecutive_auth < s.failure_threshold;
        self.paused &= !resume;
        resume
    }

    /// Due while its credential is paused: it pauses too instead of probing.
    pub fn credential_paused(&mut self) {
        self.paused = true;
    }

    /// Continue from stored results (newest last), as if they had just been observed.
    pub fn from_history(probes: &[ProbeResult], s: &Settings) -> Self {
        let trailing_auth = probes
            .iter()
            .rev()
            .take_while(|r| r.outcome.is_auth_failure())
            .count();
        let consecutive_auth = u32::try_from(trailing_auth).unwrap_or(u32::MAX);
        Self {
            consecutive_auth,
            non_auth_streak: u32::try_from(
                probes
                    .iter()
                    .rev()
                    .take_while(|r| !r.outcome.is_ok() && !r.outcome.is_auth_failure())
                    .count(),
            )
            .unwrap_or(u32::MAX),
            failing_since: (trailing_auth > 0).then(|| probes[probes.len() - trailing_auth].at),
            last_success: probes
                .iter()
                .rev()
                .find(|r| r.outcome.is_ok())
                .map(|r| r.at),
            paused: consecutive_auth >= s.failure_threshold && consecutive_auth > 0,
            fresh_next: false,
            forced_pending: false,
        }
    }

    /// Restored paused with a refusal at the token endpoint last: the credential itself is refused.
    pub fn refuses_credential(&self, probes: &[ProbeResult]) -> bool {
        self.paused
            && probes
                .last()
                .is_some_and(|r| r.outcome == Outcome::AuthRejected)
    }

    /// A reload is a human acting: forget the pause but not the evidence.
    pub fn after_reload(&self, s: &Settings) -> Self {
        Self {
            consecutive_auth: self
                .consecutive_auth
                .min(s.failure_threshold.saturating_sub(1)),
            failing_since: self.failing_since,
            last_success: self.last_success,
            ..Self::default()
        }
    }

    /// In a one-shot sweep, only an auth failure not yet confirmed is probed again (at once); everything else
    /// is final. A sweep never pauses: it just stops.
    pub fn one_shot_done(&mut self) -> bool {
        let confirming = self.consecutive_auth > 0 && !self.paused;
        self.paused = false;
        !confirming
    }
}

/// Per-credential state shared by the consumers of a credential. `T` is the clock's instant type.
#[derive(Debug, Clone)]
pub struct Credentials<T> {
    /// Refused `failure_threshold` times: no automatic probing.
    paused: HashSet<String>,
    /// Told to wait (429/503 on the token endpoint) until then.
    held: HashMap<String, T>,
}

impl<T> Default for Credentials<T> {
    fn default() -> Self {
        Self {
            paused: HashSet::new(),
            held: HashMap::new(),
        }
    }
}

impl<T: Copy + Ord> Credentials<T> {
    pub fn is_paused(&self, credential: &str) -> bool {
        self.paused.contains(credential)
    }
    pub fn paused(&self) -> &HashSet<String> {
        &self.paused
    }
    pub fn pause(&mut self, credential: &str) {
        self.paused.insert(credential.to_string());
    }
    /// Held at `now`: no probe of it may start.
    pub fn is_held(&self, credential: &str, now: T) -> bool {
        self.held.get(credential).is_some_and(|t| *t > now)
    }
    pub fn held_until(&self, credential: &str) -> Option<T> {
        self.held.get(credential).copied()
    }
    /// Hold until `until` (a later hold already in place is kept).
    pub fn hold(&mut self, credential: &str, until: T) {
        let slot = self.held.entry(credential.to_string()).or_insert(until);
        *slot = (*slot).max(until);
    }
    /// It works again (or a human acted): lift the pause.
    pub fn accept(&mut self, credential: &str) {
        self.paused.remove(credential);
    }
    /// A human asked for a probe: lift the pause and the hold.
    pub fn lift(&mut self, credential: &str) {
        self.paused.remove(credential);
        self.held.remove(credential);
    }
    pub fn clear(&mut self) {
        self.paused.clear();
        self.held.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Phase;

    fn at(min: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + min * 60, 0).unwrap()
    }

    fn result(min: i64, outcome: Outcome, phase: Phase, retry_after: Option<u64>) -> ProbeResult {
        let mut r = ProbeResult::new(at(min), outcome, phase);
        r.retry_after_secs = retry_after;
        r
    }

    fn tracking(auth: u32, streak: u32, paused: bool) -> Tracking {
        Tracking {
            consecutive_auth: auth,
            non_auth_streak: streak,
            failing_since: (auth > 0).then(|| at(0)),
            paused,
            ..Tracking::default()
        }
    }

    #[test]
    fn table_of_observed_results() {
        let s = Settings::default(); // interval 5m, confirm 30s, threshold 3
        let secs = Duration::from_secs;
        use CredentialChange as C;
        use Outcome as O;
        use Phase as P;
        // (name, before, result, after: (auth, streak, failing_since, paused, fresh_next), decision)
        #[allow(clippy::type_complexity)]
        let cases: [(
            &str,
            Tracking,
            ProbeResult,
            (u32, u32, Option<i64>, bool, bool),
            Decision,
        ); 9] = [
            (
                "ok resets everything and accepts the credential",
                tracking(2, 0, false),
                result(5, O::Ok, P::Call, None),
                (0, 0, None, false, false),
                Decision {
                    next: Some(secs(300)),
                    credential: C::Accepted,
                },
            ),
            (
                "first auth failure confirms soon with a fresh token",
                tracking(0, 0, false),
                result(5, O::AuthRejected, P::Token, None),
                (1, 0, Some(5), false, true),
                Decision {
                    next: Some(secs(30)),
                    credential: C::None,
                },
            ),
            (
                "failing_since keeps the start of the run",
                tracking(1, 0, false),
                result(5, O::Forbidden, P::Call, None),
                (2, 0, Some(0), false, true),
                Decision {
                    next: Some(secs(60)),
                    credential: C::None,
                },
            ),
            (
                "threshold at the token endpoint pauses and refuses the credential",
                tracking(2, 0, false),
                result(5, O::AuthRejected, P::Token, None),
                (3, 0, Some(0), true, false),
                Decision {
                    next: None,
                    credential: C::Refused,
                },
            ),
            (
                "threshold at the call pauses but the credential is not refused",
                tracking(2, 0, false),
                result(5, O::ScopeMissing, P::Call, None),
                (3, 0, Some(0), true, false),
                Decision {
                    next: None,
                    credential: C::None,
                },
            ),
            (
                "throttled token endpoint holds the credential",
                tracking(0, 0, false),
                result(5, O::RateLimited, P::Token, Some(120)),
                (0, 1, None, false, false),
                Decision {
                    next: Some(secs(300)),
                    credential: C::Hold(secs(120)),
                },
            ),
            (
                "throttled call does not hold the credential",
                tracking(0, 1, false),
                result(5, O::RateLimited, P::Call, Some(120)),
                (0, 2, None, false, false),
                Decision {
                    next: Some(secs(600)),
                    credential: C::None,
                },
            ),
            (
                "cannot verify keeps the auth count",
                tracking(1, 0, false),
                result(5, O::Timeout, P::Call, None),
                (1, 1, Some(0), false, false),
                Decision {
                    next: Some(secs(30)),
                    credential: C::None,
                },
            ),
            (
                "503 without Retry-After holds nothing",
                tracking(0, 0, false),
                result(5, O::ServerError, P::Token, None),
                (0, 1, None, false, false),
                Decision {
                    next: Some(secs(30)),
                    credential: C::None,
                },
            ),
        ];
        for (name, mut t, r, (auth, streak, since, paused, fresh), want) in cases {
            let got = t.observe(&r, &s, 0.5);
            assert_eq!(got, want, "{name}");
            assert_eq!(
                (
                    t.consecutive_auth,
                    t.non_auth_streak,
                    t.failing_since,
                    t.paused,
                    t.fresh_next
                ),
                (auth, streak, since.map(at), paused, fresh),
                "{name}"
            );
        }
    }

    #[test]
    fn a_forced_probe_during_one_follows_it_at_once_with_a_fresh_token() {
        let s = Settings::default();
        let mut t = tracking(3, 0, true);
        assert_eq!(t.force(true), Forced::AfterCurrent);
        assert!(!t.paused && t.fresh_next);
        let d = t.observe(
            &result(5, Outcome::AuthRejected, Phase::Token, None),
            &s,
            0.9,
        );
        assert_eq!(d.next, Some(Duration::ZERO), "even past the threshold");
        assert!(!t.paused && t.fresh_next && !t.forced_pending);
        let mut idle = Tracking::default();
        assert_eq!(idle.force(false), Forced::Now);
        assert!(!idle.forced_pending);
    }

    #[test]
    fn table_of_other_consumers() {
        let s = Settings::default();
        // (name, before, in flight, confirmed_by_other pauses?, resumed_by_other resumes?)
        let cases = [
            (
                "refused here too: confirmed",
                tracking(1, 0, false),
                false,
                true,
                true,
            ),
            (
                "waiting for its own answer",
                tracking(1, 0, false),
                true,
                false,
                false,
            ),
            (
                "never refused: left alone",
                tracking(0, 0, false),
                false,
                false,
                false,
            ),
            (
                "paused by its own failures stays paused",
                tracking(3, 0, true),
                false,
                false,
                false,
            ),
        ];
        for (name, before, in_flight, pauses, resumes) in cases {
            let mut t = before.clone();
            assert_eq!(t.confirmed_by_other(in_flight), pauses, "{name}: pause");
            assert_eq!(t.resumed_by_other(&s), resumes, "{name}: resume");
            assert_eq!(t.paused, before.paused, "{name}: round trip");
        }
    }

    #[test]
    fn table_of_restored_histories() {
        let s = Settings::default();
        use Outcome as O;
        let r = |m, o| result(m, o, Phase::Token, None);
        // (name, history, auth, streak, failing_since, last_success, paused, refuses credential)
        #[allow(clippy::type_complexity)]
        let cases: [(
            &str,
            Vec<ProbeResult>,
            u32,
            u32,
            Option<i64>,
            Option<i64>,
            bool,
            bool,
        ); 5] = [
            ("empty", vec![], 0, 0, None, None, false, false),
            (
                "ok last",
                vec![r(1, O::AuthRejected), r(2, O::Ok)],
                0,
                0,
                None,
                Some(2),
                false,
                false,
            ),
            (
                "trailing refusals below the threshold",
                vec![r(1, O::Ok), r(2, O::AuthRejected), r(3, O::Forbidden)],
                2,
                0,
                Some(2),
                Some(1),
                false,
                false,
            ),
            (
                "refused at the threshold: paused, credential refused",
                vec![
                    r(1, O::AuthRejected),
                    r(2, O::AuthRejected),
                    r(3, O::AuthRejected),
                ],
                3,
                0,
                Some(1),
                None,
                true,
                true,
            ),
            (
                "timeouts after a refusal",
                vec![
                    r(1, O::AuthRejected),
                    r(2, O::Timeout),
                    r(3, O::ServerError),
                ],
                0,
                2,
                None,
                None,
                false,
                false,
            ),
        ];
        for (name, h, auth, streak, since, ok, paused, refuses) in cases {
            let t = Tracking::from_history(&h, &s);
            assert_eq!(
                (
                    t.consecutive_auth,
                    t.non_auth_streak,
                    t.failing_since,
                    t.last_success,
                    t.paused
                ),
                (auth, streak, since.map(at), ok.map(at), paused),
                "{name}"
            );
            assert_eq!(t.refuses_credential(&h), refuses, "{name}");
        }
    }

    #[test]
    fn a_reload_forgets_the_pause_but_not_the_evidence() {
        let s = Settings::default();
        let t = tracking(5, 2, true).after_reload(&s);
        assert_eq!(
            (t.consecutive_auth, t.paused, t.failing_since),
            (2, false, Some(at(0)))
        );
    }

    #[test]
    fn a_one_shot_probes_again_only_to_confirm_an_auth_failure() {
        let cases = [
            ("ok", tracking(0, 0, false), true),
            ("confirming", tracking(1, 0, false), false),
            ("confirmed (paused)", tracking(3, 0, true), true),
            ("cannot verify", tracking(0, 2, false), true),
        ];
        for (name, mut t, done) in cases {
            assert_eq!(t.one_shot_done(), done, "{name}");
            assert!(!t.paused, "{name}: a sweep never pauses");
        }
    }

    #[test]
    fn credentials_hold_until_the_latest_and_a_human_lifts_everything() {
        let mut c: Credentials<u32> = Credentials::default();
        c.hold("a", 10);
        c.hold("a", 5);
        assert!(c.is_held("a", 9) && !c.is_held("a", 10) && !c.is_held("b", 0));
        c.pause("a");
        c.accept("a");
        assert!(!c.is_paused("a") && c.is_held("a", 9));
        c.pause("a");
        c.lift("a");
        assert!(!c.is_paused("a") && c.held_until("a").is_none());
    }
}
