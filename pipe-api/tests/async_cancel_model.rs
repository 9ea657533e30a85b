//! Async cancellation under load, against a model: random sequences of
//! async reads and writes, each polled a few times and then either awaited
//! or dropped (cancelled) while it may be pending, on an anonymous byte
//! pipe and on a named message pipe. The model is the queue of bytes (or
//! messages) that completed writes published; the checks are that nothing
//! is lost (every completed write's bytes arrive), nothing is duplicated,
//! no dropped read consumed anything, and no byte of a dropped write is
//! ever seen (a pending write has published nothing), so no cancelled
//! message is seen, whole or in part.
//!
//! Everything runs on one current-thread runtime, so what is pending is
//! decided by the model: a read is pending exactly when nothing is queued,
//! a write exactly when nothing of it fits the quota. The seed is fixed.

mod common;

use common::named::unique_name;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use shmpipe::named::{ClientOptions, ServerOptions};
use shmpipe::tokio::{NamedPipeClient, NamedPipeServer};
use shmpipe::{PipeBuilder, PipeType, ReadMode};
use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;

const QUOTA: u32 = 1024;

#[derive(Debug, Clone)]
enum Op {
    /// A write of `len` bytes, polled `polls` times, then awaited (`keep`)
    /// or dropped.
    Write { len: usize, polls: u8, keep: bool },
    /// A read into a buffer of `len` bytes, likewise.
    Read { len: usize, polls: u8, keep: bool },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1usize..1500, 1u8..3, any::<bool>()).prop_map(|(len, polls, keep)| Op::Write {
            len,
            polls,
            keep
        }),
        (1usize..1500, 1u8..3, any::<bool>()).prop_map(|(len, polls, keep)| Op::Read {
            len,
            polls,
            keep
        }),
    ]
}

async fn poll_once<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    poll_fn(|cx| Poll::Ready(Pin::new(&mut *f).poll(cx))).await
}

/// Polls `f` up to `polls` times; `Some` once it completed.
async fn poll_some<F: Future + Unpin>(f: &mut F, polls: u8) -> Option<F::Output> {
    for _ in 0..polls {
        if let Poll::Ready(r) = poll_once(f).await {
            return Some(r);
        }
    }
    None
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Byte `i` of the stream: every written byte is unique enough to catch a
/// duplicate or a skip.
fn byte(i: u64) -> u8 {
    (i % 251) as u8
}

fn run_bytes(ops: &[Op]) {
    runtime().block_on(async {
        let (r, w) = PipeBuilder::new().buffer_size(QUOTA).build().unwrap();
        let reader = shmpipe::tokio::PipeReader::from_std(r).unwrap();
        let writer = shmpipe::tokio::PipeWriter::from_std(w).unwrap();
        // The model: bytes queued, and the positions written and read.
        let mut queued = 0usize;
        let (mut written, mut read) = (0u64, 0u64);
        for op in ops {
            match *op {
                Op::Write { len, polls, keep } => {
                    let data: Vec<u8> = (written..written + len as u64).map(byte).collect();
                    let mut f = Box::pin(writer.write_pipe(&data));
                    let fits = (QUOTA as usize).saturating_sub(queued);
                    let mut got = poll_some(&mut f, polls).await;
                    // Pending exactly when nothing fits.
                    assert_eq!(got.is_none(), fits == 0, "{op:?} queued {queued}");
                    if got.is_none() && keep {
                        // Make room for it: read everything queued.
                        let mut sink = vec![0u8; queued];
                        let n = reader.try_read(&mut sink).unwrap();
                        assert_eq!(n, queued);
                        for (k, &b) in sink.iter().enumerate() {
                            assert_eq!(b, byte(read + k as u64), "stream byte {}", read + k as u64);
                        }
                        read += n as u64;
                        queued = 0;
                        got = Some(f.await);
                    }
                    // Dropped while pending: published nothing.
                    if let Some(n) = got {
                        let n = n.unwrap();
                        // What fits the quota, at once or once made room for.
                        assert_eq!(n, len.min(QUOTA as usize - queued), "{op:?}");
                        written += n as u64;
                        queued += n;
                    }
                }
                Op::Read { len, polls, keep } => {
                    let mut buf = vec![0u8; len];
                    let mut f = Box::pin(reader.read_pipe(&mut buf));
                    let mut got = poll_some(&mut f, polls).await;
                    assert_eq!(got.is_none(), queued == 0, "{op:?}");
                    if got.is_none() && keep {
                        // Complete it with one byte written by the writer.
                        let one = [byte(written)];
                        assert_eq!(writer.try_write(&one).unwrap(), 1);
                        written += 1;
                        queued += 1;
                        got = Some(f.await);
                    } else {
                        drop(f);
                    }
                    if let Some(n) = got {
                        let n = n.unwrap();
                        assert_eq!(n, len.min(queued));
                        for (k, &b) in buf[..n].iter().enumerate() {
                            assert_eq!(b, byte(read + k as u64), "stream byte {}", read + k as u64);
                        }
                        read += n as u64;
                        queued -= n;
                    }
                    assert_eq!(reader.available(), queued as u64, "a dropped read consumed");
                }
            }
        }
        drop(writer);
        let mut rest = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut { reader }, &mut rest)
            .await
            .unwrap();
        assert_eq!(rest.len(), queued);
        for (k, &b) in rest.iter().enumerate() {
            assert_eq!(b, byte(read + k as u64));
        }
    });
}

