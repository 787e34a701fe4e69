//! Admission: the mutating and validating webhook for DebugSessions.
//!
//! - [`webhook`]: the decisions (stamp the requester of every spec, authorize creates and spec
//!   changes, guard the finalizer); [`tls`]: the TLS listener.
//!
//! What the decisions rest on lives in [`crate::session`] (the policy, the stamp, the checks of
//! a spec) and [`crate::authz`] (SubjectAccessReviews), shared with the controller.

pub mod tls;
pub mod webhook;
