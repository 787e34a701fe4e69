//! `deploy/nginx`, `sts/db`, `ds/agent`, `pod/web-0`: the target of a new session.

use debugsession_operator::api::TargetKind;

/// Parses `TYPE/NAME` the way kubectl names resources; a bare `NAME` is a Deployment.
pub fn parse(input: &str) -> Result<(TargetKind, String), String> {
    let (kind, name) = match input.split_once('/') {
        Some((k, n)) => (kind(k)?, n),
        None => (TargetKind::Deployment, input),
    };
    if name.is_empty() || name.contains('/') {
        return Err(format!(
            "{input:?} is not a target: use TYPE/NAME, such as deploy/nginx, sts/db, ds/agent or pod/web-0"
        ));
    }
    Ok((kind, name.to_string()))
}

fn kind(k: &str) -> Result<TargetKind, String> {
    let k = k.to_ascii_lowercase();
    let k = k.strip_suffix(".apps").unwrap_or(&k);
    Ok(match k {
        "deploy" | "deployment" | "deployments" => TargetKind::Deployment,
        "sts" | "statefulset" | "statefulsets" => TargetKind::StatefulSet,
        "ds" | "daemonset" | "daemonsets" => TargetKind::DaemonSet,
        "po" | "pod" | "pods" => TargetKind::Pod,
        other => {
            return Err(format!(
                "{other:?} is not a kind a session can target: use deploy, sts, ds or pod"
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_forms() {
        for (s, k, n) in [
            ("deploy/nginx", TargetKind::Deployment, "nginx"),
            ("deployment/nginx", TargetKind::Deployment, "nginx"),
            ("deployments.apps/nginx", TargetKind::Deployment, "nginx"),
            ("nginx", TargetKind::Deployment, "nginx"),
            ("sts/db", TargetKind::StatefulSet, "db"),
            ("StatefulSet/db", TargetKind::StatefulSet, "db"),
            ("ds/agent", TargetKind::DaemonSet, "agent"),
            ("pod/web-0", TargetKind::Pod, "web-0"),
            ("po/web-0", TargetKind::Pod, "web-0"),
        ] {
            assert_eq!(parse(s), Ok((k, n.to_string())), "{s}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_target() {
        for s in ["", "deploy/", "svc/nginx", "deploy/a/b", "/x"] {
            assert!(parse(s).is_err(), "{s}");
        }
        assert!(
            parse("svc/nginx")
                .unwrap_err()
                .contains("deploy, sts, ds or pod")
        );
    }
}
