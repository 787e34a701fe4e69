//! The controller's store in the sweep: it answers for the sessions it holds.

use super::*;

/// A session in the controller's store exists: no GET for it; one it lacks is read live.
#[tokio::test]
async fn the_store_spares_the_reads_of_the_sessions_it_holds() {
    let (client, recorder, mut handle) = mock();
    let (store, mut writer) = kube::runtime::reflector::store::<DebugSession>();
    let alive: DebugSession = serde_json::from_value(session("alive")).unwrap();
    writer.apply_watcher_event(&Watched::Apply(alive));
    let server = tokio::spawn(async move {
        let get = next(&mut handle, 200, Some(session("other"))).await;
        (get.path, handle)
    });
    let cached = meta(workload_meta(&[
        "debugsession/team/alive",
        "debugsession/team/other",
    ]));
    let n = tokio::time::timeout(
        Duration::from_secs(5),
        sweep_workload(
            &client,
            &recorder,
            TargetKind::Deployment,
            &cached,
            Some(&store),
        ),
    )
    .await
    .expect("one request")
    .unwrap();
    assert_eq!(n, 0);
    let (path, handle) = server.await.unwrap();
    assert_eq!(path, format!("{SESSION_PATH}/other"));
    no_more(client, recorder, tokio::spawn(async { handle })).await;
}
