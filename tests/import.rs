//! `ringback import` as an admin runs it, on a SQLite file and on PostgreSQL.

mod common;

use chrono::{DateTime, Datelike, Days, Utc, Weekday};
use chrono_tz::Tz;
use common::*;

both_backends!(
    a_new_list_creates_outreach_each_with_a_planned_first_call,
    |env: TestEnv| async move {
        let file = env.write("list.csv", csv_rows(5, 4));
        let run = env.ringback(&["import", "--campaign", "reminders", file.to_str().unwrap()]);
        run.assert_code(0);
        let summary = run.json();
        assert_eq!(summary["created"], 5);
        assert_eq!(summary["rejected"].as_array().unwrap().len(), 0);
        assert_eq!(
            env.scalar("SELECT COUNT(*) FROM outreach WHERE state = 'active'")
                .await,
            5
        );
        assert_eq!(
            env.scalar("SELECT COUNT(*) FROM attempts WHERE status = 'planned' AND seq = 1")
                .await,
            5
        );
        // Every first call lies before the appointment's stop deadline and after now.
        let bad = env
        .scalar("SELECT COUNT(*) FROM attempts t JOIN outreach o ON o.id = t.outreach_id WHERE t.due_at >= o.deadline OR t.due_at < o.opens_at")
        .await;
        assert_eq!(bad, 0);
        let phones = env.rows("SELECT phone FROM patients ORDER BY phone").await;
        assert_eq!(phones[0][0].as_deref(), Some("+34612000000"));
    }
);

both_backends!(
    reimport_updates_withdraws_and_leaves_the_rest_unchanged,
    |env: TestEnv| async move {
        let first = csv_rows(6, 5);
        let file = env.write("list.csv", &first);
        env.ringback(&["import", "--campaign", "reminders", file.to_str().unwrap()])
            .assert_code(0);

        let again = env.ringback(&["import", "--campaign", "reminders", file.to_str().unwrap()]);
        again.assert_code(0);
        assert_eq!(again.json()["unchanged"], 6);
        assert_eq!(env.scalar("SELECT COUNT(*) FROM outreach").await, 6);

        let later = appointment_in(6);
        let mut lines: Vec<String> = first.lines().map(String::from).collect();
        lines[1] = lines[1].replace(" 11:00", " 12:30"); // A0: moved
        lines[2] = lines[2].replace("booked", "cancelled"); // A1: cancelled
        lines[3] = lines[3].replace("612000002", "699000002"); // A2: new phone
        lines[4] = lines[4].replace("Dra. Font", "Dr. Riera"); // A3: detail only
        lines.push(format!("B9,P9,Marc,Soler,612999999,{later},,es,,,booked")); // new
        let file = env.write("list2.csv", lines.join("\n"));
        let run = env.ringback(&["import", "--campaign", "reminders", file.to_str().unwrap()]);
        run.assert_code(0);
        let s = run.json();
        assert_eq!(
            (
                s["created"].as_u64(),
                s["updated"].as_u64(),
                s["withdrawn"].as_u64(),
                s["unchanged"].as_u64()
            ),
            (Some(1), Some(3), Some(1), Some(2)),
            "{s}"
        );

        // The cancelled appointment's outreach ended withdrawn, its call too.
        let a1 = env.rows("SELECT o.outcome, t.status FROM outreach o JOIN appointments a ON a.id = o.appointment_id JOIN attempts t ON t.outreach_id = o.id WHERE a.external_id = 'A1'").await;
        assert_eq!(
            a1,
            vec![vec![Some("withdrawn".into()), Some("withdrawn".into())]]
        );
        // Moved and re-numbered appointments: the old outreach withdrawn, a new one planned.
        for id in ["A0", "A2"] {
            let states = env.rows(&format!(
            "SELECT o.state, o.outcome FROM outreach o JOIN appointments a ON a.id = o.appointment_id WHERE a.external_id = '{id}' ORDER BY o.created_at, o.state"
        )).await;
            assert_eq!(states.len(), 2, "{id}: {states:?}");
            assert!(
                states.contains(&vec![Some("active".into()), None]),
                "{id}: {states:?}"
            );
            assert!(
                states.contains(&vec![Some("finished".into()), Some("withdrawn".into())]),
                "{id}: {states:?}"
            );
        }
        assert_eq!(env.scalar("SELECT COUNT(*) FROM outreach o JOIN appointments a ON a.id = o.appointment_id WHERE a.external_id = 'A2' AND o.state = 'active' AND o.phone = '+34699000002'").await, 1);
        // No appointment was duplicated.
        assert_eq!(env.scalar("SELECT COUNT(*) FROM appointments").await, 7);
        assert_eq!(
            env.scalar("SELECT COUNT(*) FROM attempts WHERE status = 'planned'")
                .await,
            6
        );
    }
);

both_backends!(
    an_export_that_writes_dates_day_first_is_read_as_the_campaign_says,
    |env: TestEnv| async move {
        let shipped = std::fs::read_to_string(env.campaigns().join("reminders.toml")).unwrap();
        let campaign = shipped.replace(
            "[import.columns]",
            "[import]\nstarts_at_format = \"%d/%m/%Y %H:%M\"\n\n[import.columns]",
        );
        assert_ne!(campaign, shipped);
        std::fs::write(env.campaigns().join("dayfirst.toml"), campaign).unwrap();
        let iso = appointment_in(4);
        let moment = chrono::NaiveDateTime::parse_from_str(&iso, "%Y-%m-%d %H:%M").unwrap();
        let day_first = moment.format("%d/%m/%Y %H:%M").to_string();
        let csv = format!(
            "{HEADER}\n\
         A1,P1,Anna,Puig,612000001,{day_first},,ca,,,booked\n\
         A2,P2,Joan,Vidal,612000002,{iso},,ca,,,booked\n\
         A3,P3,Laia,Roca,612000003,31/02/2027 10:00,,ca,,,booked\n\
         A4,P4,Marc,Serra,612000004,soon,,ca,,,booked\n"
        );
        let file = env.write("list.csv", csv);
        let run = env.ringback(&["import", "--campaign", "dayfirst", file.to_str().unwrap()]);
        run.assert_code(1);
        let s = run.json();
        assert_eq!(s["created"], 2, "{s}");
        assert_eq!(s["rejected"][0]["line"], 4, "{s}");
        assert_eq!(
            s["rejected"][0]["error"],
            "no such date or time \"31/02/2027 10:00\" (read as \"%d/%m/%Y %H:%M\")"
        );
        assert_eq!(s["rejected"][1]["field"], "starts_at", "{s}");
        assert!(
            s["rejected"][1]["error"]
                .as_str()
                .unwrap()
                .contains("(use \"%d/%m/%Y %H:%M\", as [import] starts_at_format says"),
            "{s}"
        );
        // The day-first row and the ISO row name the same moment.
        assert_eq!(
            env.scalar("SELECT COUNT(DISTINCT starts_at) FROM appointments")
                .await,
            1
        );
    }
);

