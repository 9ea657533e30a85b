//! A small pseudo-random generator for the measurements that need spread,
//! not statistical quality (the kill bench's random wait before each kill).
//!
//! xorshift64* (Vigna): a 64-bit xorshift step followed by a multiply. The
//! state must never be zero (xorshift maps zero to zero), so every
//! constructor forces the low bit on. It lives here, in the benches crate,
//! rather than being borrowed from the engine's test helpers, which are not
//! part of any library.

/// xorshift64*: cheap, and uniform enough to spread waits over an interval.
///
/// ```
/// use shmpipe_benches::rng::Rng;
/// let mut rng = Rng::from_seed(42);
/// assert!(rng.below(10) < 10);
/// ```
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from the clock and the process id, so that two
    /// runs (or two processes started at once) draw different sequences.
    ///
    /// ```
    /// let mut rng = shmpipe_benches::rng::Rng::seeded();
    /// assert!(rng.below(5_000) < 5_000);
    /// ```
    pub fn seeded() -> Rng {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Rng::from_seed(t ^ u64::from(std::process::id()).rotate_left(32))
    }

    /// A generator with a fixed seed (any value; zero is made nonzero).
    ///
    /// ```
    /// use shmpipe_benches::rng::Rng;
    /// let (mut a, mut b) = (Rng::from_seed(7), Rng::from_seed(7));
    /// assert_eq!(a.below(1000), b.below(1000));
    /// ```
    pub fn from_seed(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// Uniform enough in `0..n` (`n > 0`; panics on zero, as `%` does).
    ///
    /// ```
    /// let mut rng = shmpipe_benches::rng::Rng::from_seed(1);
    /// assert!((0..100).all(|_| rng.below(3) < 3));
    /// ```
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_stay_in_range_and_vary() {
        const N: u64 = 5000;
        let mut rng = Rng::from_seed(12345);
        let v: Vec<u64> = (0..1000).map(|_| rng.below(N)).collect();
        assert!(v.iter().all(|&d| d < N));
        assert!(v.iter().any(|&d| d < N / 4));
        assert!(v.iter().any(|&d| d > N * 3 / 4));
    }

    #[test]
    fn a_zero_seed_does_not_stick_at_zero() {
        let mut rng = Rng::from_seed(0);
        assert!((0..10).any(|_| rng.below(u64::MAX) != 0));
    }
}
