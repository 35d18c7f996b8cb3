//! The eval set's content hash (FNV-1a, 64 bit, over every case file and image), so a
//! sidecar can tell whether it was made from the same set.

/// FNV-1a, 64 bit.
pub(super) struct Fnv1a(u64);

impl Fnv1a {
    pub(super) fn new() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
    pub(super) fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    /// A name and its contents, length-prefixed so that boundaries cannot shift.
    pub(super) fn write_entry(&mut self, name: &str, contents: &[u8]) {
        self.write(&(name.len() as u64).to_le_bytes());
        self.write(name.as_bytes());
        self.write(&(contents.len() as u64).to_le_bytes());
        self.write(contents);
    }
    pub(super) fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_reference_values() {
        let mut h = Fnv1a::new();
        assert_eq!(h.hex(), "cbf29ce484222325");
        h.write(b"a");
        assert_eq!(h.hex(), "af63dc4c8601ec8c");
        let mut h = Fnv1a::new();
        h.write(b"foobar");
        assert_eq!(h.hex(), "85944171f73967e8");
    }
}
