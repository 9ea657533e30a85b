//! Several receivers of one end serialised by the reader lock, under loom,
//! running the production `Receiver`: a message read in pieces by different
//! receivers continues exactly where the previous one stopped (the shared
//! `head_offset` handed over through the resync `Receiver` decides on),
//! while the sender is still publishing. Ends stay open until the others
//! are done (see `mpsc.rs` on why closes are not modelled).
#![cfg(loom)]

use loom::thread;
use shmpipe_engine::{channel, MessageRead, Receiver};
use shmpipe_loom_tests::{model, park_only_policy, payload};

const LEN: usize = 40;
const PIECE: usize = 16;

/// One receiver: reads up to `PIECE` bytes of the head message, parking
/// (outside the lock, as `Receiver` does) until it is published.
fn spawn_reader(mut rx: Receiver) -> thread::JoinHandle<(Vec<u8>, Receiver)> {
    rx.set_wait_policy(park_only_policy());
    thread::spawn(move || {
        let mut buf = [0u8; PIECE];
        let m = rx.read_message(&mut buf).unwrap();
        assert_eq!(
            m,
            MessageRead {
                len: PIECE,
                end: false
            }
        );
        (buf.to_vec(), rx)
    })
}

#[test]
fn readers_continue_a_message_in_order() {
    model("readers_continue_a_message_in_order", || {
        let (mut tx, rx) = channel(256).unwrap();
        let readers = [spawn_reader(rx.try_clone().unwrap()), spawn_reader(rx)];
        let message = payload(5, LEN);
        tx.write(&message).unwrap();
        let (mut pieces, mut rxs): (Vec<Vec<u8>>, Vec<Receiver>) =
            readers.into_iter().map(|r| r.join().unwrap()).unzip();
        pieces.sort_unstable_by_key(|piece| message.windows(PIECE).position(|w| w == &piece[..]));
        assert_eq!(pieces[0], message[..PIECE]);
        assert_eq!(pieces[1], message[PIECE..2 * PIECE]);
        let mut buf = [0u8; LEN];
        let m = rxs[0].read_message(&mut buf).unwrap();
        assert!(m.end);
        assert_eq!(&buf[..m.len], &message[2 * PIECE..]);
    });
}
