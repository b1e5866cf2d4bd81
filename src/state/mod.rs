//! Durable positions, one file per instance.
//!
//! A position (cursor) of a stream is written only when the records before it are in Fluent
//! Bit's chunks (taken, then held for `handoff::HOLD`), so a crash at any instant loses nothing:
//! on restart collection resumes from the newest position written. A process that dies in the
//! middle of a write leaves the positions before it readable, so at most the records of that
//! one hand-off come again.
//!
//! What reaches the disk itself, for a power loss or a kernel crash, follows `state_sync`
//! ([`StateSync`]), as Fluent Bit's `storage.sync` does for its own buffers:
//! - `full`: every write replaces the file whole and synced (temporary file, fsync, rename,
//!   fsync of the directory).
//! - `normal`, the default: at most once a second ([`DURABLE_EVERY`]) and when the instance
//!   stops, the file is replaced so, and a synced copy is written to `<file>.checkpoint`. In
//!   between, each hand-off overwrites in place one of two slot files, `<file>.0` and
//!   `<file>.1`, in turn, unsynced: no file is created, renamed or freed per hand-off. Each
//!   write carries a sequence number (`seq`) and each slot a checksum, so a start reads the
//!   newest of the four that is whole; one torn by a crash mid-write fails its checksum and the
//!   other slot holds the write before it.
//!
//! After a power loss the positions therefore go back by at most about a second (records come
//! again, none are lost); a file a filesystem left empty (renamed, its data never written) is
//! moved aside and the checkpoint stands in. With no usable copy at all, collection starts again
//! from `initial_lookback`, and an error says so. Removing the file (to start over) makes the
//! others stale: they are removed with it.
//!
//! # The state format (version 1), the one description of it
//!
//! The file `<state_dir>/mimecast-<client id>-<hash>.json` (the hash covers `base_url`, the
//! client id and the selection, see [`file_name`]) holds one JSON object:
//!
//! ```text
//! {"cursors": {"<stream key>": "<cursor>", ...}, "reset_token": <string or null>, "seq": <n>, "version": 1}
//! ```
//!
//! `seq` counts the writes (0 when absent, as in files of earlier builds). The checkpoint holds
//! the same object; a slot file holds it followed by a newline and a line of 16 hex digits, the
//! FNV-1a hash of the object's bytes ([`crate::hash`]).
//!
//! A stream key is the source's name (`audit`) or `<source>/<part>` (`siem_cg/receipt`,
//! `siem_ci/stream`, `threat_intel/malware_grid`). A cursor is a JSON object serialized into a
//! string, with `"v": 1` beside its type's fields ([`cursor`]); the types are:
//!
//! | streams | fields |
//! |---|---|
//! | `/api/...` logs (`api_logs`) | `done` (ms, read up to), `seen` ([[hash, event ms], ...] inside the overlap) |
//! | SIEM batch (`siem_batch`) | `list_token` (page, or null), `file` (files of it done), `line` (lines of the next done), `recent` (16-hex-digit hashes of files done) |
//! | SIEM stream (`siem_stream`) | `next` (page token, or null), `recent` ([hash, ...] of the last events) |
//! | threat intel (`threat_intel`) | `done` (ms), `token` (within the window, or null), `window_end` (ms), `seen` ([[hash, ms], ...]) |
//! | email queues (`email_queues`) | `inbound`, `outbound` (ms, the newest sample emitted of each queue) |
//! | snapshots with a cadence of their own (`awareness_*`) | `taken` (ms, when the last snapshot was completed) |
//!
//! The other snapshots keep no cursor. `tests/fixtures/state-v1.json` is a file of this format that the
//! tests load.

pub mod cursor;

use crate::log::{Level, Logger};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const FORMAT_VERSION: u64 = 1;

/// Why the state file cannot be used: each names the property to fix.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("property 'state_dir': cannot create '{}': {}; set state_dir to a directory Fluent Bit can write", .0.display(), .1)]
    Create(PathBuf, std::io::Error),
    #[error("property 'state_dir': '{}' is not writable: {}; set state_dir to a directory Fluent Bit can write", .0.display(), .1)]
    NotWritable(PathBuf, std::io::Error),
    #[error("property 'state_dir': cannot read '{}': {}", .0.display(), .1)]
    Read(PathBuf, std::io::Error),
}

