//! Callbacks: a missed call, a voicemail, a web form or another phone system asks the clinic to
//! call a number back. One callback is open per number and campaign (later requests merge into
//! it); the first attempt is placed at once while the clinic is open, else at the next opening;
//! it connects the patient with staff, agent first or patient first.

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use chrono_tz::Tz;
use tracing::info;

mod bridge;

pub use bridge::CLINIC_RETRY;

use crate::app::App;
use crate::campaign::{Campaign, Kind};
use crate::outreach::Outcome;
use crate::outreach::machine::{FollowupReason, callback_end};
use crate::phone::{Phone, PhoneError, mask};
use crate::plan::{self, Request, Step};
use crate::store::{FirstStep, NewCallback, OpenCallback, StoreError};

/// Longest note kept with a request (a web form's free text).
pub const NOTE_MAX: usize = 1000;
/// Longest name kept with a request.
pub const NAME_MAX: usize = 100;

/// Where a callback request came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    MissedCall,
    Voicemail,
    WebForm,
    Api,
}

impl Source {
    pub const ALL: [Source; 4] = [
        Source::MissedCall,
        Source::Voicemail,
        Source::WebForm,
        Source::Api,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Source::MissedCall => "missed_call",
            Source::Voicemail => "voicemail",
            Source::WebForm => "web_form",
            Source::Api => "api",
        }
    }

    pub fn parse(s: &str) -> Option<Source> {
        Source::ALL.into_iter().find(|x| x.name() == s)
    }
}

/// A request to call a number back.
#[derive(Debug, Clone)]
pub struct CallbackRequest {
    /// As given: any common spelling, read with the campaign's country.
    pub phone: String,
    pub name: Option<String>,
    pub source: Source,
    pub note: Option<String>,
    /// A voicemail's recording, kept for staff.
    pub recording_url: Option<String>,
    /// A later report of an inbound call already counted (its voicemail after its missed call):
    /// merged without counting it again.
    pub same_call: bool,
}

/// What became of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub id: String,
    /// Merged into a callback already open for the number.
    pub merged: bool,
    /// `scheduled`, `merged`, or why it will not be dialled (`opted_out`, `expired`).
    pub status: &'static str,
    pub first_attempt_at: Option<DateTime<Utc>>,
    /// The new attempt, when it is due now (the caller dispatches it at once).
    pub due_now: Option<String>,
}

/// Why a request was refused; nothing was stored.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    Phone(PhoneError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Caller ids that are no number: the caller withheld it.
pub fn is_withheld(from: &str) -> bool {
    let f = from.trim().to_ascii_lowercase();
    matches!(
        f.as_str(),
        "" | "anonymous"
            | "restricted"
            | "unknown"
            | "unavailable"
            | "private"
            | "blocked"
            | "+266696687"
            | "+86282452253"
            | "+8656696"
            | "+2562533"
            | "+7378742833"
    )
}

