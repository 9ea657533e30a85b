//! The engine's transports: two one-way channels, one per direction.
//!
//! * `engine` uses the channel ends as an application would: every
//!   [`Sender::write`] / [`Receiver::read`] takes the admission lock (the
//!   MPSC-safe path) and waits as the end's [`WaitPolicy`] says.
//! * `engine-spsc` keeps the ends only for liveness and runs the hot loop on
//!   a raw [`Producer`] / [`Consumer`] over a second mapping of the same
//!   segment ([`Segment::attach`]): no locks, the single-producer
//!   single-consumer fast path. Waiting uses the engine's own [`Waiter`] and
//!   ring events, exactly as the channel does.

use crate::link::{human_bytes, take, Link, Options, Setup};
use rustix::fd::OwnedFd;
use shmpipe_engine::wait::{Step, Waiter};
use shmpipe_engine::{
    channel, Consumer, Error, Producer, Receiver, RingStorage, Segment, SegmentRing, Sender,
    WaitPolicy,
};
use std::io;
use std::sync::atomic::Ordering::{Acquire, Relaxed};

/// Makes both channels; the child gets the reading end of parent→child and
/// the writing end of child→parent.
pub fn open(opts: &Options, spsc: bool) -> io::Result<Setup> {
    let (down_tx, down_rx) = channel(opts.capacity)?;
    let (up_tx, up_rx) = channel(opts.capacity)?;
    let link = make(down_tx, up_rx, spsc)?;
    Ok(Setup {
        link,
        child_fds: vec![down_rx.into_fd(), up_tx.into_fd()],
        child_arg: None,
        buffers: format!("ring {} per direction", human_bytes(opts.capacity)),
    })
}

/// Rebuilds the child's ends.
pub fn adopt(fds: Vec<OwnedFd>, spsc: bool) -> io::Result<Box<dyn Link>> {
    let [rx, tx] = take::<2>(fds)?;
    make(Sender::from_fd(tx)?, Receiver::from_fd(rx)?, spsc)
}

fn make(tx: Sender, rx: Receiver, spsc: bool) -> io::Result<Box<dyn Link>> {
    if !spsc {
        return Ok(Box::new(Locked { tx, rx }));
    }
    // SAFETY: the raw halves are this process's only producer and consumer
    // of their rings: `tx` and `rx` are kept only for liveness and never
    // write or read.
    let producer = unsafe { Producer::new(Segment::attach(tx.as_fd())?.ring(0)?)? };
    // SAFETY: as above.
    let consumer = unsafe { Consumer::new(Segment::attach(rx.as_fd())?.ring(0)?)? };
    Ok(Box::new(Spsc {
        tx,
        rx,
        producer,
        consumer,
        policy: WaitPolicy::default(),
    }))
}

/// `Sender` / `Receiver`: the locked path.
struct Locked {
    tx: Sender,
    rx: Receiver,
}

impl Link for Locked {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        Ok(self.tx.write(msg)?)
    }

    fn recv(&mut self, msg: &mut [u8]) -> io::Result<()> {
        let mut got = 0;
        while got < msg.len() {
            got += self.rx.read(&mut msg[got..])?;
        }
        Ok(())
    }

    fn set_policy(&mut self, wait: WaitPolicy) -> io::Result<()> {
        self.tx.set_wait_policy(wait);
        self.rx.set_wait_policy(wait);
        Ok(())
    }
}

/// Raw `Producer` / `Consumer`: the lock-free path. The ends are kept for
/// their liveness locks (and so that the peer's ends see us alive).
struct Spsc {
    tx: Sender,
    rx: Receiver,
    producer: Producer<SegmentRing>,
    consumer: Consumer<SegmentRing>,
    policy: WaitPolicy,
}

fn peer_gone() -> io::Error {
    Error::PeerClosed.into()
}

impl Spsc {
    /// Waits one step for at least `need` free bytes in the outgoing ring.
    fn wait_space(&self, waiter: &mut Option<Waiter>, need: u64) -> io::Result<()> {
        let w = waiter.get_or_insert_with(|| Waiter::new(self.policy, None));
        let s = self.producer.storage();
        let ctl = s.control();
        let cap = s.capacity() as u64;
        let tail = ctl.producer.0.tail.load(Relaxed);
        let step = w.wait(&ctl.events.0.writable, || {
            let head = ctl.consumer.0.head.load(Acquire);
            cap.saturating_sub(tail.saturating_sub(head)) >= need
        });
        match step {
            Step::CheckPeer if !self.tx.is_peer_alive()? => Err(peer_gone()),
            _ => Ok(()),
        }
    }
}

impl Link for Spsc {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        let mut waiter = None;
        if msg.len() <= self.producer.max_record() {
            loop {
                if let Some(mut g) = self.producer.try_reserve(msg.len())? {
                    g.fill(msg);
                    g.commit(0);
                    return Ok(());
                }
                let need = self.producer.space_needed(msg.len(), true);
                self.wait_space(&mut waiter, need)?;
            }
        }
        // Larger than a record can be: stream it in fragments, as
        // `Sender::write` does.
        let mut rest = msg;
        while !rest.is_empty() {
            match self.producer.try_reserve_up_to(rest.len())? {
                Some(mut g) => {
                    let n = g.len();
                    g.fill(&rest[..n]);
                    rest = &rest[n..];
                    g.commit(rest.len() as u64);
                }
                None => {
                    let need = self.producer.space_needed(rest.len(), false);
                    self.wait_space(&mut waiter, need)?;
                }
            }
        }
        Ok(())
    }

    fn recv(&mut self, msg: &mut [u8]) -> io::Result<()> {
        let mut got = 0;
        let mut waiter: Option<Waiter> = None;
        while got < msg.len() {
            if let Some(n) = self.consumer.read_stream(&mut msg[got..])? {
                got += n;
                continue;
            }
            let w = waiter.get_or_insert_with(|| Waiter::new(self.policy, None));
            let consumer = &self.consumer;
            let step = w.wait(&consumer.storage().control().events.0.readable, || {
                consumer.has_records()
            });
            if step == Step::CheckPeer && !self.rx.is_peer_alive()? {
                // Everything the peer published before it closed is visible:
                // one last look, then report the end.
                match self.consumer.read_stream(&mut msg[got..])? {
                    Some(n) => got += n,
                    None => return Err(peer_gone()),
                }
            }
        }
        Ok(())
    }

    fn set_policy(&mut self, wait: WaitPolicy) -> io::Result<()> {
        self.policy = wait;
        Ok(())
    }
}
