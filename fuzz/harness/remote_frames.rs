//! Fuzz body: the remote-pipe frame decoder (`shmpipe::remote::frame`),
//! which reads what a remote peer sent. Any bytes either decode to frames
//! that encode back to exactly the bytes they came from, stop at an
//! incomplete frame, or are refused with an error; nothing panics, and a
//! length above the maximum is refused from the header alone.

use shmpipe::remote::frame::{Frame, FrameError, HEADER, MAX_PAYLOAD};

pub fn check(data: &[u8]) {
    let mut rest = data;
    loop {
        match Frame::decode(rest) {
            Ok(Some((frame, used))) => {
                assert!(used >= HEADER && used <= rest.len());
                assert!(used - HEADER <= MAX_PAYLOAD);
                assert_eq!(
                    frame.encode(),
                    &rest[..used],
                    "{frame:?} does not encode back to its bytes"
                );
                rest = &rest[used..];
            }
            Ok(None) => {
                // Incomplete: a well-formed header, or fewer bytes than one.
                if let Some(h) = rest.first_chunk::<HEADER>() {
                    let (_, len) =
                        Frame::header(h).expect("an incomplete frame has a valid header");
                    assert!(rest.len() < HEADER + len);
                }
                return;
            }
            Err(FrameError::TooLong(n)) => {
                assert!(n as usize > MAX_PAYLOAD);
                return;
            }
            Err(_) => return,
        }
    }
}
