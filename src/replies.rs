//! SMS from and about patients: a reply confirms, cancels, reschedules, opts out or in, asks for
//! help, or becomes a message for staff; a message's status reports move it forward and a final
//! error is recorded for the number and the channel.

use chrono::{DateTime, Utc};
use tracing::info;

use crate::app::App;
use crate::campaign::{Campaign, Catalog};
use crate::outreach::machine::{FollowupReason, SmsFailure, SmsStatus};
use crate::outreach::reply::{Reply, classify};
use crate::outreach::{Channel, Outcome};
use crate::phone::{Phone, mask};
use crate::provider::twiml;
use crate::store::{ReplyTarget, StatusMove, StoreError};

/// A patient's SMS: from whom, what it says, and what ringback reads in it.
#[derive(Clone, Copy)]
struct Incoming<'a> {
    reply: Reply,
    phone: &'a str,
    body: &'a str,
}

/// The longest SMS body the provider delivers (ten segments).
pub const BODY_MAX: usize = 1600;

/// A message status report.
#[derive(Debug, Clone)]
pub struct SmsReport {
    pub status: SmsStatus,
    pub error_code: Option<String>,
    /// Identifies this delivery, so a repeat is applied once.
    pub delivery_key: String,
}

impl App {
    /// A patient's SMS from `from` to the clinic number `to`: applied, and answered with TwiML
    /// (a short `<Message>` in the patient's language).
    /// `delivery`: the message's id, so a repeated delivery is answered but applied once.
    pub async fn on_sms(
        &self,
        from: &Phone,
        to: Option<&str>,
        body: &str,
        delivery: Option<&str>,
    ) -> Result<String, StoreError> {
        let now = Utc::now();
        let phone = from.as_str();
        let reply = classify(body);
        // An opt-out lands before anything else, so no call due meanwhile is placed: the ledger
        // entry and the withdrawal of every planned attempt in one transaction.
        if reply == Reply::Stop {
            let withdrawn = self.db.opt_out(phone, "sms", now).await?;
            info!(to = %mask(phone), withdrawn, "opted out by SMS");
        }
        if let Some(key) = delivery
            && !self
                .db
                .first_delivery(&format!("sms-in:{key}"), now)
                .await?
        {
            return Ok(twiml::empty());
        }
        let target = self.db.reply_target(phone, now).await?;
        let last = match &target {
            Some(t) => Some((
                t.outreach_id.clone(),
                t.campaign.clone(),
                t.language.clone(),
            )),
            None => self.db.last_outreach_of(phone).await?,
        };
        let catalog = self.campaigns();
        let campaign = last
            .as_ref()
            .and_then(|(_, id, _)| catalog.get(id))
            .or_else(|| campaign_for_number(&catalog, to))
            .or_else(|| catalog.campaigns.values().next());
        let Some(campaign) = campaign else {
            return Ok(twiml::empty());
        };
        let lang = last
            .as_ref()
            .map_or_else(|| campaign.default_language.clone(), |(_, _, l)| l.clone());
        let lang = campaign.messages_for(&lang).0.to_string();
        let w = words(&lang);
        // Counted on the outreach it answers (a STOP: the one it just ended).
        let answered = match (&target, reply) {
            (Some(t), _) => Some(t.outreach_id.clone()),
            (None, Reply::Stop) => last.as_ref().map(|(id, ..)| id.clone()),
            _ => None,
        };
        if let Some(id) = &answered {
            self.db.record_reply(id, reply_name(reply), now).await?;
        }
        let sms = Incoming { reply, phone, body };
        let answer = self.act_on(sms, target.as_ref(), campaign, &w, now).await?;
        let text = answer
            .replace("{clinic}", &campaign.clinic)
            .replace("{clinic_phone}", campaign.clinic_phone.as_str());
        Ok(twiml::message(&crate::campaign::sms::smart(&text)))
    }

