//! tokio-postgres on pinwheel with the workers' tokio contexts (`Builder::tokio_context`),
//! against a real PostgreSQL server (Debian's package) the test starts on a loopback port: no
//! `compat` anywhere in this file.

use std::time::Duration;

use pinwheel_interop::rt_with_tokio;
use pinwheel_tests::servers::Postgres;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

/// Connects; the connection's task runs on the calling worker (`tokio::spawn`).
async fn connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to the test server: {e:?}"));
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// Prepared statements, a transaction committed and one rolled back, and `COPY ... FROM STDIN`.
#[test]
fn queries_transactions_and_copy() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.url();
    let rt = rt_with_tokio(2);
    rt.block_on(rt.spawn(async move {
        let mut client = connect(&url).await;
        let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
        assert_eq!(one, 1);
        client
            .batch_execute("CREATE TABLE items (id INT PRIMARY KEY, name TEXT NOT NULL)")
            .await
            .unwrap();
        let insert = client
            .prepare("INSERT INTO items (id, name) VALUES ($1, $2)")
            .await
            .unwrap();
        for i in 0..10 {
            client
                .execute(&insert, &[&i, &format!("item {i}")])
                .await
                .unwrap();
        }
        // A transaction committed, one rolled back.
        let tx = client.transaction().await.unwrap();
        tx.execute(&insert, &[&100, &"committed"]).await.unwrap();
        tx.commit().await.unwrap();
        let tx = client.transaction().await.unwrap();
        tx.execute(&insert, &[&101, &"rolled back"]).await.unwrap();
        tx.rollback().await.unwrap();
        let names: Vec<String> = client
            .query("SELECT name FROM items WHERE id >= 100 ORDER BY id", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(names, ["committed"]);
        // COPY FROM STDIN: 1,000 rows in one stream.
        use futures::SinkExt;
        let sink = client
            .copy_in("COPY items (id, name) FROM STDIN")
            .await
            .unwrap();
        let mut sink = std::pin::pin!(sink);
        let mut data = String::new();
        for i in 1000..2000 {
            data.push_str(&format!("{i}\tcopied {i}\n"));
        }
        sink.send(bytes::Bytes::from(data)).await.unwrap();
        let copied = sink.as_mut().finish().await.unwrap();
        assert_eq!(copied, 1000);
        let count: i64 = client
            .query_one("SELECT count(*) FROM items", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(count, 1011);
    }))
    .unwrap();
}

/// A pool of 16 connections used from tasks on both workers at once: every query answered.
#[test]
fn sixteen_connections_from_two_workers() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.url();
    let rt = rt_with_tokio(2);
    let clients: Vec<_> = (0..16)
        .map(|_| {
            let url = url.clone();
            rt.spawn(async move { connect(&url).await })
        })
        .collect();
    let clients: Vec<Client> = clients
        .into_iter()
        .map(|c| rt.block_on(c).unwrap())
        .collect();
    let pool = std::sync::Arc::new(clients);
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let pool = pool.clone();
            rt.spawn(async move {
                let client = &pool[i % pool.len()];
                let n: i32 = client
                    .query_one("SELECT $1::INT * 2", &[&(i as i32)])
                    .await
                    .unwrap()
                    .get(0);
                assert_eq!(n, 2 * i as i32);
                pinwheel::current_worker().unwrap()
            })
        })
        .collect();
    let mut workers = std::collections::BTreeSet::new();
    for t in tasks {
        workers.insert(rt.block_on(t).unwrap());
    }
    assert!(!workers.is_empty());
}

