//! A session is created with the operator's finalizer: the mutating webhook adds it, once, beside
//! any finalizers already there, and only at CREATE.

use super::*;

fn finalizers(obj: &Value) -> Vec<String> {
    serde_json::from_value(obj["metadata"]["finalizers"].clone()).unwrap_or_default()
}

fn with_finalizers(list: &[&str]) -> Value {
    let mut s = session("s", web(), None);
    s["metadata"]["finalizers"] = json!(list);
    s
}

#[test]
fn create_adds_the_finalizer_once_beside_others() {
    let cases: [(Value, Vec<&str>); 4] = [
        (session("s", web(), None), vec![FINALIZER]),
        (with_finalizers(&[]), vec![FINALIZER]),
        (
            with_finalizers(&["example.com/keep"]),
            vec!["example.com/keep", FINALIZER],
        ),
        (with_finalizers(&[FINALIZER]), vec![FINALIZER]),
    ];
    for (obj, want) in cases {
        let req = request("CREATE", "alice", Some(obj.clone()), None);
        let out = mutated(&req);
        assert_eq!(finalizers(&out), want, "from {}", obj["metadata"]);
        // Still stamped, and the result passes validation (authz permitting).
        assert_eq!(out["metadata"]["annotations"][stamp::REQUESTER], "alice");
        let again = request("CREATE", "alice", Some(out), None);
        assert_eq!(decide(&again, Ok(())), Ok(()));
    }
}

#[test]
fn updates_do_not_add_the_finalizer() {
    // A spec change is restamped, but a session whose finalizer went (the operator removes it
    // once the workload is reverted) does not get it back from the webhook.
    let old = stamped("s", web(), &alice());
    let mut new = old.clone();
    new["spec"]["ttl"] = json!("30m");
    let out = mutated(&request("UPDATE", "alice", Some(new), Some(old)));
    assert_eq!(out["metadata"]["annotations"][stamp::REQUESTER], "alice");
    assert!(finalizers(&out).is_empty(), "{}", out["metadata"]);
}
