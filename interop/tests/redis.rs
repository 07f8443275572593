//! redis-rs (its tokio connection manager, pipelines, pub/sub) on pinwheel with the workers'
//! tokio contexts (`Builder::tokio_context`), against a real redis-server (Debian's package)
//! the test starts on a loopback port: no `compat` anywhere in this file.

use std::time::Duration;

use futures::StreamExt;
use pinwheel_interop::rt_with_tokio;
use pinwheel_tests::servers::Redis;
use redis::AsyncCommands;

/// GET/SET through the connection manager, from tasks on both workers, and a pipeline.
#[test]
fn get_set_and_pipelines_through_the_connection_manager() {
    let Some(server) = Redis::start() else { return };
    let url = server.url();
    let rt = rt_with_tokio(2);
    let manager = rt
        .block_on(rt.spawn(async move {
            let client = redis::Client::open(url).unwrap();
            client.get_connection_manager().await.unwrap()
        }))
        .unwrap();
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let mut con = manager.clone();
            rt.spawn(async move {
                let key = format!("key:{i}");
                let () = con.set(&key, i).await.unwrap();
                let back: i32 = con.get(&key).await.unwrap();
                assert_eq!(back, i);
            })
        })
        .collect();
    for t in tasks {
        rt.block_on(t).unwrap();
    }
    let mut con = manager.clone();
    let (a, b, n): (i32, i32, i64) = rt
        .block_on(rt.spawn(async move {
            redis::pipe()
                .atomic()
                .get("key:3")
                .get("key:30")
                .cmd("DBSIZE")
                .query_async(&mut con)
                .await
                .unwrap()
        }))
        .unwrap();
    assert_eq!((a, b, n), (3, 30, 32));
}

/// Publish/subscribe: a subscriber on one connection gets what another publishes.
#[test]
fn pub_sub() {
    let Some(server) = Redis::start() else { return };
    let url = server.url();
    let rt = rt_with_tokio(2);
    let got = rt
        .block_on(rt.spawn(async move {
            let client = redis::Client::open(url).unwrap();
            let mut pubsub = client.get_async_pubsub().await.unwrap();
            pubsub.subscribe("news").await.unwrap();
            let mut publisher = client.get_multiplexed_async_connection().await.unwrap();
            let publishing = pinwheel::spawn(async move {
                for i in 0..3 {
                    let _: i64 = publisher
                        .publish("news", format!("item {i}"))
                        .await
                        .unwrap();
                }
            });
            let mut messages = pubsub.on_message();
            let mut got = Vec::new();
            while got.len() < 3 {
                let msg = pinwheel::time::timeout(Duration::from_secs(30), messages.next())
                    .await
                    .expect("a published message within 30 s")
                    .expect("the subscription stays open");
                got.push(msg.get_payload::<String>().unwrap());
            }
            publishing.await.unwrap();
            got
        }))
        .unwrap();
    assert_eq!(got, ["item 0", "item 1", "item 2"]);
}

/// A refused port and a server killed under a connection are redis-rs errors, not hangs.
#[test]
fn refused_port_and_killed_server_are_errors() {
    let Some(mut server) = Redis::start() else {
        return;
    };
    let url = server.url();
    let rt = rt_with_tokio(2);
    let refused = rt
        .block_on(rt.spawn(async {
            let client = redis::Client::open("redis://127.0.0.1:1/").unwrap();
            client.get_multiplexed_async_connection().await.map(drop)
        }))
        .unwrap();
    assert!(refused.is_err());
    let mut con = rt
        .block_on(rt.spawn(async move {
            let client = redis::Client::open(url).unwrap();
            client.get_multiplexed_async_connection().await.unwrap()
        }))
        .unwrap();
    server.kill();
    let after = rt
        .block_on(rt.spawn(async move {
            pinwheel::time::timeout(Duration::from_secs(30), con.get::<_, Option<String>>("k"))
                .await
        }))
        .unwrap();
    let err = after
        .expect("a command on a killed server fails well within 30 s")
        .unwrap_err();
    assert!(!err.to_string().is_empty());
}
