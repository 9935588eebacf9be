//! The in-process simulator for the demo: seeded, with configurable answer rates; it reports
//! what happens to each call as the events a real provider would send.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::mpsc;

use super::{CallRequest, Placed, ProviderError, SmsRequest};

/// How simulated patients behave, in shares of calls.
#[derive(Debug, Clone, Copy)]
pub struct Rates {
    pub human: f64,
    pub machine: f64,
    pub no_answer: f64,
    /// The rest is busy or failed.
    /// Of humans: confirm, cancel, reschedule (key 3), opt out (9); the rest stay silent.
    pub confirm: f64,
    pub cancel: f64,
    pub reschedule: f64,
    pub opt_out: f64,
}

impl Default for Rates {
    fn default() -> Rates {
        Rates {
            human: 0.35,
            machine: 0.45,
            no_answer: 0.15,
            confirm: 0.6,
            cancel: 0.1,
            reschedule: 0.1,
            opt_out: 0.02,
        }
    }
}

/// What the simulated far end did, reported in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimEvent {
    /// Answered; `answered_by` as machine detection reports it.
    Answered {
        attempt_id: String,
        provider_id: String,
        answered_by: String,
    },
    /// The patient pressed a key.
    Digits {
        attempt_id: String,
        provider_id: String,
        digits: String,
    },
    /// The call ended with a final status (`completed`, `no-answer`, `busy`, `failed`).
    Ended {
        attempt_id: String,
        provider_id: String,
        status: String,
        duration_s: i64,
    },
}

pub struct Simulator {
    rng: Mutex<fastrand::Rng>,
    rates: Rates,
    /// How long a simulated call takes to play out.
    call_time: Duration,
    events: mpsc::UnboundedSender<SimEvent>,
}

impl Simulator {
    pub fn new(
        seed: u64,
        rates: Rates,
        call_time: Duration,
    ) -> (Simulator, mpsc::UnboundedReceiver<SimEvent>) {
        let (events, receiver) = mpsc::unbounded_channel();
        (
            Simulator {
                rng: Mutex::new(fastrand::Rng::with_seed(seed)),
                rates,
                call_time,
                events,
            },
            receiver,
        )
    }

    /// Every simulated SMS is delivered.
    pub async fn send_sms(&self, _req: &SmsRequest) -> Result<Placed, ProviderError> {
        let sid = format!(
            "SM{:032x}",
            self.rng.lock().unwrap_or_else(|p| p.into_inner()).u128(..)
        );
        Ok(Placed { provider_id: sid })
    }

    pub async fn place_call(&self, req: &CallRequest) -> Result<Placed, ProviderError> {
        let (roll, key_roll, sid) = {
            let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
            (rng.f64(), rng.f64(), format!("SIM{:032x}", rng.u128(..)))
        };
        let r = self.rates;
        let attempt_id = req.attempt_id.clone();
        let mut script = Vec::new();
        let ended = |status: &str, duration_s| SimEvent::Ended {
            attempt_id: attempt_id.clone(),
            provider_id: sid.clone(),
            status: status.into(),
            duration_s,
        };
        if roll < r.human {
            script.push(SimEvent::Answered {
                attempt_id: attempt_id.clone(),
                provider_id: sid.clone(),
                answered_by: "human".into(),
            });
            let key = if key_roll < r.confirm {
                Some("1")
            } else if key_roll < r.confirm + r.cancel {
                Some("2")
            } else if key_roll < r.confirm + r.cancel + r.reschedule {
                Some("3")
            } else if key_roll < r.confirm + r.cancel + r.reschedule + r.opt_out {
                Some("9")
            } else {
                None
            };
            if let Some(k) = key {
                script.push(SimEvent::Digits {
                    attempt_id: attempt_id.clone(),
                    provider_id: sid.clone(),
                    digits: k.into(),
                });
            }
            script.push(ended("completed", 24));
        } else if roll < r.human + r.machine {
            script.push(SimEvent::Answered {
                attempt_id: attempt_id.clone(),
                provider_id: sid.clone(),
                answered_by: "machine_end_beep".into(),
            });
            script.push(ended("completed", 18));
        } else if roll < r.human + r.machine + r.no_answer {
            script.push(ended("no-answer", 0));
        } else if key_roll < 0.5 {
            script.push(ended("busy", 0));
        } else {
            script.push(ended("failed", 0));
        }
        let events = self.events.clone();
        let step = self.call_time / script.len().max(1) as u32;
        tokio::spawn(async move {
            for event in script {
                tokio::time::sleep(step).await;
                if events.send(event).is_err() {
                    return;
                }
            }
        });
        Ok(Placed { provider_id: sid })
    }
}
