//! The `futex_waitv` system call (Linux 5.16): its ABI struct, whether
//! this process may use it, and what each of its results means for a
//! bridge thread. Kept apart from the bridge's algorithm so that the one
//! place that speaks the kernel's ABI is small and read on its own.

use std::io;

/// `struct futex_waitv` of the kernel ABI.
#[repr(C)]
#[derive(Clone, Copy)]
pub(super) struct FutexWaitv {
    pub(super) val: u64,
    pub(super) uaddr: u64,
    pub(super) flags: u32,
    pub(super) reserved: u32,
}

/// `FUTEX2_SIZE_U32`; without `FUTEX2_PRIVATE` (128): shared futexes.
pub(super) const FUTEX2_SIZE_U32: u32 = 2;

/// Whether `futex_waitv` can be used: an empty wait list is `EINVAL`
/// where it exists and is allowed. Anything else is refused: `ENOSYS`
/// before Linux 5.16, `EPERM` (or any errno) from a seccomp filter, or a
/// success the kernel never gives; a bridge on such a call would spin or
/// never wake.
pub(super) fn probe() -> io::Result<()> {
    // SAFETY: a null list of length 0, no timeout: the kernel reads nothing.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex_waitv,
            core::ptr::null::<FutexWaitv>(),
            0u32,
            0u32,
            core::ptr::null::<libc::timespec>(),
            libc::CLOCK_MONOTONIC,
        )
    };
    let errno = io::Error::last_os_error().raw_os_error();
    probe_verdict(r, errno)
}

/// [`probe`]'s verdict on the call's result and `errno`.
fn probe_verdict(r: libc::c_long, errno: Option<i32>) -> io::Result<()> {
    match (r, errno) {
        (-1, Some(libc::EINVAL)) => Ok(()),
        (-1, Some(e)) => Err(io::Error::from_raw_os_error(e)),
        _ => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "futex_waitv accepted an empty wait list",
        )),
    }
}

/// What a `futex_waitv` return means for the bridge's loop.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Woken, a word differed (`EAGAIN`), the deadline passed, or a
    /// signal interrupted: rebuild and wait again.
    Again,
    /// Any other error (`EPERM` from a seccomp filter that let the probe
    /// through, `EFAULT`, `ENOMEM`, ...): waiting again would fail the same
    /// way at once, a spin. The shard gives up.
    Fail(i32),
}

pub(super) fn outcome(r: libc::c_long, errno: Option<i32>) -> Outcome {
    if r >= 0 {
        return Outcome::Again;
    }
    match errno {
        Some(libc::EAGAIN | libc::ETIMEDOUT | libc::EINTR) => Outcome::Again,
        Some(e) => Outcome::Fail(e),
        None => Outcome::Fail(libc::EIO),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_einval_passes_the_probe() {
        assert!(probe_verdict(-1, Some(libc::EINVAL)).is_ok());
        for e in [libc::ENOSYS, libc::EPERM, libc::EACCES, libc::EFAULT] {
            let err = probe_verdict(-1, Some(e)).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(e));
        }
        assert!(probe_verdict(0, Some(0)).is_err());
    }

    #[test]
    fn only_wake_timeout_mismatch_and_signal_wait_again() {
        assert_eq!(outcome(0, None), Outcome::Again);
        for e in [libc::EAGAIN, libc::ETIMEDOUT, libc::EINTR] {
            assert_eq!(outcome(-1, Some(e)), Outcome::Again);
        }
        for e in [libc::EPERM, libc::EFAULT, libc::ENOMEM, libc::EINVAL] {
            assert_eq!(outcome(-1, Some(e)), Outcome::Fail(e));
        }
    }
}
