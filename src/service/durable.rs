//! The durable side of channel history (`--history-dir`): one writer thread
//! that commits what the sequencer appended, in batches (group commit), and
//! the acknowledgements that let an API publish answer 200 only once its
//! events are on disk.
//!
//! Live delivery never waits for the disk: an event reaches subscribers and
//! the in-memory history at once, and its record follows here. When a batch
//! cannot be written (a full disk, an I/O error), its API publishes answer
//! 507 and the channels it touched lose their stream, in memory (the next
//! event opens a new epoch, so no client recovers across the hole) and on
//! disk once writing works again. A worker never touches the disk.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

use crate::deferred::Responder;
use crate::history::store::{DurableStore, Record, Retention};
use crate::http::Response;
use crate::metrics::MetricsOut;

/// Records committed in one transaction at most.
const MAX_BATCH: usize = 4_096;
/// A batch below this size waits `LINGER` for more when it is not alone.
const SMALL_BATCH: usize = 256;
/// How long a small batch waits for the rest of its burst.
const LINGER: std::time::Duration = std::time::Duration::from_millis(1);
/// Bytes of records waiting for the writer past which publishes are refused
/// (an API publish answers 503).
const MAX_PENDING_BYTES: usize = 64 << 20;

/// The answer owed to one API publish, given once every record of it was
/// committed (or one failed): when the last holder drops it.
pub(crate) struct Ack {
    armed: Mutex<Option<(Responder, Response)>>,
    failure: Mutex<Option<Response>>,
}

impl Ack {
    /// An acknowledgement to arm once the publish is complete.
    pub(crate) fn new() -> Arc<Ack> {
        Arc::new(Ack { armed: Mutex::new(None), failure: Mutex::new(None) })
    }

    /// Answers `ok` through `responder` once every record is on disk (at
    /// once if they already are, when the caller drops its own handle).
    pub(crate) fn arm(&self, responder: Responder, ok: Response) {
        *self.armed.lock() = Some((responder, ok));
    }

    fn fail(&self, response: Response) {
        self.failure.lock().get_or_insert(response);
    }
}

impl Drop for Ack {
    fn drop(&mut self) {
        if let Some((responder, ok)) = self.armed.get_mut().take() {
            responder.send(self.failure.get_mut().take().unwrap_or(ok));
        }
    }
}

/// One event's record on its way to disk.
struct Job {
    record: Record,
    ack: Option<Arc<Ack>>,
}

/// Counters of the store, for `/metrics`.
#[derive(Default)]
struct StoreStats {
    batches: AtomicU64,
    records: AtomicU64,
    failed: AtomicU64,
    pending_bytes: AtomicUsize,
}

/// The writer's handle: where records go.
pub(crate) struct Durable {
    jobs: Sender<Job>,
    stats: Arc<StoreStats>,
    /// Streams whose history a failed write lost: (channel, epoch), for the
    /// sequencer to drop under its lock.
    lost: Arc<Mutex<Vec<(String, String)>>>,
}

impl Durable {
    /// Starts the writer thread on `store`; `retention` bounds each channel
    /// on disk as in memory.
    pub(crate) fn start(store: DurableStore, retention: Retention) -> std::io::Result<Durable> {
        let (jobs, receiver) = crossbeam_channel::unbounded();
        let stats = Arc::new(StoreStats::default());
        let lost = Arc::new(Mutex::new(Vec::new()));
        let writer = Writer {
            store,
            retention,
            stats: Arc::clone(&stats),
            lost: Arc::clone(&lost),
            lost_here: Vec::new(),
            forget: Vec::new(),
            reopen: false,
        };
        std::thread::Builder::new().name("fanout-history-store".into()).spawn(move || writer.run(receiver))?;
        Ok(Durable { jobs, stats, lost })
    }

    /// True while so much waits for the disk that publishes must be refused.
    pub(crate) fn congested(&self) -> bool {
        self.stats.pending_bytes.load(Ordering::Relaxed) > MAX_PENDING_BYTES
    }

    /// Queues `record`; `ack` (if any) is answered once it is on disk.
    pub(crate) fn write(&self, record: Record, ack: Option<&Arc<Ack>>) {
        self.stats.pending_bytes.fetch_add(cost(&record), Ordering::Relaxed);
        // The writer only ends with the process: a send cannot fail before.
        let _ = self.jobs.send(Job { record, ack: ack.cloned() });
    }

