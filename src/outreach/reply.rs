//! What a patient's SMS reply means. Matching ignores case, accents and punctuation, and a
//! courtesy after the word ("Stop. Thank you", "sí, gràcies"); anything else is a message for staff.

/// The meaning of one SMS reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Confirm,
    Cancel,
    Reschedule,
    /// Opt out of every message and call (the ledger).
    Stop,
    /// Opt back in.
    Start,
    /// The clinic's phone, please.
    Help,
    /// Free text: a `patient_message` follow-up.
    Other,
}

const CONFIRM: &[&str] = &[
    "1",
    "c",
    "y",
    "yes",
    "si",
    "ok",
    "okay",
    "confirm",
    "confirmed",
    "confirmo",
    "confirmar",
    "confirmat",
    "confirmada",
    "confirmado",
    "vale",
    "dacord",
    "da",
    "да",
    "подтверждаю",
    "是",
    "是的",
    "好",
    "好的",
    "确认",
    "對",
    "对",
];
const CANCEL: &[&str] = &[
    "2",
    "n",
    "no",
    "nope",
    "cancelar",
    "anular",
    "anullar",
    "anulla",
    "anulo",
    "нет",
    "отмена",
    "отменить",
    "否",
    "不",
    "不是",
    "取消",
];
const RESCHEDULE: &[&str] = &[
    "3",
    "r",
    "reschedule",
    "change",
    "cambiar",
    "canviar",
    "reprogramar",
    "перенести",
    "改期",
    "改",
];
/// The carriers' opt-out words (CANCEL among them), and their equivalents in our languages.
const STOP: &[&str] = &[
    "stop",
    "stopall",
    "unsubscribe",
    "cancel",
    "end",
    "quit",
    "optout",
    "baja",
    "prou",
    "стоп",
    "退订",
    "停止",
];
const START: &[&str] = &["start", "unstop", "alta", "старт", "开始"];
const HELP: &[&str] = &["help", "info", "ayuda", "ajuda", "помощь", "帮助"];
/// Words that may follow the keyword without changing what it means.
const COURTESY: &[&str] = &[
    "thanks",
    "thank",
    "you",
    "thx",
    "ty",
    "please",
    "pls",
    "gracias",
    "gracies",
    "moltes",
    "merci",
    "por",
    "favor",
    "si",
    "us",
    "plau",
    "muchas",
    "спасибо",
    "пожалуйста",
    "谢谢",
    "謝謝",
    "请",
    "bye",
    "adeu",
    "adios",
    "ok",
    "bon",
    "dia",
    "buenos",
    "dias",
    "hola",
    "hello",
    "hi",
];

/// Read one reply.
pub fn classify(body: &str) -> Reply {
    let words = words(body);
    let Some((first, rest)) = words.split_first() else {
        return Reply::Other;
    };
    let is = |list: &[&str]| list.contains(&first.as_str());
    // An opt-out is honoured however it goes on ("stop calling me").
    if is(STOP) {
        return Reply::Stop;
    }
    // "sí" alone confirms; "sí, gràcies" too; "sí, però …" is for staff.
    let only_courtesy = rest.iter().all(|w| COURTESY.contains(&w.as_str()));
    if !only_courtesy {
        return Reply::Other;
    }
    if is(START) {
        Reply::Start
    } else if is(HELP) {
        Reply::Help
    } else if is(CONFIRM) {
        Reply::Confirm
    } else if is(CANCEL) {
        Reply::Cancel
    } else if is(RESCHEDULE) {
        Reply::Reschedule
    } else {
        Reply::Other
    }
}

