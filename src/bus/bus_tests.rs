use std::time::{Duration, Instant};

use super::*;
use mio::{Poll, Token};

fn bus(workers: usize, bounds: InboxBounds) -> (Bus, Vec<InboxReceiver>, Vec<Poll>) {
    let polls: Vec<Poll> = (0..workers).map(|_| Poll::new().expect("poll")).collect();
    let wakers = polls.iter().map(|p| Waker::new(p.registry(), Token(0)).expect("waker")).collect();
    let (bus, rx) = Bus::new(wakers, bounds);
    (bus, rx, polls)
}

fn roomy() -> InboxBounds {
    InboxBounds { commands: 1024, bytes: 1 << 20 }
}

fn broadcast(frame: &Bytes) -> Broadcast {
    Broadcast { frame: frame.clone(), except: None, sent_at: None, deflated: Default::default() }
}

fn push(seq: u64) -> Command {
    Command::Push { conn: ConnId::new(0, seq), frame: Bytes::from_static(b"x") }
}

#[test]
fn a_broadcast_reaches_each_worker_sharing_one_allocation() {
    let (bus, rx, _polls) = bus(3, roomy());
    let frame = Bytes::from_static(b"\x81\x02hi");
    bus.broadcast(broadcast(&frame), Wait::No).expect("room");
    for (worker, r) in rx.iter().enumerate() {
        match bus.take_data(worker, r) {
            Some((Command::Broadcast(got), cost)) => {
                assert_eq!(got.frame.as_ptr(), frame.as_ptr());
                assert_eq!(cost, frame.len() + COMMAND_OVERHEAD);
            }
            other => panic!("expected a broadcast, got {other:?}"),
        }
    }
}

#[test]
fn a_worker_sending_to_itself_skips_the_channel() {
    let (bus, rx, _polls) = bus(2, roomy());
    let bus = std::sync::Arc::new(bus);
    let worker = bus.clone();
    let taken = std::thread::spawn(move || {
        worker.enter_worker(1);
        worker.send(1, push(1), Wait::No).expect("local");
        let disconnect = Command::Disconnect { conn: ConnId::new(1, 1), code: 1000, reason: String::new() };
        assert!(worker.send_control(1, disconnect));
        assert!(worker.send_control(1, Command::Shutdown), "shutdown still takes the channel");
        assert_eq!(worker.pending_bytes().0, 1 + COMMAND_OVERHEAD);
        let mut kinds = Vec::new();
        while let Some((command, _)) = worker.pop_local() {
            kinds.push(command.is_control());
        }
        kinds
    });
    assert_eq!(taken.join().expect("worker thread"), vec![false, true], "push then disconnect, in order");
    assert!(rx[1].data.is_empty());
    assert!(matches!(rx[1].control.try_recv(), Ok(Command::Shutdown)));
}

#[test]
fn a_full_inbox_overflows_locally_for_a_worker_and_drains_in_order() {
    let bounds = InboxBounds { commands: 8, bytes: 1 << 20 };
    let (bus, mut rx, _polls) = bus(2, bounds);
    let bus = std::sync::Arc::new(bus);
    let rx0 = rx.remove(0);
    let sender = bus.clone();
    let overflowed = std::thread::spawn(move || {
        sender.enter_worker(1);
        for seq in 0..20 {
            sender.send(0, push(seq), Wait::No).expect("a worker never waits");
        }
        let pending = sender.pending_bytes().1;
        let mut seen = 0;
        while seen < 20 {
            while let Some((Command::Push { conn, .. }, _)) = sender.take_data(0, &rx0) {
                assert_eq!(conn, ConnId::new(0, seen), "overflow keeps per-sender order");
                seen += 1;
            }
            sender.flush_overflow();
        }
        (pending, sender.flush_overflow(), sender.pending_bytes().1)
    });
    let (pending, drained, left) = overflowed.join().expect("worker thread");
    assert_eq!(pending, 12 * (1 + COMMAND_OVERHEAD));
    assert!(drained);
    assert_eq!(left, 0);
}

#[test]
fn draining_an_inbox_wakes_the_worker_whose_overflow_waits_for_it() {
    let bounds = InboxBounds { commands: 2, bytes: 1 << 20 };
    let (bus, rx, mut polls) = bus(2, bounds);
    let bus = std::sync::Arc::new(bus);
    let sender = bus.clone();
    std::thread::spawn(move || {
        sender.enter_worker(1);
        for seq in 0..3 {
            sender.send(0, push(seq), Wait::No).expect("a worker never waits");
        }
    })
    .join()
    .expect("worker thread");
    let mut events = mio::Events::with_capacity(4);
    polls[1].poll(&mut events, Some(Duration::ZERO)).expect("poll");
    assert!(events.is_empty(), "no wake-up before the destination drains");
    while bus.take_data(0, &rx[0]).is_some() {}
    polls[1].poll(&mut events, Some(Duration::from_secs(5))).expect("poll");
    assert!(!events.is_empty(), "worker 1 was woken when worker 0 drained");
}

