//! Phone numbers: E.164 or nothing, and masked whenever they reach a log.

use std::fmt;
use std::sync::OnceLock;

use phonenumber::country;
use phonenumber::metadata::Database;

/// A phone number in E.164 form (`+34612345678`). Cannot hold anything else.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Phone(String);

/// Why a text is not a phone number we can dial.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("empty phone number")]
    Empty,
    #[error("not a phone number")]
    Unparseable,
    #[error("not a valid number for its country")]
    Invalid,
    #[error("not in E.164 form (+ and country code, e.g. +34930000000)")]
    NotE164,
    /// libphonenumber reads letters as the digits on their keys (vanity numbers): a typed `O`
    /// for a `0`, or an `E` left by a spreadsheet, would call a stranger.
    #[error(
        "letters in a phone number (ringback dials digits only, and never reads a letter as the digit on its key)"
    )]
    Letters,
    /// `3.46123E+10`: what a spreadsheet writes for a long number it took for a quantity.
    #[error(
        "a spreadsheet's scientific notation, which has lost the number's last digits (format the phone column as text and export again)"
    )]
    Scientific,
}

impl Phone {
    /// Parse any common spelling (`612 34 56 78`, `(0034) 612-345-678`, `+34612345678`),
    /// reading numbers without a country code as numbers of `region`.
    pub fn parse(text: &str, region: Option<country::Id>) -> Result<Phone, PhoneError> {
        Phone::parse_with(Numbering::Shared, text, region)
    }

    /// [`Phone::parse`] with the given copy of the numbering plans: a thread that parses many
    /// numbers beside another takes [`Numbering::Second`].
    pub fn parse_with(
        numbering: Numbering,
        text: &str,
        region: Option<country::Id>,
    ) -> Result<Phone, PhoneError> {
        let cleaned = clean(text);
        if cleaned.is_empty() {
            return Err(PhoneError::Empty);
        }
        if scientific(text.trim()) {
            return Err(PhoneError::Scientific);
        }
        if cleaned.chars().any(char::is_alphabetic) {
            return Err(PhoneError::Letters);
        }
        let plans = numbering.database();
        let number = phonenumber::parse_with(plans, region, &cleaned)
            .map_err(|_| PhoneError::Unparseable)?;
        if !phonenumber::is_valid_with(plans, &number) {
            return Err(PhoneError::Invalid);
        }
        // E.164 is the country code and the national number (with an Italian leading zero, if
        // any), which is what the crate's formatter writes after first matching the country's
        // display patterns, a third of the time of a parse.
        Ok(Phone(format!(
            "+{}{}",
            number.country().code(),
            number.national()
        )))
    }

    /// Parse a number that must already be written in E.164 form.
    pub fn parse_e164(text: &str) -> Result<Phone, PhoneError> {
        let text = text.trim();
        let digits = text.strip_prefix('+').ok_or(PhoneError::NotE164)?;
        if !(8..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PhoneError::NotE164);
        }
        let phone = Phone::parse(text, None)?;
        if phone.0 != text {
            return Err(PhoneError::NotE164);
        }
        Ok(phone)
    }

    /// A number read back from storage, where only E.164 is ever written.
    pub fn from_stored(e164: String) -> Phone {
        Phone(e164)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last four digits, for logs and screens that must not show the number.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }
}

/// Which copy of libphonenumber's numbering plans a parse reads.
///
/// The `phonenumber` crate compiles each plan's patterns into one cache per copy, behind a lock
/// held for the whole of every match: two threads parsing with the same copy take turns, and
/// together are slower than one alone (100,000 numbers: 0.39 s on one thread, 0.53–0.70 s on
/// two). A second copy, with its own cache, lets an import parse on two threads at once
/// (0.21–0.29 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Numbering {
    /// The crate's own copy, which every other parse in the process uses.
    Shared,
    /// A copy for a second thread, read from the same metadata the crate was built from
    /// (`PhoneNumberMetadata.xml`, libphonenumber 9.0.33, Apache-2.0) the first time it is asked for.
    Second,
}

