//! Durable positions, one file per instance.
//!
//! A position (cursor) of a stream is written only when the records before it have been taken
//! by Fluent Bit (the cleanup callback after append), so a crash at any instant loses nothing:
//! on restart collection resumes from the last written position. Every write replaces the file
//! whole (temporary file, rename), so a process that dies at any instant leaves the old or the
//! new positions, and the next start reads them.
//!
//! What reaches the disk itself, for a power loss or a kernel crash, follows `state_sync`
//! ([`StateSync`]), as Fluent Bit's `storage.sync` does for its own buffers: `full` syncs every
//! write (fsync of the file, rename, fsync of the directory); `normal`, the default, syncs at
//! most once a second ([`DURABLE_EVERY`]) and when the instance stops, and then also writes the
//! same positions, synced, to `<file>.checkpoint`. After a power loss the file is then the
//! synced one or newer, or, on a filesystem that can leave a renamed file empty, unusable: the
//! checkpoint is read instead. Positions then go back by at most about a second, so records
//! come again; none are lost. A file that is unusable with no usable checkpoint is moved aside
//! and reported, and collection starts again from `initial_lookback`.
//!
//! # The state format (version 1), the one description of it
//!
//! The file `<state_dir>/mimecast-<client id>-<hash>.json` (the hash covers `base_url`, the
//! client id and the selection, see [`file_name`]) holds one JSON object:
//!
//! ```text
//! {"cursors": {"<stream key>": "<cursor>", ...}, "reset_token": <string or null>, "version": 1}
//! ```
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
    /// Held while writing (one writer at a time); when the last synced write was.
    disk: Mutex<Disk>,
}

#[derive(Default)]
struct Disk {
    synced_at: Option<std::time::Instant>,
    /// A write since the last synced one: the stop syncs it.
    unsynced: bool,
}

