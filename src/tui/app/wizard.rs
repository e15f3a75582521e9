//! The open rotation wizard's state: what it shows, plus the secret being typed (kept here, zeroized, never
//! shown). It receives the wizard layers' actions and answers with the request for the rotation task, if any.

use super::nav::{Edited, Input, edit};
use crate::rotation::fsm::{Phase, Rotation};
use crate::rotation::session::WizardCmd;
use crate::tui::keymap::Action;
use crate::tui::views::wizard::Wizard;
use secrecy::SecretString;
use zeroize::Zeroizing;

/// Bytes reserved for a secret typed into the wizard (SFMC client secrets are 24-64 characters).
const SECRET_CAPACITY: usize = 512;

pub struct WizardUi {
    pub view: Wizard,
    secret: Zeroizing<String>,
    /// The confirmation was started with `A` (activate in the simulator first).
    confirm_in_sim: bool,
}

impl std::fmt::Debug for WizardUi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WizardUi")
            .field("view", &self.view)
            .field("secret", &"[REDACTED]")
            .finish()
    }
}

/// What the console does after a wizard input.
#[derive(Debug)]
pub enum WizardOutcome {
    /// Redraw (true) or not (false); nothing else.
    Redraw(bool),
    /// Send this to the rotation task.
    Request(WizardCmd),
    Close,
    Quit,
    /// Tell the user (an error).
    Refuse(&'static str),
}

impl WizardUi {
    pub fn new(view: Wizard) -> Self {
        Self {
            view,
            // Room for any client secret up front: growing the buffer would leave copies behind, unzeroized.
            secret: Zeroizing::new(String::with_capacity(SECRET_CAPACITY)),
            confirm_in_sim: false,
        }
    }

    pub(super) fn apply(&mut self, input: Input) -> WizardOutcome {
        if input == Input::Action(Action::Quit) {
            return WizardOutcome::Quit;
        }
        if self.view.secret_len.is_some() {
            return self.secret_input(input);
        }
        if self.view.confirm_typed.is_some() {
            return self.confirm_input(input);
        }
        let Input::Action(action) = input else {
            return WizardOutcome::Redraw(false);
        };
        if !self.view.offered().iter().any(|(a, _)| *a == action) {
            return WizardOutcome::Redraw(false);
        }
        if action == Action::Back {
            return WizardOutcome::Close;
        }
        if self.view.busy {
            return WizardOutcome::Refuse("a step is running: wait for its result");
        }
        let phase = self.view.rotation.phase;
        WizardOutcome::Request(match action {
            Action::WizardEnterSecret => {
                self.view.secret_len = Some(0);
                return WizardOutcome::Redraw(true);
            }
            Action::WizardActivated if phase == Phase::Promoted => {
                return self.start_confirm(false);
            }
            Action::WizardActivateInSim => return self.start_confirm(true),
            Action::WizardActivated => WizardCmd::Activate,
            Action::WizardGenerate => WizardCmd::SimGenerate,
            Action::WizardVerify => WizardCmd::Verify,
            Action::WizardPromote => WizardCmd::Promote {
                manual_confirmed: false,
            },
            Action::WizardConfirmUpdated => WizardCmd::Promote {
                manual_confirmed: true,
            },
            Action::WizardAbort => WizardCmd::Abort,
            _ => return WizardOutcome::Redraw(false),
        })
    }

    fn start_confirm(&mut self, in_sim: bool) -> WizardOutcome {
        self.view.confirm_typed = Some(String::new());
        self.confirm_in_sim = in_sim;
        WizardOutcome::Redraw(true)
    }

    /// The masked secret field.
    fn secret_input(&mut self, input: Input) -> WizardOutcome {
        // Beyond the reserved room a secret is not a paste of one secret: refuse rather than reallocate.
        match edit(&mut self.secret, input, Some(SECRET_CAPACITY)) {
            Edited::Changed => {
                self.view.secret_len = Some(self.secret.chars().count());
                WizardOutcome::Redraw(true)
            }
            Edited::Cancel => {
                self.secret.clear();
                self.view.secret_len = None;
                WizardOutcome::Redraw(true)
            }
            Edited::Accept => {
                let typed = self.secret.trim().to_string();
                self.secret.clear();
                self.view.secret_len = None;
                if typed.is_empty() {
                    WizardOutcome::Refuse("nothing typed: no secret staged")
                } else {
                    WizardOutcome::Request(WizardCmd::Stage(SecretString::from(typed)))
                }
            }
            Edited::Ignored | Edited::Other(_) => WizardOutcome::Redraw(false),
        }
    }

    /// Typing the credential id to confirm activation.
    fn confirm_input(&mut self, input: Input) -> WizardOutcome {
        let Some(typed) = self.view.confirm_typed.as_mut() else {
            return WizardOutcome::Redraw(false);
        };
        match edit(typed, input, None) {
            Edited::Changed => WizardOutcome::Redraw(true),
            Edited::Cancel => {
                self.view.confirm_typed = None;
                WizardOutcome::Redraw(true)
            }
            Edited::Accept => {
                let matches = *typed == self.view.rotation.credential;
                self.view.confirm_typed = None;
                if !matches {
                    return WizardOutcome::Refuse("the id typed does not match: not activated");
                }
                WizardOutcome::Request(if self.confirm_in_sim {
                    WizardCmd::SimActivate
                } else {
                    WizardCmd::Activate
                })
            }
            Edited::Ignored | Edited::Other(_) => WizardOutcome::Redraw(false),
        }
    }
}

/// A fresh wizard for a credential, waiting for the rotation task's first answer.
pub(super) fn open(
    credential: &str,
    demo: bool,
    consumers: Vec<(String, Option<String>, Option<String>)>,
) -> WizardUi {
    let mut view = Wizard::new(Rotation::idle(credential));
    view.demo = demo;
    view.busy = true;
    view.consumers = consumers;
    WizardUi::new(view)
}
