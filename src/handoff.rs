//! The bounded hand-off between the sources and Fluent Bit's collect callback.
//!
//! Sources encode records into small chunks of plain memory and append each finished chunk to
//! the one buffer the next collect hands over. That buffer is the only host-allocated memory
//! (the host frees it): collect takes it without ever waiting, and the host gives it back in
//! the cleanup callback, right after appending its data, to collect the next records. A slow
//! pipeline leaves the buffer full and slows the pull. The positions the records complete
//! travel with them, and once the host has taken the records they are held for [`HOLD`]
//! before they are written.
//!
//! Where the host lets the plugin hand records over as they come (`Handoff::set_waker`, the
//! event-driven hand-off), each append also wakes the instance thread, once per take, and the
//! buffer holds at most [`EVENT_LIMIT`]: it rarely holds more than a chunk or two.

use crate::ffi::buffer::HostBuf;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A source's position, to be persisted once the records before it are delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commit {
    pub key: String,
    pub cursor: String,
}

impl Commit {
    /// The position `cursor` of stream `key`, in the saved form (`state::cursor`).
    pub fn of<T: serde::Serialize>(key: &str, cursor: &T) -> Commit {
        Commit {
            key: key.to_string(),
            cursor: crate::state::cursor::encode(cursor),
        }
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The instance is stopping: nothing more is handed over.
#[derive(Debug)]
pub struct Closed;

/// The records the next collect hands over, already in the one buffer it hands over.
struct Pending {
    /// Whole chunks appended by the sources; at most `buffer_max_size` bytes unless a single
    /// chunk is larger. Has no allocation while the host holds it.
    buf: HostBuf,
    /// How many records `buf` holds.
    records: u64,
    /// Positions its records complete, in the order they were reached.
    commits: Vec<Commit>,
    /// The buffer is with the host, between collect and cleanup.
    out: bool,
    /// The waker was called since the last take: no need to call it again.
    woken: bool,
    closed: bool,
}

/// Records taken for the host: the buffer and how many records it holds.
pub struct Batch {
    pub buf: HostBuf,
    pub records: u64,
}

/// The most the buffer holds when records are handed over as they come: each append becomes
/// one entry of the instance's ring buffer in Fluent Bit, which drains it every 250 ms or once
/// 5% of its 1024 entries are used, so small appends spend little time there.
const EVENT_LIMIT: usize = 256 << 10;

/// How far the buffer may grow, when records go as they come, while handing over is slow.
const EVENT_LIMIT_MAX: usize = 4 << 20;

/// A hand-off that holds the buffer longer than this is slow (the state file it saves sits on
/// a slow disk, say): the buffer may hold twice as much, so that the sources, which wait while
/// it is out, lose no rate to the disk; a quick one halves it again, down to [`EVENT_LIMIT`].
const SLOW_HANDOFF: std::time::Duration = std::time::Duration::from_millis(2);

/// How long the positions of records the host took are held before they are written: Fluent
/// Bit runs a proxy input threaded, and what the instance's thread appends (at collect or from
/// the event collector) waits in the instance's ring buffer until the engine moves it into a
/// chunk, within 250 ms while the input runs. A kill in between loses the ring buffer, so a
/// position written at once would skip those records on restart; written after this, a kill
/// can only make them come again.
pub const HOLD: Duration = Duration::from_secs(1);

/// Positions of records the host took, waiting for [`HOLD`] to pass.
#[derive(Default)]
struct Held {
    /// Oldest first: when they were taken (or the input last paused or resumed), how many
    /// records the host had been given up to and including them, and what.
    queue: VecDeque<(Instant, u64, Vec<Commit>)>,
    /// The host paused the input. Paused at its buffer limits, its engine does not drain the
    /// ring buffer; paused for a stop, it does, during the grace period. Positions wait either way.
    paused: bool,
    /// Records the host accepted from this instance so far (appends it did not refuse).
    given: u64,
    /// `given` as of the last position written.
    written_upto: u64,
}

impl Held {
    /// Takes the positions from the front of the queue while `take(when, upto)` says so.
    fn pop_while(&mut self, take: impl Fn(Instant, u64) -> bool) -> Vec<Commit> {
        let mut out = Vec::new();
        while self
            .queue
            .front()
            .is_some_and(|(at, upto, _)| take(*at, *upto))
        {
            if let Some((_, upto, c)) = self.queue.pop_front() {
                self.written_upto = upto;
                out.extend(c);
            }
        }
        out
    }

    /// The positions held for [`HOLD`] since their records were taken (or the input last
    /// paused or resumed); none while the input is paused.
    fn due(&mut self) -> Vec<Commit> {
        if self.paused {
            return Vec::new();
        }
        let now = Instant::now();
        self.pop_while(|at, _| now.duration_since(at) >= HOLD)
    }
}

/// What [`Handoff::at_stop`] found.
#[derive(Debug)]
pub struct AtStop {
    /// The positions to write now, oldest first.
    pub commits: Vec<Commit>,
    /// Records handed over whose positions are not written (the host did not take them in,
    /// or its count cannot be used): they are read again at the next start.
    pub left: u64,
    /// What the host's count was.
    pub count: HostCount,
}

/// The host's count of records in its chunks, as [`Handoff::at_stop`] used it.
#[derive(Debug, PartialEq, Eq)]
pub enum HostCount {
    /// At most what was handed over: the first that many records are in chunks.
    Used,
    /// The host did not say.
    Missing,
    /// Above what was handed over (the count, what was handed over): processors or conditional
    /// routes on the input count records again, so it says nothing about which are in chunks.
    Above(u64, u64),
}

/// The hand-off between the sources and collect: one buffer of at most `buffer_max_size`
/// bytes that sources append finished chunks to and collect hands over as it is. Sources wait
/// while it is full or with the host; so memory stays at one buffer however large the
/// backlog, and a slow pipeline slows the pull.
pub struct Handoff {
    pending: Mutex<Pending>,
    room: tokio::sync::Notify,
    max: usize,
    /// Called when records arrive, where the host takes them as they come.
    waker: OnceLock<Box<dyn Fn() + Send + Sync>>,
    /// The most the buffer holds then, between [`EVENT_LIMIT`] and [`EVENT_LIMIT_MAX`].
    event_limit: AtomicUsize,
    /// Positions taken by the host, not yet to be written ([`HOLD`]).
    held: Mutex<Held>,
    /// `rate_limit`: the most bytes a second pushed (0: no limit), and its bucket.
    rate: u64,
    pace: Mutex<Pace>,
}

/// A token bucket in bytes: what may be pushed now without waiting (negative: owed by the
/// pushes already let through, which wait it off in turn), as of `at`.
struct Pace {
    tokens: f64,
    at: Instant,
}

impl Handoff {
    pub fn new(max: usize) -> Self {
        Handoff {
            pending: Mutex::new(Pending {
                buf: HostBuf::new(),
                records: 0,
                commits: Vec::new(),
                out: false,
                woken: false,
                closed: false,
            }),
            room: tokio::sync::Notify::new(),
            max,
            waker: OnceLock::new(),
            event_limit: AtomicUsize::new(EVENT_LIMIT),
            held: Mutex::new(Held::default()),
            rate: 0,
            pace: Mutex::new(Pace {
                tokens: 0.0,
                at: Instant::now(),
            }),
        }
    }

    /// Lets at most `rate` bytes a second through [`push`](Self::push) (0: no limit), in
    /// bursts of at most a quarter second's worth. What the host holds between two flushes of
    /// its outputs is what the instance appended since the last one, so this bounds it while
    /// a backlog drains.
    pub fn with_rate(mut self, rate: u64) -> Self {
        self.rate = rate;
        lock(&self.pace).tokens = Self::burst(rate);
        self
    }

    fn burst(rate: u64) -> f64 {
        rate as f64 / 4.0
    }

    /// Takes `n` bytes from the bucket: how long to wait before pushing them.
    fn pace(&self, n: usize) -> Option<Duration> {
        if self.rate == 0 {
            return None;
        }
        let rate = self.rate as f64;
        let mut p = lock(&self.pace);
        let now = Instant::now();
        let refill = now.saturating_duration_since(p.at).as_secs_f64() * rate;
        let burst = Self::burst(self.rate);
        p.tokens = (p.tokens + refill).min(burst) - n as f64;
        p.at = now;
        // Out of tokens: wait until half a burst is back, so that the pulling thread works in
        // stretches of an eighth of a second, not a chunk at a time (this VM ran the same
        // decoding about half as fast again when it woke for every chunk).
        (p.tokens < 0.0).then(|| Duration::from_secs_f64((burst / 2.0 - p.tokens) / rate))
    }

    /// The host has just taken `records` records and the positions they complete (or none,
    /// when nothing before them is pending): the positions are written once [`HOLD`] has passed
    /// ([`Handoff::due`]), in this order.
    pub fn hold(&self, records: u64, commits: Vec<Commit>) {
        let mut h = lock(&self.held);
        h.given += records;
        if commits.is_empty() {
            if h.queue.is_empty() {
                h.written_upto = h.given;
            }
            return;
        }
        let upto = h.given;
        h.queue.push_back((Instant::now(), upto, commits));
    }

    /// The held positions whose time has come, oldest first. None while the input is paused.
    pub fn due(&self) -> Vec<Commit> {
        lock(&self.held).due()
    }

    /// The instance stops: the held positions of the records the host has moved into its
    /// chunks. `taken` is the host's count of this instance's records in chunks (Fluent Bit's
    /// `fluentbit_input_records_total`); the engine moves appends out of the ring buffer in
    /// order, so the first `taken` records handed over are the ones it has. At exit it frees
    /// what is still in the ring buffer (an input paused at `mem_buf_limit` keeps it there)
    /// instead of taking it in, and the positions of those records must not be written.
    /// Without a usable count (`None`, or one above what was handed over), only the positions
    /// that are due are written, as after a kill: the records of the last second or so come
    /// again, none is lost.
    pub fn at_stop(&self, taken: Option<u64>) -> AtStop {
        let mut h = lock(&self.held);
        let count = match taken {
            None => HostCount::Missing,
            Some(t) if t > h.given => HostCount::Above(t, h.given),
            Some(_) => HostCount::Used,
        };
        let (commits, left) = match taken.filter(|_| count == HostCount::Used) {
            Some(taken) => (
                h.pop_while(|_, upto| upto <= taken),
                h.given.saturating_sub(taken),
            ),
            None => {
                let commits = h.due();
                let left = if h.queue.is_empty() {
                    0
                } else {
                    h.given.saturating_sub(h.written_upto)
                };
                (commits, left)
            }
        };
        AtStop {
            commits,
            left,
            count,
        }
    }

    /// The host paused (`true`) or resumed the input: what is held waits [`HOLD`] from now on
    /// (the engine does not drain the ring buffer of a paused input).
    pub fn hold_paused(&self, paused: bool) {
        let mut h = lock(&self.held);
        h.paused = paused;
        let now = Instant::now();
        for (at, _, _) in h.queue.iter_mut() {
            *at = now;
        }
    }

    /// From now on, `wake` is called when records are appended and nobody was woken for them
    /// yet: the host takes records as they come instead of once a second. Set once.
    pub fn set_waker(&self, wake: Box<dyn Fn() + Send + Sync>) {
        let _ = self.waker.set(wake);
    }

    /// Whether records are handed over as they come (a waker is set).
    pub fn as_they_come(&self) -> bool {
        self.waker.get().is_some()
    }

    /// The most the buffer holds: `buffer_max_size`, or at most [`EVENT_LIMIT`] when records
    /// go as they come. Then the buffer only fills while the host has paused the instance,
    /// and a small one keeps the plugin's memory small and hands the host no outsized append
    /// on resume (Fluent Bit checks `mem_buf_limit` only after an append).
    fn limit(&self) -> usize {
        if self.waker.get().is_some() {
            self.max.min(self.event_limit.load(Ordering::Relaxed))
        } else {
            self.max
        }
    }

    /// The capacity a buffer starts with; the largest one kept for reuse is twice the limit.
    fn first_capacity(&self) -> usize {
        if self.waker.get().is_some() {
            self.max.min(EVENT_LIMIT)
        } else {
            self.max
        }
    }

    /// Records went as they come, and the buffer was out for `held` (the host's append and
    /// the positions saved): adapts how much the buffer may hold next (see [`SLOW_HANDOFF`]).
    pub fn handed_over_in(&self, held: std::time::Duration) {
        let now = self.event_limit.load(Ordering::Relaxed);
        let next = if held > SLOW_HANDOFF {
            now.saturating_mul(2).min(EVENT_LIMIT_MAX)
        } else {
            (now / 2).max(EVENT_LIMIT)
        };
        self.event_limit.store(next, Ordering::Relaxed);
    }

    /// Appends a chunk of `records` whole records and the position it completes, waiting for
    /// room.
    pub async fn push(
        &self,
        chunk: &[u8],
        records: u64,
        mut position: Option<Commit>,
    ) -> Result<(), Closed> {
        if let Some(wait) = self.pace(chunk.len()) {
            tokio::time::sleep(wait).await;
        }
        loop {
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let wake = {
                let mut p = lock(&self.pending);
                if p.closed {
                    return Err(Closed);
                }
                let fits = p.buf.is_empty() || p.buf.len() + chunk.len() <= self.limit();
                if !p.out && fits {
                    if p.buf.capacity() == 0 && !chunk.is_empty() {
                        // Pages are only touched as records arrive.
                        p.buf = HostBuf::with_capacity(self.first_capacity().max(chunk.len()));
                    }
                    p.buf.extend_from_slice(chunk);
                    p.records += records;
                    p.commits.extend(position.take());
                    let wake = !p.woken;
                    p.woken = true;
                    Some(wake)
                } else {
                    None
                }
            };
            match wake {
                Some(wake) => {
                    if wake {
                        self.wake();
                    }
                    return Ok(());
                }
                None => notified.await,
            }
        }
    }

    /// Calls the waker, if there is one (also to retry what is pending, e.g. on resume).
    pub fn wake(&self) {
        if let Some(w) = self.waker.get() {
            w();
        }
    }

    /// For collect: the records to hand over (None if there are none, or the buffer is still
    /// with the host) and the positions reached, which are true once those records are
    /// delivered (or at once, when there are none).
    pub fn take(&self) -> (Option<Batch>, Vec<Commit>) {
        let mut p = lock(&self.pending);
        if p.out {
            return (None, Vec::new());
        }
        p.woken = false;
        let commits = std::mem::take(&mut p.commits);
        if p.buf.is_empty() {
            return (None, commits);
        }
        p.out = true;
        let batch = Batch {
            buf: std::mem::take(&mut p.buf),
            records: std::mem::take(&mut p.records),
        };
        (Some(batch), commits)
    }

    /// The host did not take what `take` handed out: it goes back in front, to be handed over
    /// again.
    pub fn untake(&self, batch: Batch, commits: Vec<Commit>) {
        let mut p = lock(&self.pending);
        // While the batch was out nothing could be added, so it is all that is pending.
        p.buf = batch.buf;
        p.records = batch.records;
        p.commits = commits;
        p.out = false;
        drop(p);
        self.room.notify_waiters();
    }

    /// The host released the buffer `take` handed out: sources may fill it again.
    pub fn give_back(&self, mut buf: HostBuf) {
        buf.clear();
        let mut p = lock(&self.pending);
        // A single outsized record (or a pause) can have grown it: do not keep that.
        if p.buf.capacity() == 0 && buf.capacity() <= self.limit().saturating_mul(2) {
            p.buf = buf;
        }
        p.out = false;
        drop(p);
        self.room.notify_waiters();
    }

    pub fn close(&self) {
        lock(&self.pending).closed = true;
        self.room.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn pacing_lets_a_burst_through_then_waits_off_what_is_owed() {
        let mb = 1 << 20;
        assert!(Handoff::new(mb).pace(64 * mb).is_none(), "no limit");
        // 4 MiB a second: a burst of 1 MiB passes at once.
        let h = Handoff::new(mb).with_rate(4 * mb as u64);
        assert!(h.pace(mb / 2).is_none());
        assert!(h.pace(mb / 2).is_none());
        // Then 1 MiB more is owed: waited off, with half a burst more (0.375 s).
        let wait = h.pace(mb).expect("a wait").as_secs_f64();
        assert!((0.37..0.38).contains(&wait), "{wait}");
        // A push while that wait runs owes its own bytes on top (another 0.25 s).
        let wait = h.pace(mb).expect("a wait").as_secs_f64();
        assert!((0.62..0.63).contains(&wait), "{wait}");
    }

    fn commit(n: u32) -> Option<Commit> {
        Some(Commit {
            key: "k".into(),
            cursor: n.to_string(),
        })
    }

    fn cursors(c: &[Commit]) -> Vec<&str> {
        c.iter().map(|c| c.cursor.as_str()).collect()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn sources_wait_while_the_buffer_is_full_or_with_the_host() {
        let h = Arc::new(Handoff::new(100));
        h.push(&[1; 60], 1, commit(1)).await.unwrap();
        h.push(&[2; 40], 1, commit(2)).await.unwrap();
        // Full: the next chunk waits.
        let waiter = {
            let h = h.clone();
            tokio::spawn(async move { h.push(&[3; 10], 1, commit(3)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "a full buffer takes no more");

        let (buf, commits) = h.take();
        let Batch { buf, records } = buf.expect("records to hand over");
        assert_eq!((buf.len(), records), (100, 2));
        assert_eq!(&buf.as_slice()[58..62], &[1, 1, 2, 2]);
        assert_eq!(cursors(&commits), ["1", "2"]);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !waiter.is_finished(),
            "nothing is added while the host holds it"
        );
        assert!(h.take().0.is_none(), "one buffer out at a time");

        let cap = buf.capacity();
        h.give_back(buf);
        waiter.await.unwrap().unwrap();
        let (buf, commits) = h.take();
        let buf = buf.unwrap().buf;
        assert_eq!(
            (buf.as_slice(), buf.capacity()),
            (&[3u8; 10][..], cap),
            "same memory reused"
        );
        assert_eq!(cursors(&commits), ["3"]);
        h.give_back(buf);
    }

    /// Positions are written only once HOLD has passed since the host took their records, in
    /// order, never while the input is paused (and HOLD again from the resume).
    #[test]
    fn taken_positions_are_held_before_they_are_written() {
        let h = Handoff::new(1 << 20);
        assert!(h.due().is_empty());
        h.hold(10, commit(1).into_iter().collect());
        h.hold(5, Vec::new());
        std::thread::sleep(HOLD / 2);
        h.hold(10, commit(2).into_iter().collect());
        assert!(h.due().is_empty(), "too early");
        std::thread::sleep(HOLD / 2 + Duration::from_millis(20));
        assert_eq!(cursors(&h.due()), ["1"]);
        h.hold_paused(true);
        std::thread::sleep(HOLD / 2 + Duration::from_millis(20));
        assert!(h.due().is_empty(), "paused");
        h.hold_paused(false);
        assert!(h.due().is_empty(), "HOLD again from the resume");
        h.hold(10, commit(3).into_iter().collect());
        std::thread::sleep(HOLD + Duration::from_millis(20));
        assert_eq!(cursors(&h.due()), ["2", "3"]);
    }

    /// At stop, the held positions of the records the host says it took in are written, in
    /// order and whether paused or not; those of records it did not take in are not, and are
    /// counted. Records handed over without a position of their own count too.
    #[test]
    fn at_stop_writes_the_positions_of_what_the_host_took_in() {
        let held = || {
            let h = Handoff::new(1 << 20);
            h.hold(10, commit(1).into_iter().collect()); // records 1-10
            h.hold(5, Vec::new()); // 11-15
            h.hold(10, commit(2).into_iter().collect()); // 16-25
            h.hold(0, commit(3).into_iter().collect()); // nothing pending: true with 25
            h.hold(10, commit(4).into_iter().collect()); // 26-35
            h.hold_paused(true);
            h
        };
        for (taken, want, left) in [
            (35, &["1", "2", "3", "4"][..], 0),
            (34, &["1", "2", "3"], 1),
            (25, &["1", "2", "3"], 10),
            (24, &["1"], 11),
            (10, &["1"], 25),
            (9, &[], 26),
            (0, &[], 35),
        ] {
            let stop = held().at_stop(Some(taken));
            assert_eq!(cursors(&stop.commits), want, "taken {taken}");
            assert_eq!(
                (stop.left, stop.count),
                (left, HostCount::Used),
                "taken {taken}"
            );
        }
        // The host does not say, or counts more than it was given: only what is due (nothing,
        // paused), and the records after the last written position are left.
        let stop = held().at_stop(None);
        assert!(stop.commits.is_empty());
        assert_eq!((stop.left, stop.count), (35, HostCount::Missing));
        let stop = held().at_stop(Some(36));
        assert!(stop.commits.is_empty());
        assert_eq!((stop.left, stop.count), (35, HostCount::Above(36, 35)));
        let h = Handoff::new(1 << 20);
        h.hold(10, commit(1).into_iter().collect());
        std::thread::sleep(HOLD + Duration::from_millis(20));
        h.hold(7, commit(2).into_iter().collect());
        let stop = h.at_stop(None);
        assert_eq!(cursors(&stop.commits), ["1"]);
        assert_eq!(stop.left, 7);
        // Written once: a second stop finds nothing more.
        let stop = h.at_stop(Some(17));
        assert_eq!(cursors(&stop.commits), ["2"]);
        assert!(h.at_stop(Some(17)).commits.is_empty());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn positions_without_records_and_outsized_chunks() {
        let h = Handoff::new(8192);
        h.push(&[], 0, commit(7)).await.unwrap();
        let (buf, commits) = h.take();
        assert!(buf.is_none());
        assert_eq!(
            cursors(&commits),
            ["7"],
            "true at once: nothing before them is pending"
        );

        // A chunk larger than the size goes alone, and its memory is not kept.
        h.push(&[9; 20_000], 1, commit(8)).await.unwrap();
        let (buf, _) = h.take();
        let buf = buf.unwrap().buf;
        assert_eq!(buf.len(), 20_000);
        h.give_back(buf);
        h.push(&[1; 10], 1, None).await.unwrap();
        let (buf, _) = h.take();
        assert!(
            buf.unwrap().buf.capacity() <= 16_384,
            "outsized buffer dropped"
        );

        h.close();
        assert!(h.push(&[1], 1, None).await.is_err(), "closed");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_waker_is_called_once_per_take_and_untaken_records_come_back_first() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let h = Arc::new(Handoff::new(32 << 20));
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        h.set_waker(Box::new(move || {
            c.fetch_add(1, Ordering::SeqCst);
        }));
        h.push(&[1; 10], 2, commit(1)).await.unwrap();
        h.push(&[2; 10], 3, commit(2)).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1, "one wake for what waits");
        let (batch, commits) = h.take();
        let batch = batch.unwrap();
        assert_eq!(batch.records, 5);
        assert!(
            batch.buf.capacity() <= EVENT_LIMIT,
            "starts small when records go as they come"
        );
        // The host refused them: they go back in front of what comes next.
        h.untake(batch, commits);
        h.push(&[3; 10], 1, commit(3)).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2, "woken again after a take");
        let (batch, commits) = h.take();
        let batch = batch.unwrap();
        assert_eq!(batch.records, 6);
        assert_eq!(&batch.buf.as_slice()[..2], &[1, 1]);
        assert_eq!(&batch.buf.as_slice()[28..], &[3, 3]);
        assert_eq!(cursors(&commits), ["1", "2", "3"]);
        h.give_back(batch.buf);
        h.wake();
        assert_eq!(calls.load(Ordering::SeqCst), 3, "wake() always calls");

        // However large buffer_max_size, the buffer holds at most EVENT_LIMIT then.
        h.push(&vec![4; EVENT_LIMIT - 100], 1, None).await.unwrap();
        let waiter = {
            let h = h.clone();
            tokio::spawn(async move { h.push(&[5; 200], 1, None).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "a full small buffer takes no more");
        let (batch, _) = h.take();
        h.give_back(batch.unwrap().buf);
        waiter.await.unwrap().unwrap();

        // A slow hand-off (a slow disk under the state file) lets it hold more, up to a
        // bound; quick ones bring it back.
        for _ in 0..10 {
            h.handed_over_in(Duration::from_millis(20));
        }
        assert_eq!(h.limit(), EVENT_LIMIT_MAX);
        h.handed_over_in(Duration::from_micros(100));
        assert_eq!(h.limit(), EVENT_LIMIT_MAX / 2);
        for _ in 0..10 {
            h.handed_over_in(Duration::from_micros(100));
        }
        assert_eq!(h.limit(), EVENT_LIMIT);
    }
}
