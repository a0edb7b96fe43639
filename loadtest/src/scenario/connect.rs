//! `connect`: connections only hold; the worker already measures handshakes and failures.

use crate::client::{Cause, Conn, Handler, Sender};
use crate::header::Header;
use crate::hist::Hist;
use crate::scenario::Driver;
use crate::stats::Partial;

/// Holds connections open and counts whatever the server sends.
#[derive(Default)]
pub struct Connect {
    other: u64,
}

impl Handler for Connect {
    fn on_open(&mut self, _slot: usize, _tx: &mut Sender, _now: u64) {}

    fn on_message(&mut self, _slot: usize, _op: u8, payload: &[u8], _tx: &mut Sender, _now: u64) {
        // Nobody publishes in this scenario; any message is the server's own (a welcome text).
        let _ = Header::read(payload);
        self.other += 1;
    }
}

impl Driver for Connect {
    fn tick(&mut self, _now: u64, _conns: &mut [Conn], _dirty: &mut Vec<usize>) -> u64 {
        u64::MAX
    }

    fn on_measure_start(&mut self, _conns: &[Conn]) {}

    fn on_end(&mut self, _slot: usize, _cause: &Cause, _now: u64) {}

    fn take_interval(&mut self, _into: &mut Hist) {}

    fn deliveries(&self) -> u64 {
        self.other
    }

    fn finish(&mut self, _now: u64) -> Partial {
        Partial { other: self.other, ..Default::default() }
    }
}