/// How often the positions are made to survive a power loss (`state_sync`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateSync {
    /// Every write is synced before the next records are taken.
    Full,
    /// Synced at most once per [`DURABLE_EVERY`], and when the instance stops.
    Normal,
}

/// How far apart `state_sync normal` syncs the positions to the disk.
pub const DURABLE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

pub struct StateStore {
    path: Option<PathBuf>,
    data: Mutex<Data>,
    log: Logger,
    sync: StateSync,
    /// Held while writing (one writer at a time, the newest positions last).
    disk: Mutex<Disk>,
}

#[derive(Default)]
struct Disk {
    /// The last write's sequence number.
    seq: u64,
    synced_at: Option<std::time::Instant>,
    /// A write since the last synced one: the stop syncs it.
    unsynced: bool,
    /// The slot files, opened at their first write.
    slots: [Option<std::fs::File>; 2],
}

#[derive(Default, Clone)]
struct Data {
    cursors: BTreeMap<String, String>,
    reset_token: Option<String>,
    seq: u64,
}

/// A name for an instance's state file that stays the same across restarts and differs
/// between instances that collect different things.
pub fn file_name(base_url: &str, client_id: &str, selection: &str) -> String {
    let h = crate::hash::fnv1a_more(
        crate::hash::FNV_OFFSET,
        base_url
            .bytes()
            .chain([0])
            .chain(client_id.bytes())
            .chain([0])
            .chain(selection.bytes()),
    );
    let safe: String = client_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(32)
        .collect();
    format!("mimecast-{safe}-{h:016x}.json")
}

impl StateStore {
    /// In-memory only (tools and tests).
    pub fn memory(log: Logger) -> StateStore {
        StateStore {
            path: None,
            data: Mutex::new(Data::default()),
            log,
            sync: StateSync::Full,
            disk: Mutex::new(Disk::default()),
        }
    }

    /// Opens (creating the directory if needed) and loads the instance's state file.
    /// Errors name the property and what to do; they make Init fail.
    pub fn open(
        dir: &Path,
        name: &str,
        reset: Option<&str>,
        sync: StateSync,
        log: Logger,
    ) -> Result<StateStore, StateError> {
        let d = || dir.to_path_buf();
        std::fs::create_dir_all(dir).map_err(|e| StateError::Create(d(), e))?;
        let probe = dir.join(format!(".{name}.probe"));
        std::fs::write(&probe, b"ok").map_err(|e| StateError::NotWritable(d(), e))?;
        let _ = std::fs::remove_file(&probe);
        let path = dir.join(name);
        let mut data = load(&path, &log).map_err(|e| StateError::Read(path.clone(), e))?;
        if let Some(token) = reset {
            if data.reset_token.as_deref() != Some(token) {
                if !data.cursors.is_empty() {
                    log.warn(format_args!("state_reset changed to '{token}': forgetting all saved positions; collection starts again from initial_lookback"));
                }
                data = Data {
                    cursors: BTreeMap::new(),
                    reset_token: Some(token.to_string()),
                    seq: data.seq,
                };
            }
        }
        if sync == StateSync::Full {
            // Written only by `normal`: left-over ones would only get older.
            for other in others(&path) {
                let _ = std::fs::remove_file(other);
            }
        }
        let disk = Disk {
            seq: data.seq,
            ..Disk::default()
        };
        let store = StateStore {
            path: Some(path),
            data: Mutex::new(data),
            log,
            sync,
            disk: Mutex::new(disk),
        };
        store.save();
        Ok(store)
    }

    pub fn get(&self, key: &str) -> Option<String> {
        self.lock().cursors.get(key).cloned()
    }

    /// The saved cursor of stream `key`, or the type's default (start from `initial_lookback`)
    /// when there is none or it is not understood.
    pub fn cursor<T: serde::de::DeserializeOwned + Default>(&self, key: &str) -> T {
        self.get(key)
            .and_then(|s| cursor::decode(&s))
            .unwrap_or_default()
    }

