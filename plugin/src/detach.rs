//! The detach keys, Ctrl-P Ctrl-Q as in kubectl and docker: found in the typed bytes, which are
//! forwarded without them.

pub const CTRL_P: u8 = 0x10;
pub const CTRL_Q: u8 = 0x11;

/// Scans input chunk by chunk; a Ctrl-P at the end of a chunk waits for the next one.
#[derive(Default)]
pub struct Detach {
    held: bool,
}

impl Detach {
    /// The bytes to forward, and whether the detach keys were typed (the bytes after them are
    /// dropped).
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len() + 1);
        for &b in input {
            if self.held {
                self.held = false;
                if b == CTRL_Q {
                    return (out, true);
                }
                out.push(CTRL_P);
            }
            if b == CTRL_P {
                self.held = true;
            } else {
                out.push(b);
            }
        }
        (out, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_keys_across_chunks() {
        let mut d = Detach::default();
        assert_eq!(d.feed(b"ls\r"), (b"ls\r".to_vec(), false));
        assert_eq!(d.feed(&[b'a', CTRL_P]), (b"a".to_vec(), false));
        assert_eq!(d.feed(&[CTRL_Q, b'x']), (vec![], true));
        let mut d = Detach::default();
        assert_eq!(d.feed(&[CTRL_P, b'x']), (vec![CTRL_P, b'x'], false));
        assert_eq!(d.feed(&[CTRL_P, CTRL_P, CTRL_Q]), (vec![CTRL_P], true));
        assert_eq!(Detach::default().feed(&[4]), (vec![4], false));
    }
}
