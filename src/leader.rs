//! Leader election on a `coordination.k8s.io/v1` Lease: only the leader reconciles.

use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch::Receiver;
use tokio::task::JoinHandle;

/// Where the lease lives and who we are.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    /// Seconds a leader keeps the lease without renewing it; a standby takes over after this.
    pub duration: u64,
    /// Seconds before expiry at which the leader renews.
    pub grace: u64,
}

/// A running election: `state` turns true while this replica leads.
pub struct Election {
    pub state: Receiver<bool>,
    task: JoinHandle<Result<kube_lease_manager::LeaseManager, LeaseManagerError>>,
}

impl Election {
    pub async fn start(client: Client, cfg: &LeaseConfig) -> Result<Self, LeaseManagerError> {
        let manager = LeaseManagerBuilder::new(client, &cfg.name)
            .with_namespace(&cfg.namespace)
            .with_identity(&cfg.identity)
            .with_field_manager(format!("debugsession-operator/{}", cfg.identity))
            .with_duration(cfg.duration)
            .with_grace(cfg.grace)
            .build()
            .await?;
        let (state, task) = manager.watch().await;
        Ok(Election { state, task })
    }

    /// Resolves once this replica leads; `false` when the election task ended first.
    pub async fn acquired(&mut self) -> bool {
        self.state.wait_for(|leading| *leading).await.is_ok()
    }

    /// Resolves when leadership is lost.
    pub async fn lost(mut state: Receiver<bool>) {
        let _ = state.wait_for(|leading| !*leading).await;
    }

    /// Gives the lease up so a standby takes over at once.
    pub async fn release(self) {
        drop(self.state);
        match self.task.await {
            Ok(Ok(_)) => tracing::info!("released the leader lease"),
            Ok(Err(e)) => tracing::warn!(error = %e, "could not release the leader lease"),
            Err(e) => tracing::warn!(error = %e, "leader election task failed"),
        }
    }
}
