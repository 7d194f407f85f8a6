//! The request pattern every client in the repository uses: byte `j` of request `k` on
//! connection `c` is `(c + k + j) mod 251`. A prime modulus keeps neighbouring requests
//! and connections different, so a crossed or stale echo never verifies.

const MODULUS: u64 = 251;

/// Fills `buf` with request `request` of connection `conn`.
pub fn fill(buf: &mut [u8], conn: usize, request: u64) {
    let mut value = ((conn as u64 % MODULUS + request % MODULUS) % MODULUS) as u8;
    for byte in buf {
        *byte = value;
        value = if value as u64 == MODULUS - 1 { 0 } else { value + 1 };
    }
}

/// A fresh buffer holding request `request` of connection `conn`.
pub fn make(len: usize, conn: usize, request: u64) -> Vec<u8> {
    let mut buf = vec![0; len];
    fill(&mut buf, conn, request);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_follows_the_contract() {
        let buf = make(600, 7, 3);
        for (j, b) in buf.iter().enumerate() {
            assert_eq!(*b as usize, (7 + 3 + j) % 251);
        }
    }

    #[test]
    fn neighbouring_requests_differ() {
        assert_ne!(make(100, 1, 0), make(100, 0, 0));
        assert_ne!(make(100, 0, 1), make(100, 0, 0));
    }
}
