//! Provider events (from webhooks, or from the simulator) applied to outreach: what the patient
//! hears, what their key means, and what a call's final status leads to.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tracing::{info, warn};

use crate::app::App;
use crate::callbacks::CLINIC_RETRY;
use crate::campaign::render::render;
use crate::campaign::{Campaign, Connect, Kind};
use crate::dial::facts;
use crate::outreach::machine::{
    AfterCall, AfterCallback, Answerer, CallStatus, FollowupReason, KeyPress, after_callback_call,
    after_reminder_call, callback_end, followup_for_end,
};
use crate::outreach::{Channel, Outcome};
use crate::plan::{self, Step, calendar};
use crate::provider::twiml;
use crate::store::{AttemptContext, StatusMove, StoreError};

/// A call status report, as a webhook or the simulator gives it.
#[derive(Debug, Clone)]
pub struct StatusReport {
    pub status: CallStatus,
    pub answered_by: Option<String>,
    pub duration_s: Option<i64>,
    /// Identifies this delivery, so a repeat is applied once (provider id + status + sequence).
    pub delivery_key: String,
}

/// How a call ended: its final status, and who or what answered it.
#[derive(Debug, Clone, Copy)]
struct Answered {
    status: CallStatus,
    answerer: Option<Answerer>,
}

impl App {
    /// The call was answered: TwiML for a person (the reminder and its keys) or a machine.
    pub async fn on_answer(
        &self,
        attempt_id: &str,
        answered_by: Option<&str>,
    ) -> Result<Option<String>, StoreError> {
        let now = Utc::now();
        let Some(ctx) = self.db.attempt_context(attempt_id, now).await? else {
            return Ok(None);
        };
        let catalog = self.campaigns();
        let Some(campaign) = catalog.get(&ctx.campaign) else {
            return Ok(Some(twiml::hang_up()));
        };
        if ctx.state != "active" || ctx.opted_out {
            return Ok(Some(twiml::hang_up()));
        }
        if let Some(by) = answered_by {
            self.db.set_answered_by(attempt_id, by, now).await?;
        }
        if ctx.kind == "callback" {
            return Ok(Some(
                self.callback_answer(campaign, &ctx, answered_by).await,
            ));
        }
        let (lang, messages) = campaign.messages_for(&ctx.language);
        let facts = facts(campaign, &ctx);
        Ok(Some(match Answerer::parse(answered_by) {
            Answerer::Machine => {
                twiml::voicemail(&render(&messages.voicemail, campaign, lang, &facts), lang)
            }
            Answerer::Human => {
                let text = render(&messages.voice, campaign, lang, &facts);
                twiml::reminder(&text, lang, &self.webhook("voice/gather", attempt_id))
            }
        }))
    }

    /// The patient pressed a key: record it, end the outreach as the key says, answer with TwiML.
    pub async fn on_gather(
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
        // A callback's keys are not a reminder's answers.
        if ctx.kind == "callback" {
            return Ok(Some(twiml::hang_up()));
        }
        let lang = campaign.messages_for(&ctx.language).0.to_string();
        self.db.set_digits(attempt_id, digits, now).await?;
        let key = KeyPress::parse(digits);
        let Some((outcome, followup)) = key.outcome() else {
            // Not a key we know: say the menu once more.
            return self.on_answer(attempt_id, Some("human")).await;
        };
        if key == KeyPress::OptOut {
            self.db.opt_out(&ctx.phone, "keypad", now).await?;
            info!(attempt = attempt_id, "opted out by keypad");
            return Ok(Some(twiml::say_and_hang_up(words(&lang).opted_out, &lang)));
        }
        let open = key == KeyPress::Staff && clinic_open(campaign, &ctx.timezone, now);
        let detail = match (key, open) {
            (KeyPress::Staff, true) => "pressed 3 and was put through to the clinic".to_string(),
            (KeyPress::Staff, false) => {
                "pressed 3 outside opening hours: call back to reschedule".to_string()
            }
            _ => format!("pressed {digits}"),
        };
        self.db
            .finish_outreach(
                &ctx.outreach_id,
                outcome,
                followup.map(|r| (r, detail)),
                now,
            )
            .await?;
        let w = words(&lang);
        Ok(Some(match key {
            KeyPress::Confirm => twiml::say_and_hang_up(w.confirmed, &lang),
            KeyPress::Cancel => twiml::say_and_hang_up(w.cancelled, &lang),
            KeyPress::Staff if open => twiml::say_and_dial(
                w.connecting,
                &lang,
                campaign.clinic_phone.as_str(),
                campaign.caller_id.as_str(),
            ),
            _ => twiml::say_and_hang_up(w.call_back, &lang),
        }))
    }

