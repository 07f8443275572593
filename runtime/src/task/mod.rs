//! Tasks: one heap allocation per spawned future, a state word, wakers, and the handles users
//! hold ([`JoinHandle`], [`AbortHandle`]).
//!
//! A task is a header (state word, vtable, id, thread mask), the scheduler it belongs to, the
//! future or its output, and the JoinHandle's waker, all in one block. The state word
//! (`state.rs`) carries the lifecycle bits and the reference count; every transition is one
//! compare-and-swap, and the loom models in `src/loom_models/task.rs` check the protocol.

mod class;
pub(crate) mod coop;
mod dump;
mod error;
mod harness;
mod id;
mod join;
mod list;
mod local;
pub(crate) mod mask;
mod pool;
mod raw;
mod state;
#[cfg(any(test, fuzzing))]
pub(crate) mod state_model;
mod waker;

#[cfg(all(test, loom))]
#[path = "../loom_models/task.rs"]
mod tests_loom;

pub use crate::join_set::JoinSet;
pub use crate::local_set::{LocalSet, RunUntil};
pub use crate::spawn::{Builder, block_in_place, current_class, set_class};
pub(crate) use class::ByClass;
pub use class::Class;
pub use coop::{Unconstrained, consume_budget, unconstrained};
pub use dump::{TaskDump, TaskInfo, TaskState};
pub use error::JoinError;
pub use id::Id;
pub use join::{AbortHandle, JoinHandle};
pub use local::{AccessError, LocalKey, TaskLocalFuture};
pub(crate) use mask::ThreadMask;

pub(crate) use harness::{NewTask, TaskMeta, new_task};
pub(crate) use list::{LocalOwnedTasks, OwnedTasks};
pub(crate) use raw::{
    BOUND, FLAG_LOCAL, FLAG_NAMED, FLAG_STEALABLE, Header, Notified, RawTask, Schedule,
};

#[cfg(all(test, not(loom)))]
mod tests {
    use super::raw::Header;

    #[test]
    fn header_fits_in_a_cache_line() {
        let size = std::mem::size_of::<Header>();
        assert!(
            size <= 64,
            "task header is {size} bytes; the goal is at most 64"
        );
    }
}
