//! The preparer's hand-over of a segment finished too late for its
//! instance.

use super::*;
use std::time::Duration;

fn attrs() -> Attrs {
    Attrs {
        direction: Direction::Duplex,
        pipe_type: PipeType::Message,
        max_instances: 4,
        default_timeout: Duration::from_millis(50),
        security: Security::default(),
        reject_remote: false,
        owner: (0, 0),
    }
}

fn queue_of(insts: &[&Arc<Instance>]) -> Jobs {
    Jobs {
        queue: Mutex::new(insts.iter().map(|i| Arc::downgrade(i)).collect()),
        cv: Condvar::new(),
    }
}

/// A segment finished after its instance was claimed goes to the first
/// queued instance that is still listening, has none and would have made
/// the same one, under its own canceller (before: it was dropped, and that instance's client got one
/// made on the spot if it came before the preparer reached its job). One
/// of another shape, or one that stopped listening, does not take it.
#[test]
fn a_late_segment_goes_to_the_next_instance_of_its_shape() {
    let o = ServerOptions::new();
    let claimed = Instance::new(attrs(), &o, None);
    let other_sizes = Instance::new(attrs(), ServerOptions::new().quotas(8192, 8192), None);
    let stopped = Instance::new(attrs(), &o, None);
    let next = Instance::new(attrs(), &o, None);
    let after = Instance::new(attrs(), &o, None);
    lock(&claimed.st).phase = Phase::Connected;
    lock(&stopped.st).phase = Phase::Disconnected;

    let late = claimed
        .prepare_ahead()
        .expect("claimed meanwhile: a late segment");
    assert!(lock(&claimed.prepared).is_none());
    queue_of(&[&other_sizes, &stopped, &next, &after]).hand_over(late);
    assert!(lock(&other_sizes.prepared).is_none(), "another shape");
    assert!(lock(&stopped.prepared).is_none(), "not listening");
    assert!(
        lock(&next.prepared).is_some(),
        "the next instance of its shape"
    );
    // Under `next`'s canceller: the per-instance part a shape leaves out.
    let held = lock(&next.prepared);
    let c = &held.as_ref().unwrap().conn;
    assert!(c.canceller().same_as(&next.cancel) && !c.canceller().same_as(&claimed.cancel));
    drop(held);
    assert!(lock(&after.prepared).is_none(), "one segment, one instance");

    // An instance with a segment of its own takes no second one.
    let late = claimed.prepare_ahead().expect("a late segment");
    queue_of(&[&next]).hand_over(late);
    assert!(lock(&next.prepared).is_some());
}