    /// Records positions whose records Fluent Bit has taken, and writes them out.
    pub fn apply(&self, updates: impl IntoIterator<Item = (String, String)>) {
        let mut changed = false;
        {
            let mut d = self.lock();
            for (k, v) in updates {
                if d.cursors.get(&k) != Some(&v) {
                    d.cursors.insert(k, v);
                    changed = true;
                }
            }
        }
        if changed {
            self.save();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn save(&self) {
        self.write(false);
    }

    /// Writes the positions out; synced if `state_sync` asks for it now, or `force`.
    fn write(&self, force: bool) {
        let Some(path) = &self.path else { return };
        let mut disk = self.disk.lock().unwrap_or_else(|e| e.into_inner());
        if force && !disk.unsynced {
            return;
        }
        let sync = force
            || match self.sync {
                StateSync::Full => true,
                StateSync::Normal => disk.synced_at.is_none_or(|t| t.elapsed() >= DURABLE_EVERY),
            };
        disk.seq += 1;
        let text = self.text(disk.seq);
        let written = if sync {
            write_file(path, text.as_bytes(), true).and_then(|()| {
                if self.sync == StateSync::Normal {
                    write_file(&checkpoint_path(path), text.as_bytes(), true)
                } else {
                    Ok(())
                }
            })
        } else {
            let seq = disk.seq;
            write_slot(&mut disk.slots, path, seq, &text)
        };
        match written {
            Ok(()) => {
                if sync {
                    disk.synced_at = Some(std::time::Instant::now());
                }
                disk.unsynced = !sync;
                self.log.resolved("state-write", "state file written again")
            }
            Err(e) => self.log.problem(
                "state-write",
                Level::Error,
                format_args!("cannot write state file {}: {e}; positions are kept in memory and a restart would re-read data", path.display()),
            ),
        }
    }

    /// Syncs the last positions to the disk if they are not yet (the instance stops).
    pub fn sync_now(&self) {
        self.write(true);
    }

    /// The file's text, written straight from the positions (no copy of them).
    fn text(&self, seq: u64) -> String {
        #[derive(serde::Serialize)]
        struct Doc<'a> {
            cursors: &'a BTreeMap<String, String>,
            reset_token: &'a Option<String>,
            seq: u64,
            version: u64,
        }
        let d = self.lock();
        serde_json::to_string(&Doc {
            cursors: &d.cursors,
            reset_token: &d.reset_token,
            seq,
            version: FORMAT_VERSION,
        })
        .unwrap_or_default()
    }
}

impl Drop for StateStore {
    fn drop(&mut self) {
        self.sync_now();
    }
}

/// `path` with `suffix` appended to its name.
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Where `state_sync normal` keeps the last synced positions beside the file.
fn checkpoint_path(path: &Path) -> PathBuf {
    beside(path, ".checkpoint")
}

fn slot_path(path: &Path, slot: usize) -> PathBuf {
    beside(path, if slot == 0 { ".0" } else { ".1" })
}

/// The files beside the state file that `state_sync normal` writes.
fn others(path: &Path) -> [PathBuf; 3] {
    [
        checkpoint_path(path),
        slot_path(path, 0),
        slot_path(path, 1),
    ]
}

/// Overwrites slot `seq % 2` in place: the object, a newline, its hash in hex, a newline.
fn write_slot(
    slots: &mut [Option<std::fs::File>; 2],
    path: &Path,
    seq: u64,
    text: &str,
) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let i = usize::from(seq % 2 == 1);
    let f = match &mut slots[i] {
        Some(f) => f,
        empty => empty.insert(
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(slot_path(path, i))?,
        ),
    };
    let hash = format!("\n{:016x}\n", crate::hash::fnv1a(text.as_bytes()));
    f.write_all_at(text.as_bytes(), 0)?;
    f.write_all_at(hash.as_bytes(), text.len() as u64)?;
    f.set_len((text.len() + hash.len()) as u64)
}

