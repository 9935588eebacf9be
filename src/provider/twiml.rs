//! TwiML: what a call does once answered. Every document ends the call well under a minute.

/// Escape text for an XML element or attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// The `<Say language>` for one of our message languages.
pub fn say_language(language: &str) -> &'static str {
    match language.split('-').next().unwrap_or_default() {
        "ca" => "ca-ES",
        "es" => "es-ES",
        "ru" => "ru-RU",
        "zh" => "cmn-CN",
        "fr" => "fr-FR",
        "de" => "de-DE",
        "pt" => "pt-PT",
        _ => "en-US",
    }
}

fn document(body: &str) -> String {
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>{body}</Response>")
}

fn say(text: &str, language: &str) -> String {
    format!(
        "<Say language=\"{}\">{}</Say>",
        say_language(language),
        escape(text)
    )
}

/// A person answered: the reminder inside a one-key `<Gather>`, said twice, then goodbye.
pub fn reminder(text: &str, language: &str, gather_url: &str) -> String {
    let gather = format!(
        "<Gather numDigits=\"1\" timeout=\"6\" action=\"{}\" method=\"POST\">{}</Gather>",
        escape(gather_url),
        say(text, language)
    );
    document(&format!("{gather}{gather}<Hangup/>"))
}

/// A machine answered: the voicemail text, no keys.
pub fn voicemail(text: &str, language: &str) -> String {
    document(&format!("{}<Hangup/>", say(text, language)))
}

/// Say something, then hang up.
pub fn say_and_hang_up(text: &str, language: &str) -> String {
    document(&format!("{}<Hangup/>", say(text, language)))
}

/// Say something, then connect the call to `number`.
pub fn say_and_dial(text: &str, language: &str, number: &str, caller_id: &str) -> String {
    document(&format!(
        "{}<Dial callerId=\"{}\" timeout=\"30\" timeLimit=\"1800\">{}</Dial>",
        say(text, language),
        escape(caller_id),
        escape(number)
    ))
}

/// A callback: say `text`, then connect the call to `number`; the `<Dial>` result goes to
/// `action`. `answer_on_bridge`: the caller hears ringing until the other side answers.
pub fn bridge(
    text: &str,
    language: &str,
    number: &str,
    caller_id: &str,
    answer_on_bridge: bool,
    action: &str,
) -> String {
    document(&format!(
        "{}<Dial callerId=\"{}\" answerOnBridge=\"{}\" timeout=\"25\" timeLimit=\"1800\" action=\"{}\" method=\"POST\"><Number>{}</Number></Dial>",
        say(text, language),
        escape(caller_id),
        answer_on_bridge,
        escape(action),
        escape(number)
    ))
}

/// After a bridged callback, ask staff for one key (posted to `action`), then hang up.
pub fn ask_agent(text: &str, language: &str, action: &str) -> String {
    document(&format!(
        "<Gather numDigits=\"1\" timeout=\"5\" action=\"{}\" method=\"POST\">{}</Gather><Hangup/>",
        escape(action),
        say(text, language)
    ))
}

/// Say `text`, then record a message of up to two minutes; the recording goes to `action`.
pub fn leave_message(text: &str, language: &str, action: &str) -> String {
    document(&format!(
        "{}<Record maxLength=\"120\" playBeep=\"true\" action=\"{}\" method=\"POST\"/><Hangup/>",
        say(text, language),
        escape(action)
    ))
}

/// An SMS answer: one `<Message>`.
pub fn message(text: &str) -> String {
    document(&format!("<Message>{}</Message>", escape(text)))
}

/// Nothing to answer.
pub fn empty() -> String {
    document("")
}

/// Nothing to do on this call.
pub fn hang_up() -> String {
    document("<Hangup/>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reminder_gathers_one_key_and_repeats_once() {
        let xml = reminder("Hola <Anna> & co", "ca", "https://x/g?attempt=1&b=2");
        assert_eq!(xml.matches("<Gather numDigits=\"1\"").count(), 2);
        assert!(xml.contains("<Say language=\"ca-ES\">Hola &lt;Anna&gt; &amp; co</Say>"));
        assert!(xml.contains("action=\"https://x/g?attempt=1&amp;b=2\""));
        assert!(xml.ends_with("<Hangup/></Response>"));
    }

    #[test]
    fn a_bridge_dials_one_number_and_reports_to_its_action() {
        let xml = bridge(
            "Callback for Anna",
            "ca",
            "+34612345678",
            "+34930000000",
            true,
            "https://x/b?attempt=1",
        );
        assert!(xml.contains("<Dial callerId=\"+34930000000\" answerOnBridge=\"true\""));
        assert!(xml.contains("action=\"https://x/b?attempt=1\""));
        assert!(xml.contains("<Number>+34612345678</Number></Dial>"));
    }

    #[test]
    fn voicemail_has_no_gather() {
        let xml = voicemail("Truqueu-nos", "ca");
        assert!(!xml.contains("Gather"));
        assert!(xml.contains("Truqueu-nos"));
    }
}