both_backends!(
    an_export_with_the_date_and_the_time_in_columns_apart_is_read_whole,
    |env: TestEnv| async move {
        let campaign = std::fs::read_to_string(env.campaigns().join("reminders.toml"))
            .unwrap()
            .replace(
                "starts_at = \"Appointment Start\"",
                "starts_at = [\"Fecha\", \"Hora\"]",
            )
            .replace(
                "[import.columns]",
                "[import]\nstarts_at_format = \"%d/%m/%Y %H:%M\"\n\n[import.columns]",
            );
        std::fs::write(env.campaigns().join("split.toml"), campaign).unwrap();
        let moment =
            chrono::NaiveDateTime::parse_from_str(&appointment_in(4), "%Y-%m-%d %H:%M").unwrap();
        let (date, time) = (moment.format("%d/%m/%Y"), moment.format("%H:%M"));
        let csv = format!(
            "Appt ID;Patient ID;First Name;Patient Mobile;Fecha;Hora\n\
             A1;P1;Anna;612000001;{date};{time}\n\
             A2;P2;Joan;612000002;{date};\n"
        );
        let file = env.write("list.csv", csv);
        let run = env.ringback(&["import", "--campaign", "split", file.to_str().unwrap()]);
        run.assert_code(1);
        let s = run.json();
        assert_eq!(s["created"], 1, "{s}");
        // A row without its time is not read as midnight.
        assert_eq!(s["rejected"][0]["line"], 3, "{s}");
        assert_eq!(s["rejected"][0]["field"], "starts_at", "{s}");
        let expected = chrono::TimeZone::from_local_datetime(&chrono_tz::Europe::Madrid, &moment)
            .unwrap()
            .timestamp_millis();
        assert_eq!(
            env.scalar("SELECT starts_at FROM appointments").await,
            expected
        );

        // A list without the time column is refused whole, naming it.
        let file = env.write(
            "no_time.csv",
            format!(
                "Appt ID;Patient ID;First Name;Patient Mobile;Fecha\nA3;P3;Laia;612000003;{date}\n"
            ),
        );
        let run = env.ringback(&["import", "--campaign", "split", file.to_str().unwrap()]);
        run.assert_code(1);
        assert!(
            run.stderr().contains("starts_at: missing column \"Hora\""),
            "{}",
            run.stderr()
        );
    }
);

