//! The API server's own grammars, checked before the operator touches a workload: Kubernetes
//! quantities, environment variable names, DNS-1123 labels and image references.

/// The value of a Kubernetes quantity (`100m`, `1.5Gi`, `2e3`) as a number, or `None` when the
/// text is not a quantity: `<sign><digits>[.<digits>]<suffix>` with suffix one of the binary SI
/// (`Ki` .. `Ei`), decimal SI (`n`, `u`, `m`, ``, `k`, `M`, `G`, `T`, `P`, `E`) or a decimal
/// exponent (`e3`, `E-2`).
pub fn quantity(text: &str) -> Option<f64> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1.0, &text[1..]),
        b'-' => (-1.0, &text[1..]),
        _ => (1.0, text),
    };
    let split = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(split);
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || (number.contains('.') && int.is_empty() && frac.is_empty())
    {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    let scale = match suffix {
        "" => 1.0,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        exp if exp.starts_with(['e', 'E']) => {
            let digits = exp[1..].strip_prefix(['+', '-']).unwrap_or(&exp[1..]);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            10f64.powi(exp[1..].parse::<i32>().ok()?)
        }
        _ => return None,
    };
    Some(sign * value * scale)
}

/// An environment variable name as the API server accepts it: `[-._a-zA-Z][-._a-zA-Z0-9]*`.
pub fn is_env_var_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b"-._".contains(&b))
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
}

/// A DNS-1123 label: at most 63 lowercase letters, digits and '-', starting and ending with an
/// alphanumeric character (container names).
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Why `image` is not an image reference (`[registry[:port]/]path[:tag][@algo:hex]`), if it is
/// not; the grammar of the distribution reference library that the kubelet uses.
pub fn image_reference_error(image: &str) -> Option<String> {
    if image.is_empty() {
        return Some("it is empty".into());
    }
    if image.len() > 512 {
        return Some("it is longer than 512 characters".into());
    }
    let (rest, digest) = match image.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (image, None),
    };
    if let Some(d) = digest {
        let Some((algo, hex)) = d.split_once(':') else {
            return Some(format!("digest {d:?} is not <algorithm>:<hex>"));
        };
        let algo_ok = !algo.is_empty()
            && algo
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+.-_".contains(&b));
        if !algo_ok || hex.len() < 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Some(format!("digest {d:?} is not <algorithm>:<hex>"));
        }
    }
    // A tag follows the last ':' after the last '/'.
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(t) = tag {
        let ok = !t.is_empty()
            && t.len() <= 128
            && t.bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !ok {
            return Some(format!(
                "tag {t:?} is not valid (letters, digits, '_', '.', '-'; at most 128)"
            ));
        }
    }
    let mut components: Vec<&str> = name.split('/').collect();
    // The first component is a registry when it has a '.' or ':' or is "localhost".
    if components.len() > 1 {
        let first = components[0];
        if first.contains('.') || first.contains(':') || first == "localhost" {
            let (host, port) = first.split_once(':').unwrap_or((first, ""));
            let host_ok = !host.is_empty()
                && host.split('.').all(|l| {
                    !l.is_empty()
                        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                });
            let port_ok = !first.contains(':')
                || (!port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()));
            if !host_ok || !port_ok {
                return Some(format!("registry {first:?} is not a host[:port]"));
            }
            components.remove(0);
        }
    }
    for c in components {
        if !path_component(c) {
            return Some(format!(
                "path component {c:?} is not valid (lowercase letters and digits, separated by '.', '_', '__' or '-')"
            ));
        }
    }
    None
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`
fn path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        let ok = [
            ("1", 1.0),
            ("100m", 0.1),
            ("1.5", 1.5),
            (".5", 0.5),
            ("5.", 5.0),
            ("1Ki", 1024.0),
            ("2Mi", 2.0 * 1024.0 * 1024.0),
            ("1Gi", 1024f64.powi(3)),
            ("1G", 1e9),
            ("1k", 1e3),
            ("1e3", 1e3),
            ("1E-2", 0.01),
            ("+2", 2.0),
            ("-1", -1.0),
            ("250u", 250e-6),
            ("0", 0.0),
        ];
        for (text, want) in ok {
            let got = quantity(text).unwrap_or_else(|| panic!("{text} should parse"));
            assert!(
                (got - want).abs() <= want.abs() * 1e-12,
                "{text}: {got} != {want}"
            );
        }
        for bad in [
            "", "lots", "1.5.5", "1KB", "1ki", "Gi", "1 Gi", "1e", "1e+", "--1", ".", "1Gib",
            "0x10", "1,5",
        ] {
            assert_eq!(quantity(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn env_var_names() {
        for ok in ["A", "a_b", "_X", "-x", ".env", "PATH2", "x.y-z"] {
            assert!(is_env_var_name(ok), "{ok}");
        }
        for bad in ["", "1BAD", "A=B", "A B", "ä", "a$b"] {
            assert!(!is_env_var_name(bad), "{bad}");
        }
    }

    #[test]
    fn dns_labels() {
        assert!(is_dns_label("debug-shell"));
        assert!(is_dns_label("a1"));
        for bad in ["", "-a", "a-", "A", "a_b", &"a".repeat(64)] {
            assert!(!is_dns_label(bad), "{bad}");
        }
    }

    #[test]
    fn image_references() {
        for ok in [
            "busybox",
            "busybox:1.36",
            "library/busybox:latest",
            "docker.io/library/busybox:1.36",
            "registry.local/busybox:1.35.0",
            "localhost:5000/a/b_c/d__e/f-g:v1",
            "localhost/x",
            "gcr.io/distroless/base@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "busybox:1.36@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "my-registry.example.com:443/team/app:2026.11.30_1",
        ] {
            assert_eq!(image_reference_error(ok), None, "{ok}");
        }
        for bad in [
            "",
            "Busybox:Latest",
            "busybox:",
            "bad image",
            "busybox:-x",
            "a//b",
            "/busybox",
            "busybox/",
            "busybox@sha256:xyz",
            "busybox@nodigest",
            "host:port/x",
            "a..b",
            "a___b",
        ] {
            assert!(image_reference_error(bad).is_some(), "{bad:?}");
        }
    }
}
