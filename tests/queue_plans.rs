//! The queue's per-task statements on SQLite go straight to the job by its id, however many jobs
//! the worker has finished before: a dial does not grow slower with the jobs behind it.

mod common;

use common::{Backend, TestEnv};
use ringback::store::Db;

/// apalis-sqlite 1.0's acknowledgement (`queries/task/ack.sql`): joined on the worker's name,
/// which every job the worker ever ran still carries.
const ACK: &str =
    "WITH j AS (SELECT value ->> 'task_id' AS task_id, value ->> 'attempt' AS attempt,
        value ->> 'result' AS result, value ->> 'status' AS status FROM json_each(?1))
    UPDATE Jobs SET status = j.status, attempts = j.attempt, last_result = j.result,
        done_at = strftime('%s', 'now')
    FROM j WHERE Jobs.id = j.task_id AND Jobs.lock_by = ?2";

/// apalis-sqlite 1.0's lock of a fetched task (`queries/task/lock.sql`).
const LOCK: &str = "UPDATE Jobs SET status = 'Running', lock_at = strftime('%s', 'now'), lock_by = ?2
    WHERE id IN (SELECT value FROM json_each(?1))
      AND (status = 'Queued' OR status = 'Pending' OR (status = 'Failed' AND attempts < max_attempts))";

async fn plan(db: &Db, sql: &str) -> String {
    let Db::Sqlite(pool) = db else {
        unreachable!("SQLite only")
    };
    let rows: Vec<(i64, i64, i64, String)> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
            .bind("[]")
            .bind("worker")
            .fetch_all(pool)
            .await
            .expect("plan");
    rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("\n")
}

fn by_id(plan: &str) -> bool {
    plan.contains("SEARCH Jobs USING INDEX sqlite_autoindex_Jobs_1 (id=?)")
}

#[tokio::test]
async fn queue_statements_find_each_job_by_its_id() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let db = Db::connect(&env.url).await.expect("connect");
    db.migrate().await.expect("migrate");
    for sql in [ACK, LOCK] {
        let plan = plan(&db, sql).await;
        assert!(by_id(&plan), "{sql}\n{plan}");
    }
    // A connection opened later (another process, the server after a restart) plans the same,
    // and migrating again keeps it so.
    db.close().await;
    let db = Db::connect(&env.url).await.expect("connect");
    db.migrate().await.expect("migrate again");
    let fresh = Db::connect(&env.url).await.expect("connect");
    for sql in [ACK, LOCK] {
        let plan = plan(&fresh, sql).await;
        assert!(by_id(&plan), "{sql}\n{plan}");
    }
}

#[tokio::test]
async fn without_the_pinned_statistics_the_queue_reads_every_job() {
    // The reason for the pin: on a young table SQLite's own choice walks the worker's index.
    let env = TestEnv::new(Backend::Sqlite).await;
    let db = Db::connect(&env.url).await.expect("connect");
    db.migrate().await.expect("migrate");
    let Db::Sqlite(pool) = &db else {
        unreachable!()
    };
    let mut conn = pool.acquire().await.expect("connection");
    sqlx::query("DELETE FROM sqlite_stat1 WHERE tbl = 'Jobs'")
        .execute(&mut *conn)
        .await
        .expect("unpin");
    sqlx::query("ANALYZE sqlite_schema")
        .execute(&mut *conn)
        .await
        .expect("reload");
    let rows: Vec<(i64, i64, i64, String)> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {ACK}")))
            .bind("[]")
            .bind("worker")
            .fetch_all(&mut *conn)
            .await
            .expect("plan");
    let plan: Vec<String> = rows.into_iter().map(|r| r.3).collect();
    assert!(!by_id(&plan.join("\n")), "{plan:?}");
}
