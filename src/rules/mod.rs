//! Pure decisions, `now` always passed in: health verdicts, failure tracking (pauses, holds, confirmations),
//! when to probe next, and uptime/incidents. No I/O, no clock.

pub mod health;
pub mod schedule;
pub mod tracking;
pub mod uptime;
