//! Reading the objects kubectl returns: fields at a JSON pointer, conditions, the containers of a
//! pod template (the shell among them, and a patch that takes it out), the holder annotation,
//! field managers, and differences for failure messages.

use std::collections::BTreeSet;

use crate::{R, Value, ensure};

/// Default name of the shell container the operator adds.
pub const SHELL: &str = "debug-shell";

/// The annotation naming the session that holds a workload.
pub const HOLDER: &str = "debugsession.dev/session";
/// [`HOLDER`] as a JSON pointer into the workload.
pub const HOLDER_PTR: &str = "/metadata/annotations/debugsession.dev~1session";

/// String at a JSON pointer ("" when absent).
pub fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// The condition of `type_` in `obj.status.conditions`.
pub fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// "status/reason" of a condition, for messages.
pub fn cond_summary(obj: &Value, type_: &str) -> String {
    match condition(obj, type_) {
        Some(c) => format!(
            "{type_}={} reason={} message={:?}",
            s(c, "/status"),
            s(c, "/reason"),
            s(c, "/message")
        ),
        None => format!("{type_} absent"),
    }
}

/// The containers of a pod template (or of a pod).
pub fn containers(template: &Value) -> Vec<Value> {
    template
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// The shell container of a pod template (or of a pod), if any.
pub fn shell_of(template: &Value) -> Option<&Value> {
    template
        .pointer("/spec/containers")?
        .as_array()?
        .iter()
        .find(|c| c["name"] == SHELL)
}

/// Whether a pod template (or a pod) has the shell container.
pub fn has_shell(template: &Value) -> bool {
    shell_of(template).is_some()
}

/// A JSON patch of a workload that takes the shell container out of its pod template `template`
/// (testing the container's name first), as someone other than the operator would.
pub fn shell_removal_patch(template: &Value) -> R<String> {
    let idx = containers(template)
        .iter()
        .position(|c| c["name"] == SHELL)
        .ok_or("no shell in the template")?;
    Ok(format!(
        r#"[{{"op":"test","path":"/spec/template/spec/containers/{idx}/name","value":"{SHELL}"}},{{"op":"remove","path":"/spec/template/spec/containers/{idx}"}}]"#
    ))
}

/// The field managers of an object (read with `--show-managed-fields`).
pub fn managers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|m| s(m, "/manager").to_string())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
}

/// The operator's field managers (`debugsession/...`) of an object.
pub fn our_managers(obj: &Value) -> Vec<String> {
    managers(obj)
        .into_iter()
        .filter(|m| m.starts_with("debugsession/"))
        .collect()
}

/// Differences between two JSON values as pointer paths (for failure messages).
pub fn diff(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = format!("{path}/{k}");
                match (x.get(k), y.get(k)) {
                    (Some(u), Some(v)) => diff(u, v, &p, out),
                    (Some(u), None) => out.push(format!("{p}: removed (was {u})")),
                    (None, Some(v)) => out.push(format!("{p}: added {v}")),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                diff(u, v, &format!("{path}/{i}"), out);
            }
        }
        _ if a != b => out.push(format!("{path}: {a} -> {b}")),
        _ => {}
    }
}

/// Ok when two pod templates are equal; otherwise an error listing how they differ.
pub fn template_diff(before: &Value, after: &Value) -> R<()> {
    let mut d = Vec::new();
    diff(before, after, "/spec/template", &mut d);
    ensure(d.is_empty(), || {
        format!("pod template differs from the original: {}", d.join("; "))
    })
}
