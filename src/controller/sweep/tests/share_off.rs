//! An orphan that recorded the template's own `shareProcessNamespace: false` puts it back.

use super::*;
use crate::api::SHARE_OFF_ANNOTATION as SHARE_OFF;

/// The live workload: the owner's entry, and the gone session's, which owns the record.
fn recorded() -> Value {
    let mut meta = workload_meta(&["kubectl-client-side-apply"]);
    let ours = json!({"manager": "debugsession/team/dbg", "operation": "Apply", "apiVersion": "apps/v1",
        "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:annotations": {
            format!("f:{SHARE_OFF}"): {}}}}});
    meta["managedFields"].as_array_mut().unwrap().push(ours);
    meta["annotations"] = json!({SHARE_OFF: "false"});
    meta
}

#[tokio::test]
async fn the_release_of_an_orphan_puts_its_recorded_share_off_back() {
    let (client, recorder, mut handle) = mock();
    let server = tokio::spawn(async move {
        next(&mut handle, 404, Some(not_found())).await;
        let live = json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": recorded()});
        next(&mut handle, 200, Some(live)).await;
        let applied =
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": recorded()});
        let apply = next(&mut handle, 200, Some(applied)).await;
        let handback = next(&mut handle, 200, Some(partial(&[]))).await;
        next(&mut handle, 201, None).await;
        (apply, handback, handle)
    });
    let cached = meta(recorded());
    let n = sweep(&client, &recorder, TargetKind::Deployment, &cached)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let (apply, handback, handle) = server.await.unwrap();
    assert_eq!(
        apply.body["spec"],
        json!({"template": {"spec": {"shareProcessNamespace": false}}})
    );
    assert_eq!(apply.query, "&fieldManager=debugsession%2Fteam%2Fdbg");
    let owner = &recorded()["managedFields"][0];
    assert_eq!(
        handback.body,
        json!({"metadata": {"resourceVersion": "7", "managedFields": [owner],
            "annotations": {SHARE_OFF: null}}})
    );
    no_more(client, recorder, tokio::spawn(async { handle })).await;
}