/// libphonenumber's metadata as the pinned `phonenumber` crate carries it (tests check that both
/// copies read numbers alike).
const METADATA: &str = include_str!("PhoneNumberMetadata.xml");

impl Numbering {
    fn database(self) -> &'static Database {
        static SECOND: OnceLock<Option<Database>> = OnceLock::new();
        match self {
            Numbering::Shared => &phonenumber::metadata::DATABASE,
            Numbering::Second => SECOND
                .get_or_init(|| match Database::parse(METADATA) {
                    Ok(plans) => Some(plans),
                    Err(e) => {
                        tracing::warn!(error = %e, "a second copy of the numbering plans did not load; numbers are parsed with the shared one");
                        None
                    }
                })
                .as_ref()
                .unwrap_or(&phonenumber::metadata::DATABASE),
        }
    }

    /// Load both copies now, each on a thread of its own (about 0.1 s each), so that the first
    /// numbers to parse do not wait for them.
    pub fn prepare() {
        for numbering in [Numbering::Shared, Numbering::Second] {
            std::thread::spawn(move || {
                numbering.database();
            });
        }
    }
}

/// Mask any number-like text to its last four characters.
pub fn mask(number: &str) -> String {
    let tail: String = number
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("…{tail}")
}

/// `00` international prefixes become `+`; letters and separators other than the usual go.
/// `3.46123E+10`, `3,46123E+10`, `6E+08`: as spreadsheets write it, one digit, a decimal part,
/// and a signed exponent.
fn scientific(text: &str) -> bool {
    let Some((mantissa, exponent)) = text.split_once(['E', 'e']) else {
        return false;
    };
    let Some(exponent) = exponent.strip_prefix(['+', '-']) else {
        return false;
    };
    let (whole, fraction) = mantissa.split_once(['.', ',']).unwrap_or((mantissa, "0"));
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    whole.len() == 1 && digits(whole) && digits(fraction) && digits(exponent)
}