both_backends!(
    bad_rows_are_reported_by_line_and_field_and_good_rows_still_go_in,
    |env: TestEnv| async move {
        let when = appointment_in(4);
        let csv = format!(
            "{HEADER}\n\
         A1,P1,Anna,Puig,612000001,{when},,ca,,,booked\n\
         A2,P2,Joan,Vidal,12345,{when},,ca,,,booked\n\
         A3,P3,Laia,Roca,612000003,2027-02-31 10:00,,ca,,,booked\n\
         A4,P4,Marc,Serra,612000004,{when},Europe/Gracia,ca,,,booked\n\
         A5,,Pau,Sala,612000005,{when},,ca,,,booked\n\
         A6,P6,Olga,Font,612000006,{when},,ca,,,booked\n\
         A6,P7,Irina,Font,612000007,{when},,ca,,,booked\n\
         A8,P8,Pere,Soler,612000008,{when},,ca,,,maybe\n\
         A9,P9,Rosa,Vila,612000009,03/12/2027 10:00,,ca,,,booked\n\
         A10,P10,Nil,Mas,61200001O,{when},,ca,,,booked\n\
         A11,P11,Ona,Pons,3.46120E+10,{when},,ca,,,booked\n\
         A12,P12,Ada,Bosch,612000012,{when},EST,en,,,booked\n"
        );
        let file = env.write("list.csv", csv);
        let run = env.ringback(&["import", "--campaign", "reminders", file.to_str().unwrap()]);
        run.assert_code(1);
        let s = run.json();
        assert_eq!(s["created"], 1);
        let rejected: Vec<(u64, String)> = s["rejected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["line"].as_u64().unwrap(),
                    r["field"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            rejected,
            vec![
                (3, "phone".into()),
                (4, "starts_at".into()),
                (5, "timezone".into()),
                (6, "patient_id".into()),
                (7, "appointment_id".into()),
                (8, "appointment_id".into()),
                (9, "status".into()),
                (10, "starts_at".into()),
                (11, "phone".into()),
                (12, "phone".into()),
                (13, "timezone".into()),
            ]
        );
        assert!(
            run.stderr()
                .contains("list.csv:4: starts_at: no such date \"2027-02-31\""),
            "{}",
            run.stderr()
        );
        // A date written day first: the campaign setting that reads it is named.
        assert!(
            run.stderr().contains(
                "list.csv:10: starts_at: not a date and time \"03/12/2027 10:00\" (use RFC 3339 or YYYY-MM-DD HH:MM); \
                 if the export writes every date this way, say how in the campaign: [import] starts_at_format = \"%d/%m/%Y %H:%M\""
            ),
            "{}",
            run.stderr()
        );
        // A letter is never read as the keypad digit it shares a key with (O as 6 would call a
        // stranger), and a spreadsheet's scientific notation, which has lost digits, is named.
        assert!(
            run.stderr().contains(
                "list.csv:11: phone: letters in a phone number (ringback dials digits only, and never reads a letter as the digit on its key): \"61200001O\""
            ),
            "{}",
            run.stderr()
        );
        assert!(
            run.stderr().contains(
                "list.csv:12: phone: a spreadsheet's scientific notation, which has lost the number's last digits (format the phone column as text and export again): \"3.46120E+10\""
            ),
            "{}",
            run.stderr()
        );
        // EST is UTC-5 all year: in summer its 20:30 is 21:30 in New York.
        assert!(
            run.stderr().contains(
                "list.csv:13: timezone: \"EST\" is a fixed offset from UTC, not a place: it keeps no summer time, \
                 so calls could fall outside 08:00-21:00 where the patient is; name the place (e.g. \"America/New_York\", \"Europe/London\")"
            ),
            "{}",
            run.stderr()
        );
        assert_eq!(env.scalar("SELECT COUNT(*) FROM appointments").await, 1);
    }
);

both_backends!(
    a_database_failing_mid_import_leaves_nothing_behind,
    |env: TestEnv| async move {
        env.ringback(&["migrate"]).assert_code(0);
        let trigger = if env.url.starts_with("sqlite") {
            "CREATE TRIGGER fail_midway BEFORE INSERT ON outreach WHEN NEW.phone = '+34612000030'
         BEGIN SELECT RAISE(ABORT, 'disk full'); END;"
        } else {
            "CREATE FUNCTION fail_midway() RETURNS trigger AS $$ BEGIN
           IF NEW.phone = '+34612000030' THEN RAISE EXCEPTION 'disk full'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql;
         CREATE TRIGGER fail_midway BEFORE INSERT ON outreach FOR EACH ROW EXECUTE FUNCTION fail_midway();"
        };
        env.execute(trigger).await;
        let file = env.write("list.csv", csv_rows(60, 4));
        let run = env.ringback(&["import", "--campaign", "reminders", file.to_str().unwrap()]);
        run.assert_code(2);
        assert!(
            run.stderr().contains("nothing was imported"),
            "{}",
            run.stderr()
        );
        // Not even the import log says it went in.
        for table in [
            "patients",
            "appointments",
            "outreach",
            "attempts",
            "imports",
        ] {
            assert_eq!(
                env.scalar(&format!("SELECT COUNT(*) FROM {table}")).await,
                0,
                "{table}"
            );
        }
    }
);

both_backends!(
    the_import_log_keeps_each_list_imported_or_refused,
    |env: TestEnv| async move {
        let when = appointment_in(4);
        let list = env.write(
            "monday.csv",
            format!(
                "{HEADER}\nA1,P1,Anna,Puig,612000001,{when},,ca,,,booked\nA2,P2,Joan,Vidal,12,{when},,ca,,,booked\n"
            ),
        );
        let list = list.to_str().unwrap();
        env.ringback(&["import", "--campaign", "reminders", list])
            .assert_code(1);
        env.ringback(&["import", "--campaign", "reminders", "--dry-run", list])
            .assert_code(1);
        let wrong = env.write("tuesday.csv", "id,name\n1,Anna\n");
        env.ringback(&["import", "--campaign", "reminders", wrong.to_str().unwrap()])
            .assert_code(1);

        let log = env.ringback(&["imports", "--format", "json"]);
        log.assert_code(0);
        let log = log.json();
        let entries = log.as_array().unwrap();
        // The dry run is not in it; the refused list is, newest first.
        assert_eq!(entries.len(), 2, "{log}");
        assert_eq!(entries[0]["source"], wrong.to_str().unwrap(), "{log}");
        assert!(
            entries[0]["error"]
                .as_str()
                .unwrap()
                .contains("missing column"),
            "{log}"
        );
        assert_eq!(entries[0]["created"], 0, "{log}");
        assert_eq!(entries[1]["source"], list, "{log}");
        assert_eq!(entries[1]["campaign"], "reminders", "{log}");
        assert_eq!(
            (
                entries[1]["created"].as_u64(),
                entries[1]["rejected"].as_u64()
            ),
            (Some(1), Some(1)),
            "{log}"
        );
        assert!(entries[1]["error"].is_null(), "{log}");
        let table = env.ringback(&["imports", "--campaign", "reminders"]);
        assert!(table.stdout().contains("monday.csv"), "{}", table.stdout());
        let none = env.ringback(&["imports", "--campaign", "callbacks"]);
        assert_eq!(none.stdout().trim(), "no imports yet");
    }
);

both_backends!(
    a_time_finer_than_a_millisecond_reimports_unchanged,
    |env: TestEnv| async move {
        let when = chrono::NaiveDateTime::parse_from_str(&appointment_in(4), "%Y-%m-%d %H:%M")
            .unwrap()
            .format("%Y-%m-%dT%H:%M:00.123456789+01:00");
        let file = env.write(
            "list.csv",
            format!("{HEADER}\nA1,P1,Anna,Puig,612000001,{when},,ca,,,booked\n"),
        );
        let import =
            || env.ringback(&["import", "--campaign", "reminders", file.to_str().unwrap()]);
        assert_eq!(import().json()["created"], 1);
        let again = import();
        assert_eq!(again.json()["unchanged"], 1, "{}", again.stdout());
        assert_eq!(env.scalar("SELECT COUNT(*) FROM outreach").await, 1);
    }
);

both_backends!(
    dry_run_reports_the_same_summary_and_writes_nothing,
    |env: TestEnv| async move {
        let rows = csv_rows(3, 4);
        let file = env.write("list.csv", &rows);
        let dry_run = || {
            env.ringback(&[
                "import",
                "--campaign",
                "reminders",
                "--dry-run",
                file.to_str().unwrap(),
            ])
        };
        // No database yet: the list is checked against an empty one, and none is made.
        let run = dry_run();
        run.assert_code(0);
        assert_eq!(run.json()["created"], 3);
        assert!(
            run.stderr().contains(if env.url.starts_with("sqlite") {
                "no database yet: the dry run compares the list with an empty database"
            } else {
                "not up to date (`ringback migrate` brings it): the dry run compares"
            }),
            "{}",
            run.stderr()
        );
        match env.url.strip_prefix("sqlite://") {
            Some(path) => assert!(!std::path::Path::new(path).exists(), "{path}"),
            None => assert_eq!(
                env.scalar(
                    "SELECT COUNT(*) FROM pg_tables WHERE tablename = '_ringback_migrations'"
                )
                .await,
                0
            ),
        }

        // Against a database: what the import would change, and nothing written.
        let first_two: Vec<&str> = rows.lines().take(3).collect();
        let part = env.write("part.csv", first_two.join("\n"));
        env.ringback(&["import", "--campaign", "reminders", part.to_str().unwrap()])
            .assert_code(0);
        let run = dry_run();
        run.assert_code(0);
        let s = run.json();
        assert_eq!(
            (s["created"].as_u64(), s["unchanged"].as_u64()),
            (Some(1), Some(2)),
            "{s}"
        );
        assert!(run.stderr().is_empty(), "{}", run.stderr());
        assert_eq!(env.scalar("SELECT COUNT(*) FROM appointments").await, 2);
    }
);

both_backends!(
    json_lists_and_stdin_import_like_csv,
    |env: TestEnv| async move {
        let when = appointment_in(4);
        let json = format!(
            "[\n  {{\"appointment_id\": 1, \"patient_id\": \"P1\", \"first_name\": \"Anna\", \"phone\": \"+34 612 00 00 01\", \"starts_at\": \"{when}\"}},\n  {{\"appointment_id\": 2, \"patient_id\": \"P2\", \"first_name\": \"Joan\", \"phone\": \"nope\", \"starts_at\": \"{when}\"}},\n  {{\"appointment_id\": 3, \"patient_id\": \"P3\", \"phone\": \"612000003\", \"starts_at\": \"{when}\"}}\n]"
        );
        let run = env.ringback_with_stdin(
            &["import", "--campaign", "reminders", "-"],
            Some(json.as_bytes()),
        );
        run.assert_code(1);
        let s = run.json();
        assert_eq!(s["created"], 1);
        assert_eq!(s["rejected"][0]["line"], 3);
        assert_eq!(s["rejected"][0]["field"], "phone");
        assert_eq!(s["rejected"][1]["line"], 4);
        assert_eq!(s["rejected"][1]["field"], "first_name");
    }
);

/// `ringback import --dry-run` of a list shipped under `campaigns/`.
fn dry_run_sample(env: &TestEnv, name: &str) -> Run {
    let sample = std::path::Path::new(SHIPPED_CAMPAIGNS).join(name);
    env.ringback(&[
        "import",
        "--campaign",
        "reminders",
        "--dry-run",
        sample.to_str().unwrap(),
    ])
}

/// The good rows a summary accounts for, whatever became of each.
fn accounted(summary: &serde_json::Value) -> u64 {
    [
        "created",
        "updated",
        "withdrawn",
        "unchanged",
        "skipped_too_late",
    ]
    .iter()
    .map(|k| summary[k].as_u64().unwrap())
    .sum()
}

both_backends!(
    the_sample_list_imports_through_its_column_mapping,
    |env: TestEnv| async move {
        let run = dry_run_sample(&env, "samples/appointments.csv");
        // The sample carries five deliberately bad rows.
        run.assert_code(1);
        let s = run.json();
        assert_eq!(s["rejected"].as_array().unwrap().len(), 5, "{s}");
        assert_eq!(accounted(&s), 45);
    }
);

both_backends!(
    the_sample_fhir_bundle_imports_whole,
    |env: TestEnv| async move {
        let run = dry_run_sample(&env, "samples/appointments.fhir.json");
        run.assert_code(0);
        let s = run.json();
        assert_eq!(s["rejected"].as_array().unwrap().len(), 0, "{s}");
        assert_eq!(accounted(&s), 4, "{s}");
    }
);

/// Each rejected row of an import summary as (line, field).
fn lines_and_fields(summary: &serde_json::Value) -> Vec<(u64, &str)> {
    summary["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r["field"].as_str().unwrap()))
        .collect()
}

/// `appointment_in(days)` as a FHIR instant: 11:00 in Madrid, with its offset.
fn fhir_start(days: u64) -> String {
    let zone: Tz = "Europe/Madrid".parse().unwrap();
    let local =
        chrono::NaiveDateTime::parse_from_str(&appointment_in(days), "%Y-%m-%d %H:%M").unwrap();
    local
        .and_local_timezone(zone)
        .single()
        .unwrap()
        .to_rfc3339()
}

/// An EHR's answer to `GET /Appointment?_include=Appointment:patient`: a booked appointment
/// whose patient is listed after it, one whose patient has no valid number, and one whose
/// patient the export left out.
fn fhir_bundle(first_status: &str) -> String {
    let (a, b) = (fhir_start(4), fhir_start(5));
    format!(
        r#"{{
  "resourceType": "Bundle",
  "type": "searchset",
  "entry": [
    {{
      "fullUrl": "https://ehr.example/fhir/Appointment/a1",
      "resource": {{
        "resourceType": "Appointment", "id": "a1", "status": "{first_status}", "start": "{a}",
        "participant": [
          {{"actor": {{"reference": "Patient/p1"}}}},
          {{"actor": {{"reference": "Practitioner/d1", "display": "Dra. Font"}}}}
        ]
      }}
    }},
    {{
      "resource": {{
        "resourceType": "Appointment", "id": "a2", "status": "booked", "start": "{b}",
        "participant": [{{"actor": {{"reference": "Patient/p2"}}}}]
      }}
    }},
    {{
      "resource": {{
        "resourceType": "Appointment", "id": "a3", "status": "booked", "start": "{b}",
        "participant": [{{"actor": {{"reference": "Patient/p3"}}}}]
      }}
    }},
    {{
      "fullUrl": "https://ehr.example/fhir/Patient/p1",
      "search": {{"mode": "include"}},
      "resource": {{
        "resourceType": "Patient", "id": "p1",
        "name": [{{"use": "official", "family": "Puig", "given": ["Maria"]}}],
        "telecom": [
          {{"system": "phone", "use": "home", "value": "932 000 001"}},
          {{"system": "phone", "use": "mobile", "value": "612 000 001"}}
        ],
        "communication": [{{"language": {{"coding": [{{"code": "es-ES"}}]}}, "preferred": true}}]
      }}
    }},
    {{
      "fullUrl": "https://ehr.example/fhir/Patient/p2",
      "search": {{"mode": "include"}},
      "resource": {{
        "resourceType": "Patient", "id": "p2",
        "name": [{{"given": ["Jordi"]}}],
        "telecom": [{{"system": "phone", "value": "12"}}]
      }}
    }}
  ]
}}"#
    )
}

