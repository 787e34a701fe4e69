//! The CRD in crds/ and in the Helm chart is exactly what `crdgen` prints.

#[test]
fn crds_are_current() {
    let want = debugsession_operator::crd_yaml();
    let root = env!("CARGO_MANIFEST_DIR");
    for path in [
        "crds/debugsession.dev_debugsessions.yaml",
        "charts/debugsession-operator/crds/debugsession.dev_debugsessions.yaml",
    ] {
        let have = std::fs::read_to_string(format!("{root}/{path}")).unwrap_or_default();
        assert!(
            have == want,
            "{path} is stale: run `make crds` (cargo run --bin crdgen > {path})"
        );
    }
}