/// A query cut short by a timeout: the future is dropped, the server is told to cancel it
/// (tokio-postgres' cancel token, over its own connection), and the client stays usable.
#[test]
fn a_query_cancelled_by_a_timeout() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.url();
    let rt = rt_with_tokio(2);
    rt.block_on(rt.spawn(async move {
        let client = connect(&url).await;
        let cancel = client.cancel_token();
        let slow = client.query_one("SELECT pg_sleep(30)", &[]);
        let timed_out = pinwheel::time::timeout(Duration::from_millis(100), slow).await;
        assert!(timed_out.is_err(), "pg_sleep(30) finished within 100 ms");
        cancel.cancel_query(NoTls).await.unwrap();
        // The cancelled query's error, or the next answer: the connection goes on.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            match client.query_one("SELECT 2", &[]).await {
                Ok(row) => {
                    let two: i32 = row.get(0);
                    assert_eq!(two, 2);
                    break;
                }
                Err(e) if std::time::Instant::now() < deadline => {
                    assert_eq!(e.code(), Some(&SqlState::QUERY_CANCELED), "{e:?}");
                }
                Err(e) => panic!("{e:?}"),
            }
        }
    }))
    .unwrap();
}

/// Bad input and failures: a wrong password, a refused port and a server killed mid-query are
/// errors saying so, never a hang or a panic.
#[test]
fn wrong_password_refused_port_and_a_killed_server_are_errors() {
    let Some(mut pg) = Postgres::start() else {
        return;
    };
    let rt = rt_with_tokio(2);
    let (bad, good) = (pg.url_with("not-the-password"), pg.url());
    rt.block_on(rt.spawn(async move {
        drop(connect(&good).await);
        let err = tokio_postgres::connect(&bad, NoTls)
            .await
            .err()
            .expect("a wrong password is refused");
        assert_eq!(err.code(), Some(&SqlState::INVALID_PASSWORD), "{err:?}");
        let refused = tokio_postgres::connect(
            "host=127.0.0.1 port=1 user=pinwheel password=x connect_timeout=5",
            NoTls,
        )
        .await
        .err()
        .expect("nothing listens on port 1");
        assert!(!refused.to_string().is_empty());
    }))
    .unwrap();
    let url = pg.url();
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let query = rt.spawn(async move {
        let client = connect(&url).await;
        started_tx.send(()).unwrap();
        pinwheel::time::timeout(
            Duration::from_secs(60),
            client.query_one("SELECT pg_sleep(30)", &[]),
        )
        .await
    });
    started_rx.recv().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    pg.kill();
    let outcome = rt.block_on(query).unwrap();
    let err = outcome
        .expect("the killed server's query ends well before the 60 s timeout")
        .unwrap_err();
    assert!(!err.to_string().is_empty(), "{err}");
}

/// sqlx's Postgres driver with its tokio runtime feature: a pool, queries from tasks on both
/// workers, a transaction rolled back, and a wrong password as sqlx's error.
#[test]
fn sqlx_pool_queries_and_a_wrong_password() {
    let Some(pg) = Postgres::start() else { return };
    let rt = rt_with_tokio(2);
    let port = pg.port;
    let pool = rt
        .block_on(rt.spawn(async move {
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(4)
                .connect(&format!(
                    "postgres://pinwheel:{}@127.0.0.1:{port}/postgres",
                    pinwheel_tests::servers::PG_PASSWORD
                ))
                .await
                .unwrap()
        }))
        .unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let pool = pool.clone();
            rt.spawn(async move {
                let n: i32 = sqlx::query_scalar("SELECT $1::INT + 1")
                    .bind(i)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                assert_eq!(n, i + 1);
            })
        })
        .collect();
    for t in tasks {
        rt.block_on(t).unwrap();
    }
    let p2 = pool.clone();
    rt.block_on(rt.spawn(async move {
        sqlx::query("CREATE TABLE t (x INT)")
            .execute(&p2)
            .await
            .unwrap();
        let mut tx = p2.begin().await.unwrap();
        sqlx::query("INSERT INTO t VALUES (1)")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
            .fetch_one(&p2)
            .await
            .unwrap();
        assert_eq!(count, 0);
        p2.close().await;
    }))
    .unwrap();
    let err = rt
        .block_on(rt.spawn(async move {
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(10))
                .connect(&format!(
                    "postgres://pinwheel:not-the-password@127.0.0.1:{port}/postgres"
                ))
                .await
                .map(drop)
        }))
        .unwrap()
        .unwrap_err();
    let db = err
        .as_database_error()
        .map(|d| d.code().unwrap_or_default().into_owned());
    assert_eq!(db.as_deref(), Some("28P01"), "{err}");
}
