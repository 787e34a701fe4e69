//! Prints the DebugSession CRD as YAML; `crds/debugsession.dev_debugsessions.yaml` holds its output.
fn main() {
    print!("{}", debugsession_operator::crd_yaml());
}
