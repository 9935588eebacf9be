//! The `[messages]` tables of a campaign file: what is said, in each language, with only public
//! placeholders in what a voicemail or an SMS carries, and an SMS that fits one message.

use std::collections::BTreeMap;

use toml::de::DeValue;

use super::messages::{Messages, Template};
use super::parse::missing;
use super::reader::{Errors, Section, Span};
use super::sms::{self, Encoding};

/// `[messages.LANG]` for each language; `needs_sms` when the campaign sends SMS, `sms_context`
/// its clinic name and phone (to measure the longest SMS).
pub(super) fn messages(
    top: &Section,
    src: &str,
    needs_sms: bool,
    sms_context: Option<(String, String)>,
    errors: &mut Errors,
) -> Option<BTreeMap<String, Messages>> {
    let Some(section) = top.table("messages", errors) else {
        return missing(top, "messages", errors);
    };
    let before = errors.0.len();
    let mut out = BTreeMap::new();
    for (lang, value) in section.table.iter() {
        let lang_text = lang.get_ref().as_ref();
        if !is_language_tag(lang_text) {
            errors.push(
                lang.span(),
                format!("[messages.{lang_text}] is not a language code (e.g. ca, es, en, pt-br)"),
            );
            continue;
        }
        let DeValue::Table(table) = value.get_ref() else {
            errors.push(
                value.span(),
                format!("[messages.{lang_text}] must be a table"),
            );
            continue;
        };
        let language = Language {
            tag: lang_text,
            section: Section::new(format!("[messages.{lang_text}]"), table, value.span()),
            src,
        };
        if let Some(messages) = language.messages(needs_sms, sms_context.as_ref(), errors) {
            out.insert(lang_text.to_string(), messages);
        }
    }
    (errors.0.len() == before).then_some(out)
}

/// One `[messages.LANG]` table, in the file it was read from.
struct Language<'a> {
    tag: &'a str,
    section: Section<'a, 'a>,
    src: &'a str,
}

impl Language<'_> {
    fn messages(
        &self,
        needs_sms: bool,
        sms_context: Option<&(String, String)>,
        errors: &mut Errors,
    ) -> Option<Messages> {
        let section = &self.section;
        section.deny_unknown(&["voice", "voicemail", "sms", "agent"], errors);
        let voice = self.template("voice", false, errors);
        let voicemail = self.template("voicemail", true, errors);
        let sms = self.template("sms", true, errors);
        if let (Some(t), Some((clinic, phone)), Some(text)) =
            (&sms, sms_context, section.get("sms"))
        {
            self.sms_fits(t, clinic, phone, text.span(), errors);
        }
        let agent = self.template("agent", false, errors);
        for (key, present) in [
            ("voice", voice.is_some()),
            ("voicemail", voicemail.is_some()),
        ] {
            if !present && section.get(key).is_none() {
                section.missing(key, errors);
            }
        }
        if needs_sms && sms.is_none() && section.get("sms").is_none() {
            section.missing("sms", errors);
        }
        Some(Messages {
            voice: voice?,
            voicemail: voicemail?,
            sms,
            agent,
        })
    }

    /// The template at `key`; with `public`, one that carries only what a voicemail or an SMS
    /// may (name, clinic, date, time, phone). Errors point into the text itself.
    fn template(&self, key: &str, public: bool, errors: &mut Errors) -> Option<Template> {
        let lang = self.tag;
        let text = self.section.str(key, errors)?;
        let open = if self
            .src
            .get(text.span().start..)
            .is_some_and(|s| s.starts_with("\"\"\"") || s.starts_with("'''"))
        {
            3
        } else {
            1
        };
        let at = |offset: usize| text.span().start + open + offset;
        let template = Template::parse(text.get_ref())
            .map_err(|e| {
                errors.push(
                    at(e.offset)..at(e.offset),
                    format!("[messages.{lang}] {key}: {}", e.message),
                )
            })
            .ok()?;
        if public {
            for p in template.placeholders().filter(|p| !p.is_public()) {
                let offset = text.get_ref().find(&p.to_string()).unwrap_or(0);
                errors.push(at(offset)..at(offset), format!(
                    "[messages.{lang}] {key} may not carry {p}: a voicemail or SMS holds only name, clinic, date, time and phone"
                ));
            }
        }
        Some(template)
    }

    /// An SMS must fit one message with the longest names, date and time it may carry.
    fn sms_fits(
        &self,
        template: &Template,
        clinic: &str,
        phone: &str,
        span: Span,
        errors: &mut Errors,
    ) {
        let worst = sms::worst_case(template, self.tag, clinic, phone);
        let (encoding, used) = sms::measure(&worst);
        if used > encoding.limit() {
            errors.push(
                span,
                format!(
                    "[messages.{}] sms does not fit one message: {used} of {} {} characters with the longest names, date and time (e.g. {worst:?})",
                    self.tag,
                    encoding.limit(),
                    match encoding {
                        Encoding::Gsm7 => "GSM-7",
                        Encoding::Ucs2 => "UCS-2",
                    }
                ),
            );
        }
    }
}

fn is_language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let primary = parts.next().unwrap_or_default();
    (2..=3).contains(&primary.len())
        && primary.bytes().all(|b| b.is_ascii_lowercase())
        && parts
            .all(|p| !p.is_empty() && p.len() <= 8 && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}
