//! [`StoreError`]: the one error type of every store and session call, in
//! the SDK, in the host's backends, and on the wire between them.
//!
//! What a kind of failure means is written once, in [`StoreError::kind`]:
//! the outcome that carries it across the boundary, the HTTP status a
//! handler answers with `?`, and the words that start its message. A new
//! variant is added there (and in [`StoreError::from_outcome`], which reads
//! it back), and nowhere else.

use std::fmt;

use crate::abi::{self, Outcome};
use crate::error::Error;

/// Why a store or session call failed.
///
/// ```
/// use drupe_sdk::prelude::*;
/// use drupe_sdk::testing::{TestRequest, TestStore};
///
/// fn show(_req: &Request, ctx: &mut Context) -> Result<Response> {
///     let hits = ctx.store().get_i64("hits")?.unwrap_or(0); // `?`: 503, 504 or 500
///     Ok(Response::text(hits.to_string()))
/// }
///
/// let store = TestStore::new();
/// store.set_unavailable(true);
/// let resp = TestRequest::get("/").store(&store).call(show);
/// assert_eq!(resp.status(), 503);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// The store could not be reached within its timeout (Redis down, the
    /// SQLite file locked for too long), and nothing was done. Worth
    /// retrying later; a handler that returns it with `?` answers 503
    /// Service Unavailable.
    Unavailable(String),
    /// The command reached the store but its answer did not come back in
    /// time (a frozen or restarting Redis): it may or may not have been
    /// applied. Only operations that must not run twice fail this way (an
    /// increment, a push); those that may repeat are retried or reported
    /// [`Unavailable`](StoreError::Unavailable). Do not simply retry: read
    /// the value back first if it matters. `?` answers 504 Gateway Timeout.
    OutcomeUnknown(String),
    /// Anything else: a value of the wrong type (`incr` on text, `get` on
    /// a hash), an overflow, a host without a store. Retrying will not
    /// help; `?` answers 500.
    Other(String),
}

/// What one kind of [`StoreError`] means on each side of the boundary.
struct Kind {
    /// How the host reports it to the plugin.
    outcome: Outcome,
    /// What a handler that returns it with `?` answers.
    status: u16,
    /// The start of its `Display`.
    label: &'static str,
}

impl StoreError {
    /// The message and the meaning of this error: the one place that
    /// lists the variants.
    fn kind(&self) -> (&str, Kind) {
        match self {
            StoreError::Unavailable(m) => (
                m,
                Kind {
                    outcome: abi::OUTCOME_UNAVAILABLE,
                    status: 503,
                    label: "store unavailable",
                },
            ),
            StoreError::OutcomeUnknown(m) => (
                m,
                Kind {
                    outcome: abi::OUTCOME_UNKNOWN,
                    status: 504,
                    label: "store outcome unknown",
                },
            ),
            StoreError::Other(m) => (
                m,
                Kind {
                    outcome: abi::OUTCOME_ERROR,
                    status: 500,
                    label: "store error",
                },
            ),
        }
    }

    /// The error a host reported with `outcome` (any outcome that is not
    /// OK or NOT_FOUND) and `message`.
    pub(crate) fn from_outcome(outcome: Outcome, message: String) -> StoreError {
        match outcome {
            abi::OUTCOME_UNAVAILABLE => StoreError::Unavailable(message),
            abi::OUTCOME_UNKNOWN => StoreError::OutcomeUnknown(message),
            _ => StoreError::Other(message),
        }
    }

    /// How the host reports this error across the boundary.
    pub(crate) fn outcome(&self) -> Outcome {
        self.kind().1.outcome
    }

    /// Whether the store was unreachable (as opposed to a bad request to it).
    ///
    /// ```
    /// use drupe_sdk::StoreError;
    /// assert!(StoreError::Unavailable("timed out".into()).is_unavailable());
    /// assert!(!StoreError::Other("not a number".into()).is_unavailable());
    /// ```
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }

    /// Whether the command may have been applied although the call failed
    /// (see [`StoreError::OutcomeUnknown`]).
    ///
    /// ```
    /// use drupe_sdk::StoreError;
    /// assert!(StoreError::OutcomeUnknown("no answer".into()).is_outcome_unknown());
    /// assert!(!StoreError::Unavailable("down".into()).is_outcome_unknown());
    /// ```
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, StoreError::OutcomeUnknown(_))
    }

    /// The message, for the log.
    ///
    /// ```
    /// use drupe_sdk::StoreError;
    /// assert_eq!(StoreError::Other("not a number".into()).message(), "not a number");
    /// ```
    pub fn message(&self) -> &str {
        self.kind().0
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (message, kind) = self.kind();
        write!(f, "{}: {message}", kind.label)
    }
}

impl std::error::Error for StoreError {}

impl From<StoreError> for Error {
    /// 503 for [`StoreError::Unavailable`] (not done), 504 for
    /// [`StoreError::OutcomeUnknown`] (perhaps done), 500 otherwise; the
    /// message goes to the host's log, not to the client.
    fn from(e: StoreError) -> Error {
        Error::new(e.kind().1.status, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailable_is_503_and_other_is_500() {
        let e = Error::from(StoreError::Unavailable("redis down".into()));
        assert_eq!(e.status(), 503);
        assert!(e.message().contains("redis down"));
        assert_eq!(
            Error::from(StoreError::Other("WRONGTYPE".into())).status(),
            500
        );
        assert_eq!(
            Error::from(StoreError::OutcomeUnknown("timed out".into())).status(),
            504
        );
    }

    #[test]
    fn every_kind_survives_the_boundary() {
        for e in [
            StoreError::Unavailable("down".into()),
            StoreError::OutcomeUnknown("no answer".into()),
            StoreError::Other("bad".into()),
        ] {
            let back = StoreError::from_outcome(e.outcome(), e.message().to_owned());
            assert_eq!(back, e);
        }
    }
}
