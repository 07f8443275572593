//! A work list: hand items to a given worker thread, where a handler with per-thread state
//! (no lock, no atomics) processes them. HAProxy's `work_list`.
//!
//! ```text
//! cargo run --release --example mailbox
//! ```

use std::sync::mpsc;

use pinwheel::WorkList;

#[pinwheel::main(worker_threads = 2)]
async fn main() {
    let (report, reports) = mpsc::channel::<(usize, u64, u64)>();

    // One mailbox and one handler task per worker. `init` makes each thread's state on that
    // thread (a plain tuple here: it is never shared), `handler` runs for each item.
    let list = WorkList::with_state(
        |_thread| (0u64, 0u64), // (items, sum) seen by this thread
        move |state: &mut (u64, u64), item: Option<u64>| match item {
            Some(n) => {
                state.0 += 1;
                state.1 += n;
            }
            // `None` asks the thread to report.
            None => {
                let thread = pinwheel::current_worker().unwrap();
                report.send((thread, state.0, state.1)).unwrap();
            }
        },
    );

    // Tasks anywhere push to the thread of their choice: even numbers to worker 0, odd ones
    // to worker 1. A push is a short lock and a wake-up only if the handler was idle.
    let producers: Vec<_> = (0..4u64)
        .map(|p| {
            let list = list.clone();
            pinwheel::spawn(async move {
                for n in (p * 1000)..((p + 1) * 1000) {
                    list.push((n % 2) as usize, Some(n)).unwrap();
                }
            })
        })
        .collect();
    for p in producers {
        p.await.unwrap();
    }
    // Items in one mailbox are handled in order, so the report comes after them.
    for thread in 0..list.threads() {
        list.push(thread, None).unwrap();
    }
    for _ in 0..list.threads() {
        let (thread, items, sum) = reports.recv().unwrap();
        println!("worker {thread}: {items} items, sum {sum}");
    }
}