/// The object of a slot file whose hash matches, else why not.
fn parse_slot(bytes: &[u8]) -> Result<Data, String> {
    let body = bytes.strip_suffix(b"\n").ok_or("no end of line")?;
    let cut = body.len().checked_sub(17).ok_or("too short")?;
    let (text, tail) = body.split_at(cut);
    let hex = tail.strip_prefix(b"\n").ok_or("no hash line")?;
    let want = std::str::from_utf8(hex)
        .ok()
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .ok_or("no hash")?;
    if crate::hash::fnv1a(text) != want {
        return Err("torn (hash differs)".into());
    }
    parse(text)
}

/// The newest whole positions of the state file at `path` and the files beside it.
fn load(path: &Path, log: &Logger) -> std::io::Result<Data> {
    let main = match std::fs::read(path) {
        Ok(bytes) => Some(parse(&bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let Some(main) = main else {
        // Removed (to start over), or never written: the others, if any, are stale and must not
        // bring old positions back later.
        for other in others(path) {
            let _ = std::fs::remove_file(other);
        }
        log.info(format_args!(
            "no saved positions yet ({}); starting from initial_lookback",
            path.display()
        ));
        return Ok(Data::default());
    };
    let [checkpoint, slot0, slot1] = others(path);
    let read = |p: &Path, parse: fn(&[u8]) -> Result<Data, String>| {
        std::fs::read(p).ok().and_then(|b| parse(&b).ok())
    };
    let copies = [
        read(&checkpoint, parse),
        read(&slot0, parse_slot),
        read(&slot1, parse_slot),
    ];
    let newest_copy = copies.into_iter().flatten().max_by_key(|d| d.seq);
    match main {
        Ok(d) => {
            log.info(format_args!(
                "resuming from saved positions in {}",
                path.display()
            ));
            Ok(match newest_copy {
                Some(c) if c.seq > d.seq => c,
                _ => d,
            })
        }
        Err(why) => {
            let aside =
                path.with_extension(format!("corrupt-{}", jiff::Timestamp::now().as_second()));
            let kept = if std::fs::rename(path, &aside).is_ok() {
                format!("kept it as {}", aside.display())
            } else {
                "could not move it aside".into()
            };
            match newest_copy {
                Some(c) => {
                    log.warn(format_args!(
                        "state file {} is unusable ({why}; a power loss can leave it so); {kept}; resuming from the newest whole copy beside it ({}.checkpoint, .0, .1): records taken since may come again",
                        path.display(),
                        path.display()
                    ));
                    Ok(c)
                }
                None => {
                    log.error(format_args!(
                        "state file {} is unusable ({why}); {kept}; collection starts again from initial_lookback",
                        path.display()
                    ));
                    Ok(Data::default())
                }
            }
        }
    }
}

fn parse(bytes: &[u8]) -> Result<Data, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let version = v
        .get("version")
        .and_then(Value::as_u64)
        .ok_or("no version")?;
    if version != FORMAT_VERSION {
        return Err(format!(
            "format version {version}, this build reads {FORMAT_VERSION}"
        ));
    }
    let cursors = v
        .get("cursors")
        .and_then(Value::as_object)
        .ok_or("no cursors")?
        .iter()
        .map(|(k, v)| {
            v.as_str()
                .map(|s| (k.clone(), s.to_string()))
                .ok_or_else(|| format!("cursor '{k}' is not a string"))
        })
        .collect::<Result<_, _>>()?;
    let reset_token = v
        .get("reset_token")
        .and_then(Value::as_str)
        .map(str::to_string);
    let seq = v.get("seq").and_then(Value::as_u64).unwrap_or(0);
    Ok(Data {
        cursors,
        reset_token,
        seq,
    })
}

/// Replaces `path` whole: a temporary file renamed over it. With `sync`, the data is on the
/// disk before the rename and the rename before returning.
fn write_file(path: &Path, bytes: &[u8], sync: bool) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        if sync {
            f.sync_all()?;
        }
    }
    std::fs::rename(&tmp, path)?;
    if sync {
        if let Some(dir) = path.parent() {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::CaptureSink;
    use std::sync::Arc;

    /// A state file of today's format (synthetic, written as version 1 writes it) loads, and
    /// every stream kind's cursor in it decodes to the values written.
    #[test]
    fn a_state_file_of_todays_format_loads() {
        let dir = tmpdir("fixture");
        let name = "mimecast-fixture.json";
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(name),
            include_str!("../../tests/fixtures/state-v1.json"),
        )
        .unwrap();
        let (sink, log) = logger();
        let store =
            StateStore::open(&dir, name, Some("2026-11-30"), StateSync::Normal, log).unwrap();
        let lines = sink.0.lock().unwrap().clone();
        assert!(
            lines
                .iter()
                .any(|(_, l)| l.contains("resuming from saved positions")),
            "{lines:?}"
        );
        let api: crate::sources::api_logs::Cursor = store.cursor("audit");
        assert_eq!(api.done, 1_764_633_600_000);
        assert_eq!(
            api.seen,
            [
                (1_311_768_467_463_790_320, 1_764_633_590_000),
                (u64::MAX, 1_764_633_599_000)
            ]
        );
        let batch: crate::sources::siem_batch::Cursor = store.cursor("siem_cg/receipt");
        assert_eq!((batch.file, batch.line), (3, 17));
        assert_eq!(batch.list_token.as_deref(), Some("eyJwYWdlIjoyfQ=="));
        assert_eq!(Vec::from(batch.recent.clone()), [1, 0x0123_4567_89ab_cdef]);
        assert!(crate::sources::siem_stream::saved_cursor_reads(
            &store,
            "siem_ci/stream"
        ));
        assert!(crate::sources::threat_intel::saved_cursor_reads(
            &store,
            "threat_intel/malware_grid"
        ));
        let queues: crate::sources::email_queues::Cursor = store.cursor("email_queues");
        assert_eq!(
            (queues.inbound, queues.outbound),
            (1_764_633_000_000, 1_764_632_400_000)
        );
        let taken: crate::sources::snapshot::Taken = store.cursor("awareness_safe_score");
        assert_eq!(taken.taken, 1_764_633_600_000);
        // Written back as it was read: the same cursors, byte for byte.
        let original: Value =
            serde_json::from_str(include_str!("../../tests/fixtures/state-v1.json")).unwrap();
        for (key, saved) in original["cursors"].as_object().unwrap() {
            assert_eq!(store.get(key).as_deref(), saved.as_str(), "{key}");
        }
        assert_eq!(
            crate::state::cursor::encode(&batch),
            original["cursors"]["siem_cg/receipt"].as_str().unwrap()
        );
        assert_eq!(
            crate::state::cursor::encode(&api),
            original["cursors"]["audit"].as_str().unwrap()
        );
        assert_eq!(
            crate::state::cursor::encode(&queues),
            original["cursors"]["email_queues"].as_str().unwrap()
        );
        assert_eq!(
            crate::state::cursor::encode(&taken),
            original["cursors"]["awareness_safe_score"]
                .as_str()
                .unwrap()
        );
    }

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("mc-state-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn logger() -> (Arc<CaptureSink>, Logger) {
        let cap = Arc::new(CaptureSink::default());
        (cap.clone(), Logger::new(cap, "mimecast.0"))
    }

    #[test]
    fn positions_survive_a_restart() {
        let dir = tmpdir("restart");
        let (_, log) = logger();
        let s = StateStore::open(&dir, "a.json", None, StateSync::Normal, log.clone()).unwrap();
        s.apply([("siem_cg/receipt".to_string(), "c1".to_string())]);
        s.apply([
            ("siem_cg/receipt".to_string(), "c2".to_string()),
            ("siem_cg/av".to_string(), "x".to_string()),
        ]);
        drop(s);
        let s = StateStore::open(&dir, "a.json", None, StateSync::Normal, log).unwrap();
        assert_eq!(s.get("siem_cg/receipt").as_deref(), Some("c2"));
        assert_eq!(s.get("siem_cg/av").as_deref(), Some("x"));
        assert!(!dir.join("a.json.tmp").exists());
    }

    #[test]
    fn corrupt_file_is_moved_aside_and_reported() {
        let dir = tmpdir("corrupt");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.json"), b"{\"version\":1,\"cursors\":{\"k\":").unwrap();
        let (cap, log) = logger();
        let s = StateStore::open(&dir, "a.json", None, StateSync::Normal, log).unwrap();
        assert!(s.get("k").is_none());
        let logs = cap.0.lock().unwrap().clone();
        assert!(
            logs.iter().any(|(l, m)| *l == Level::Error
                && m.contains("unusable")
                && m.contains("corrupt-")),
            "{logs:?}"
        );
        assert!(std::fs::read_dir(&dir).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains("corrupt-")));
        std::fs::write(dir.join("b.json"), br#"{"version":99,"cursors":{}}"#).unwrap();
        let (cap, log) = logger();
        StateStore::open(&dir, "b.json", None, StateSync::Normal, log).unwrap();
        assert!(cap
            .0
            .lock()
            .unwrap()
            .iter()
            .any(|(_, m)| m.contains("format version 99")));
    }

    fn read_cursor(path: &Path, key: &str) -> Option<String> {
        let data = parse(&std::fs::read(path).ok()?).ok()?;
        data.cursors.get(key).cloned()
    }

    fn kv(k: &str, v: &str) -> [(String, String); 1] {
        [(k.to_string(), v.to_string())]
    }

    fn read_slot(path: &Path, key: &str) -> Option<String> {
        let data = parse_slot(&std::fs::read(path).ok()?).ok()?;
        data.cursors.get(key).cloned()
    }

    /// `normal`: hand-offs go to the two slots in turn; at most once a second, and at the stop,
    /// the file and its checkpoint are written (synced); a start takes the newest.
    #[test]
    fn normal_sync_writes_slots_in_turn_and_the_file_once_a_second() {
        let dir = tmpdir("normal");
        let (_, log) = logger();
        let file = dir.join("a.json");
        let (checkpoint, s0, s1) = (
            dir.join("a.json.checkpoint"),
            dir.join("a.json.0"),
            dir.join("a.json.1"),
        );
        let s = StateStore::open(&dir, "a.json", None, StateSync::Normal, log.clone()).unwrap();
        s.apply(kv("k", "1"));
        s.apply(kv("k", "2"));
        s.apply(kv("k", "3"));
        assert_eq!(
            read_cursor(&file, "k"),
            None,
            "synced at open, not again within the second"
        );
        assert_eq!(read_cursor(&checkpoint, "k"), None);
        // seq 1 was the open; 2, 3, 4 went to slots 0, 1, 0.
        assert_eq!(read_slot(&s0, "k").as_deref(), Some("3"));
        assert_eq!(read_slot(&s1, "k").as_deref(), Some("2"));
        std::mem::forget(s); // a crash: no stop
        let s = StateStore::open(&dir, "a.json", None, StateSync::Normal, log.clone()).unwrap();
        assert_eq!(s.get("k").as_deref(), Some("3"), "the newest write");
        assert_eq!(
            read_cursor(&file, "k").as_deref(),
            Some("3"),
            "and synced at open"
        );

        std::thread::sleep(DURABLE_EVERY);
        s.apply(kv("k", "4"));
        assert_eq!(read_cursor(&file, "k").as_deref(), Some("4"));
        assert_eq!(read_cursor(&checkpoint, "k").as_deref(), Some("4"));
        s.apply(kv("k", "5"));
        assert_eq!(read_cursor(&file, "k").as_deref(), Some("4"));
        s.sync_now();
        assert_eq!(read_cursor(&file, "k").as_deref(), Some("5"), "stop");
        s.apply(kv("k", "6"));
        drop(s);
        assert_eq!(read_cursor(&file, "k").as_deref(), Some("6"), "drop");
        assert!(!dir.join("a.json.tmp").exists());
    }

    /// A crash in the middle of a slot write leaves the slot torn: its hash fails and the other
    /// slot, one write older, is read. A file a power loss left empty gives way to the newest
    /// whole copy; a removed file takes the copies with it; `full` keeps none.
    #[test]
    fn torn_and_lost_writes_fall_back_to_the_newest_whole_copy() {
        let dir = tmpdir("torn");
        let (_, log) = logger();
        let s = StateStore::open(&dir, "a.json", None, StateSync::Normal, log.clone()).unwrap();
        s.apply(kv("k", "older"));
        s.apply(kv("k", "newest"));
        std::mem::forget(s);
        let newest = dir.join("a.json.1"); // seq 3
        let bytes = std::fs::read(&newest).unwrap();
        std::fs::write(&newest, &bytes[..bytes.len() / 2]).unwrap();
        let s = StateStore::open(&dir, "a.json", None, StateSync::Normal, log.clone()).unwrap();
        assert_eq!(s.get("k").as_deref(), Some("older"));
        // A stale tail after a shorter write is caught too.
        let mut longer = bytes.clone();
        longer.splice(
            ..0,
            b"{\"cursors\":{},\"seq\":9,\"version\":1}\n"
                .iter()
                .copied(),
        );
        assert!(parse_slot(&longer).is_err());
        s.apply(kv("k", "later"));
        std::mem::forget(s);

        std::fs::write(dir.join("a.json"), b"").unwrap();
        let (cap, log2) = logger();
        let s = StateStore::open(&dir, "a.json", None, StateSync::Normal, log2).unwrap();
        assert_eq!(s.get("k").as_deref(), Some("later"));
        let logs = cap.0.lock().unwrap().clone();
        assert!(
            logs.iter().any(|(l, m)| *l == Level::Warn
                && m.contains("unusable")
                && m.contains("newest whole copy")
                && m.contains("may come again")),
            "{logs:?}"
        );
        drop(s);

        std::fs::remove_file(dir.join("a.json")).unwrap();
        let s = StateStore::open(&dir, "a.json", None, StateSync::Normal, log.clone()).unwrap();
        assert!(s.get("k").is_none(), "removed to start over");
        std::mem::forget(s);
        std::fs::write(dir.join("a.json"), b"").unwrap();
        let s = StateStore::open(&dir, "a.json", None, StateSync::Normal, log.clone()).unwrap();
        assert!(s.get("k").is_none(), "the stale copies went with the file");
        drop(s);

        let s = StateStore::open(&dir, "a.json", None, StateSync::Full, log).unwrap();
        s.apply(kv("k", "full"));
        assert_eq!(
            read_cursor(&dir.join("a.json"), "k").as_deref(),
            Some("full")
        );
        for other in others(&dir.join("a.json")) {
            assert!(!other.exists(), "{}", other.display());
        }
    }

    #[test]
    fn reset_token_forgets_positions_once() {
        let dir = tmpdir("reset");
        let (_, log) = logger();
        let s = StateStore::open(&dir, "a.json", None, StateSync::Normal, log.clone()).unwrap();
        s.apply([("k".to_string(), "v".to_string())]);
        drop(s);
        let s = StateStore::open(
            &dir,
            "a.json",
            Some("2026-11-23"),
            StateSync::Normal,
            log.clone(),
        )
        .unwrap();
        assert!(s.get("k").is_none(), "reset on a new token");
        s.apply([("k".to_string(), "w".to_string())]);
        drop(s);
        let s =
            StateStore::open(&dir, "a.json", Some("2026-11-23"), StateSync::Normal, log).unwrap();
        assert_eq!(s.get("k").as_deref(), Some("w"), "same token: kept");
    }

    #[test]
    fn unwritable_directory_is_a_clear_error() {
        let (_, log) = logger();
        let e = StateStore::open(
            Path::new("/proc/mimecast-state"),
            "a.json",
            None,
            StateSync::Normal,
            log,
        )
        .err()
        .unwrap();
        assert!(e.to_string().starts_with("property 'state_dir'"), "{e}");
    }

    #[test]
    fn file_names_differ_by_selection() {
        let a = file_name(
            "https://api.services.mimecast.com",
            "id-1",
            "siem_cg:receipt",
        );
        let b = file_name("https://api.services.mimecast.com", "id-1", "siem_cg:av");
        assert_ne!(a, b);
        assert_eq!(
            a,
            file_name(
                "https://api.services.mimecast.com",
                "id-1",
                "siem_cg:receipt"
            )
        );
        assert!(a.starts_with("mimecast-id-1-"));
    }
}
