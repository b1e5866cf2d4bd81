//! The bounded hand-off between the sources and Fluent Bit's collect callback.
//!
//! Sources encode records into small chunks of plain memory and append each finished chunk to
//! the one buffer the next collect hands over. That buffer is the only host-allocated memory
//! (the host frees it): collect takes it without ever waiting, and the host gives it back in
//! the cleanup callback, right after appending its data, to collect the next records. A slow
//! pipeline leaves the buffer full and slows the pull. The positions the records complete
//! travel with them and are applied once the host has taken them.

use crate::ffi::buffer::HostBuf;
use std::sync::Mutex;

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
    /// Positions its records complete, in the order they were reached.
    commits: Vec<Commit>,
    /// The buffer is with the host, between collect and cleanup.
    out: bool,
    closed: bool,
}

/// The hand-off between the sources and collect: one buffer of at most `buffer_max_size`
/// bytes that sources append finished chunks to and collect hands over as it is. Sources wait
/// while it is full or with the host; so memory stays at one buffer however large the
/// backlog, and a slow pipeline slows the pull.
pub struct Handoff {
    pending: Mutex<Pending>,
    room: tokio::sync::Notify,
    max: usize,
}

impl Handoff {
    pub fn new(max: usize) -> Self {
        Handoff {
            pending: Mutex::new(Pending {
                buf: HostBuf::new(),
                commits: Vec::new(),
                out: false,
                closed: false,
            }),
            room: tokio::sync::Notify::new(),
            max,
        }
    }

    /// Appends a chunk of whole records and the position it completes, waiting for room.
    pub async fn push(&self, chunk: &[u8], position: Option<Commit>) -> Result<(), Closed> {
        loop {
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut p = lock(&self.pending);
                if p.closed {
                    return Err(Closed);
                }
                let fits = p.buf.is_empty() || p.buf.len() + chunk.len() <= self.max;
                if !p.out && fits {
                    if p.buf.capacity() == 0 && !chunk.is_empty() {
                        // Pages are only touched as records arrive.
                        p.buf = HostBuf::with_capacity(self.max.max(chunk.len()));
                    }
                    p.buf.extend_from_slice(chunk);
                    p.commits.extend(position);
                    return Ok(());
                }
            }
            notified.await;
        }
    }

    /// For collect: the buffer with its records (None if it holds none, or is still with the
    /// host) and the positions reached, which are true once that buffer is delivered (or at
    /// once, when there is no buffer).
    pub fn take(&self) -> (Option<HostBuf>, Vec<Commit>) {
        let mut p = lock(&self.pending);
        if p.out {
            return (None, Vec::new());
        }
        let commits = std::mem::take(&mut p.commits);
        if p.buf.is_empty() {
            return (None, commits);
        }
        p.out = true;
        (Some(std::mem::take(&mut p.buf)), commits)
    }

    /// The host released the buffer `take` handed out: sources may fill it again.
    pub fn give_back(&self, mut buf: HostBuf) {
        buf.clear();
        let mut p = lock(&self.pending);
        // A single outsized record can have grown it past the size: do not keep that.
        if p.buf.capacity() == 0 && buf.capacity() <= self.max.saturating_mul(2) {
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
    use std::time::Duration;

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
        h.push(&[1; 60], commit(1)).await.unwrap();
        h.push(&[2; 40], commit(2)).await.unwrap();
        // Full: the next chunk waits.
        let waiter = {
            let h = h.clone();
            tokio::spawn(async move { h.push(&[3; 10], commit(3)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "a full buffer takes no more");

        let (buf, commits) = h.take();
        let buf = buf.expect("records to hand over");
        assert_eq!(buf.len(), 100);
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
        let buf = buf.unwrap();
        assert_eq!(
            (buf.as_slice(), buf.capacity()),
            (&[3u8; 10][..], cap),
            "same memory reused"
        );
        assert_eq!(cursors(&commits), ["3"]);
        h.give_back(buf);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn positions_without_records_and_outsized_chunks() {
        let h = Handoff::new(8192);
        h.push(&[], commit(7)).await.unwrap();
        let (buf, commits) = h.take();
        assert!(buf.is_none());
        assert_eq!(
            cursors(&commits),
            ["7"],
            "true at once: nothing before them is pending"
        );

        // A chunk larger than the size goes alone, and its memory is not kept.
        h.push(&[9; 20_000], commit(8)).await.unwrap();
        let (buf, _) = h.take();
        let buf = buf.unwrap();
        assert_eq!(buf.len(), 20_000);
        h.give_back(buf);
        h.push(&[1; 10], None).await.unwrap();
        let (buf, _) = h.take();
        assert!(buf.unwrap().capacity() <= 16_384, "outsized buffer dropped");

        h.close();
        assert!(h.push(&[1], None).await.is_err(), "closed");
    }
}
