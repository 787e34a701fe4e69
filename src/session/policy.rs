//! The operator's policy for sessions: which images, namespaces and capabilities are allowed.
//!
//! Pure: checked by the validating webhook at admission and again by the controller before it
//! touches a workload. A privileged shell comes only from the `sysadmin` profile (off unless
//! `allowedProfiles` names it); hostPID, hostNetwork and hostPath are not expressible in a
//! DebugSession at all.

use super::invalid::Invalid;
use super::settings::{
    self, DEFAULT_ALLOWED_CAPABILITIES, DEFAULT_ALLOWED_IMAGES, DEFAULT_DENIED_NAMESPACES,
};
use super::validate::Asked;
use crate::api::{DebugSessionSpec, Profile, reason};

/// What sessions may ask for. Lists of images and namespaces are globs where `*` matches any
/// run of characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Globs of allowed shell images, e.g. `busybox:*`. Empty allows none.
    pub allowed_images: Vec<String>,
    /// Require images pinned by digest (`name@sha256:<64 hex>`).
    pub require_digest: bool,
    /// Namespaces where sessions are refused (globs).
    pub denied_namespaces: Vec<String>,
    /// If not empty, sessions are allowed only in these namespaces (globs).
    pub allowed_namespaces: Vec<String>,
    /// Capabilities the shell may add (without the `CAP_` prefix) on top of its profile's.
    pub allowed_capabilities: Vec<String>,
    /// Profiles sessions may ask for.
    pub allowed_profiles: Vec<Profile>,
    /// Where sessions need a second person's approval.
    pub approval: super::approval::rule::Rule,
}

impl Default for Policy {
    /// The defaults of [`super::settings`].
    fn default() -> Self {
        Policy {
            allowed_images: settings::list(DEFAULT_ALLOWED_IMAGES),
            require_digest: false,
            denied_namespaces: settings::list(DEFAULT_DENIED_NAMESPACES),
            allowed_namespaces: Vec::new(),
            allowed_capabilities: settings::list(DEFAULT_ALLOWED_CAPABILITIES),
            allowed_profiles: super::profile::DEFAULT_ALLOWED.to_vec(),
            approval: super::approval::rule::Rule::default(),
        }
    }
}

