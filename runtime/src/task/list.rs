//! The lists of live tasks, so that shutdown can drop every unfinished future exactly once.
//!
//! `Send` tasks are kept in a sharded list any thread may lock (shard by task id, so spawns from
//! different workers rarely meet on one lock); `spawn_local` tasks are kept by their worker in a
//! list only that worker changes (other threads only look, for a task dump). Each list holds one
//! reference to each task, given back when the task completes.

use std::sync::atomic::Ordering::Relaxed;

use slab::Slab;

use super::RawTask;
use crate::loom::{Mutex, lock};

pub(crate) struct OwnedTasks {
    shards: Box<[Mutex<Shard>]>,
    mask: usize,
}

#[derive(Default)]
struct Shard {
    tasks: Slab<RawTask>,
    closed: bool,
}

fn insert(shard: &mut Shard, task: RawTask) -> bool {
    if shard.closed {
        return false;
    }
    let key = shard.tasks.insert(task);
    let key =
        u32::try_from(key).expect("pinwheel: more than 2^32 live tasks in one owned-task shard");
    task.header().owned_key.store(key, Relaxed);
    true
}

fn remove(shard: &mut Shard, task: RawTask) -> bool {
    let key = task.header().owned_key.load(Relaxed) as usize;
    if shard.tasks.get(key) == Some(&task) {
        shard.tasks.remove(key);
        true
    } else {
        false
    }
}

fn close(shard: &mut Shard) -> Vec<RawTask> {
    shard.closed = true;
    shard.tasks.drain().collect()
}

impl OwnedTasks {
    pub(crate) fn new(workers: usize) -> OwnedTasks {
        // One shard in the loom models: task ids (which pick the shard) differ from one run of
        // a model to the next, and loom needs every run to touch the same objects.
        let n = if cfg!(loom) {
            1
        } else {
            (workers * 4).next_power_of_two().clamp(4, 256)
        };
        OwnedTasks {
            shards: (0..n).map(|_| Mutex::new(Shard::default())).collect(),
            mask: n - 1,
        }
    }

    fn shard(&self, task: RawTask) -> &Mutex<Shard> {
        &self.shards[task.header().id.as_u64() as usize & self.mask]
    }

    /// Adds a new task; `false` when the runtime is shutting down (the caller cancels it).
    pub(crate) fn insert(&self, task: RawTask) -> bool {
        insert(&mut lock(self.shard(task)), task)
    }

    /// Removes a completed task; `true` when it was there (its reference comes back).
    pub(crate) fn remove(&self, task: RawTask) -> bool {
        remove(&mut lock(self.shard(task)), task)
    }

    /// Runs `f` on every live task, one shard locked at a time (each task is alive while `f`
    /// looks at it: the list holds a reference).
    pub(crate) fn for_each(&self, mut f: impl FnMut(RawTask)) {
        for shard in self.shards.iter() {
            lock(shard).tasks.iter().for_each(|(_, t)| f(*t));
        }
    }

    /// How many tasks are live (each shard locked in turn, so a moving count).
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).tasks.len()).sum()
    }

    /// Refuses further tasks and takes every live one, with the list's references.
    pub(crate) fn close(&self) -> Vec<RawTask> {
        self.shards
            .iter()
            .flat_map(|s| close(&mut lock(s)))
            .collect()
    }

    /// Takes the live tasks that match `pred`, with the list's references, leaving the list open.
    pub(crate) fn take_where(&self, mut pred: impl FnMut(RawTask) -> bool) -> Vec<RawTask> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let mut shard = lock(shard);
            let keys: Vec<usize> = shard
                .tasks
                .iter()
                .filter(|(_, t)| pred(**t))
                .map(|(k, _)| k)
                .collect();
            out.extend(keys.into_iter().map(|k| shard.tasks.remove(k)));
        }
        out
    }
}

/// The list of one worker's `spawn_local` tasks: only that worker's thread changes it (so its
/// lock is uncontended but for a task dump), and shutdown drops them on that thread.
#[derive(Default)]
pub(crate) struct LocalOwnedTasks {
    shard: Mutex<Shard>,
}

impl LocalOwnedTasks {
    pub(crate) fn insert(&self, task: RawTask) -> bool {
        insert(&mut lock(&self.shard), task)
    }

    pub(crate) fn remove(&self, task: RawTask) -> bool {
        remove(&mut lock(&self.shard), task)
    }

    pub(crate) fn close(&self) -> Vec<RawTask> {
        close(&mut lock(&self.shard))
    }

    pub(crate) fn len(&self) -> usize {
        lock(&self.shard).tasks.len()
    }

    /// Runs `f` on every live task, under the lock.
    pub(crate) fn for_each(&self, mut f: impl FnMut(RawTask)) {
        lock(&self.shard).tasks.iter().for_each(|(_, t)| f(*t));
    }
}