/// Lower case, accents off, punctuation as spaces; CJK characters and the ideographic comma
/// split too, so "是，谢谢" reads as two words.
fn words(body: &str) -> Vec<String> {
    let mut cleaned = String::with_capacity(body.len());
    for c in body.chars() {
        let c = fold(c);
        if c.is_alphanumeric() {
            cleaned.extend(c.to_lowercase());
        } else if c == '\'' || c == '·' || (c == '.' && cleaned.ends_with('l')) {
            // d'acord, anul·lar, anul.lar: one word.
        } else {
            cleaned.push(' ');
        }
    }
    let mut out: Vec<String> = cleaned.split_whitespace().map(String::from).collect();
    // Chinese writes no spaces: a known word at the start stands apart from what follows.
    if let Some(first) = out.first().cloned()
        && first.chars().any(is_cjk)
    {
        let lists = [CONFIRM, CANCEL, RESCHEDULE, STOP, START, HELP];
        if let Some(word) = lists
            .iter()
            .flat_map(|l| l.iter())
            .filter(|w| first.starts_with(**w) && w.chars().any(is_cjk))
            .max_by_key(|w| w.len())
        {
            let rest = first[word.len()..].to_string();
            out[0] = word.to_string();
            if !rest.is_empty() {
                out.insert(1, rest);
            }
        }
    }
    out
}

fn is_cjk(c: char) -> bool {
    ('\u{4e00}'..='\u{9fff}').contains(&c)
}

/// The letter without its accent (Latin letters our languages use).
fn fold(c: char) -> char {
    match c {
        'à' | 'á' | 'â' | 'ä' | 'ã' | 'À' | 'Á' | 'Â' | 'Ä' | 'Ã' => 'a',
        'è' | 'é' | 'ê' | 'ë' | 'È' | 'É' | 'Ê' | 'Ë' => 'e',
        'ì' | 'í' | 'î' | 'ï' | 'Ì' | 'Í' | 'Î' | 'Ï' => 'i',
        'ò' | 'ó' | 'ô' | 'ö' | 'õ' | 'Ò' | 'Ó' | 'Ô' | 'Ö' | 'Õ' => 'o',
        'ù' | 'ú' | 'û' | 'ü' | 'Ù' | 'Ú' | 'Û' | 'Ü' => 'u',
        'ç' | 'Ç' => 'c',
        'ñ' | 'Ñ' => 'n',
        'ё' | 'Ё' => 'е',
        // Full-width digits and letters, as Chinese keyboards type them.
        '０'..='９' => char::from(b'0' + (c as u32 - '０' as u32) as u8),
        c => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_in_each_language() {
        let cases: &[(&str, Reply)] = &[
            ("1", Reply::Confirm),
            ("Sí, gràcies", Reply::Confirm),
            ("SI", Reply::Confirm),
            ("yes please", Reply::Confirm),
            ("C", Reply::Confirm),
            ("D'acord!", Reply::Confirm),
            ("Да, спасибо", Reply::Confirm),
            ("是", Reply::Confirm),
            ("是的，谢谢", Reply::Confirm),
            ("１", Reply::Confirm),
            ("2", Reply::Cancel),
            ("No, gracias", Reply::Cancel),
            ("Anul·lar", Reply::Cancel),
            ("нет", Reply::Cancel),
            ("否", Reply::Cancel),
            ("3", Reply::Reschedule),
            ("R", Reply::Reschedule),
            ("Canviar, si us plau", Reply::Reschedule),
            ("перенести", Reply::Reschedule),
            ("改期", Reply::Reschedule),
            ("Stop. Thank you", Reply::Stop),
            ("STOP", Reply::Stop),
            ("stop calling me", Reply::Stop),
            ("Cancel", Reply::Stop),
            ("UNSUBSCRIBE", Reply::Stop),
            ("Стоп", Reply::Stop),
            ("退订", Reply::Stop),
            ("START", Reply::Start),
            ("unstop", Reply::Start),
            ("HELP", Reply::Help),
            ("Ajuda", Reply::Help),
            ("Sí", Reply::Confirm),
            ("Confirmo, gracias", Reply::Confirm),
            ("Cancelar", Reply::Cancel),
            ("Cambiar por favor", Reply::Reschedule),
            ("3, gràcies", Reply::Reschedule),
            ("Baja", Reply::Stop),
            ("Prou", Reply::Stop),
            ("停止", Reply::Stop),
            ("Ayuda", Reply::Help),
            ("помощь", Reply::Help),
            ("帮助", Reply::Help),
            ("старт", Reply::Start),
            ("Can I come at 5 instead?", Reply::Other),
            ("Sí, però arribaré tard", Reply::Other),
            ("🙂", Reply::Other),
            ("", Reply::Other),
        ];
        for (body, expected) in cases {
            assert_eq!(classify(body), *expected, "{body:?}");
        }
    }
}