    /// A call status report: applied once, only forward; a final one decides what comes next.
    pub async fn on_call_status(
        &self,
        attempt_id: &str,
        report: &StatusReport,
    ) -> Result<bool, StoreError> {
        let now = Utc::now();
        let status = report.status;
        let Some(advanced) = self
            .db
            .apply_status(
                &report.delivery_key,
                attempt_id,
                &StatusMove {
                    status: status.name(),
                    rank: i64::from(status.rank()),
                    answered_by: report.answered_by.as_deref(),
                    duration_s: report.duration_s,
                    done: status.is_final(),
                },
                now,
            )
            .await?
        else {
            return Ok(false);
        };
        if !advanced || !status.is_final() {
            return Ok(advanced);
        }
        let Some(ctx) = self.db.attempt_context(attempt_id, now).await? else {
            return Ok(true);
        };
        if ctx.state != "active" {
            return Ok(true);
        }
        let answerer = ctx.answered_by.as_deref().map(|a| Answerer::parse(Some(a)));
        // One catalog for the whole decision, even if the campaigns are read again meanwhile.
        let catalog = self.campaigns();
        let campaign = catalog.get(&ctx.campaign);
        match campaign.map(|c| &c.kind) {
            Some(Kind::Callback(rules)) => {
                let answered = Answered { status, answerer };
                self.after_callback(ctx, rules.connect, answered, now)
                    .await?
            }
            _ => {
                let on_voicemail = campaign.and_then(|c| c.sms).is_some_and(|s| s.on_voicemail);
                let answered = Answered { status, answerer };
                self.after_reminder(ctx, on_voicemail, answered, now)
                    .await?
            }
        }
        Ok(true)
    }

    /// A callback's call ended: it is over, planned again, or (the clinic line was busy) rung
    /// again shortly without counting as an attempt.
    async fn after_callback(
        &self,
        ctx: AttemptContext,
        connect: Connect,
        Answered { status, answerer }: Answered,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        match after_callback_call(connect, status, answerer, ctx.bridge_status.as_deref()) {
            AfterCallback::Finish(outcome, followup) => {
                let detail = || format!("callback call {} {}", ctx.seq, status.name());
                self.finish_after_call(&ctx, outcome, followup, detail, now)
                    .await
            }
            AfterCallback::Retry => self.plan_next(ctx).await,
            AfterCallback::ClinicUnavailable => {
                warn!(
                    attempt = ctx.attempt_id,
                    status = status.name(),
                    "the clinic line did not answer a callback; ringing it again shortly"
                );
                self.db.uncount_attempt(&ctx.attempt_id, now).await?;
                self.plan_again(ctx, now + CLINIC_RETRY).await
            }
        }
    }

    /// A reminder's call ended: the outreach is over (by the key pressed, or voicemail), or its
    /// next attempt is planned (a retry, or the SMS of `[sms].on_voicemail`).
    async fn after_reminder(
        &self,
        ctx: AttemptContext,
        sms_on_voicemail: bool,
        Answered { status, answerer }: Answered,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        match after_reminder_call(status, answerer, ctx.digits.as_deref()) {
            // The SMS of `[sms].on_voicemail` follows; the planner ends it `voicemail_left` after.
            AfterCall::Finish(Outcome::VoicemailLeft, _)
                if sms_on_voicemail
                    && !ctx.no_sms
                    && !ctx.history.iter().any(|p| p.channel == Channel::Sms) =>
            {
                self.plan_next(ctx).await
            }
            AfterCall::Finish(outcome, followup) => {
                let detail = || format!("call {} {}", ctx.seq, status.name());
                self.finish_after_call(&ctx, outcome, followup, detail, now)
                    .await
            }
            AfterCall::Retry => self.plan_next(ctx).await,
        }
    }

    /// End the outreach with `outcome`, and put `followup` (if any) on the worklist with the
    /// call `detail` gives.
    async fn finish_after_call(
        &self,
        ctx: &AttemptContext,
        outcome: Outcome,
        followup: Option<FollowupReason>,
        detail: impl FnOnce() -> String,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let followup = followup.map(|r| (r, detail()));
        self.db
            .finish_outreach(&ctx.outreach_id, outcome, followup, now)
            .await?;
        Ok(())
    }