fn clean(text: &str) -> String {
    let trimmed = text.trim();
    let trimmed = trimmed.strip_prefix("tel:").unwrap_or(trimmed);
    let mut out = String::with_capacity(trimmed.len());
    for c in trimmed.chars() {
        match c {
            '0'..='9' | '+' => out.push(c),
            ' ' | '-' | '.' | '(' | ')' | '/' | '\u{a0}' => {}
            _ => out.push(c),
        }
    }
    match out.strip_prefix("00") {
        Some(rest) if !rest.is_empty() => format!("+{rest}"),
        _ => out,
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Debug shows the masked form, so a stray `{:?}` never leaks a number into a log.
impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Phone({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn es() -> Option<country::Id> {
        Some(country::Id::ES)
    }

    #[test]
    fn common_spellings_normalise_to_e164() {
        for text in [
            "612345678",
            "612 34 56 78",
            "612-345-678",
            "+34 612 34 56 78",
            "0034 612 345 678",
            "(+34) 612.34.56.78",
            "tel:+34612345678",
        ] {
            assert_eq!(
                Phone::parse(text, es()).unwrap().as_str(),
                "+34612345678",
                "{text}"
            );
        }
    }

    #[test]
    fn a_foreign_number_keeps_its_own_country_code() {
        assert_eq!(
            Phone::parse("+1 (212) 555-0123", es()).unwrap().as_str(),
            "+12125550123"
        );
        assert_eq!(
            Phone::parse("0044 7911 123456", es()).unwrap().as_str(),
            "+447911123456"
        );
    }

    #[test]
    fn nonsense_and_short_numbers_are_rejected() {
        assert_eq!(Phone::parse("", es()), Err(PhoneError::Empty));
        assert!(Phone::parse("call me", es()).is_err());
        assert!(Phone::parse("12345", es()).is_err());
    }

    #[test]
    fn letters_are_never_read_as_the_digits_on_their_keys() {
        // libphonenumber would read each as a vanity number: E as 3, O as 6, FLOWERS as 3569377.
        for text in [
            "6123456E1",
            "61234567O",
            "+34 612 345 67O",
            "612-FLOWERS",
            "612345678 ext 2",
            "mobile 612345678",
        ] {
            assert_eq!(Phone::parse(text, es()), Err(PhoneError::Letters), "{text}");
        }
    }

    #[test]
    fn a_spreadsheets_scientific_notation_is_named() {
        for text in [
            "3.46123E+10",
            "3,46123E+10",
            "6.12345679e+8",
            "3.4612345678E+010",
            "6E+08",
        ] {
            assert_eq!(
                Phone::parse(text, es()),
                Err(PhoneError::Scientific),
                "{text}"
            );
        }
    }

    #[test]
    fn e164_form_is_required_where_asked() {
        assert!(Phone::parse_e164("+34930000000").is_ok());
        assert_eq!(Phone::parse_e164("930000000"), Err(PhoneError::NotE164));
        assert_eq!(
            Phone::parse_e164("+34 930 000 000"),
            Err(PhoneError::NotE164)
        );
    }

    #[test]
    fn an_italian_landline_keeps_its_leading_zero() {
        assert_eq!(
            Phone::parse("06 6982 1234", Some(country::Id::IT))
                .unwrap()
                .as_str(),
            "+390669821234"
        );
    }

    #[test]
    fn the_second_copy_of_the_numbering_plans_reads_numbers_as_the_crates_own() {
        let shared = Numbering::Shared.database() as *const Database;
        assert!(
            !std::ptr::eq(Numbering::Second.database(), shared),
            "the second copy loaded"
        );
        for (text, region) in [
            ("612 34 56 78", country::Id::ES),
            ("930 00 00 00", country::Id::ES),
            ("912345", country::Id::ES),
            ("06 6982 1234", country::Id::IT),
            ("(212) 555-0123", country::Id::US),
            ("020 7946 0958", country::Id::GB),
            ("07911 123456", country::Id::GB),
            ("030 901820", country::Id::DE),
            ("01 23 45 67 89", country::Id::FR),
            ("0412 345 678", country::Id::AU),
            ("98765 43210", country::Id::IN),
            ("55 1234 5678", country::Id::MX),
            ("+55 11 91234 5678", country::Id::ES),
            ("+979 123456789", country::Id::ES),
            ("+999 1234", country::Id::ES),
        ] {
            assert_eq!(
                Phone::parse_with(Numbering::Second, text, Some(region)),
                Phone::parse_with(Numbering::Shared, text, Some(region)),
                "{text} in {region:?}"
            );
        }
    }

    proptest::proptest! {
        /// Both copies of the numbering plans read any digits alike.
        #[test]
        fn both_copies_of_the_numbering_plans_agree(
            region in proptest::sample::select(vec![
                country::Id::ES, country::Id::IT, country::Id::US, country::Id::GB,
                country::Id::DE, country::Id::FR, country::Id::AU, country::Id::IN,
                country::Id::BR, country::Id::MX, country::Id::JP, country::Id::ZA,
            ]),
            digits in "\\+?[0-9]{4,14}",
        ) {
            proptest::prop_assert_eq!(
                Phone::parse_with(Numbering::Second, &digits, Some(region)),
                Phone::parse_with(Numbering::Shared, &digits, Some(region))
            );
        }

        /// Any number valid in one of several countries comes out as the crate's own E.164 form.
        #[test]
        fn e164_is_written_as_the_crate_formats_it(
            region in proptest::sample::select(vec![
                country::Id::ES, country::Id::IT, country::Id::US, country::Id::GB,
                country::Id::DE, country::Id::FR, country::Id::AU, country::Id::IN,
            ]),
            digits in "[0-9]{6,12}",
        ) {
            if let Ok(phone) = Phone::parse(&digits, Some(region)) {
                let number = phonenumber::parse(Some(region), clean(&digits)).unwrap();
                let formatted = number.format().mode(phonenumber::Mode::E164).to_string();
                proptest::prop_assert_eq!(phone.as_str(), formatted);
            }
        }
    }

    #[test]
    fn masked_shows_only_the_last_four_digits() {
        let phone = Phone::parse("+34612345678", None).unwrap();
        assert_eq!(phone.masked(), "…5678");
        assert_eq!(format!("{phone:?}"), "Phone(…5678)");
    }
}
