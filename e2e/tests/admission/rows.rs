//! The forbidden requests as rows of a table: each is tried, must be refused (or undone), and is
//! printed `refused  <row>: <message>` or `ALLOWED  <row>: <why>`.

use debugsession_e2e::*;

use crate::Run;
use crate::sessions::patch_session;

/// A forbidden request: Ok(message) when refused (or undone), Err(why not) otherwise.
type Attempt = Box<dyn Fn(&mut Run) -> R<String>>;
pub type Row = (String, Attempt);

pub fn row(name: impl Into<String>, f: impl Fn(&mut Run) -> R<String> + 'static) -> Row {
    (name.into(), Box::new(f))
}

/// Words of the webhook's refusals.
pub const DENIED: &str = "denied the request";
pub const NO_EXEC: &str = "may not create pods/exec or pods/attach";

/// Tries every row, counting them in `run`; Err naming the rows that were not refused.
pub fn attempt(run: &mut Run, rows: Vec<Row>) -> R<()> {
    let mut failures = Vec::new();
    for (name, attempt) in rows {
        run.tried += 1;
        match attempt(run) {
            Ok(msg) => {
                run.refused += 1;
                println!("  refused  {name}: {msg}");
            }
            Err(e) => {
                println!("  ALLOWED  {name}: {e}");
                failures.push(format!("{name}: {e}"));
            }
        }
    }
    ensure(failures.is_empty(), || failures.join("\n  "))
}

/// Ok when `msg` holds every word of `words`.
pub fn has_words(msg: &str, words: &[&str]) -> R<()> {
    match words.iter().find(|w| !msg.contains(*w)) {
        Some(w) => Err(format!("refused, but the message lacks {w:?}: {msg}")),
        None => Ok(()),
    }
}

/// `kubectl create` as `user` must fail with every word of `words` in stderr, and create nothing.
pub fn refused_create(user: &str, ns: &str, yaml: &str, words: &[&str]) -> R<String> {
    let out = kubectl_in(yaml, &["create", "-n", ns, "--as", user, "-f", "-"]);
    if out.ok {
        return Err(format!("was admitted: {}", out.stdout.trim()));
    }
    let msg = out.stderr.trim().to_string();
    has_words(&msg, words)?;
    Ok(msg)
}

/// A patch of the session as `user` must fail with every word of `words`, and leave the session's
/// spec, generation and finalizers as they were.
pub fn refused_patch(
    user: &str,
    ns: &str,
    name: &str,
    kind: &str,
    patch: &str,
    words: &[&str],
) -> R<String> {
    let before = get_session(ns, name)?;
    let out = patch_session(ns, name, Some(user), kind, patch);
    if out.ok {
        return Err(format!("was admitted: {}", out.stdout.trim()));
    }
    let msg = out.stderr.trim().to_string();
    has_words(&msg, words)?;
    let after = get_session(ns, name)?;
    for pointer in ["/spec", "/metadata/generation", "/metadata/finalizers"] {
        ensure(after.pointer(pointer) == before.pointer(pointer), || {
            format!(
                "refused, yet {pointer} changed: {:?} -> {:?}",
                before.pointer(pointer),
                after.pointer(pointer)
            )
        })?;
    }
    Ok(msg)
}