    /// After an attempt that reached nobody: plan the next one, or end the outreach.
    pub async fn plan_after(&self, attempt_id: &str) -> Result<(), StoreError> {
        match self.db.attempt_context(attempt_id, Utc::now()).await? {
            Some(ctx) => self.plan_next(ctx).await,
            None => Ok(()),
        }
    }

    /// [`App::plan_after`] with the attempt's context already loaded.
    async fn plan_next(&self, mut ctx: AttemptContext) -> Result<(), StoreError> {
        // This attempt is part of the history now.
        ctx.voicemail_before |= ctx.channel == Channel::Voice
            && ctx
                .answered_by
                .as_deref()
                .is_some_and(|a| Answerer::parse(Some(a)) == Answerer::Machine);
        ctx.history.push(plan::Past {
            at: ctx.due_at.min(Utc::now()),
            channel: ctx.channel,
        });
        ctx.history.sort_by_key(|p| p.at);
        self.plan_again(ctx, Utc::now()).await
    }

    /// Plan the outreach's next attempt from `from` on (its history as `ctx` holds it), or end it.
    pub(crate) async fn plan_again(
        &self,
        ctx: AttemptContext,
        from: chrono::DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        let catalog = self.campaigns();
        let Some(campaign) = catalog.get(&ctx.campaign) else {
            return Ok(());
        };
        if ctx.state != "active" {
            return Ok(());
        }
        let request = self.plan_request(campaign, &ctx);
        match plan::next(&request, from) {
            Step::Attempt(slot) => {
                self.db
                    .add_attempt(&ctx.outreach_id, &ctx.phone, ctx.seq + 1, &slot, now)
                    .await
            }
            Step::End(end) if ctx.kind == "callback" => {
                let voicemail = ctx.voicemail_before
                    || ctx.bridge_status.as_deref() == Some("voicemail")
                    || ctx
                        .answered_by
                        .as_deref()
                        .is_some_and(|a| Answerer::parse(Some(a)) == Answerer::Machine);
                let (outcome, followup) = callback_end(end.outcome, voicemail);
                self.db
                    .finish_outreach(
                        &ctx.outreach_id,
                        outcome,
                        followup.map(|r| (r, end.reason)),
                        now,
                    )
                    .await
                    .map(|_| ())
            }
            Step::End(end) => {
                let texted = ctx.history.iter().any(|p| p.channel == Channel::Sms);
                let (outcome, followup) = match end.outcome {
                    // The patient has the text: nothing left for staff to chase.
                    Outcome::Unreachable if texted => (Outcome::SmsSent, None),
                    o => (o, followup_for_end(o).map(|r| (r, end.reason.clone()))),
                };
                self.db
                    .finish_outreach(&ctx.outreach_id, outcome, followup, now)
                    .await
                    .map(|_| ())
            }
        }
    }
}

/// Whether the clinic's window is open now in the patient's zone (legal hours included).
fn clinic_open(campaign: &Campaign, timezone: &str, now: chrono::DateTime<Utc>) -> bool {
    let zone = timezone.parse::<Tz>().unwrap_or(campaign.timezone);
    let date = calendar::local_date(zone, now);
    let minute = calendar::local_minute(zone, now);
    calendar::open_pieces(&campaign.window, date)
        .iter()
        .any(|(piece, _)| piece.contains(minute))
}

/// The few fixed phrases of a call, per language.
struct Words {
    confirmed: &'static str,
    cancelled: &'static str,
    connecting: &'static str,
    call_back: &'static str,
    opted_out: &'static str,
}

fn words(lang: &str) -> Words {
    match lang.split('-').next().unwrap_or_default() {
        "ca" => Words {
            confirmed: "Gràcies, la visita queda confirmada. Fins aviat.",
            cancelled: "Entesos. El personal us trucarà per anul·lar la visita.",
            connecting: "Us passem amb el personal.",
            call_back: "Entesos. El personal us trucarà per canviar la visita.",
            opted_out: "Entesos. No us trucarem més.",
        },
        "es" => Words {
            confirmed: "Gracias, la visita queda confirmada. Hasta pronto.",
            cancelled: "Entendido. El personal le llamará para anular la visita.",
            connecting: "Le pasamos con el personal.",
            call_back: "Entendido. El personal le llamará para cambiar la visita.",
            opted_out: "Entendido. No le llamaremos más.",
        },
        _ => Words {
            confirmed: "Thank you, your visit is confirmed. Goodbye.",
            cancelled: "Understood. Our staff will call you to cancel the visit.",
            connecting: "Connecting you to our staff.",
            call_back: "Understood. Our staff will call you to change the visit.",
            opted_out: "Understood. We will not call you again.",
        },
    }
}
