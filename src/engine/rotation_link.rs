//! The engine's link to its one rotation driver (`crate::rotation::session`): what travels with a step, which
//! steps run now, answers waiting for their snapshot. The engine's side of it is in `rotations`.

use crate::rotation::session::{self, DriverIn, RotationSetup, Update};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;

/// What travels with a step through the driver: who waits for the answer, and whether the step marked the
/// credential busy.
pub(super) struct Reply {
    pub to: Option<tokio::sync::oneshot::Sender<Update>>,
    pub busy: bool,
}

pub(super) type DriverOut = session::DriverOut<Reply>;

/// A step running in the driver right now.
pub(super) struct Busy {
    pub step: &'static str,
    pub actor: session::Actor,
    pub since: DateTime<Utc>,
}

/// The engine's side of the rotation driver.
pub(super) struct Link {
    pub tx: mpsc::UnboundedSender<DriverIn<Reply>>,
    pub busy: HashMap<String, Busy>,
    /// Answers held until the snapshot that shows their step is published.
    pub replies: Vec<(tokio::sync::oneshot::Sender<Update>, Update)>,
}

impl Link {
    /// The driver starts when `gate` opens (at once without one).
    pub(super) fn spawn(
        setup: RotationSetup,
        gate: Option<tokio::sync::oneshot::Receiver<()>>,
    ) -> (Link, mpsc::UnboundedReceiver<DriverOut>) {
        let (tx, rx) = session::spawn(setup, gate);
        (
            Link {
                tx,
                busy: HashMap::new(),
                replies: Vec::new(),
            },
            rx,
        )
    }

    pub(super) fn refresh(&self, credentials: Vec<String>) {
        let _ = self.tx.send(DriverIn::Refresh(credentials));
    }

    pub(super) fn reconfigure(&self, config: Arc<crate::config::Config>) {
        let _ = self.tx.send(DriverIn::Reconfigure(config));
    }
}

/// The driver's next answer; pending forever without a driver.
pub(super) async fn next_out(
    rx: &mut Option<mpsc::UnboundedReceiver<DriverOut>>,
) -> Option<DriverOut> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