both_backends!(
    a_fhir_bundle_of_appointments_imports_with_its_patients,
    |env: TestEnv| async move {
        let file = env.write("appointments.json", fhir_bundle("booked"));
        let run = env.ringback(&["import", "--campaign", "reminders", file.to_str().unwrap()]);
        // Two appointments cannot be reminded: exit 1, the good one imported.
        run.assert_code(1);
        let s = run.json();
        assert_eq!(s["created"], 1, "{s}");
        let rejected = lines_and_fields(&s);
        // Each at the line its Appointment starts on.
        assert_eq!(rejected, [(16, "phone"), (22, "participant")], "{s}");
        assert!(
            s["rejected"][1]["error"]
                .as_str()
                .unwrap()
                .contains("Patient/p3 is not in the Bundle"),
            "{s}"
        );
        // A field read from the patient says where the patient is.
        assert!(
            s["rejected"][0]["error"]
                .as_str()
                .unwrap()
                .ends_with("\"12\" (Patient/p2, line 43)"),
            "{s}"
        );

        let stored = env
            .rows(
                "SELECT p.external_id, p.first_name, p.phone, a.external_id, a.provider, o.language \
                 FROM appointments a JOIN patients p ON p.id = a.patient_id \
                 JOIN outreach o ON o.appointment_id = a.id WHERE o.state = 'active'",
            )
            .await;
        let expected = ["p1", "Maria", "+34612000001", "a1", "Dra. Font", "es-es"];
        assert_eq!(stored, vec![expected.map(|v| Some(v.to_string())).to_vec()]);
        assert_eq!(
            env.scalar("SELECT COUNT(*) FROM attempts WHERE status = 'planned'")
                .await,
            1
        );

        // The EHR cancels it: the next export withdraws the planned call. This one is the
        // first page of a longer search, and the admin is told.
        let paged = fhir_bundle("cancelled").replacen(
            r#""type": "searchset","#,
            r#""type": "searchset", "link": [{"relation": "next", "url": "https://ehr.example/fhir?page=2"}],"#,
            1,
        );
        let file = env.write("appointments.json", paged);
        let run = env.ringback(&["import", "--campaign", "reminders", file.to_str().unwrap()]);
        run.assert_code(1);
        assert_eq!(run.json()["withdrawn"], 1, "{}", run.stdout());
        assert!(
            run.stderr().contains("one page of a search"),
            "{}",
            run.stderr()
        );
        assert_eq!(
            env.scalar("SELECT COUNT(*) FROM attempts WHERE status = 'planned'")
                .await,
            0
        );
    }
);

