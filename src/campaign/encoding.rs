//! `[import] encoding`: the character set of the clinic's exports. UTF-8 unless the campaign says
//! otherwise; spreadsheets on Windows in much of Europe save "CSV" as Windows-1252, where
//! "Núria" and "Gràcia" are not UTF-8.

use std::borrow::Cow;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Encoding {
    #[default]
    Utf8,
    /// Windows-1252, which is also what the labels latin1 and ISO-8859-1 mean on the web.
    Windows1252,
}

/// The characters of bytes 0x80–0x9F in Windows-1252; the five it leaves undefined read as
/// the C1 control of the same number, as browsers do.
const HIGH: [char; 32] = [
    '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8D}', 'Ž', '\u{8F}',
    '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9D}', 'ž', 'Ÿ',
];

impl Encoding {
    pub fn from_label(label: &str) -> Option<Encoding> {
        match label.trim().to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" => Some(Encoding::Utf8),
            "windows-1252" | "cp1252" | "latin1" | "latin-1" | "iso-8859-1" => {
                Some(Encoding::Windows1252)
            }
            _ => None,
        }
    }

    /// The bytes as UTF-8. Already UTF-8 is kept as it is: an export saved as UTF-8 after all
    /// reads the same either way. Line breaks keep their places, so line numbers hold.
    pub fn to_utf8<'a>(&self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        match self {
            Encoding::Windows1252 if std::str::from_utf8(bytes).is_err() => {
                let text: String = bytes
                    .iter()
                    .map(|&b| match b {
                        0x80..=0x9F => HIGH[usize::from(b - 0x80)],
                        _ => char::from(b),
                    })
                    .collect();
                Cow::Owned(text.into_bytes())
            }
            _ => Cow::Borrowed(bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_windows_1252_export_reads_as_its_letters() {
        let bytes = b"N\xfaria,Gr\xe0cia,\x80 5,\x93hola\x94\n";
        let text = Encoding::Windows1252.to_utf8(bytes);
        assert_eq!(
            std::str::from_utf8(&text).unwrap(),
            "Núria,Gràcia,€ 5,“hola”\n"
        );
        // Left as it is by default, for the row's own check to name.
        assert_eq!(&*Encoding::Utf8.to_utf8(bytes), bytes);
    }

    #[test]
    fn utf8_text_is_kept_whatever_the_campaign_says() {
        let bytes = "Núria".as_bytes();
        assert_eq!(&*Encoding::Windows1252.to_utf8(bytes), bytes);
    }

    #[test]
    fn labels_are_the_usual_ones() {
        assert_eq!(
            Encoding::from_label("ISO-8859-1"),
            Some(Encoding::Windows1252)
        );
        assert_eq!(Encoding::from_label("UTF-8"), Some(Encoding::Utf8));
        assert_eq!(Encoding::from_label("ebcdic"), None);
    }
}
