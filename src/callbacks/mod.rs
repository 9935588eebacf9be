//! Callbacks: a missed call, a voicemail, a web form or another phone system asks the clinic to
//! call a number back. One callback is open per number and campaign (later requests merge into
//! it); the first attempt is placed at once while the clinic is open, else at the next opening;
//! it connects the patient with staff, agent first or patient first.

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use chrono_tz::Tz;
use tracing::info;

use crate::app::App;
use crate::campaign::render::render;
use crate::campaign::{Campaign, Connect, Kind};
use crate::dial::facts;
use crate::outreach::Outcome;
use crate::outreach::machine::{FollowupReason, callback_end};
use crate::phone::{Phone, PhoneError, mask};
use crate::plan::{self, Request, Step};
use crate::provider::twiml;
use crate::store::{FirstStep, NewCallback, StoreError};

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

/// How soon an agent-first callback rings the clinic line again after it went unanswered.
pub const CLINIC_RETRY: TimeDelta = TimeDelta::minutes(3);

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
            if let Some(open) = self.db.open_callback(&campaign.id, phone.as_str()).await? {
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
                if merged {
                    info!(outreach = open.id, to = %phone.masked(), requests = open.requests + 1, "callback request merged");
                    return Ok(Accepted {
                        id: open.id,
                        merged: true,
                        status: "merged",
                        first_attempt_at: open.next_due,
                        due_now: None,
                    });
                }
                continue;
            }
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
                deadline: now + rules.expire_after,
            };
            let Some((id, attempt)) = self.db.create_callback(&new, &first, now).await? else {
                continue;
            };
            let (status, first_at) = match &first {
                // As stored: to the millisecond.
                FirstStep::Attempt(slot) => ("scheduled", Some(slot.at.trunc_subsecs(3))),
                FirstStep::End(outcome, ..) => (outcome.name(), None),
            };
            info!(outreach = id, to = %phone.masked(), source = req.source.name(), status, "callback requested");
            let due_now =
                attempt.filter(|_| first_at.is_some_and(|at| at <= now + TimeDelta::seconds(2)));
            return Ok(Accepted {
                id,
                merged: false,
                status,
                first_attempt_at: first_at,
                due_now,
            });
        }
        Err(StoreError::Bulk("callback kept changing under concurrent requests".into()).into())
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

    /// TwiML for an answered callback call: staff hear who is called back, then the patient is
    /// dialled (agent first); or the patient hears the greeting, then the clinic (patient first).
    pub(crate) async fn callback_answer(
        &self,
        campaign: &Campaign,
        ctx: &crate::store::AttemptContext,
        answered_by: Option<&str>,
    ) -> String {
        let Kind::Callback(rules) = &campaign.kind else {
            return twiml::hang_up();
        };
        let bridge_url = self.webhook("voice/bridge", &ctx.attempt_id);
        match rules.connect {
            Connect::AgentFirst => {
                let (lang, messages) = campaign.messages_for(&campaign.default_language);
                let mut facts = facts(campaign, ctx);
                if facts.first_name.is_empty() {
                    // No name known: the last digits, one by one.
                    let digits: String = mask(&ctx.phone)
                        .chars()
                        .filter(char::is_ascii_digit)
                        .collect();
                    facts.first_name = digits
                        .chars()
                        .map(String::from)
                        .collect::<Vec<_>>()
                        .join(" ");
                }
                facts.last_name = None;
                let text = match &messages.agent {
                    Some(t) => render(t, campaign, lang, &facts),
                    None => format!("Callback for {}. Connecting.", facts.first_name),
                };
                twiml::bridge(
                    &text,
                    lang,
                    &ctx.phone,
                    campaign.caller_id.as_str(),
                    true,
                    &bridge_url,
                )
            }
            Connect::PatientFirst => {
                let (lang, messages) = campaign.messages_for(&ctx.language);
                let facts = facts(campaign, ctx);
                if crate::outreach::machine::Answerer::parse(answered_by)
                    == crate::outreach::machine::Answerer::Machine
                {
                    // A message at most once per callback.
                    if ctx.voicemail_before {
                        return twiml::hang_up();
                    }
                    return twiml::voicemail(
                        &render(&messages.voicemail, campaign, lang, &facts),
                        lang,
                    );
                }
                let text = render(&messages.voice, campaign, lang, &facts);
                twiml::bridge(
                    &text,
                    lang,
                    campaign.clinic_phone.as_str(),
                    campaign.caller_id.as_str(),
                    false,
                    &bridge_url,
                )
            }
        }
    }

    /// The `<Dial>` leg of a callback ended with `status` after `duration_s` of talk.
    pub async fn on_bridge(
        &self,
        attempt_id: &str,
        status: &str,
        duration_s: Option<i64>,
    ) -> Result<Option<String>, StoreError> {
        let now = Utc::now();
        let Some(ctx) = self.db.attempt_context(attempt_id, now).await? else {
            return Ok(None);
        };
        let catalog = self.campaigns();
        let Some(campaign) = catalog.get(&ctx.campaign) else {
            return Ok(Some(twiml::hang_up()));
        };
        let Kind::Callback(rules) = &campaign.kind else {
            return Ok(Some(twiml::hang_up()));
        };
        let connected = matches!(status, "completed" | "answered");
        let bridged_at = connected.then(|| now - TimeDelta::seconds(duration_s.unwrap_or(0)));
        self.db
            .set_bridge(attempt_id, status, bridged_at, now)
            .await?;
        let words = bridge_words(&campaign.default_language);
        Ok(Some(match (rules.connect, connected) {
            // Staff are still on the line: they may say it was only voicemail.
            (Connect::AgentFirst, true) => twiml::ask_agent(
                words.voicemail_key,
                &campaign.default_language,
                &self.webhook("voice/agent", attempt_id),
            ),
            (Connect::AgentFirst, false) => {
                twiml::say_and_hang_up(words.patient_missed, &campaign.default_language)
            }
            (Connect::PatientFirst, true) => twiml::hang_up(),
            (Connect::PatientFirst, false) => {
                let (lang, _) = campaign.messages_for(&ctx.language);
                twiml::say_and_hang_up(bridge_words(lang).nobody_free, lang)
            }
        }))
    }

    /// Staff pressed a key after an agent-first callback: 2 = it was voicemail, try again later.
    pub async fn on_agent_key(
        &self,
        attempt_id: &str,
        digits: &str,
    ) -> Result<Option<String>, StoreError> {
        let now = Utc::now();
        let Some(ctx) = self.db.attempt_context(attempt_id, now).await? else {
            return Ok(None);
        };
        let catalog = self.campaigns();
        let Some(campaign) = catalog.get(&ctx.campaign) else {
            return Ok(Some(twiml::hang_up()));
        };
        let lang = campaign.default_language.as_str();
        if digits.starts_with('2') {
            self.db
                .set_bridge(attempt_id, "voicemail", None, now)
                .await?;
            return Ok(Some(twiml::say_and_hang_up(bridge_words(lang).noted, lang)));
        }
        Ok(Some(twiml::hang_up()))
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

/// What staff and patients hear around the bridge, per language.
struct BridgeWords {
    voicemail_key: &'static str,
    patient_missed: &'static str,
    nobody_free: &'static str,
    noted: &'static str,
}

fn bridge_words(lang: &str) -> BridgeWords {
    match lang.split('-').next().unwrap_or_default() {
        "ca" => BridgeWords {
            voicemail_key: "Si només heu trobat la bústia de veu, premeu 2 i ho tornarem a provar més tard.",
            patient_missed: "El pacient no ha respost. Ho tornarem a provar més tard.",
            nobody_free: "Ara no hi ha ningú disponible. El personal us trucarà.",
            noted: "Entesos. Ho tornarem a provar més tard.",
        },
        "es" => BridgeWords {
            voicemail_key: "Si solo ha encontrado el buzón de voz, pulse 2 y lo volveremos a intentar más tarde.",
            patient_missed: "El paciente no ha contestado. Lo volveremos a intentar más tarde.",
            nobody_free: "Ahora no hay nadie disponible. El personal le llamará.",
            noted: "Entendido. Lo volveremos a intentar más tarde.",
        },
        _ => BridgeWords {
            voicemail_key: "If you only reached voicemail, press 2 and we will try again later.",
            patient_missed: "The patient did not answer. We will try again later.",
            nobody_free: "Nobody is free right now. Our staff will call you back.",
            noted: "Noted. We will try again later.",
        },
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