both_backends!(
    a_fhir_bulk_export_in_ndjson_imports_from_its_two_files_put_together,
    |env: TestEnv| async move {
        // The same resources as the Bundle's, one per line: Patient.ndjson, then
        // Appointment.ndjson, as `cat Patient.ndjson Appointment.ndjson` gives them.
        let bundle: serde_json::Value = serde_json::from_str(&fhir_bundle("booked")).unwrap();
        let resources: Vec<&serde_json::Value> = bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["resource"])
            .collect();
        let (patients, appointments): (Vec<_>, Vec<_>) = resources
            .into_iter()
            .partition(|r| r["resourceType"] == "Patient");
        let line = |r: &serde_json::Value| format!("{r}\n");
        let export: String = patients
            .iter()
            .chain(&appointments)
            .map(|r| line(r))
            .collect();

        let run = env.ringback_with_stdin(
            &["import", "--campaign", "reminders", "-"],
            Some(export.as_bytes()),
        );
        run.assert_code(1);
        let s = run.json();
        assert_eq!(s["created"], 1, "{s}");
        // Each at its own line: a2 (patient p2's number is "12") on line 4, a3 on line 5.
        let rejected = lines_and_fields(&s);
        assert_eq!(rejected, [(4, "phone"), (5, "participant")], "{s}");
        assert!(
            s["rejected"][0]["error"]
                .as_str()
                .unwrap()
                .ends_with("\"12\" (Patient/p2, line 2)"),
            "{s}"
        );
        assert!(
            s["rejected"][1]["error"]
                .as_str()
                .unwrap()
                .contains("Patient/p3 is on no line"),
            "{s}"
        );
        assert_eq!(
            env.rows("SELECT p.first_name, p.phone FROM patients p JOIN appointments a ON a.patient_id = p.id")
                .await,
            vec![vec![Some("Maria".to_string()), Some("+34612000001".to_string())]]
        );

        // The same export as a file named .ndjson: nothing new.
        let file = env.write("export.ndjson", export);
        let again = env.ringback(&["import", "--campaign", "reminders", file.to_str().unwrap()]);
        again.assert_code(1);
        assert_eq!(again.json()["unchanged"], 1, "{}", again.stdout());
    }
);

mod whole_file_errors {
    use super::*;

    async fn rejected_whole(env: &TestEnv, name: &str, contents: &[u8], expect: &str) {
        let file = env.write(name, contents);
        let run = env.ringback(&["import", "--campaign", "reminders", file.to_str().unwrap()]);
        run.assert_code(1);
        assert!(run.stderr().contains(expect), "{name}: {}", run.stderr());
        assert!(!run.stderr().contains("panicked"), "{}", run.stderr());
    }

    #[tokio::test]
    async fn empty_wrong_header_and_non_utf8_files_are_refused_whole() {
        let env = TestEnv::new(Backend::Sqlite).await;
        rejected_whole(
            &env,
            "empty.csv",
            b"",
            "empty.csv:1: file: the file is empty",
        )
        .await;
        rejected_whole(
            &env,
            "header.csv",
            b"id,name,tel\n1,Anna,612000001\n",
            "header.csv:1: appointment_id: missing column",
        )
        .await;
        rejected_whole(
            &env,
            "latin1.csv",
            b"appointment_id,patient_id,first_name,phone,starts_at,\xe9\n",
            "latin1.csv:1: header: the header is not UTF-8",
        )
        .await;
        rejected_whole(
            &env,
            "list.json",
            b"{\"not\": \"a list\"}",
            "list.json:1: file: not a JSON array",
        )
        .await;
        assert_eq!(env.scalar("SELECT COUNT(*) FROM appointments").await, 0);
    }

    #[tokio::test]
    async fn a_header_naming_a_column_it_reads_twice_is_refused_whole() {
        let env = TestEnv::new(Backend::Sqlite).await;
        // Two "Phone" columns (home and mobile, say): calling either could be the wrong one.
        let when = appointment_in(4);
        let two_phones = format!(
            "appointment_id,patient_id,first_name,Phone,phone,starts_at\n\
             A-1,P-1,Anna,612000001,612000002,{when}\n"
        );
        rejected_whole(
            &env,
            "two_phones.csv",
            two_phones.as_bytes(),
            "two_phones.csv:1: phone: the header has two columns \"Phone\" and \"phone\" (columns 4 and 5)",
        )
        .await;
        assert_eq!(env.scalar("SELECT COUNT(*) FROM appointments").await, 0);
        // A column ringback does not read may come twice.
        let two_notes = format!(
            "appointment_id,patient_id,first_name,phone,starts_at,note,note\n\
             A-1,P-1,Anna,612000001,{when},a,b\n"
        );
        let file = env.write("two_notes.csv", two_notes.as_bytes());
        let run = env.ringback(&["import", "--campaign", "reminders", file.to_str().unwrap()]);
        run.assert_code(0);
        assert_eq!(env.scalar("SELECT COUNT(*) FROM appointments").await, 1);
    }

