//! `ringback campaigns check` and `ringback plan` as an admin runs them.

mod common;

use common::*;

#[tokio::test]
async fn the_shipped_campaigns_pass_the_check() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let run = env.ringback(&["campaigns", "check", SHIPPED_CAMPAIGNS]);
    run.assert_code(0);
    assert!(run.stdout().contains("reminders: ok"), "{}", run.stdout());
    assert!(run.stdout().contains("callbacks: ok"), "{}", run.stdout());
}

#[tokio::test]
async fn a_command_line_in_error_is_a_user_error() {
    let env = TestEnv::new(Backend::Sqlite).await;
    for (args, says) in [
        (&["import"][..], "--campaign <CAMPAIGN>"),
        (&["optout", "remove", "+34612345678"][..], "--by <BY>"),
        (
            &["plan", "--campaign", "reminders", "--format", "xml"][..],
            "xml",
        ),
        (&["dial"][..], "unrecognized subcommand"),
    ] {
        let run = env.ringback(args);
        run.assert_code(1);
        assert!(run.stderr().contains(says), "{args:?}: {}", run.stderr());
    }
    let help = env.ringback(&["optout", "remove", "--help"]);
    help.assert_code(0);
    assert!(help.stdout().contains("--by <BY>"), "{}", help.stdout());
    env.ringback(&["--version"]).assert_code(0);
}

const BROKEN: &str = r#"name = "Broken"
clinic = "CAP"
kind = "reminder"
timezone = "Europe/Gracia"
country = "ES"
caller_id = "930000000"
clinic_phone = "+34930000001"
default_language = "fr"

[window]
mon-fri = "20:00-09:00"
sat = "10-14"
funday = "10:00-12:00"

[reminder]
start = "48 hours"
stop = "3h"

[messages.ca]
voice = "Hola {first_name}, {diagnosis}"
voicemail = "Visita amb {provider} a {location}"
sms = "{clinic}: {date}"

[import]
starts_at_format = "%d/%m %H:%M"
encoding = "ebcdic"

[import.columns]
starts_at = ["Fecha"]
phone = ["Movil", "Fijo"]
"#;

/// A zone that is an offset, not a place, keeps no summer time: the quiet hours would be kept
/// in the wrong hour half the year.
#[tokio::test]
async fn a_campaign_zone_must_be_a_place() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let dir = env.path().join("offset");
    std::fs::create_dir_all(&dir).unwrap();
    let reminders = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns/reminders.toml"),
    )
    .unwrap();
    let offset = reminders.replacen("timezone = \"Europe/Madrid\"", "timezone = \"UTC\"", 1);
    assert_ne!(offset, reminders);
    std::fs::write(dir.join("reminders.toml"), offset).unwrap();
    let run = env.ringback(&["campaigns", "check", dir.to_str().unwrap()]);
    run.assert_code(1);
    assert!(
        run.stdout().contains(
            "reminders.toml:6:12: \"UTC\" is a fixed offset from UTC, not a place: it keeps no summer time"
        ),
        "{}",
        run.stdout()
    );
}

#[tokio::test]
async fn each_error_is_reported_at_its_file_line_and_column() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let dir = env.path().join("broken");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("broken.toml"), BROKEN).unwrap();
    let run = env.ringback(&["campaigns", "check", dir.to_str().unwrap()]);
    run.assert_code(1);
    let out = run.stdout();
    let file = dir.join("broken.toml").display().to_string();
    for (line_col, words) in [
        ("4:12", "unknown IANA time zone \"Europe/Gracia\""),
        ("6:13", "`caller_id` \"930000000\": not in E.164 form"),
        ("8:20", "no [messages.fr] table for the default language"),
        ("11:11", "inverted range"),
        ("12:7", "malformed time \"10\""),
        ("13:1", "unknown weekday \"funday\""),
        ("16:9", "bad duration \"48 hours\""),
        ("20:29", "unknown placeholder {diagnosis}"),
        ("21:25", "voicemail may not carry {provider}"),
        ("21:38", "voicemail may not carry {location}"),
        (
            "25:20",
            "`starts_at_format` \"%d/%m %H:%M\": must write the whole date",
        ),
        (
            "26:12",
            "`encoding` \"ebcdic\": use \"utf-8\" or \"windows-1252\"",
        ),
        ("29:13", "`starts_at` must name a header, or two"),
        ("30:9", "`phone` must name a header"),
    ] {
        let expected = format!("{file}:{line_col}: ");
        assert!(
            out.lines()
                .any(|l| l.starts_with(&expected) && l.contains(words)),
            "missing {expected}…{words}\n{out}"
        );
    }
}

