//! Where is `pinwheel::sync`? The runtime-independent crates are it: async-channel,
//! async-lock and futures' channels work between pinwheel tasks on different workers (the
//! crate docs say so). Each test pins its two sides to different workers.

use pinwheel::ThreadMask;
use pinwheel_tests::rt;

#[test]
fn async_channel_between_workers() {
    let rt = rt(2);
    let (tx, rx) = async_channel::bounded::<u32>(4);
    let h = rt.handle();
    let producer = h.spawn_on(ThreadMask::one(0), async move {
        for i in 0..1000 {
            tx.send(i).await.unwrap();
        }
    });
    let consumer = h.spawn_on(ThreadMask::one(1), async move {
        let mut sum = 0u64;
        while let Ok(i) = rx.recv().await {
            assert_eq!(pinwheel::current_worker(), Some(1));
            sum += u64::from(i);
        }
        sum
    });
    rt.block_on(producer).unwrap();
    assert_eq!(rt.block_on(consumer).unwrap(), 999 * 1000 / 2);
}

#[test]
fn async_lock_mutex_and_rwlock_between_workers() {
    let rt = rt(2);
    let counter = std::sync::Arc::new(async_lock::Mutex::new(0u32));
    let table = std::sync::Arc::new(async_lock::RwLock::new(Vec::<usize>::new()));
    let mut tasks = Vec::new();
    for w in 0..2 {
        let (counter, table) = (counter.clone(), table.clone());
        tasks.push(rt.handle().spawn_on(ThreadMask::one(w), async move {
            for _ in 0..500 {
                let mut c = counter.lock().await;
                *c += 1;
                drop(c);
                pinwheel::yield_now().await;
            }
            table.write().await.push(w);
            table.read().await.len()
        }));
    }
    for t in tasks {
        rt.block_on(t).unwrap();
    }
    assert_eq!(*rt.block_on(counter.lock()), 1000);
    assert_eq!(rt.block_on(table.read()).len(), 2);
}

#[test]
fn futures_channels_between_workers() {
    use futures::{SinkExt, StreamExt};
    let rt = rt(2);
    let (mut tx, mut rx) = futures::channel::mpsc::channel::<u32>(2);
    let (done_tx, done_rx) = futures::channel::oneshot::channel::<u32>();
    let h = rt.handle();
    let _producer = h.spawn_on(ThreadMask::one(1), async move {
        for i in 1..=100 {
            tx.send(i).await.unwrap();
        }
    });
    let _consumer = h.spawn_on(ThreadMask::one(0), async move {
        let mut sum = 0;
        while let Some(i) = rx.next().await {
            sum += i;
        }
        done_tx.send(sum).unwrap();
    });
    assert_eq!(rt.block_on(done_rx).unwrap(), 5050);
}