    #[tokio::test]
    async fn a_spreadsheet_or_a_pdf_is_named_for_what_it_is() {
        let env = TestEnv::new(Backend::Sqlite).await;
        // The first bytes of each, and enough after them to be a file.
        let xlsx = [&b"PK\x03\x04\x14\x00\x06\x00"[..], &[0x8a; 64]].concat();
        let xls = [&b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1"[..], &[0x00; 64]].concat();
        let pdf = b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n1 0 obj".to_vec();
        for (name, contents, what) in [
            ("list.xlsx", xlsx, "an Excel workbook (.xlsx)"),
            ("list.xls", xls, "an Excel 97-2003 workbook (.xls)"),
            ("list.csv", pdf, "a PDF document"),
        ] {
            rejected_whole(
                &env,
                name,
                &contents,
                &format!("{name}:1: file: the file is"),
            )
            .await;
            let file = env.write(name, &contents);
            let run = env.ringback(&["import", "--campaign", "reminders", file.to_str().unwrap()]);
            assert!(run.stderr().contains(what), "{}", run.stderr());
            assert!(run.stderr().contains("CSV UTF-8"), "{}", run.stderr());
            assert!(!run.stderr().contains("encoding"), "{}", run.stderr());
            // A do-not-call list the same.
            let run = env.ringback(&["optout", "import", file.to_str().unwrap()]);
            run.assert_code(1);
            assert!(run.stderr().contains(what), "{}", run.stderr());
        }
        assert_eq!(env.scalar("SELECT COUNT(*) FROM optouts").await, 0);
    }

    #[tokio::test]
    async fn a_field_that_is_not_utf8_rejects_its_row_only() {
        let env = TestEnv::new(Backend::Sqlite).await;
        let when = appointment_in(4);
        let mut csv =
            format!("{HEADER}\nA1,P1,Anna,Puig,612000001,{when},,ca,,,booked\nA2,P2,").into_bytes();
        csv.extend_from_slice(b"Jos\xe9");
        csv.extend_from_slice(format!(",Vidal,612000002,{when},,ca,,,booked\n").as_bytes());
        let file = env.write("list.csv", csv);
        let run = env.ringback(&["import", "--campaign", "reminders", file.to_str().unwrap()]);
        run.assert_code(1);
        let s = run.json();
        assert_eq!(s["created"], 1);
        assert_eq!(s["rejected"][0]["field"], "first_name");
        assert_eq!(s["rejected"][0]["line"], 3);
    }

    #[tokio::test]
    async fn a_windows_1252_export_imports_when_the_campaign_names_its_encoding() {
        let env = TestEnv::new(Backend::Sqlite).await;
        let when = appointment_in(4);
        let mut csv = format!("{HEADER}\nA1,P1,").into_bytes();
        csv.extend_from_slice(b"N\xfaria,Gr\xe0cia");
        csv.extend_from_slice(format!(",612000001,{when},,ca,,,booked\n").as_bytes());
        let file = env.write("export.csv", csv);
        let run = env.ringback(&["import", "--campaign", "reminders", file.to_str().unwrap()]);
        run.assert_code(1);
        assert!(
            run.stderr().contains(
                "first_name: not UTF-8 text (save the export as UTF-8, or name its encoding"
            ),
            "{}",
            run.stderr()
        );

        let campaign = std::fs::read_to_string(env.campaigns().join("reminders.toml"))
            .unwrap()
            .replace(
                "[import.columns]",
                "[import]\nencoding = \"windows-1252\"\n\n[import.columns]",
            );
        std::fs::write(env.campaigns().join("cp1252.toml"), campaign).unwrap();
        let run = env.ringback(&["import", "--campaign", "cp1252", file.to_str().unwrap()]);
        run.assert_code(0);
        assert_eq!(run.json()["created"], 1);
        let names = env.rows("SELECT first_name, last_name FROM patients").await;
        assert_eq!(
            names,
            vec![vec![Some("Núria".to_string()), Some("Gràcia".to_string())]]
        );
    }

    #[tokio::test]
    async fn an_unknown_campaign_or_missing_file_is_a_user_error() {
        let env = TestEnv::new(Backend::Sqlite).await;
        let file = env.write("list.csv", csv_rows(1, 4));
        let run = env.ringback(&["import", "--campaign", "nope", file.to_str().unwrap()]);
        run.assert_code(1);
        assert!(
            run.stderr().contains("no campaign \"nope\""),
            "{}",
            run.stderr()
        );
        env.ringback(&["import", "--campaign", "reminders", "missing.csv"])
            .assert_code(1);
    }

    #[tokio::test]
    async fn a_list_for_a_callback_campaign_is_refused_whole() {
        let env = TestEnv::new(Backend::Sqlite).await;
        env.ringback(&["migrate"]).assert_code(0);
        let file = env.write("list.csv", csv_rows(3, 4));
        for dry_run in [false, true] {
            let mut args = vec!["import", "--campaign", "callbacks", file.to_str().unwrap()];
            if dry_run {
                args.push("--dry-run");
            }
            let run = env.ringback(&args);
            run.assert_code(1);
            assert!(
                run.stderr()
                    .contains("\"callbacks\" is a callback campaign"),
                "{}",
                run.stderr()
            );
        }
        for table in ["patients", "appointments", "outreach", "attempts"] {
            let count = env.scalar(&format!("SELECT COUNT(*) FROM {table}")).await;
            assert_eq!(count, 0, "{table}");
        }
    }

    #[tokio::test]
    async fn an_unreachable_database_is_a_runtime_failure() {
        let env = TestEnv::new(Backend::Sqlite).await;
        let file = env.write("list.csv", csv_rows(1, 4));
        let mut run = std::process::Command::new(env!("CARGO_BIN_EXE_ringback"));
        run.args(["import", "--campaign", "reminders", file.to_str().unwrap()])
            .env("RINGBACK_CAMPAIGNS_DIR", env.campaigns())
            .env(
                "RINGBACK_DATABASE_URL",
                "postgres://postgres@127.0.0.1:1/none",
            );
        let out = run.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        // The reason, not only that the wait for a connection ran out.
        assert!(stderr.contains("Connection refused"), "{stderr}");
    }

    #[tokio::test]
    async fn a_database_error_is_reported_in_the_servers_words() {
        let admin = common::admin_url();
        let url = format!(
            "{}/ringback_no_such_database",
            admin.rsplit_once('/').unwrap().0
        );
        let mut run = std::process::Command::new(env!("CARGO_BIN_EXE_ringback"));
        run.arg("migrate").env("RINGBACK_DATABASE_URL", url);
        let out = run.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("database \"ringback_no_such_database\" does not exist (code 3D000)"),
            "{stderr}"
        );
        assert!(!stderr.contains(" at line "), "{stderr}");
    }
}

both_backends!(
    migrate_is_idempotent_and_creates_the_queue_tables_beside_ours,
    |env: TestEnv| async move {
        env.ringback(&["migrate"]).assert_code(0);
        env.ringback(&["migrate"]).assert_code(0);
        assert_eq!(
            env.scalar("SELECT COUNT(*) FROM _ringback_migrations")
                .await,
            std::fs::read_dir("migrations/sqlite").unwrap().count() as i64
        );
        let jobs = if env.url.starts_with("sqlite") {
            "SELECT COUNT(*) FROM Jobs"
        } else {
            "SELECT COUNT(*) FROM apalis.jobs"
        };
        assert_eq!(env.scalar(jobs).await, 0);
    }
);

both_backends!(
    a_later_list_keeps_the_daily_cap_with_calls_an_earlier_one_planned,
    |env: TestEnv| async move {
        // A Thursday at 11:00 Madrid: its reminder calls may fall on Tuesday (from 11:00) or
        // Wednesday, and the campaign allows one call a day to a number.
        let zone: Tz = "Europe/Madrid".parse().unwrap();
        let mut day = Utc::now()
            .with_timezone(&zone)
            .date_naive()
            .checked_add_days(Days::new(4))
            .unwrap();
        while day.weekday() != Weekday::Thu {
            day = day.succ_opt().unwrap();
        }
        let row = |appointment: &str, patient: &str| {
            format!(
                "{HEADER}\n{appointment},{patient},Anna,Puig,612000001,{day} 11:00,,ca,,,booked\n"
            )
        };
        for (file, appointment, patient) in [("first.csv", "A1", "P1"), ("second.csv", "B1", "P2")]
        {
            let path = env.write(file, row(appointment, patient));
            let run = env.ringback(&["import", "--campaign", "reminders", path.to_str().unwrap()]);
            run.assert_code(0);
            assert_eq!(run.json()["created"], 1, "{file}: {}", run.stdout());
        }
        // A number on neither list has a call planned too; it must not matter.
        let other = env.write(
            "other.csv",
            format!("{HEADER}\nC1,P3,Joan,Roca,612000002,{day} 11:00,,ca,,,booked\n"),
        );
        env.ringback(&["import", "--campaign", "reminders", other.to_str().unwrap()])
            .assert_code(0);

        let days: Vec<_> = env
            .rows("SELECT CAST(due_at AS TEXT) FROM attempts WHERE phone = '+34612000001' ORDER BY due_at")
            .await
            .into_iter()
            .map(|r| {
                let millis: i64 = r[0].as_deref().unwrap().parse().unwrap();
                DateTime::from_timestamp_millis(millis)
                    .unwrap()
                    .with_timezone(&zone)
                    .date_naive()
            })
            .collect();
        assert_eq!(days.len(), 2);
        assert_ne!(
            days[0], days[1],
            "two calls to one number on one day: {days:?}"
        );
    }
);

