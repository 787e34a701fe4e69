//! Admission: who asked for a session, and whether they may.
//!
//! - [`policy`]: the operator's policy (allowed images, digest requirement, namespaces,
//!   capabilities), checked at admission and re-checked by the controller.
//! - [`stamp`]: the requester stamp, HMAC-signed annotations binding the requester to the spec,
//!   written by the mutating webhook at create and at every spec change; the controller applies
//!   only a spec whose stamp verifies.
//! - [`authz`]: SubjectAccessReviews that make sure the requester could do by hand what the
//!   operator would do for them (exec/attach into pods, patch the workload).
//! - [`webhook`]: the mutating and validating webhook's decisions; [`tls`]: its TLS listener.

pub mod authz;
pub mod policy;
pub mod stamp;
pub mod tls;
pub mod webhook;

pub use policy::{POLICY_VIOLATION, Policy};
pub use stamp::Requester;
