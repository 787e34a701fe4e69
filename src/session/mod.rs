//! What a session asks for, and whether it may: pure checks shared by the admission webhook and
//! the controller (neither imports the other).
//!
//! - [`settings`]: the operator-wide defaults and limits (default image, TTLs, capabilities).
//! - [`ttl`]: the TTL grammar.
//! - [`syntax`]: the API server's grammars (quantities, env var names, image references).
//! - [`validate`]: a spec resolved into the shell container and TTL, and checked against the
//!   target workload and the field manager's length.
//! - [`policy`]: the operator's policy (images, namespaces, capabilities).
//! - [`podsecurity`]: the namespace's Pod Security level against the shell.
//! - [`stamp`]: the requester stamp that binds who asked to the spec they asked for.
//! - [`invalid`]: a refusal (reason and message), shared by every check.
//! - [`mode`]: the session's mode (Patch, Copy, Ephemeral), checked against the target and the
//!   modes the operator enables.
//! - [`profile`]: the security profiles, with `kubectl debug --profile`'s meaning.
//! - [`approval`]: approvals and denials by a second person, signed like the stamp, and the rules
//!   that say where they are needed.
//! - [`choice`]: the closed sets of names (modes, profiles) on the command line and in messages.
//! - [`record`]: the recorded shell's command (a banner, the terminal kept in the log).
//! - [`copy`]: the standalone pod of the Copy mode.
//! - [`ephemeral`]: the ephemeral container of the Ephemeral mode and its request bodies.

pub mod approval;
pub mod choice;
pub mod copy;
pub mod ephemeral;
pub mod invalid;
pub mod mode;
pub mod podsecurity;
pub mod policy;
pub mod profile;
pub mod record;
pub mod settings;
pub mod stamp;
pub mod syntax;
pub mod ttl;
pub mod validate;