#[tokio::test]
async fn toml_syntax_errors_and_unknown_keys_are_positioned_too() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let dir = env.path().join("syntax");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.toml"), "name = \"A\"\nkind = \n").unwrap();
    let shipped =
        std::fs::read_to_string(std::path::Path::new(SHIPPED_CAMPAIGNS).join("reminders.toml"))
            .unwrap();
    std::fs::write(
        dir.join("b.toml"),
        shipped.replace("[retry]\n", "[retry]\nmax_cals = 3\n"),
    )
    .unwrap();
    let run = env.ringback(&["campaigns", "check", dir.to_str().unwrap()]);
    run.assert_code(1);
    let out = run.stdout();
    assert!(out.contains("a.toml:2:"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("b.toml:") && l.contains("unknown key `max_cals` in [retry]")),
        "{out}"
    );
}

#[tokio::test]
async fn plan_prints_the_whole_timeline_inside_the_window() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let run = env.ringback(&[
        "plan",
        "--campaign",
        "reminders",
        "--at",
        "2027-03-22T08:00:00Z",
        "--appointment",
        "2027-03-26 17:00",
        "--format",
        "json",
    ]);
    run.assert_code(0);
    let plan = run.json();
    let attempts = plan["attempts"].as_array().unwrap();
    // Four calls and the SMS after the second: 1 a day, 3 a week at most, so not all fit before Friday 14:00.
    assert!(!attempts.is_empty());
    assert_eq!(attempts[0]["at"], "2027-03-24T16:00:00Z", "{plan}");
    assert_eq!(attempts[0]["local"], "2027-03-24T17:00:00+01:00");
    for a in attempts {
        let local = a["local"].as_str().unwrap();
        let hour: u32 = local[11..13].parse().unwrap();
        assert!((9..20).contains(&hour), "{local}");
    }
    assert!(attempts.len() <= 3, "weekly cap of 3: {plan}");
    assert_eq!(plan["end"], "unreachable");
    let table = env.ringback(&[
        "plan",
        "--campaign",
        "callbacks",
        "--at",
        "2027-03-22T19:30:00Z",
    ]);
    table.assert_code(0);
    assert!(
        table.stdout().contains("Tue 2027-03-23 08:30 CET"),
        "{}",
        table.stdout()
    );
}

#[tokio::test]
async fn plan_refuses_bad_arguments_with_exit_1() {
    let env = TestEnv::new(Backend::Sqlite).await;
    env.ringback(&[
        "plan",
        "--campaign",
        "reminders",
        "--timezone",
        "Mars/Olympus",
    ])
    .assert_code(1);
    env.ringback(&[
        "plan",
        "--campaign",
        "reminders",
        "--appointment",
        "2027-02-31 10:00",
    ])
    .assert_code(1);
    env.ringback(&["plan", "--campaign", "nope"]).assert_code(1);
}

#[tokio::test]
async fn an_sms_that_cannot_fit_one_message_is_rejected_at_its_line() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let dir = env.path().join("long");
    std::fs::create_dir_all(&dir).unwrap();
    let shipped = std::fs::read_to_string(format!("{SHIPPED_CAMPAIGNS}/reminders.toml")).unwrap();
    // A Russian text is UCS-2: 70 characters, and the longest date and names must fit too.
    let toml = format!(
        "{shipped}\n[messages.ru]\nvoice = \"Здравствуйте\"\nvoicemail = \"Здравствуйте, {{clinic}}\"\nsms = \"{{clinic}}: визит {{date}} в {{time}}. Ответьте 1 для подтверждения, 2 для отмены.\"\n"
    );
    let line = toml
        .lines()
        .position(|l| l.starts_with("sms = \"{clinic}: визит"))
        .unwrap()
        + 1;
    std::fs::write(dir.join("reminders.toml"), &toml).unwrap();
    let run = env.ringback(&["campaigns", "check", dir.to_str().unwrap()]);
    run.assert_code(1);
    let out = run.stdout();
    assert!(
        out.contains(&format!(
            "reminders.toml:{line}:7: [messages.ru] sms does not fit one message"
        )),
        "{out}"
    );
    assert!(out.contains("of 70 UCS-2 characters"), "{out}");
    // The shipped Catalan, Spanish and English texts fit (GSM-7, 160).
    assert_eq!(out.matches("does not fit").count(), 1, "{out}");
}
