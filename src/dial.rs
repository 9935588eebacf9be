//! Placing one due attempt: every rule is checked again at the moment of dialing, the attempt is
//! taken by a conditional update before the provider hears of it, and each provider answer
//! decides what happens next. Nothing here ever places the same attempt twice.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use tracing::{debug, info, warn};

use crate::app::App;
use crate::campaign::render::{Facts, render};
use crate::campaign::sms;
use crate::campaign::{Campaign, Connect, Kind};
use crate::outreach::machine::SmsStatus;
use crate::outreach::machine::{FollowupReason, callback_end, followup_for_end};
use crate::outreach::{Channel, Outcome};
use crate::phone::{Phone, mask};
use crate::plan::{self, Request, Step};
use crate::provider::{CallRequest, ProviderError, SmsRequest};
use crate::store::{AttemptContext, Claim, Limits, StatusMove, StoreError};

/// A job wakes up to this much before its attempt is due (the queue keeps whole seconds) and
/// waits for the exact instant; a slot further away is planned again instead.
const EARLY_WAKE: TimeDelta = TimeDelta::seconds(3);
/// How long to wait for a free line before handing the attempt back to the queue.
const LINE_WAIT: Duration = Duration::from_secs(20);

/// An attempt the provider refused outright (invalid number, wrong channel, opted out): its call
/// or message ends `failed` at once.
const REFUSED: StatusMove<'static> = StatusMove {
    status: "failed",
    rank: 4,
    answered_by: None,
    duration_s: None,
    done: true,
};

/// What the dial step did, for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dialed {
    Placed,
    /// Not due (woke early or late, or the rules moved it): planned again for this instant.
    Replanned(DateTime<Utc>),
    /// Not placed, and the outreach ended.
    Ended(Outcome),
    /// Nothing to do: taken by another worker, withdrawn, finished, unknown.
    Skipped,
    /// The provider did not take it; planned again for this instant.
    Retry(DateTime<Utc>),
    /// The number cannot take this channel; the outreach goes on by the others.
    WrongChannel,
}