fn run_messages(ops: &[Op]) {
    runtime().block_on(async {
        let name = unique_name("async-cancel-model");
        let mut opts = ServerOptions::new();
        opts.pipe_type(PipeType::Message)
            .read_mode(ReadMode::Message)
            .quotas(QUOTA, QUOTA);
        let server = NamedPipeServer::create(&opts, &name).unwrap();
        let client = NamedPipeClient::open(&ClientOptions::new(), &name).unwrap();
        // Messages the client wrote that the server has not read: (id, len).
        let mut queue: VecDeque<(u64, usize)> = VecDeque::new();
        let mut next_id = 0u64;
        let message = |id: u64, len: usize| -> Vec<u8> {
            (0..len)
                .map(|k| byte(id.wrapping_mul(7919) + k as u64))
                .collect()
        };
        let queued = |q: &VecDeque<(u64, usize)>| q.iter().map(|m| m.1).sum::<usize>();
        for op in ops {
            match *op {
                Op::Write { len, polls, keep } => {
                    let len = len.min(QUOTA as usize);
                    let data = message(next_id, len);
                    let mut f = Box::pin(client.send_msg(&data));
                    let fits = queued(&queue) + len <= QUOTA as usize;
                    let mut got = poll_some(&mut f, polls).await;
                    assert_eq!(got.is_none(), !fits, "{op:?}");
                    if got.is_none() && keep {
                        while let Some((id, l)) = queue.pop_front() {
                            let mut buf = vec![0u8; l];
                            let m = server.try_read(&mut buf).unwrap();
                            assert_eq!((m, &buf[..]), (l, &message(id, l)[..]));
                        }
                        got = Some(f.await);
                    }
                    if let Some(n) = got {
                        assert_eq!(n.unwrap(), len);
                        queue.push_back((next_id, len));
                    }
                    // Ids of dropped writes are never used again: a message
                    // of one would show up as a mismatch.
                    next_id += 1;
                }
                Op::Read { len, polls, keep } => {
                    let mut buf = vec![0u8; len.max(QUOTA as usize)];
                    let mut f = Box::pin(server.recv_msg(&mut buf));
                    let mut got = poll_some(&mut f, polls).await;
                    assert_eq!(got.is_none(), queue.is_empty(), "{op:?}");
                    if got.is_none() && keep {
                        let data = message(next_id, 1);
                        assert_eq!(client.try_write(&data).unwrap(), 1);
                        queue.push_back((next_id, 1));
                        next_id += 1;
                        got = Some(f.await);
                    } else {
                        drop(f);
                    }
                    if let Some(m) = got {
                        let m = m.unwrap();
                        let (id, l) = queue.pop_front().expect("a message was queued");
                        assert!(m.complete);
                        assert_eq!((m.len, &buf[..m.len]), (l, &message(id, l)[..]));
                    }
                }
            }
        }
        while let Some((id, l)) = queue.pop_front() {
            let mut buf = vec![0u8; QUOTA as usize];
            let m = server.recv_msg(&mut buf).await.unwrap();
            assert_eq!((m.len, &buf[..m.len]), (l, &message(id, l)[..]));
        }
        assert_eq!(server.peek(None).unwrap().total_available, 0);
    });
}

proptest! {
    #![proptest_config(Config {
        cases: 64,
        rng_seed: RngSeed::Fixed(0x4153_594e_4344_524f),
        failure_persistence: None,
        max_shrink_iters: 200,
        ..Config::default()
    })]

    #[test]
    fn dropped_async_byte_reads_and_writes_lose_and_duplicate_nothing(ops in proptest::collection::vec(op(), 1..40)) {
        run_bytes(&ops);
    }

    #[test]
    fn dropped_async_messages_are_never_seen_and_kept_ones_arrive_whole(ops in proptest::collection::vec(op(), 1..40)) {
        run_messages(&ops);
    }
}
