//! Connecting a callback once its call is answered: staff hear who is called back and the patient
//! is dialled (agent first), or the patient hears the greeting and the clinic line is dialled
//! (patient first); then how that second leg ended.

use chrono::{TimeDelta, Utc};

use crate::app::App;
use crate::campaign::render::render;
use crate::campaign::{Campaign, Connect, Kind};
use crate::dial::facts;
use crate::phone::mask;
use crate::provider::twiml;
use crate::store::StoreError;

/// How soon an agent-first callback rings the clinic line again after it went unanswered.
pub const CLINIC_RETRY: TimeDelta = TimeDelta::minutes(3);

impl App {
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