impl App {
    /// The callback campaign for a request: `id` when given; else the one whose `clinic_phone` or
    /// `caller_id` is `to` (the clinic number that was called); else the only callback campaign.
    pub fn callback_campaign(
        &self,
        id: Option<&str>,
        to: Option<&str>,
    ) -> Result<Campaign, CallbackError> {
        let invalid = |message: String| CallbackError::Invalid {
            field: "campaign",
            message,
        };
        if let Some(id) = id {
            let catalog = self.campaigns();
            let campaign = catalog.require(id).map_err(invalid)?;
            return match campaign.kind {
                Kind::Callback(_) => Ok(campaign.clone()),
                Kind::Reminder(_) => Err(invalid(format!(
                    "campaign {id:?} is a reminder campaign, not a callback campaign"
                ))),
            };
        }
        let catalog = self.campaigns();
        let callbacks: Vec<&Campaign> = catalog
            .campaigns
            .values()
            .filter(|c| matches!(c.kind, Kind::Callback(_)))
            .collect();
        if let Some(to) = to.and_then(|t| Phone::parse_e164(t).ok())
            && let Some(c) = callbacks
                .iter()
                .find(|c| c.clinic_phone == to || c.caller_id == to)
        {
            return Ok((*c).clone());
        }
        match callbacks.as_slice() {
            [only] => Ok((*only).clone()),
            [] => Err(invalid("no callback campaign is loaded".into())),
            many => Err(invalid(format!(
                "several callback campaigns are loaded ({}): name one",
                many.iter()
                    .map(|c| c.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// Open a callback for `req` in `campaign`, or merge it into the one already open for the
    /// number. Nothing is stored when the request is refused.
    pub async fn request_callback(
        &self,
        campaign: &Campaign,
        req: &CallbackRequest,
        now: DateTime<Utc>,
    ) -> Result<Accepted, CallbackError> {
        let Kind::Callback(rules) = &campaign.kind else {
            return Err(CallbackError::Invalid {
                field: "campaign",
                message: format!("campaign {:?} is not a callback campaign", campaign.id),
            });
        };
        check_length("name", req.name.as_deref(), NAME_MAX)?;
        check_length("note", req.note.as_deref(), NOTE_MAX)?;
        check_length("recording_url", req.recording_url.as_deref(), NOTE_MAX)?;
        let phone =
            Phone::parse(&req.phone, Some(campaign.country)).map_err(CallbackError::Phone)?;
        let opted_out = self.db.is_opted_out(phone.as_str()).await?;
        // Two requests for one number may race: the loser of the insert merges.
        for _ in 0..3 {
            let accepted = match self.db.open_callback(&campaign.id, phone.as_str()).await? {
                Some(open) => self.merge_into(open, req, &phone, now).await?,
                None => {
                    let expires = now + rules.expire_after;
                    self.new_callback(campaign, req, &phone, opted_out, expires, now)
                        .await?
                }
            };
            if let Some(accepted) = accepted {
                return Ok(accepted);
            }
        }
        Err(StoreError::Bulk("callback kept changing under concurrent requests".into()).into())
    }

    /// Merge the request into the number's open callback; `None` if it ended meanwhile.
    async fn merge_into(
        &self,
        open: OpenCallback,
        req: &CallbackRequest,
        phone: &Phone,
        now: DateTime<Utc>,
    ) -> Result<Option<Accepted>, StoreError> {
        let merged = self
            .db
            .merge_callback(
                &open.id,
                req.source.name(),
                req.note.as_deref(),
                req.recording_url.as_deref(),
                !req.same_call,
                now,
            )
            .await?;
        if !merged {
            return Ok(None);
        }
        info!(outreach = open.id, to = %phone.masked(), requests = open.requests + 1, "callback request merged");
        Ok(Some(Accepted {
            id: open.id,
            merged: true,
            status: "merged",
            first_attempt_at: open.next_due,
            due_now: None,
        }))
    }

    /// Open a callback to a number with none open, its first attempt planned (or its end, for a
    /// number on the opt-out ledger); `None` if another request opened one meanwhile.
    async fn new_callback(
        &self,
        campaign: &Campaign,
        req: &CallbackRequest,
        phone: &Phone,
        opted_out: bool,
        deadline: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<Accepted>, StoreError> {
        let known = self
            .db
            .known_caller(&campaign.clinic, phone.as_str())
            .await?;
        let zone = known
            .as_ref()
            .and_then(|k| k.timezone.as_deref())
            .and_then(|z| z.parse::<Tz>().ok())
            .unwrap_or(campaign.timezone);
        let language = known
            .as_ref()
            .and_then(|k| k.language.clone())
            .unwrap_or_else(|| campaign.default_language.clone());
        let first = if opted_out {
            FirstStep::End(
                Outcome::OptedOut,
                FollowupReason::CallbackNotConnected,
                format!(
                    "{} asked for a callback ({}), but the number is on the opt-out list: ringback does not call it",
                    mask(phone.as_str()),
                    req.source.name()
                ),
            )
        } else {
            self.first_step(campaign, phone.as_str(), zone, now).await?
        };
        let new = NewCallback {
            campaign: &campaign.id,
            clinic: &campaign.clinic,
            phone: phone.as_str(),
            name: req.name.as_deref(),
            timezone: zone.name(),
            language: &language,
            source: req.source.name(),
            note: req.note.as_deref(),
            recording_url: req.recording_url.as_deref(),
            deadline,
        };
        let Some((id, attempt)) = self.db.create_callback(&new, &first, now).await? else {
            return Ok(None);
        };
        let (status, first_at) = match &first {
            // As stored: to the millisecond.
            FirstStep::Attempt(slot) => ("scheduled", Some(slot.at.trunc_subsecs(3))),
            FirstStep::End(outcome, ..) => (outcome.name(), None),
        };
        info!(outreach = id, to = %phone.masked(), source = req.source.name(), status, "callback requested");
        let due_now =
            attempt.filter(|_| first_at.is_some_and(|at| at <= now + TimeDelta::seconds(2)));
        Ok(Some(Accepted {
            id,
            merged: false,
            status,
            first_attempt_at: first_at,
            due_now,
        }))
    }

    /// The first attempt of a new callback: at once inside the window; else at the next opening,
    /// behind the callbacks already waiting for it, one per pace interval.
    async fn first_step(
        &self,
        campaign: &Campaign,
        phone: &str,
        zone: Tz,
        now: DateTime<Utc>,
    ) -> Result<FirstStep, StoreError> {
        let mut request = Request::callback(campaign, zone, now);
        request.others = self.db.contacts(phone, now - TimeDelta::days(8)).await?;
        let slot = match plan::next(&request, now) {
            Step::Attempt(slot) => slot,
            Step::End(end) => {
                let (outcome, reason) = callback_end(end.outcome, false);
                return Ok(FirstStep::End(
                    outcome,
                    reason.unwrap_or(FollowupReason::CallbackNotConnected),
                    end.reason,
                ));
            }
        };
        if slot.at <= now + TimeDelta::seconds(1) {
            return Ok(FirstStep::Attempt(slot));
        }
        // A backlog: spread it by the pace rather than fire it at one instant.
        let spacing = TimeDelta::milliseconds((1000.0 / campaign.pacing.calls_per_second) as i64);
        let waiting = self
            .db
            .planned_between(&campaign.id, slot.at, slot.at + TimeDelta::hours(1))
            .await?;
        if waiting == 0 {
            return Ok(FirstStep::Attempt(slot));
        }
        let behind = slot.at + spacing * waiting as i32;
        Ok(FirstStep::Attempt(match plan::next(&request, behind) {
            Step::Attempt(later) => plan::Slot {
                reason: format!("{}; {waiting} callbacks ahead", later.reason),
                ..later
            },
            Step::End(_) => slot,
        }))
    }

    /// A number that cannot be called back (withheld, invalid): staff hear of it instead.
    pub async fn uncallable_caller(
        &self,
        campaign: &Campaign,
        from: &str,
        source: Source,
        now: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        let local = now
            .with_timezone(&campaign.timezone)
            .format("%Y-%m-%d %H:%M");
        let (phone, detail) = if is_withheld(from) {
            (
                None,
                format!("{} from a withheld number at {local}", source.name()),
            )
        } else {
            let shown: String = from.chars().take(32).collect();
            (
                Some(shown),
                format!(
                    "{} at {local} from a number ringback cannot call back",
                    source.name()
                ),
            )
        };
        self.db
            .add_followup(
                &campaign.id,
                phone.as_deref(),
                FollowupReason::InvalidNumber,
                &detail,
                now,
            )
            .await
    }
}

fn check_length(field: &'static str, value: Option<&str>, max: usize) -> Result<(), CallbackError> {
    match value {
        Some(v) if v.chars().count() > max => Err(CallbackError::Invalid {
            field,
            message: format!("{field} is longer than {max} characters"),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn withheld_caller_ids_are_recognised() {
        for w in ["anonymous", "Restricted", "+266696687", " ", "unknown"] {
            assert!(is_withheld(w), "{w}");
        }
        assert!(!is_withheld("+34612345678"));
    }

    #[test]
    fn sources_round_trip() {
        for s in Source::ALL {
            assert_eq!(Source::parse(s.name()), Some(s));
        }
        assert_eq!(Source::parse("fax"), None);
    }
}