/// Every progress report of one import through the library, as the CLI's bar hears them.
async fn progress_of(env: &TestEnv, csv: &str, dry_run: bool) -> Vec<ringback::import::Progress> {
    let catalog = ringback::campaign::load_dir(&env.campaigns()).expect("campaigns");
    let campaign = catalog.require("reminders").expect("reminders");
    let db = env.db().await;
    db.migrate().await.expect("migrate");
    let input = ringback::import::Input {
        source: "list.csv",
        bytes: csv.as_bytes(),
        format: ringback::import::Format::Csv,
        now: Utc::now(),
        dry_run,
    };
    let mut heard = Vec::new();
    ringback::import::run(&db, campaign, input, |p| heard.push(p), |_| {})
        .await
        .expect("import");
    db.close().await;
    heard
}

both_backends!(
    an_import_reports_each_phase_in_order_to_its_last_row,
    |env: TestEnv| async move {
        use ringback::import::Progress::{self, *};
        // 9,000 good rows (three reports' worth in each phase) and one bad one.
        let mut csv = csv_rows(9_000, 4);
        csv.push_str("B1,Q1,Anna,Puig,12,2030-01-01 10:00,,ca,,,booked\n");
        let phase = |p: &Progress| match p {
            Reading => 0,
            Checking { .. } => 1,
            Planning { .. } => 2,
            Writing { .. } => 3,
            Committing => 4,
        };
        let counts = |heard: &[Progress], of: usize| -> Vec<(usize, usize)> {
            heard
                .iter()
                .filter(|p| phase(p) == of)
                .map(|p| match *p {
                    Checking { done, total }
                    | Planning { done, total }
                    | Writing { done, total } => (done, total),
                    _ => unreachable!(),
                })
                .collect()
        };

        let heard = progress_of(&env, &csv, false).await;
        assert_eq!(heard.first(), Some(&Reading));
        assert_eq!(heard.last(), Some(&Committing));
        assert!(
            heard.windows(2).all(|w| phase(&w[0]) <= phase(&w[1])),
            "{heard:?}"
        );
        // Each counted phase goes up to its last row, in more than one report.
        for (of, last) in [(1, 9_001), (2, 9_000), (3, 4 * 9_000)] {
            let counts = counts(&heard, of);
            assert!(counts.len() > 2, "phase {of}: {counts:?}");
            assert!(counts.windows(2).all(|w| w[0].0 <= w[1].0), "{counts:?}");
            assert!(counts.iter().all(|&(_, total)| total == last), "{counts:?}");
            assert_eq!(counts.last(), Some(&(last, last)), "phase {of}");
        }
        // Writing: a patient, an appointment, an outreach and an attempt for each good row.
        assert_eq!(counts(&heard, 3).first(), Some(&(0, 4 * 9_000)));
        assert_eq!(env.scalar("SELECT COUNT(*) FROM attempts").await, 9_000);

        // A dry run checks and compares, and neither writes nor commits.
        let heard = progress_of(&env, &csv, true).await;
        assert_eq!(heard.first(), Some(&Reading));
        assert_eq!(counts(&heard, 2).last(), Some(&(9_000, 9_000)));
        assert!(heard.iter().all(|p| phase(p) < 3), "{heard:?}");
    }
);

both_backends!(
    backslashes_tabs_and_line_breaks_in_a_field_are_stored_as_written,
    |env: TestEnv| async move {
        let when = appointment_in(4);
        let csv = format!(
            "{HEADER}\nA1,P1,\"Jo\\an\",\"Puig\tRoca\",612000001,{when},,ca,\"Dra.\nFont\",\"C:\\Consulta 1\\\",booked\n"
        );
        let file = env.write("odd.csv", &csv);
        let import =
            || env.ringback(&["import", "--campaign", "reminders", file.to_str().unwrap()]);
        let run = import();
        run.assert_code(0);
        assert_eq!(run.json()["created"], 1, "{}", run.stdout());
        let stored = env
            .rows("SELECT p.first_name, p.last_name, a.provider, a.location FROM patients p JOIN appointments a ON a.patient_id = p.id")
            .await;
        assert_eq!(
            stored,
            vec![vec![
                Some("Jo\\an".to_string()),
                Some("Puig\tRoca".to_string()),
                Some("Dra.\nFont".to_string()),
                Some("C:\\Consulta 1\\".to_string()),
            ]]
        );
        // Read back, they compare equal to the list: nothing changed.
        let again = import();
        again.assert_code(0);
        assert_eq!(again.json()["unchanged"], 1, "{}", again.stdout());
    }
);