    /// Do what the reply asks (confirm, cancel, reschedule, opt back in, or put free text before
    /// staff) and say what the patient is told, in `w`'s language.
    async fn act_on(
        &self,
        sms: Incoming<'_>,
        target: Option<&ReplyTarget>,
        campaign: &Campaign,
        w: &Words,
        now: DateTime<Utc>,
    ) -> Result<&'static str, StoreError> {
        let Incoming { reply, phone, body } = sms;
        Ok(match (reply, target) {
            (Reply::Stop, _) => w.stopped,
            (Reply::Start, _) => {
                if self.db.opt_in(phone, now).await? {
                    info!(to = %mask(phone), "opted back in by SMS");
                    w.started
                } else if self.db.optout_of(phone).await?.is_some() {
                    w.call_us
                } else {
                    w.started
                }
            }
            (Reply::Help, _) => w.help,
            (Reply::Confirm | Reply::Cancel | Reply::Reschedule, Some(t)) => {
                let (outcome, followup, text) = match reply {
                    Reply::Confirm => (Outcome::Confirmed, None, w.confirmed),
                    Reply::Cancel => (
                        Outcome::CancelRequested,
                        Some(FollowupReason::CancelRequested),
                        w.cancelled,
                    ),
                    _ => (
                        Outcome::RescheduleRequested,
                        Some(FollowupReason::RescheduleRequested),
                        w.reschedule,
                    ),
                };
                let detail = format!("replied by SMS: {}", reply_name(reply));
                self.db
                    .apply_reply(&t.outreach_id, outcome, followup.map(|r| (r, detail)), now)
                    .await?;
                text
            }
            // A keyword with nothing to answer, or free text: staff read it.
            _ => {
                let text: String = if body.trim().is_empty() {
                    "(an empty message)".to_string()
                } else {
                    body.chars().take(BODY_MAX).collect()
                };
                let outreach = target.map(|t| t.outreach_id.as_str());
                self.db
                    .patient_message(&campaign.id, outreach, phone, &text, now)
                    .await?;
                w.noted
            }
        })
    }

    /// A message status report: applied once, only forward; a final error is recorded for the
    /// number and the channel.
    pub async fn on_sms_status(
        &self,
        attempt_id: &str,
        report: &SmsReport,
    ) -> Result<bool, StoreError> {
        let now = Utc::now();
        let status = report.status;
        let last = status.rank() == 4;
        let Some(advanced) = self
            .db
            .apply_status(
                &report.delivery_key,
                attempt_id,
                &StatusMove {
                    status: status.name(),
                    rank: i64::from(status.rank()),
                    answered_by: None,
                    duration_s: None,
                    done: last,
                },
                now,
            )
            .await?
        else {
            return Ok(false);
        };
        if !advanced || !matches!(status, SmsStatus::Failed | SmsStatus::Undelivered) {
            return Ok(advanced);
        }
        let Some(ctx) = self.db.attempt_context(attempt_id, now).await? else {
            return Ok(true);
        };
        if let Some(code) = &report.error_code {
            self.db.set_error_code(attempt_id, code, now).await?;
        }
        match SmsFailure::of(report.error_code.as_deref()) {
            SmsFailure::OptedOut => {
                self.db.opt_out(&ctx.phone, "provider", now).await?;
            }
            SmsFailure::NoSms => {
                let code = report.error_code.as_deref().unwrap_or_default();
                self.db
                    .block_channel(&ctx.phone, Channel::Sms, code, now)
                    .await?;
            }
            SmsFailure::InvalidNumber => {
                let detail = format!("SMS to {} failed: invalid number", mask(&ctx.phone));
                self.db
                    .finish_outreach(
                        &ctx.outreach_id,
                        Outcome::InvalidNumber,
                        Some((FollowupReason::InvalidNumber, detail)),
                        now,
                    )
                    .await?;
            }
            SmsFailure::Other => {}
        }
        Ok(true)
    }
}

fn reply_name(reply: Reply) -> &'static str {
    match reply {
        Reply::Confirm => "confirm",
        Reply::Cancel => "cancel",
        Reply::Reschedule => "reschedule",
        Reply::Stop => "stop",
        Reply::Start => "start",
        Reply::Help => "help",
        Reply::Other => "message",
    }
}

