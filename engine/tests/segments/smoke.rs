//! A first look at the engine: a heap ring and a channel in one process.

use shmpipe_engine::{channel, HeapRing};

#[test]
fn heap_ring_basic_stream_and_message() {
    let (mut tx, mut rx) = HeapRing::new(1024).unwrap().split();
    assert!(tx.try_push(b"hello ", 0).unwrap());
    assert!(tx.try_push(b"world", 0).unwrap());
    let mut buf = [0u8; 32];
    assert_eq!(rx.read_stream(&mut buf).unwrap(), Some(11));
    assert_eq!(&buf[..11], b"hello world");
    assert_eq!(rx.read_stream(&mut buf).unwrap(), None);
    assert!(tx.try_push(&[1; 10], 0).unwrap());
    let mut small = [0u8; 4];
    let m = rx.read_message(&mut small).unwrap().unwrap();
    assert_eq!((m.len, m.end), (4, false));
    let m = rx.read_message(&mut small).unwrap().unwrap();
    assert_eq!((m.len, m.end), (4, false));
    let m = rx.read_message(&mut small).unwrap().unwrap();
    assert_eq!((m.len, m.end), (2, true));
}

#[test]
fn channel_threads_large_messages() {
    let (mut tx, mut rx) = channel(4096).unwrap();
    let t = std::thread::spawn(move || {
        for i in 0..50u32 {
            let v: Vec<u8> = (0..(i as usize * 997))
                .map(|j| (j as u32 ^ i) as u8)
                .collect();
            tx.write(&v).unwrap();
        }
    });
    let mut buf = vec![0u8; 50 * 997];
    for i in 0..50u32 {
        let m = rx.read_message(&mut buf).unwrap();
        assert!(m.end);
        assert_eq!(m.len, i as usize * 997);
        assert!(buf[..m.len]
            .iter()
            .enumerate()
            .all(|(j, &b)| b == (j as u32 ^ i) as u8));
    }
    t.join().unwrap();
    assert!(matches!(
        rx.read(&mut buf),
        Err(shmpipe_engine::Error::PeerClosed)
    ));
}