both_backends!(
    output_into_a_closed_pipe_ends_the_command_quietly,
    |env: TestEnv| async move {
        // `ringback import … | head -3`: the import is done before the summary is printed, and
        // the reader having gone is no crash.
        let file = env.write("list.csv", csv_rows(3, 4));
        let (code, stderr) = env.ringback_into_closed_pipe(&[
            "import",
            "--campaign",
            "reminders",
            file.to_str().unwrap(),
        ]);
        assert_eq!(code, Some(141), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_eq!(env.scalar("SELECT COUNT(*) FROM attempts").await, 3);
        for args in [
            &["imports"][..],
            &["campaigns", "check"],
            &["followups"],
            &["stats"],
            &[
                "import",
                "--dry-run",
                "--campaign",
                "reminders",
                file.to_str().unwrap(),
            ],
            &["demo"],
        ] {
            let (code, stderr) = env.ringback_into_closed_pipe(args);
            assert_eq!(code, Some(141), "{args:?}: {stderr}");
            assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        }
        // The dry run's and the demo's scratch databases are gone with them.
        let left: Vec<_> = std::fs::read_dir(env.path().join("tmp"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
);

both_backends!(
    a_long_do_not_call_list_withdraws_every_planned_call_to_its_numbers,
    |env: TestEnv| async move {
        // Three planned calls, to numbers first, on a chunk's edge and last in a list of 12,000.
        let appointments = env.write("list.csv", csv_rows(3, 4));
        env.ringback(&[
            "import",
            "--campaign",
            "reminders",
            appointments.to_str().unwrap(),
        ])
        .assert_code(0);
        let mut numbers: Vec<String> = (0..12_000).map(|i| format!("+34699{i:06}")).collect();
        numbers[0] = "612000000".into();
        numbers[5_000] = "+34 612 000 001".into();
        numbers[11_999] = "0034612000002".into();
        let dnc = env.write("dnc.csv", format!("phone\n{}\n", numbers.join("\n")));
        let run = env.ringback(&["optout", "import", dnc.to_str().unwrap()]);
        run.assert_code(0);
        let summary = run.json();
        assert_eq!(summary["added"], 12_000, "{summary}");
        assert_eq!(summary["withdrawn_attempts"], 3, "{summary}");
        // Each ended, and withdrawn, at the instant its number went on the ledger.
        assert_eq!(
            env.scalar("SELECT COUNT(*) FROM outreach o JOIN optouts x ON x.phone = o.phone WHERE o.outcome = 'opted_out' AND o.outcome_at = x.created_at")
                .await,
            3
        );
        assert_eq!(
            env.scalar("SELECT COUNT(*) FROM attempts a JOIN optouts x ON x.phone = a.phone WHERE a.status = 'withdrawn' AND a.updated_at = x.created_at")
                .await,
            3
        );
        assert_eq!(
            env.scalar("SELECT COUNT(*) FROM attempts WHERE status = 'planned'")
                .await,
            0
        );
        // The same list again adds nothing and finds nothing left to withdraw.
        let again = env.ringback(&["optout", "import", dnc.to_str().unwrap()]);
        again.assert_code(0);
        assert_eq!(again.json()["already"], 12_000, "{}", again.stdout());
        assert_eq!(again.json()["withdrawn_attempts"], 0, "{}", again.stdout());
    }
);

both_backends!(
    a_number_on_the_opt_out_ledger_is_imported_and_never_called,
    |env: TestEnv| async move {
        let dnc = env.write("dnc.csv", "phone\n612 000 001\n");
        env.ringback(&["optout", "import", dnc.to_str().unwrap()])
            .assert_code(0);
        let file = env.write("list.csv", csv_rows(4, 4));
        let list = file.to_str().unwrap();

        // A dry run says so, and writes nothing.
        let dry = env.ringback(&["import", "--campaign", "reminders", "--dry-run", list]);
        dry.assert_code(0);
        assert!(
            dry.stderr()
                .contains("list.csv:3: phone: on the opt-out ledger"),
            "{}",
            dry.stderr()
        );
        assert_eq!(env.scalar("SELECT COUNT(*) FROM outreach").await, 0);

        let run = env.ringback(&["import", "--campaign", "reminders", list]);
        run.assert_code(0);
        // The summary keeps SPEC §5's fields, no more.
        let summary = run.json();
        let mut keys: Vec<&str> = summary
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "created",
                "rejected",
                "skipped_too_late",
                "unchanged",
                "updated",
                "withdrawn"
            ]
        );
        assert_eq!(summary["created"], 4, "{summary}");
        assert_eq!(
            run.stderr()
                .lines()
                .filter(|l| l.contains("opt-out ledger"))
                .collect::<Vec<_>>(),
            [format!(
                "{list}:3: phone: on the opt-out ledger: no call or SMS (its outreach ends opted_out)"
            )],
        );
        // Its outreach ended at once, with nothing planned; the others are planned as ever.
        assert_eq!(
            env.outreach_state("phone", "+34612000001").await,
            finished("opted_out")
        );
        assert_eq!(
            env.scalar("SELECT COUNT(*) FROM attempts WHERE phone = '+34612000001'")
                .await,
            0
        );
        assert_eq!(
            env.scalar("SELECT COUNT(*) FROM attempts WHERE status = 'planned'")
                .await,
            3
        );
        let feed = env.ringback(&["outcomes", "--format", "json"]);
        feed.assert_code(0);
        let feed = feed.json();
        assert_eq!(feed[0]["appointment_id"], "A1", "{feed}");
        assert_eq!(feed[0]["outcome"], "opted_out", "{feed}");
        assert_eq!(feed[0]["calls"], 0, "{feed}");
        let log = env.ringback(&["imports", "--format", "json"]).json();
        assert_eq!(log[0]["on_ledger"], 1, "{log}");
        assert_eq!(log[0]["created"], 4, "{log}");

        // The same list again changes nothing.
        let again = env.ringback(&["import", "--campaign", "reminders", list]);
        again.assert_code(0);
        assert_eq!(again.json()["unchanged"], 4);
        assert_eq!(env.scalar("SELECT COUNT(*) FROM outreach").await, 4);

        // Taken off the ledger at the patient's request, the visit moved: a call is planned.
        env.ringback(&["optout", "remove", "612000001", "--by", "Marta"])
            .assert_code(0);
        let moved = csv_rows(4, 8);
        let moved = env.write("moved.csv", moved);
        let run = env.ringback(&["import", "--campaign", "reminders", moved.to_str().unwrap()]);
        run.assert_code(0);
        assert!(!run.stderr().contains("opt-out ledger"), "{}", run.stderr());
        assert_eq!(
            env.scalar(
                "SELECT COUNT(*) FROM attempts WHERE phone = '+34612000001' AND status = 'planned'"
            )
            .await,
            1
        );
    }
);

both_backends!(
    a_long_list_reads_every_spelling_of_a_number_alike,
    |env: TestEnv| async move {
        // Over 256 KiB: the rows parse on two threads, each half of every 4,096 with its own
        // copy of the numbering plans. Bad numbers sit in both halves of the first 4,096 and of
        // the rest.
        let when = appointment_in(4);
        let bad = [10, 3_000, 4_200, 4_700];
        let mut csv = format!("{HEADER}\n");
        let mut expected = Vec::new();
        for i in 0..5_000 {
            let digits = format!("6{:08}", 12_000_000 + i);
            let phone = match i {
                _ if bad.contains(&i) => digits[..5].to_string(),
                _ => match i % 4 {
                    0 => digits.clone(),
                    1 => format!("+34 {} {} {}", &digits[..3], &digits[3..6], &digits[6..]),
                    2 => format!("0034-{digits}"),
                    _ => format!("(+34) {}.{}.{}", &digits[..3], &digits[3..6], &digits[6..]),
                },
            };
            if !bad.contains(&i) {
                expected.push(format!("+34{digits}"));
            }
            csv.push_str(&format!(
                "A{i},P{i},Anna,Puig,{phone},{when},,ca,Dra. Font,Consulta 1,booked\n"
            ));
        }
        assert!(csv.len() > 256 * 1024, "{} bytes", csv.len());
        let file = env.write("long.csv", csv);
        let run = env.ringback(&["import", "--campaign", "reminders", file.to_str().unwrap()]);
        run.assert_code(1);
        let summary = run.json();
        assert_eq!(summary["created"], 5_000 - bad.len(), "{summary}");
        let lines: Vec<u64> = bad.iter().map(|i| i + 2).collect();
        assert_eq!(
            lines_and_fields(&summary),
            lines.iter().map(|l| (*l, "phone")).collect::<Vec<_>>()
        );
        let stored: Vec<String> = env
            .rows("SELECT phone FROM patients ORDER BY phone")
            .await
            .into_iter()
            .map(|r| r[0].clone().unwrap())
            .collect();
        expected.sort();
        assert_eq!(stored, expected);
    }
);