/// The short answers to a reply, per language (`{clinic}`, `{clinic_phone}` filled in).
struct Words {
    confirmed: &'static str,
    cancelled: &'static str,
    reschedule: &'static str,
    stopped: &'static str,
    started: &'static str,
    call_us: &'static str,
    help: &'static str,
    noted: &'static str,
}

fn words(lang: &str) -> Words {
    match lang.split('-').next().unwrap_or_default() {
        "ca" => Words {
            confirmed: "{clinic}: visita confirmada. Gràcies!",
            cancelled: "{clinic}: entesos, us trucarem per anul·lar la visita.",
            reschedule: "{clinic}: entesos, us trucarem per canviar la visita.",
            stopped: "{clinic}: no rebreu més missatges ni trucades. Responeu START per tornar-los a rebre.",
            started: "{clinic}: tornareu a rebre els recordatoris.",
            call_us: "{clinic}: per tornar a rebre recordatoris, truqueu al {clinic_phone}.",
            help: "{clinic}: truqueu-nos al {clinic_phone}. Responeu STOP per no rebre més missatges.",
            noted: "{clinic}: gràcies, el personal llegirà el vostre missatge.",
        },
        "es" => Words {
            confirmed: "{clinic}: visita confirmada. ¡Gracias!",
            cancelled: "{clinic}: entendido, le llamaremos para anular la visita.",
            reschedule: "{clinic}: entendido, le llamaremos para cambiar la visita.",
            stopped: "{clinic}: no recibirá más mensajes ni llamadas. Responda START para volver a recibirlos.",
            started: "{clinic}: volverá a recibir los recordatorios.",
            call_us: "{clinic}: para volver a recibir recordatorios, llame al {clinic_phone}.",
            help: "{clinic}: llámenos al {clinic_phone}. Responda STOP para no recibir más mensajes.",
            noted: "{clinic}: gracias, el personal leerá su mensaje.",
        },
        "ru" => Words {
            confirmed: "{clinic}: визит подтверждён. Спасибо!",
            cancelled: "{clinic}: мы позвоним вам, чтобы отменить визит.",
            reschedule: "{clinic}: мы позвоним вам, чтобы перенести визит.",
            stopped: "{clinic}: вы больше не получите сообщений и звонков. Ответьте START, чтобы возобновить.",
            started: "{clinic}: напоминания возобновлены.",
            call_us: "{clinic}: чтобы возобновить напоминания, позвоните {clinic_phone}.",
            help: "{clinic}: звоните нам: {clinic_phone}. Ответьте STOP, чтобы отписаться.",
            noted: "{clinic}: спасибо, сотрудники прочитают ваше сообщение.",
        },
        "zh" => Words {
            confirmed: "{clinic}：预约已确认。谢谢！",
            cancelled: "{clinic}：好的，我们会致电为您取消预约。",
            reschedule: "{clinic}：好的，我们会致电为您改期。",
            stopped: "{clinic}：您将不再收到短信或电话。回复START可恢复。",
            started: "{clinic}：您将重新收到提醒。",
            call_us: "{clinic}：如需恢复提醒，请致电{clinic_phone}。",
            help: "{clinic}：请致电{clinic_phone}。回复STOP退订。",
            noted: "{clinic}：谢谢，工作人员会阅读您的信息。",
        },
        _ => Words {
            confirmed: "{clinic}: your visit is confirmed. Thank you!",
            cancelled: "{clinic}: understood, we will call you to cancel the visit.",
            reschedule: "{clinic}: understood, we will call you to change the visit.",
            stopped: "{clinic}: you will get no more messages or calls. Reply START to undo.",
            started: "{clinic}: you will get reminders again.",
            call_us: "{clinic}: to get reminders again, call us on {clinic_phone}.",
            help: "{clinic}: call us on {clinic_phone}. Reply STOP to opt out.",
            noted: "{clinic}: thank you, our staff will read your message.",
        },
    }
}

/// The campaign whose number the patient wrote to.
fn campaign_for_number<'a>(catalog: &'a Catalog, to: Option<&str>) -> Option<&'a Campaign> {
    let to = Phone::parse_e164(to?).ok()?;
    catalog
        .campaigns
        .values()
        .find(|c| c.caller_id == to || c.clinic_phone == to)
}
