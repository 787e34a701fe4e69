//! Whole reconciles against a mocked API server. Each scenario builds a DebugSession as the watch
//! would deliver it, runs `reconcile` once and plays the API server's side: every request must
//! come in the expected order (method, path, query, body) and gets a realistic answer. A request
//! that does not come fails after a timeout naming it; one that comes unexpectedly fails too.

use std::panic::resume_unwind;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Method, Request, Response};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::client::{Body, ClientBuilder};
use kube::runtime::controller::Action;
use serde_json::{Value, json};
use tower_test::mock::{Handle, SendResponse};

use debugsession_operator::Error;
use debugsession_operator::api::{DebugSession, FINALIZER, HOLDER_ANNOTATION};
use debugsession_operator::controller::{Context, error_policy, reconcile};
use debugsession_operator::metrics::Metrics;
use debugsession_operator::session::policy::Policy;
use debugsession_operator::session::settings::Settings;
use debugsession_operator::session::stamp::{self, Requester, Stamp};

const DEPLOY: &str = "/apis/apps/v1/namespaces/team/deployments/web";
const NAMESPACE: &str = "/api/v1/namespaces/team";
const PODS: &str = "/api/v1/namespaces/team/pods";
const SESSION: &str = "/apis/debugsession.dev/v1alpha1/namespaces/team/debugsessions/dbg";
const FIRST: &str = "/apis/debugsession.dev/v1alpha1/namespaces/team/debugsessions/first";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/team/events";
const MANAGER: &str = "debugsession/team/dbg";
const AS_MANAGER: &str = "&fieldManager=debugsession%2Fteam%2Fdbg";
const FORCED: &str = "&force=true&fieldManager=debugsession%2Fteam%2Fdbg";
const DRY_RUN: &str = "&dryRun=All&force=true&fieldManager=debugsession%2Fteam%2Fdbg";
const APPLY: &str = "application/apply-patch+yaml";
const WEB_UID: &str = "6f1c2a9e-web";
const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
const WAIT: Duration = Duration::from_secs(5);

/// The reconciles played: [`Scenario::session`] is what the watch delivers, [`ApiServer::run`]
/// the requests that must follow, the tests at the end the requeue each returns.
#[derive(Clone, Copy, Debug)]
enum Scenario {
    Start,
    Active,
    Steady,
    ExpiryRevert,
    DeleteRevert,
    HeldByFirst,
    Drift,
    UnstampedSpecChange,
    ForeignHolder,
    RejectedShell,
    LostRace,
}

impl Scenario {
    /// The session as the watch delivers it.
    fn session(self) -> DebugSession {
        match self {
            Scenario::Start
            | Scenario::HeldByFirst
            | Scenario::ForeignHolder
            | Scenario::RejectedShell
            | Scenario::LostRace => new_session("dbg"),
            Scenario::Active => started(60, false),
            Scenario::ExpiryRevert => started(15 * 60 + 5, true),
            Scenario::Steady | Scenario::Drift => started(60, true),
            Scenario::DeleteRevert => {
                let mut s = started(60, true);
                s.metadata.deletion_timestamp = Some(k8s_time(0));
                s
            }
            Scenario::UnstampedSpecChange => unstamped_change(),
        }
    }

    fn stamp_key(self) -> Option<Vec<u8>> {
        matches!(self, Scenario::UnstampedSpecChange).then(|| KEY.to_vec())
    }
}

mod objects;
mod server;

use objects::*;
use server::*;

// --- the reconciles ---

fn context(stamp_key: Option<Vec<u8>>) -> (Arc<Context>, ApiServer) {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = ClientBuilder::new(svc, "default").build();
    let (insecure, metrics) = (stamp_key.is_none(), Arc::new(Metrics::default()));
    let (settings, policy) = (Settings::default(), Policy::default());
    let ctx = Context::new(client, settings, policy, stamp_key, insecure, metrics, None);
    (Arc::new(ctx), ApiServer::new(handle))
}

/// One reconcile of the scenario's session while the API server plays the scenario; fails unless
/// every expected request came, in order, and nothing else.
async fn play(scenario: Scenario) -> Result<Action, Error> {
    let session = scenario.session();
    let (ctx, server) = context(scenario.stamp_key());
    let verifier = tokio::spawn(server.run(scenario, session.clone()));
    // The context holds the only client: it goes when reconcile returns.
    let reconciled = tokio::time::timeout(3 * WAIT, reconcile(Arc::new(session), ctx)).await;
    // The verifier's complaint first: a wrong answer can make reconcile fail or wait.
    if let Err(e) = verifier.await {
        resume_unwind(e.into_panic());
    }
    reconciled.unwrap_or_else(|_| panic!("{scenario:?}: reconcile did not return"))
}

fn secs(n: u64) -> Action {
    Action::requeue(Duration::from_secs(n))
}

/// No requeue: only a change of the session (or of its workload) wakes it.
const DONE: Action = Action::await_change();

/// One test per scenario: its requests are checked by the verifier, its requeue here.
macro_rules! scenario_tests {
    ($($test:ident: $scenario:ident => $requeue:expr,)*) => {$(
        #[tokio::test]
        async fn $test() {
            let action = play(Scenario::$scenario).await.expect("reconcile succeeds");
            assert_eq!(action, $requeue);
        }
    )*};
}

scenario_tests! {
    start_takes_the_workload_with_the_shell_in_one_apply_and_reports: Start => secs(5),
    a_session_whose_pods_all_carry_a_ready_shell_is_active: Active => secs(60),
    an_unchanged_active_session_is_only_read: Steady => secs(60),
    an_expired_session_releases_its_fields_and_ends: ExpiryRevert => DONE,
    deleting_a_session_releases_its_fields_then_removes_the_finalizer: DeleteRevert => DONE,
    a_second_session_waits_for_the_live_holder: HeldByFirst => secs(10),
    a_stripped_shell_is_force_applied_again_without_dry_run_or_hold: Drift => secs(5),
    an_unstamped_spec_change_never_reaches_the_workload: UnstampedSpecChange => secs(60),
    a_hand_written_holder_annotation_makes_the_session_wait: ForeignHolder => secs(30),
    a_refused_shell_fails_the_session_without_holding: RejectedShell => DONE,
}

#[tokio::test]
async fn a_lost_race_for_the_workload_is_an_error_that_leaves_a_phase() {
    let err = play(Scenario::LostRace).await.unwrap_err();
    assert_eq!(err.metric_label(), "taken");
    let (ctx, _) = context(None);
    let action = error_policy(Arc::new(Scenario::LostRace.session()), &err, ctx);
    assert_ne!(action, DONE, "retried");
}

/// `error_policy` retries a lost race after 500 ms, but it matches `Error::Taken` while
/// `reconcile` hands it `Error::Finalizer(ApplyFailed(Taken))`, so the race backs off like any
/// other error (1 s, 2 s, ...).
#[tokio::test]
async fn a_lost_race_for_the_workload_is_retried_at_once() {
    let err = play(Scenario::LostRace).await.unwrap_err();
    let (ctx, _) = context(None);
    let action = error_policy(Arc::new(Scenario::LostRace.session()), &err, ctx);
    assert_eq!(action, Action::requeue(Duration::from_millis(500)));
}