#[derive(Default, Clone)]
struct Data {
    cursors: BTreeMap<String, String>,
    reset_token: Option<String>,
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
        let checkpoint = checkpoint_path(&path);
        let mut data = match std::fs::read(&path) {
            Ok(bytes) => match parse(&bytes) {
                Ok(d) => {
                    log.info(format_args!(
                        "resuming from saved positions in {}",
                        path.display()
                    ));
                    d
                }
                Err(why) => {
                    let aside = path
                        .with_extension(format!("corrupt-{}", jiff::Timestamp::now().as_second()));
                    let moved = std::fs::rename(&path, &aside).is_ok();
                    let kept = if moved {
                        format!("kept it as {}", aside.display())
                    } else {
                        "could not move it aside".into()
                    };
                    match std::fs::read(&checkpoint).map(|b| parse(&b)) {
                        Ok(Ok(d)) => {
                            log.warn(format_args!(
                                "state file {} is unusable ({why}; a power loss can leave it so); {kept}; resuming from the last synced positions in {}: records taken since may come again",
                                path.display(),
                                checkpoint.display()
                            ));
                            d
                        }
                        _ => {
                            log.error(format_args!(
                                "state file {} is unusable ({why}); {kept}; collection starts again from initial_lookback",
                                path.display()
                            ));
                            Data::default()
                        }
                    }
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Without the file its checkpoint is stale (the file was removed to start
                // over): it must not bring old positions back later.
                let _ = std::fs::remove_file(&checkpoint);
                log.info(format_args!(
                    "no saved positions yet ({}); starting from initial_lookback",
                    path.display()
                ));
                Data::default()
            }
            Err(e) => return Err(StateError::Read(path, e)),
        };
        if let Some(token) = reset {
            if data.reset_token.as_deref() != Some(token) {
                if !data.cursors.is_empty() {
                    log.warn(format_args!("state_reset changed to '{token}': forgetting all saved positions; collection starts again from initial_lookback"));
                }
                data = Data {
                    cursors: BTreeMap::new(),
                    reset_token: Some(token.to_string()),
                };
            }
        }
        if sync == StateSync::Full {
            // Written only by `normal`: a left-over one would only get older.
            let _ = std::fs::remove_file(&checkpoint);
        }
        let store = StateStore {
            path: Some(path),
            data: Mutex::new(data),
            log,
            sync,
            disk: Mutex::new(Disk::default()),
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
        // One writer at a time, and the newest positions last.
        let mut disk = self.disk.lock().unwrap_or_else(|e| e.into_inner());
        if force && !disk.unsynced {
            return;
        }
        let text = self.text();
        let sync = force
            || match self.sync {
                StateSync::Full => true,
                StateSync::Normal => disk.synced_at.is_none_or(|t| t.elapsed() >= DURABLE_EVERY),
            };
        let written = write_file(path, text.as_bytes(), sync).and_then(|()| {
            if sync && self.sync == StateSync::Normal {
                write_file(&checkpoint_path(path), text.as_bytes(), true)
            } else {
                Ok(())
            }
        });
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
    fn text(&self) -> String {
        #[derive(serde::Serialize)]
        struct Doc<'a> {
            cursors: &'a BTreeMap<String, String>,
            reset_token: &'a Option<String>,
            version: u64,
        }
        let d = self.lock();
        serde_json::to_string(&Doc {
            cursors: &d.cursors,
            reset_token: &d.reset_token,
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

/// Where `state_sync normal` keeps the last synced positions beside the file.
fn checkpoint_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".checkpoint");
    PathBuf::from(name)
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
    Ok(Data {
        cursors,
        reset_token,
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

    /// `normal`: every write replaces the file, a synced copy is kept beside it at most once
    /// a second, and stopping syncs the last positions into it.
    #[test]
    fn normal_sync_keeps_a_synced_checkpoint_at_most_once_a_second() {
        let dir = tmpdir("normal");
        let (_, log) = logger();
        let (file, checkpoint) = (dir.join("a.json"), dir.join("a.json.checkpoint"));
        let s = StateStore::open(&dir, "a.json", None, StateSync::Normal, log).unwrap();
        s.apply(kv("k", "1"));
        s.apply(kv("k", "2"));
        assert_eq!(read_cursor(&file, "k").as_deref(), Some("2"), "every write");
        assert_eq!(
            read_cursor(&checkpoint, "k"),
            None,
            "synced at open, not again within the second"
        );
        std::thread::sleep(DURABLE_EVERY);
        s.apply(kv("k", "3"));
        assert_eq!(read_cursor(&checkpoint, "k").as_deref(), Some("3"));
        s.apply(kv("k", "4"));
        assert_eq!(read_cursor(&checkpoint, "k").as_deref(), Some("3"));
        s.sync_now();
        assert_eq!(read_cursor(&checkpoint, "k").as_deref(), Some("4"), "stop");
        s.apply(kv("k", "5"));
        drop(s);
        assert_eq!(read_cursor(&checkpoint, "k").as_deref(), Some("5"), "drop");
        assert!(!dir.join("a.json.tmp").exists());
    }

    /// A file a power loss left empty (a renamed file whose data never reached the disk) gives
    /// way to the checkpoint; a file removed takes its checkpoint with it; `full` keeps none.
    #[test]
    fn the_checkpoint_stands_in_for_an_unusable_file_only() {
        let dir = tmpdir("checkpoint");
        let (_, log) = logger();
        let s = StateStore::open(&dir, "a.json", None, StateSync::Normal, log).unwrap();
        std::thread::sleep(DURABLE_EVERY);
        s.apply(kv("k", "synced"));
        s.apply(kv("k", "newer"));
        std::mem::forget(s); // a power loss: no stop, no last sync
        std::fs::write(dir.join("a.json"), b"").unwrap();
        let (cap, log) = logger();
        let s = StateStore::open(&dir, "a.json", None, StateSync::Normal, log).unwrap();
        assert_eq!(s.get("k").as_deref(), Some("synced"));
        let logs = cap.0.lock().unwrap().clone();
        assert!(
            logs.iter().any(|(l, m)| *l == Level::Warn
                && m.contains("unusable")
                && m.contains("a.json.checkpoint")
                && m.contains("may come again")),
            "{logs:?}"
        );
        drop(s);

        std::fs::remove_file(dir.join("a.json")).unwrap();
        let (_, log) = logger();
        let s = StateStore::open(&dir, "a.json", None, StateSync::Normal, log).unwrap();
        assert!(s.get("k").is_none(), "removed to start over");
        drop(s);
        std::fs::write(dir.join("a.json"), b"").unwrap();
        let (_, log) = logger();
        let s = StateStore::open(&dir, "a.json", None, StateSync::Normal, log).unwrap();
        assert!(
            s.get("k").is_none(),
            "the stale checkpoint went with the file"
        );
        drop(s);

        let (_, log) = logger();
        let s = StateStore::open(&dir, "a.json", None, StateSync::Full, log).unwrap();
        s.apply(kv("k", "full"));
        assert!(!dir.join("a.json.checkpoint").exists());
        assert_eq!(
            read_cursor(&dir.join("a.json"), "k").as_deref(),
            Some("full")
        );
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
