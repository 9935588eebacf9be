//! One SMS, one segment: 160 GSM-7 characters, or 70 UCS-2 ones when a character falls outside
//! GSM-7. Letters GSM-7 lacks but has a plain twin for (`á` → `a`, `ç` → `c`, `·` → `.`, curly
//! quotes) are written as the twin, so a Catalan or Spanish text stays GSM-7.

use super::render::{longest_date, longest_time, longest_weekday};
use super::{Placeholder, Template};

/// GSM 03.38's basic character set (one septet each).
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// Its extension table (two septets each: an escape, then the character).
const GSM7_EXTENDED: &str = "^{}\\[~]|€\u{c}";

/// The longest first and last names a message is checked with; longer ones are shortened.
pub const FIRST_NAME_MAX: usize = 12;
pub const LAST_NAME_MAX: usize = 20;

/// How a message is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

impl Encoding {
    /// Characters (septets, or UTF-16 units) in one segment.
    pub fn limit(self) -> usize {
        match self {
            Encoding::Gsm7 => 160,
            Encoding::Ucs2 => 70,
        }
    }
}

/// The GSM-7 twin of a character GSM-7 lacks, if it has one.
fn twin(c: char) -> Option<char> {
    Some(match c {
        'á' | 'â' | 'ã' => 'a',
        'í' | 'î' | 'ï' => 'i',
        'ó' | 'ô' | 'õ' => 'o',
        'ú' | 'û' => 'u',
        'ê' | 'ë' => 'e',
        'ç' => 'c',
        'Á' | 'À' | 'Â' | 'Ã' => 'A',
        'Í' | 'Ì' | 'Î' | 'Ï' => 'I',
        'Ó' | 'Ò' | 'Ô' | 'Õ' => 'O',
        'Ú' | 'Ù' | 'Û' => 'U',
        'È' | 'Ê' | 'Ë' => 'E',
        '·' => '.',
        '‘' | '’' | '´' | '`' => '\'',
        '“' | '”' | '«' | '»' => '"',
        '–' | '—' => '-',
        '\u{a0}' => ' ',
        _ => return None,
    })
}

/// `text` with GSM-7's plain twins in place of the letters it lacks (when that makes it GSM-7).
pub fn smart(text: &str) -> String {
    let replaced: String = text
        .chars()
        .map(|c| if is_gsm7(c) { c } else { twin(c).unwrap_or(c) })
        .collect::<String>()
        .replace('…', "...");
    if replaced.chars().all(is_gsm7) {
        replaced
    } else {
        // Not GSM-7 anyway (Cyrillic, Chinese, emoji): keep the letters as written.
        text.to_string()
    }
}

fn is_gsm7(c: char) -> bool {
    GSM7_BASIC.contains(c) || GSM7_EXTENDED.contains(c)
}

/// The encoding of `text` and the characters it uses of one segment.
pub fn measure(text: &str) -> (Encoding, usize) {
    if text.chars().all(is_gsm7) {
        let septets = text
            .chars()
            .map(|c| if GSM7_EXTENDED.contains(c) { 2 } else { 1 })
            .sum();
        (Encoding::Gsm7, septets)
    } else {
        (Encoding::Ucs2, text.encode_utf16().count())
    }
}

/// Whether `text` (already through [`smart`]) fits one segment.
pub fn fits_one(text: &str) -> bool {
    let (encoding, used) = measure(text);
    used <= encoding.limit()
}

/// `template` rendered with the longest plausible values in `language`: the text the campaign
/// check measures.
pub fn worst_case(template: &Template, language: &str, clinic: &str, clinic_phone: &str) -> String {
    let lang = language.split('-').next().unwrap_or("en");
    smart(&template.render(|p| match p {
        Placeholder::FirstName => "W".repeat(FIRST_NAME_MAX),
        Placeholder::LastName => "W".repeat(LAST_NAME_MAX),
        Placeholder::Clinic => clinic.to_string(),
        Placeholder::ClinicPhone => clinic_phone.to_string(),
        Placeholder::Date => longest_date(lang),
        Placeholder::Time => longest_time(lang),
        Placeholder::Weekday => longest_weekday(lang),
        // Not allowed in an SMS (the campaign check says so).
        Placeholder::Provider | Placeholder::Location => String::new(),
    }))
}

/// A name shortened to `max` characters.
pub fn clamp(name: &str, max: usize) -> String {
    name.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalan_and_spanish_stay_gsm7_through_their_twins() {
        let text = smart(
            "Visita el dimecres a les 9:30. Responeu 1 per confirmar, 2 per anul·lar. Sí, gràcies",
        );
        assert_eq!(measure(&text).0, Encoding::Gsm7);
        assert!(text.contains("anul.lar") && text.contains("Si, gràcies"));
    }

    #[test]
    fn cyrillic_chinese_and_emoji_are_ucs2_and_kept_as_written() {
        for text in ["Визит 12 марта", "您的预约", "See you 🙂"] {
            assert_eq!(smart(text), text);
            assert_eq!(measure(text).0, Encoding::Ucs2);
        }
        assert_eq!(measure("🙂").1, 2, "an emoji is two UTF-16 units");
    }

    #[test]
    fn limits_are_160_septets_and_70_units() {
        assert!(fits_one(&"a".repeat(160)));
        assert!(!fits_one(&"a".repeat(161)));
        assert!(
            !fits_one(&format!("{}€", "a".repeat(159))),
            "€ takes two septets"
        );
        assert!(fits_one(&"я".repeat(70)));
        assert!(!fits_one(&"я".repeat(71)));
    }
}