#[test]
fn an_outside_broadcast_is_all_or_nothing() {
    let bounds = InboxBounds { commands: 2, bytes: 1 << 20 };
    let (bus, rx, _polls) = bus(2, bounds);
    let frame = Bytes::from_static(b"abc");
    bus.send(1, push(1), Wait::No).expect("room");
    bus.send(1, push(2), Wait::No).expect("room");
    assert_eq!(bus.broadcast(broadcast(&frame), Wait::No), Err(SendError::Full));
    assert!(rx[0].data.is_empty(), "worker 0 got nothing while worker 1 was full");
    assert_eq!(bus.inbox(0).map(Inbox::queued), Some(0), "no room is left reserved");
    assert!(bus.take_data(1, &rx[1]).is_some());
    bus.broadcast(broadcast(&frame), Wait::No).expect("room again");
    assert_eq!(rx[0].data.len(), 1);
}

#[test]
fn the_byte_bound_counts_frames_and_overhead() {
    let bounds = InboxBounds { commands: 1000, bytes: 10_000 };
    let (bus, _rx, _polls) = bus(1, bounds);
    let frame = Bytes::from(vec![0u8; 4000]);
    assert!(bus.broadcast(broadcast(&frame), Wait::No).is_ok());
    assert!(bus.broadcast(broadcast(&frame), Wait::No).is_ok());
    assert_eq!(bus.broadcast(broadcast(&frame), Wait::No), Err(SendError::Full));
    assert_eq!(bus.inbox(0).map(Inbox::queued_bytes), Some(2 * (4000 + COMMAND_OVERHEAD)));
}

#[test]
fn a_waiting_broadcast_gives_up_at_its_deadline_or_goes_through_when_room_comes() {
    let bounds = InboxBounds { commands: 1, bytes: 1 << 20 };
    let (bus, rx, _polls) = bus(1, bounds);
    let bus = std::sync::Arc::new(bus);
    let frame = Bytes::from_static(b"abc");
    bus.broadcast(broadcast(&frame), Wait::No).expect("room");
    let deadline = Instant::now() + Duration::from_millis(30);
    assert_eq!(bus.broadcast(broadcast(&frame), Wait::Until(deadline)), Err(SendError::Full));
    assert!(Instant::now() >= deadline);
    let waiter = {
        let bus = bus.clone();
        let frame = frame.clone();
        std::thread::spawn(move || bus.broadcast(broadcast(&frame), Wait::Forever))
    };
    std::thread::sleep(Duration::from_millis(20));
    assert!(bus.take_data(0, &rx[0]).is_some());
    assert_eq!(waiter.join().expect("waiter"), Ok(()));
}

#[test]
fn control_commands_never_wait_behind_data() {
    let bounds = InboxBounds { commands: 1, bytes: 1 << 20 };
    let (bus, rx, _polls) = bus(1, bounds);
    bus.send(0, push(1), Wait::No).expect("room");
    assert_eq!(bus.send(0, push(2), Wait::No), Err(SendError::Full));
    assert!(bus.send_control(0, Command::Shutdown));
    assert!(matches!(bus.take_control(&rx[0]), Some(Command::Shutdown)));
}

#[test]
fn a_worker_of_one_bus_is_a_stranger_to_another() {
    let (bus_a, _rx_a, _polls_a) = bus(1, roomy());
    let (bus_b, rx_b, _polls_b) = bus(1, roomy());
    let bus_a = std::sync::Arc::new(bus_a);
    let bus_b = std::sync::Arc::new(bus_b);
    let (a, b) = (bus_a.clone(), bus_b.clone());
    std::thread::spawn(move || {
        a.enter_worker(0);
        assert_eq!(b.current_worker(), None);
        b.send(0, push(1), Wait::No).expect("room in b");
        assert_eq!(a.pending_bytes(), (0, 0), "nothing went to a's own queue");
    })
    .join()
    .expect("worker thread");
    assert_eq!(rx_b[0].data.len(), 1);
}

#[test]
fn sends_to_a_gone_worker_fail() {
    let (bus, _rx, _polls) = bus(2, roomy());
    bus.mark_gone(1);
    assert!(bus.is_gone(1));
    assert_eq!(bus.send(1, push(1), Wait::Forever), Err(SendError::Closed));
    assert!(!bus.send_control(1, Command::Shutdown));
    // A broadcast still reaches the live worker.
    assert!(bus.broadcast(broadcast(&Bytes::from_static(b"x")), Wait::No).is_ok());
    assert_eq!(bus.inbox(0).map(Inbox::queued), Some(1));
}

#[test]
fn park_refuses_when_work_is_waiting() {
    let (bus, rx, _polls) = bus(1, roomy());
    assert!(bus.park(0, &rx[0]));
    bus.unpark(0);
    assert!(bus.send_control(0, Command::Shutdown));
    assert!(!bus.park(0, &rx[0]));
}
