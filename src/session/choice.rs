//! Closed sets of names the operator takes on its command line and prints in messages (modes,
//! profiles): listing, parsing one, parsing a comma-separated list.

use crate::api::{Mode, Profile};

/// A value out of a closed set of names.
pub trait Choice: Copy + PartialEq + Sized + 'static {
    /// Every value, in the order lists are printed.
    const ALL: &'static [Self];
    /// What a value is called in messages (`mode`, `profile`).
    const WHAT: &'static str;
    fn name(self) -> &'static str;
}

impl Choice for Mode {
    const ALL: &'static [Self] = &Mode::ALL;
    const WHAT: &'static str = "mode";
    fn name(self) -> &'static str {
        self.as_str()
    }
}

impl Choice for Profile {
    const ALL: &'static [Self] = &Profile::ALL;
    const WHAT: &'static str = "profile";
    fn name(self) -> &'static str {
        self.as_str()
    }
}

/// `a, b, c`, or `none` for an empty list.
pub fn names<T: Choice>(items: &[T]) -> String {
    if items.is_empty() {
        return "none".to_string();
    }
    items
        .iter()
        .map(|i| i.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses a name, in any case.
pub fn parse<T: Choice>(name: &str) -> Option<T> {
    T::ALL
        .iter()
        .copied()
        .find(|v| v.name().eq_ignore_ascii_case(name.trim()))
}

/// Parses a comma-separated list such as `patch,copy` (any case, spaces and repeats allowed). An
/// unknown name, or a list that names none, is an error.
pub fn parse_list<T: Choice>(csv: &str) -> Result<Vec<T>, String> {
    let all = names(T::ALL);
    let mut out = Vec::new();
    for item in csv.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let v = parse(item)
            .ok_or_else(|| format!("unknown {} {item:?} (the {}s are {all})", T::WHAT, T::WHAT))?;
        if !out.contains(&v) {
            out.push(v);
        }
    }
    if out.is_empty() {
        return Err(format!("no {} given (the {}s are {all})", T::WHAT, T::WHAT));
    }
    Ok(out)
}
