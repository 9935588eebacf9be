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
    fn voicemail_has_no_gather() {
        let xml = voicemail("Truqueu-nos", "ca");
        assert!(!xml.contains("Gather"));
        assert!(xml.contains("Truqueu-nos"));
    }
}