    /// Streams lost since the last call, as (channel, epoch).
    pub(crate) fn take_lost(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.lost.lock())
    }

    /// Writes the store's figures.
    pub(crate) fn report(&self, out: &mut MetricsOut) {
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
        let stats = &self.stats;
        out.counter(
            "fanout_history_store_batches",
            "Transactions committed to --history-dir",
            &[],
            load(&stats.batches),
        );
        out.counter("fanout_history_store_records", "Messages committed to --history-dir", &[], load(&stats.records));
        out.counter(
            "fanout_history_store_failures",
            "Messages whose write to --history-dir failed (their API publishes answered 507)",
            &[],
            load(&stats.failed),
        );
        let pending = stats.pending_bytes.load(Ordering::Relaxed) as u64;
        out.gauge("fanout_history_store_pending_bytes", "Bytes of messages waiting to be written", &[], pending);
    }
}

fn cost(record: &Record) -> usize {
    record.channel.len() + record.epoch.len() + record.payload.len() + 64
}

/// The writer thread's state.
struct Writer {
    store: DurableStore,
    retention: Retention,
    stats: Arc<StoreStats>,
    /// Streams lost, told to the sequencer (which takes them).
    lost: Arc<Mutex<Vec<(String, String)>>>,
    /// Streams lost, whose records still queued are not written; an entry
    /// goes once its channel writes under another epoch.
    lost_here: Vec<(String, String)>,
    /// Channels to drop on disk with the next batch (their stream was lost).
    forget: Vec<String>,
    /// The last write failed: reopen the store before the next.
    reopen: bool,
}

impl Writer {
    fn run(mut self, jobs: Receiver<Job>) {
        while let Ok(first) = jobs.recv() {
            let mut batch = vec![first];
            drain(&jobs, &mut batch);
            // Under load a commit's fsync, not its rows, is what costs: when
            // more than one event came at once, wait a moment for the rest of
            // the burst so that one fsync covers it.
            if batch.len() > 1 && batch.len() < SMALL_BATCH {
                std::thread::sleep(LINGER);
                drain(&jobs, &mut batch);
            }
            self.commit(batch);
        }
    }

    fn commit(&mut self, batch: Vec<Job>) {
        let bytes: usize = batch.iter().map(|job| cost(&job.record)).sum();
        // Records of a stream already lost are not written: its history has
        // a hole, and the next event opens a new epoch anyway.
        let lost = &self.lost_here;
        let (records, acks): (Vec<Record>, Vec<Option<Arc<Ack>>>) = batch
            .into_iter()
            .filter(|job| !lost.iter().any(|(c, e)| *c == job.record.channel && *e == job.record.epoch))
            .map(|job| (job.record, job.ack))
            .unzip();
        if self.reopen {
            match self.store.reopen() {
                Ok(()) => self.reopen = false,
                Err(e) => log::error!("{e}"),
            }
        }
        match self.store.write_batch(&records, &self.forget, self.retention) {
            Ok(()) => {
                self.forget.clear();
                self.lost_here.retain(|(c, e)| !records.iter().any(|r| r.channel == *c && r.epoch != *e));
                self.stats.batches.fetch_add(1, Ordering::Relaxed);
                self.stats.records.fetch_add(records.len() as u64, Ordering::Relaxed);
            }
            Err(e) => {
                self.reopen = true;
                log::error!("{e}: {} message(s) not kept on disk; their channels start new epochs", records.len());
                self.stats.failed.fetch_add(records.len() as u64, Ordering::Relaxed);
                let failure = Response::new(507)
                    .header("Content-Type", "application/json")
                    .body(serde_json::json!({ "error": format!("history could not be written: {e}") }).to_string());
                for ack in acks.iter().flatten() {
                    ack.fail(failure.clone());
                }
                let mut told = self.lost.lock();
                for record in &records {
                    let stream = (record.channel.clone(), record.epoch.clone());
                    if !self.lost_here.contains(&stream) {
                        self.lost_here.push(stream.clone());
                        told.push(stream);
                        self.forget.push(record.channel.clone());
                    }
                }
            }
        }
        self.stats.pending_bytes.fetch_sub(bytes, Ordering::Relaxed);
        drop(acks);
    }
}

/// Takes what is queued, up to a batch.
fn drain(jobs: &Receiver<Job>, batch: &mut Vec<Job>) {
    while batch.len() < MAX_BATCH {
        match jobs.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
}