impl App {
    /// The planner's request for an attempt's outreach, with its history and the number's contacts.
    pub fn plan_request<'a>(&self, campaign: &'a Campaign, ctx: &AttemptContext) -> Request<'a> {
        Request {
            campaign,
            zone: ctx.timezone.parse::<Tz>().unwrap_or(campaign.timezone),
            opens: ctx.opens_at,
            deadline: ctx.deadline,
            history: ctx.history.clone(),
            others: ctx.others.clone(),
            voicemail_reached: ctx.voicemail_before,
            no_sms: ctx.no_sms,
            no_calls: ctx.no_calls,
        }
    }

    /// Place attempt `id` if every rule still allows it now.
    pub async fn dial(&self, id: &str) -> Result<Dialed, StoreError> {
        let now = Utc::now();
        let Some(ctx) = self.still_planned(id, now).await? else {
            return Ok(Dialed::Skipped);
        };
        let catalog = self.campaigns();
        let Some(campaign) = catalog.get(&ctx.campaign) else {
            warn!(
                attempt = id,
                campaign = ctx.campaign,
                "campaign no longer loaded; attempt left planned"
            );
            // Looked at again in a while: dialled (after every check) once the campaign is back.
            self.db
                .postpone(id, now + TimeDelta::minutes(5), now)
                .await?;
            return Ok(Dialed::Skipped);
        };
        if let Some(held) = self.held(&ctx, now).await? {
            return Ok(held);
        }
        let slot = match self.slot_now(campaign, &ctx, now).await? {
            Ok(slot) => slot,
            Err(not_now) => return Ok(not_now),
        };
        // Never before the slot: not a second before the window opens. An opt-out that lands
        // meanwhile withdraws the attempt, and the claim below then finds nothing to take.
        if let Ok(early) = (slot.at - Utc::now()).to_std() {
            tokio::time::sleep(early).await;
        }
        if let Some(not_taken) = self.take(campaign, id, &slot, now).await? {
            return Ok(not_taken);
        }
        let result = self.place(campaign, &ctx, slot.channel).await;
        self.settle(&ctx, slot.channel, result).await
    }

    /// The attempt's context while it is still planned on an active outreach; a planned attempt
    /// of an outreach that ended meanwhile is withdrawn.
    async fn still_planned(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<AttemptContext>, StoreError> {
        let Some(ctx) = self.db.attempt_context(id, now).await? else {
            return Ok(None);
        };
        if ctx.status == "planned" && ctx.state != "active" {
            // Planned while its outreach was ending: nothing to place, and nothing left pending.
            self.db.withdraw_planned(&ctx.outreach_id, now).await?;
            return Ok(None);
        }
        Ok((ctx.status == "planned").then_some(ctx))
    }

    /// What stops the attempt whatever the plan says: the number's opt-out (the outreach ends),
    /// or its campaign paused by staff (the attempt waits).
    async fn held(
        &self,
        ctx: &AttemptContext,
        now: DateTime<Utc>,
    ) -> Result<Option<Dialed>, StoreError> {
        if ctx.opted_out {
            self.db.opt_out(&ctx.phone, "ledger", now).await?;
            return Ok(Some(Dialed::Ended(Outcome::OptedOut)));
        }
        if ctx.campaign_paused {
            // Left planned and unqueued: the feeder queues it again once the campaign resumes.
            self.db.release_queue(&ctx.attempt_id).await?;
            debug!(
                attempt = ctx.attempt_id,
                campaign = ctx.campaign,
                "campaign paused; attempt held"
            );
            return Ok(Some(Dialed::Skipped));
        }
        Ok(None)
    }

    /// The slot the rules give the attempt now: one due within [`EARLY_WAKE`], or else what
    /// became of it (planned later, or the outreach ended).
    async fn slot_now(
        &self,
        campaign: &Campaign,
        ctx: &AttemptContext,
        now: DateTime<Utc>,
    ) -> Result<Result<plan::Slot, Dialed>, StoreError> {
        let id = ctx.attempt_id.as_str();
        let request = self.plan_request(campaign, ctx);
        let slot = match plan::next(&request, now) {
            Step::End(end) => {
                let (outcome, followup) = if ctx.kind == "callback" {
                    callback_end(end.outcome, ctx.voicemail_before)
                } else {
                    (end.outcome, followup_for_end(end.outcome))
                };
                let followup = followup.map(|r| (r, end.reason.clone()));
                self.db
                    .finish_outreach(&ctx.outreach_id, outcome, followup, now)
                    .await?;
                info!(attempt = id, %outcome, "outreach ended before dialing");
                return Ok(Err(Dialed::Ended(outcome)));
            }
            // Never before the attempt's own instant, nor before the rules allow.
            Step::Attempt(slot) => plan::Slot {
                at: slot.at.max(ctx.due_at),
                ..slot
            },
        };
        if slot.at > now + EARLY_WAKE {
            self.db.replan_attempt(id, &slot, now).await?;
            return Ok(Err(Dialed::Replanned(slot.at)));
        }
        Ok(Ok(slot))
    }

    /// Take attempt `id` for placing, once a line is free and the pace allows; or say why it was
    /// not taken (shutting down, no line within [`LINE_WAIT`], taken or withdrawn meanwhile).
    async fn take(
        &self,
        campaign: &Campaign,
        id: &str,
        slot: &plan::Slot,
        now: DateTime<Utc>,
    ) -> Result<Option<Dialed>, StoreError> {
        if !self.dialing() {
            // Shutting down: left planned, for the next start (or another worker) to queue.
            self.db.release_queue(id).await?;
            return Ok(Some(Dialed::Skipped));
        }
        let limits = self.limits(campaign, slot.channel);
        let started = std::time::Instant::now();
        loop {
            if slot.channel == Channel::Voice && !self.wait_for_line(campaign, started).await? {
                let later = now + TimeDelta::seconds(30);
                let slot = plan::Slot {
                    at: later,
                    ..slot.clone()
                };
                self.db.replan_attempt(id, &slot, now).await?;
                return Ok(Some(Dialed::Replanned(later)));
            }
            self.pacer.ready(&self.db).await?;
            // The limits hold in the claim itself: two workers that both saw a free line
            // cannot both take it.
            match self.db.claim_attempt(id, Utc::now(), &limits).await? {
                Claim::Taken => return Ok(None),
                Claim::Gone => return Ok(Some(Dialed::Skipped)),
                Claim::Full => continue,
            }
        }
    }

    /// Hand the taken attempt to the provider: a call, or an SMS.
    async fn place(
        &self,
        campaign: &Campaign,
        ctx: &AttemptContext,
        channel: Channel,
    ) -> Result<crate::provider::Placed, ProviderError> {
        let id = ctx.attempt_id.as_str();
        let to = Phone::from_stored(ctx.phone.clone());
        match channel {
            Channel::Voice => {
                // An agent-first callback rings the clinic line; its TwiML then dials the patient.
                let agent_first =
                    matches!(&campaign.kind, Kind::Callback(c) if c.connect == Connect::AgentFirst);
                let req = CallRequest {
                    attempt_id: id.to_string(),
                    to: if agent_first {
                        campaign.clinic_phone.clone()
                    } else {
                        to
                    },
                    from: campaign.caller_id.clone(),
                    answer_url: self.webhook("voice/answer", id),
                    status_url: self.webhook("voice/status", id),
                    ring_timeout_s: if agent_first { 20 } else { 25 },
                    detect_machine: !agent_first,
                };
                self.provider.place_call(&req).await
            }
            Channel::Sms => {
                let req = SmsRequest {
                    attempt_id: id.to_string(),
                    to,
                    from: campaign.caller_id.clone(),
                    body: sms_body(campaign, ctx),
                    status_url: self.webhook("sms/status", id),
                };
                self.provider.send_sms(&req).await
            }
        }
    }

    /// The live-call limits an attempt on `channel` must fit in.
    fn limits<'a>(&self, campaign: &'a Campaign, channel: Channel) -> Limits<'a> {
        if channel != Channel::Voice {
            return Limits::default();
        }
        Limits {
            lines: Some(i64::from(campaign.pacing.max_concurrent_calls)),
            agents: match &campaign.kind {
                Kind::Callback(c) => Some((campaign.id.as_str(), i64::from(c.agents))),
                Kind::Reminder(_) => None,
            },
        }
    }

    /// Whether a line is free (live calls under the campaign's limit and, for callbacks, a member
    /// of staff free), waiting until [`LINE_WAIT`] after `started` for one.
    async fn wait_for_line(
        &self,
        campaign: &Campaign,
        started: std::time::Instant,
    ) -> Result<bool, StoreError> {
        let limits = self.limits(campaign, Channel::Voice);
        loop {
            let busy = self.db.live_calls().await? >= limits.lines.unwrap_or(i64::MAX)
                || match limits.agents {
                    Some((id, agents)) => self.db.callbacks_in_flight(id).await? >= agents,
                    None => false,
                };
            if !busy {
                return Ok(true);
            }
            if started.elapsed() > LINE_WAIT {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn settle(
        &self,
        ctx: &AttemptContext,
        channel: Channel,
        result: Result<crate::provider::Placed, ProviderError>,
    ) -> Result<Dialed, StoreError> {
        let id = ctx.attempt_id.as_str();
        let now = Utc::now();
        match result {
            Ok(placed) => {
                self.db.attempt_placed(id, &placed.provider_id, now).await?;
                if channel == Channel::Sms {
                    // Made: delivery reports come later; the next step is planned now.
                    self.db
                        .advance_call(
                            id,
                            &StatusMove {
                                status: "queued",
                                rank: i64::from(SmsStatus::Queued.rank()),
                                answered_by: None,
                                duration_s: None,
                                done: true,
                            },
                            now,
                        )
                        .await?;
                    self.plan_after(id).await?;
                }
                info!(attempt = id, to = %mask(&ctx.phone), channel = channel.name(), "placed");
                Ok(Dialed::Placed)
            }
            Err(ProviderError::InvalidNumber { code }) => {
                self.db
                    .attempt_unclear(id, &format!("invalid number ({code})"), now)
                    .await?;
                self.db.advance_call(id, &REFUSED, now).await?;
                let followup = (
                    FollowupReason::InvalidNumber,
                    format!("provider error {code} for {}", mask(&ctx.phone)),
                );
                self.db
                    .finish_outreach(
                        &ctx.outreach_id,
                        Outcome::InvalidNumber,
                        Some(followup),
                        now,
                    )
                    .await?;
                Ok(Dialed::Ended(Outcome::InvalidNumber))
            }
            Err(ProviderError::WrongChannel { code }) => {
                // Final for this number and channel; the outreach goes on by the others. The
                // attempt reached nobody, so it counts towards no limit.
                self.db
                    .attempt_unclear(
                        id,
                        &format!("the number takes no {} ({code})", channel.name()),
                        now,
                    )
                    .await?;
                self.db.advance_call(id, &REFUSED, now).await?;
                self.db.uncount_attempt(id, now).await?;
                self.db
                    .block_channel(&ctx.phone, channel, &code, now)
                    .await?;
                // Planned again from what counts: this attempt is no longer in its history.
                if let Some(ctx) = self.db.attempt_context(id, now).await? {
                    self.plan_again(ctx, now).await?;
                }
                Ok(Dialed::WrongChannel)
            }
            Err(ProviderError::OptedOut { code }) => {
                self.db
                    .attempt_unclear(id, &format!("opted out with the provider ({code})"), now)
                    .await?;
                self.db.advance_call(id, &REFUSED, now).await?;
                self.db.opt_out(&ctx.phone, "provider", now).await?;
                Ok(Dialed::Ended(Outcome::OptedOut))
            }
            Err(ProviderError::Retry { reason, after }) => {
                let wait = after
                    .unwrap_or(Duration::from_secs(30))
                    .max(Duration::from_secs(5));
                let jitter = Duration::from_millis(fastrand::u64(0..=wait.as_millis() as u64 / 2));
                self.pacer.slow_down(Duration::from_secs(60));
                let due =
                    now + TimeDelta::from_std(wait + jitter).unwrap_or(TimeDelta::seconds(30));
                warn!(attempt = id, %reason, "provider did not take the call; trying again later");
                self.db.attempt_retry(id, due, &reason, now).await?;
                Ok(Dialed::Retry(due))
            }
            Err(ProviderError::Unclear { reason }) => {
                warn!(attempt = id, %reason, "provider answer unclear; the attempt counts as made");
                self.db.attempt_unclear(id, &reason, now).await?;
                Ok(Dialed::Placed)
            }
        }
    }
}

/// The SMS fallback's text for this patient.
fn sms_body(campaign: &Campaign, ctx: &AttemptContext) -> String {
    let (lang, messages) = campaign.messages_for(&ctx.language);
    let template = messages.sms.as_ref().unwrap_or(&messages.voicemail);
    // Names as long as the campaign check measured with, so the text fits one message.
    let mut facts = facts(campaign, ctx);
    facts.first_name = sms::clamp(&facts.first_name, sms::FIRST_NAME_MAX);
    facts.last_name = facts.last_name.map(|n| sms::clamp(&n, sms::LAST_NAME_MAX));
    sms::smart(&render(template, campaign, lang, &facts))
}

/// What messages may say about this attempt's patient and appointment.
pub fn facts(campaign: &Campaign, ctx: &AttemptContext) -> Facts {
    let zone = ctx.timezone.parse::<Tz>().unwrap_or(campaign.timezone);
    Facts {
        first_name: ctx.first_name.clone(),
        last_name: ctx.last_name.clone(),
        appointment: ctx.appointment_at.map(|t| (t, zone)),
        provider: ctx.provider.clone(),
        location: ctx.location.clone(),
    }
}
