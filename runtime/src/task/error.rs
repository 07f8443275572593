use std::any::Any;
use std::fmt;
use std::sync::Mutex;

use super::Id;
use crate::loom::lock;

/// Why a task did not produce its output: it was cancelled, or it panicked.
///
/// ```
/// let rt = pinwheel::Runtime::new().unwrap();
/// let handle = rt.spawn(async { panic!("boom") });
/// let err = rt.block_on(handle).unwrap_err();
/// assert!(err.is_panic());
/// assert_eq!(*err.into_panic().downcast::<&str>().unwrap(), "boom");
/// ```
pub struct JoinError {
    id: Id,
    repr: Repr,
}

enum Repr {
    Cancelled,
    // The mutex only makes the error `Sync`; it is never contended.
    Panic(Mutex<Box<dyn Any + Send + 'static>>),
}

impl JoinError {
    pub(crate) fn cancelled(id: Id) -> JoinError {
        JoinError {
            id,
            repr: Repr::Cancelled,
        }
    }

    pub(crate) fn panic(id: Id, payload: Box<dyn Any + Send + 'static>) -> JoinError {
        JoinError {
            id,
            repr: Repr::Panic(Mutex::new(payload)),
        }
    }

    /// `true` when the task was aborted, or dropped by the runtime's shutdown.
    pub fn is_cancelled(&self) -> bool {
        matches!(self.repr, Repr::Cancelled)
    }

    /// `true` when the task panicked (while polled, or while its future was dropped).
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panic(_))
    }

    /// The id of the task that failed.
    pub fn id(&self) -> Id {
        self.id
    }

    /// The panic payload, to resume it with `std::panic::resume_unwind`.
    ///
    /// # Panics
    ///
    /// Panics when the error is a cancellation; check with [`is_panic`](Self::is_panic) or use
    /// [`try_into_panic`](Self::try_into_panic).
    #[track_caller]
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.try_into_panic().expect(
            "JoinError::into_panic called on a cancelled task; check is_panic() first or use try_into_panic",
        )
    }

    /// The panic payload, or the error itself when the task was cancelled.
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self.repr {
            Repr::Panic(p) => Ok(p.into_inner().unwrap_or_else(|e| e.into_inner())),
            Repr::Cancelled => Err(self),
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&'static str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Cancelled => write!(f, "task {} was cancelled", self.id),
            Repr::Panic(p) => {
                let p = lock(p);
                match panic_message(&**p) {
                    Some(msg) => write!(f, "task {} panicked with message {:?}", self.id, msg),
                    None => write!(f, "task {} panicked", self.id),
                }
            }
        }
    }
}

/// tokio's shape, which tests and logs match on: `JoinError::Cancelled(Id(7))`,
/// `JoinError::Panic(Id(7), "boom", ...)`, or `JoinError::Panic(Id(7), ...)` for a payload that
/// is not a string.
impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Cancelled => write!(f, "JoinError::Cancelled({:?})", self.id),
            Repr::Panic(p) => {
                let p = lock(p);
                match panic_message(&**p) {
                    Some(msg) => write!(f, "JoinError::Panic({:?}, {:?}, ...)", self.id, msg),
                    None => write!(f, "JoinError::Panic({:?}, ...)", self.id),
                }
            }
        }
    }
}

impl std::error::Error for JoinError {}

impl From<JoinError> for std::io::Error {
    fn from(e: JoinError) -> Self {
        std::io::Error::other(e.to_string())
    }
}