fn violation(message: String) -> Invalid {
    Invalid {
        reason: reason::POLICY_VIOLATION,
        message,
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

impl Policy {
    /// The policy as configured, made whole: the default image is always allowed (a session
    /// that names no image must be able to run), and `own_namespace` (the operator's) is always
    /// denied.
    pub fn complete(mut self, default_image: &str, own_namespace: Option<&str>) -> Self {
        if !self
            .allowed_images
            .iter()
            .any(|g| glob_match(g, default_image))
        {
            self.allowed_images.push(default_image.to_string());
        }
        if let Some(ns) = own_namespace.filter(|n| !n.is_empty())
            && !self.denied_namespaces.iter().any(|d| d == ns)
        {
            self.denied_namespaces.push(ns.to_string());
        }
        self
    }

    /// Checks a session in `namespace` against the policy: the namespace, the resolved shell's
    /// image (see [`super::validate::resolve`]: the defaults are already filled in), the
    /// profile, the capabilities asked on top of the profile's (`spec.shell.capabilities`), and
    /// the images a copy sets (`spec.copy.setImage`), which run in the namespace as much as the
    /// shell does.
    pub fn check(
        &self,
        namespace: &str,
        spec: &DebugSessionSpec,
        asked: &Asked,
    ) -> Result<(), Invalid> {
        self.check_namespace(namespace)?;
        self.check_image(asked.shell.image.as_deref().unwrap_or_default())?;
        let extra = spec.shell.as_ref().and_then(|s| s.capabilities.as_deref());
        super::profile::check(asked.profile, extra, &self.allowed_profiles)?;
        self.check_capabilities(extra.unwrap_or_default())?;
        let set = spec.copy.as_ref().and_then(|c| c.set_image.as_ref());
        for image in set.into_iter().flat_map(|m| m.values()) {
            self.check_image(image)?;
        }
        Ok(())
    }

    pub fn check_namespace(&self, namespace: &str) -> Result<(), Invalid> {
        if self
            .denied_namespaces
            .iter()
            .any(|p| glob_match(p, namespace))
        {
            return Err(violation(format!(
                "namespace {namespace:?} is denied by the operator's policy (denied: {})",
                list(&self.denied_namespaces)
            )));
        }
        if !self.allowed_namespaces.is_empty()
            && !self
                .allowed_namespaces
                .iter()
                .any(|p| glob_match(p, namespace))
        {
            return Err(violation(format!(
                "namespace {namespace:?} is not allowed by the operator's policy (allowed: {})",
                list(&self.allowed_namespaces)
            )));
        }
        Ok(())
    }

    pub fn check_image(&self, image: &str) -> Result<(), Invalid> {
        // `name:tag@sha256:...` also matches a glob written for `name:tag`.
        let without_digest = image.split_once('@').map(|(n, _)| n).unwrap_or(image);
        let allowed = self
            .allowed_images
            .iter()
            .any(|p| glob_match(p, image) || glob_match(p, without_digest));
        if !allowed {
            return Err(violation(format!(
                "image {image:?} is not allowed by the operator's policy (allowed: {})",
                list(&self.allowed_images)
            )));
        }
        if self.require_digest && !has_digest(image) {
            return Err(violation(format!(
                "image {image:?} is not pinned by digest: the operator's policy requires name@sha256:<digest>"
            )));
        }
        Ok(())
    }

    pub fn check_capabilities(&self, caps: &[String]) -> Result<(), Invalid> {
        let allowed: Vec<&str> = self
            .allowed_capabilities
            .iter()
            .map(|c| normalize_cap(c))
            .collect();
        for cap in caps {
            if !allowed.contains(&normalize_cap(cap)) {
                return Err(violation(format!(
                    "capability {cap:?} is not allowed by the operator's policy (allowed: {})",
                    list(&self.allowed_capabilities)
                )));
            }
        }
        Ok(())
    }
}

/// `CAP_SYS_ADMIN` and `SYS_ADMIN` name the same capability.
fn normalize_cap(c: &str) -> &str {
    c.strip_prefix("CAP_").unwrap_or(c)
}

fn has_digest(image: &str) -> bool {
    match image.split_once("@sha256:") {
        Some((name, hex)) => {
            !name.is_empty() && hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
        }
        None => false,
    }
}

/// Glob matching where `*` matches any run of characters (including none) and every other
/// character matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    // Position of the last `*` in the pattern and the text position it was tried at.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{DebugSessionSpec, Shell, Target, TargetKind};
    use crate::session::settings::Settings;

    #[test]
    fn globs() {
        let cases = [
            ("busybox:*", "busybox:1.36", true),
            ("busybox:*", "busybox:", true),
            ("busybox:*", "busybox", false),
            ("busybox:*", "evil/busybox:1", false),
            ("busybox:*", "xbusybox:1", false),
            ("*", "", true),
            ("", "", true),
            ("", "a", false),
            ("registry.local/*", "registry.local/busybox:1.35.0", true),
            ("registry.local/busybox:*", "registry.local/nginx:1", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("a*c", "abcbc", true),
            ("*-prod", "team-prod", true),
            ("*-prod", "team-prod-x", false),
            ("kube-system", "kube-system", true),
            ("kube-system", "kube-system2", false),
        ];
        for (p, t, want) in cases {
            assert_eq!(glob_match(p, t), want, "{p:?} vs {t:?}");
        }
    }

    fn spec(image: Option<&str>, caps: Option<&[&str]>) -> DebugSessionSpec {
        DebugSessionSpec {
            target: Target {
                kind: TargetKind::Deployment,
                name: "web".into(),
                container: None,
                pod: None,
            },
            mode: None,
            profile: None,
            copy: None,
            ttl: None,
            shell: Some(Shell {
                image: image.map(String::from),
                capabilities: caps.map(|c| c.iter().map(|s| s.to_string()).collect()),
                ..Shell::default()
            }),
        }
    }

    const DIGEST: &str =
        "busybox:1.36@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn policy_table() {
        let default = Policy::default();
        let digest = Policy {
            require_digest: true,
            ..Policy::default()
        };
        let allow_list = Policy {
            allowed_namespaces: vec!["team-*".into()],
            ..Policy::default()
        };
        let local = Policy {
            allowed_images: vec!["registry.local/busybox:*".into()],
            ..Policy::default()
        };
        let s = Settings::default();
        // (policy, settings' default image, namespace, spec, error substring or None)
        let cases: Vec<(&Policy, &str, &str, DebugSessionSpec, Option<&str>)> = vec![
            (&default, "busybox:1.36", "team", spec(None, None), None),
            (
                &default,
                "busybox:1.36",
                "team",
                DebugSessionSpec {
                    shell: None,
                    ..spec(None, None)
                },
                None,
            ),
            (
                &default,
                "busybox:1.36",
                "team",
                spec(Some("docker.io/library/busybox:1.36"), None),
                None,
            ),
            (
                &default,
                "busybox:1.36",
                "team",
                spec(Some("alpine:3"), None),
                Some(
                    r#"image "alpine:3" is not allowed by the operator's policy (allowed: busybox:*, docker.io/library/busybox:*, docker.io/busybox:*)"#,
                ),
            ),
            // The default image counts when spec.shell.image is unset.
            (
                &default,
                "alpine:3",
                "team",
                spec(None, None),
                Some(r#"image "alpine:3" is not allowed"#),
            ),
            (
                &local,
                "registry.local/busybox:1.35.0",
                "team",
                spec(None, None),
                None,
            ),
            (
                &local,
                "busybox:1.36",
                "team",
                spec(None, None),
                Some("allowed: registry.local/busybox:*"),
            ),
            (
                &digest,
                "busybox:1.36",
                "team",
                spec(None, None),
                Some("not pinned by digest"),
            ),
            (
                &digest,
                "busybox:1.36",
                "team",
                spec(Some(DIGEST), None),
                None,
            ),
            (
                &digest,
                "busybox:1.36",
                "team",
                // A well-formed digest of another algorithm is not the sha256 pin the policy asks for.
                spec(
                    Some("busybox:1.36@sha512:0123456789abcdef0123456789abcdef0123456789abcdef"),
                    None,
                ),
                Some("not pinned by digest"),
            ),
            (
                &default,
                "busybox:1.36",
                "team",
                spec(Some(DIGEST), None),
                None,
            ),
            (
                &default,
                "busybox:1.36",
                "kube-system",
                spec(None, None),
                Some(
                    r#"namespace "kube-system" is denied by the operator's policy (denied: kube-system)"#,
                ),
            ),
            (
                &allow_list,
                "busybox:1.36",
                "team-a",
                spec(None, None),
                None,
            ),
            (
                &allow_list,
                "busybox:1.36",
                "other",
                spec(None, None),
                Some(
                    r#"namespace "other" is not allowed by the operator's policy (allowed: team-*)"#,
                ),
            ),
            (
                &default,
                "busybox:1.36",
                "team",
                spec(None, Some(&["SYS_PTRACE"])),
                None,
            ),
            (
                &default,
                "busybox:1.36",
                "team",
                spec(None, Some(&["CAP_SYS_PTRACE"])),
                None,
            ),
            (
                &default,
                "busybox:1.36",
                "team",
                spec(None, Some(&[])),
                None,
            ),
            (
                &default,
                "busybox:1.36",
                "team",
                spec(None, Some(&["SYS_PTRACE", "SYS_ADMIN"])),
                Some(
                    r#"capability "SYS_ADMIN" is not allowed by the operator's policy (allowed: SYS_PTRACE)"#,
                ),
            ),
            (
                &default,
                "busybox:1.36",
                "team",
                spec(None, Some(&["CAP_SYS_ADMIN"])),
                Some(r#"capability "CAP_SYS_ADMIN""#),
            ),
            (
                &default,
                "busybox:1.36",
                "team",
                spec(None, Some(&["ALL"])),
                Some(r#"capability "ALL""#),
            ),
            (
                &default,
                "busybox:1.36",
                "team",
                spec(None, Some(&["NET_ADMIN"])),
                Some("NET_ADMIN"),
            ),
        ];
        for (policy, default_image, ns, spec, want) in cases {
            let settings = Settings {
                default_image: default_image.into(),
                ..s.clone()
            };
            let got = super::super::validate::resolve(&spec, &settings)
                .and_then(|asked| policy.check(ns, &spec, &asked));
            match want {
                None => assert_eq!(got, Ok(()), "{ns} {spec:?}"),
                Some(text) => {
                    let err = got.expect_err(text);
                    assert_eq!(err.reason, reason::POLICY_VIOLATION);
                    assert!(
                        err.message.contains(text),
                        "{text:?} not in {:?}",
                        err.message
                    );
                }
            }
        }
    }

    #[test]
    fn the_default_image_is_always_allowed_and_the_own_namespace_denied() {
        let p = Policy {
            allowed_images: vec!["registry.local/*".into()],
            ..Policy::default()
        }
        .complete("busybox:1.36", Some("debugsession-system"));
        assert_eq!(p.allowed_images, ["registry.local/*", "busybox:1.36"]);
        assert_eq!(p.denied_namespaces, ["kube-system", "debugsession-system"]);
        assert!(p.check_image("busybox:1.36").is_ok());
        assert!(p.check_image("busybox:1.37").is_err());
        assert!(p.check_namespace("debugsession-system").is_err());
        // Already covered: nothing added twice.
        let again = p
            .clone()
            .complete("busybox:1.36", Some("debugsession-system"));
        assert_eq!(again, p);
        let none = Policy::default().complete("busybox:1.36", None);
        assert_eq!(none.denied_namespaces, ["kube-system"]);
        assert_eq!(
            none.allowed_images.len(),
            3,
            "busybox:* covers the default image"
        );
    }

    #[test]
    fn empty_allow_lists_allow_nothing() {
        let p = Policy {
            allowed_images: vec![],
            allowed_capabilities: vec![],
            ..Policy::default()
        };
        let err = p.check_image("busybox:1").unwrap_err();
        assert!(err.message.contains("(allowed: none)"), "{}", err.message);
        assert!(p.check_capabilities(&["SYS_PTRACE".into()]).is_err());
        assert!(p.check_capabilities(&[]).is_ok());
    }
}
