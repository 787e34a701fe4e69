//! The admission webhook, as the chart installs it by default (`webhook.enabled=true`): every
//! operator of the bench serves it and the bench's namespaces are sent to it, so that sessions
//! are stamped, authorized and created with their finalizer as in a default install, and the
//! webhook's own cost (its SubjectAccessReviews, its memory) is in the figures.

use std::path::Path;

use debugsession_e2e::webhook::Webhooks;
use debugsession_e2e::*;

/// The label that sends a namespace's sessions to the bench's webhook.
pub const LABEL: &str = "debugsession.dev/bench-webhook";
pub const VALUE: &str = "on";
/// A namespace of its own for the webhook's readiness probe (a server-side dry run).
const PROBE_NS: &str = "bench-webhook";

pub struct Admission {
    hooks: Webhooks,
}

impl Admission {
    /// Certificates and a stamp key in `dir`; registers nothing yet.
    pub fn prepare(dir: &Path) -> R<Admission> {
        let hooks = Webhooks::prepare("debugsession-bench", LABEL, VALUE, dir)?;
        Ok(Admission { hooks })
    }

    /// Starts an operator that serves the webhook, logging to `log` with every API request, and
    /// waits until the webhook stamps sessions.
    pub fn start_operator(&self, log: &Path) -> R<Operator> {
        let args = self.hooks.operator_args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let op = Operator::start_with(log, &args, &[("RUST_LOG", "info,kube_client=debug")])?;
        if k(&["get", "namespace", PROBE_NS]).is_err() {
            create_namespace(PROBE_NS, WAIT)?;
        }
        self.label(PROBE_NS)?;
        self.hooks.register(PROBE_NS)?;
        Ok(op)
    }

    /// Sends the sessions of namespace `ns` to the webhook.
    pub fn label(&self, ns: &str) -> R<()> {
        self.hooks.label_namespace(ns)
    }

    /// Deletes the webhook configurations (with no operator to answer, they would refuse every
    /// change to sessions in the labelled namespaces) and the probe namespace.
    pub fn remove(&self) {
        self.hooks.delete();
        remove_namespace(PROBE_NS, false);
    }
}
