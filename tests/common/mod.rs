//! Shared helpers of the end-to-end tests: the built plugin, the simulator, ground truth.
#![allow(dead_code)]

pub mod standards;

use fbhost::{Generation, Host, InstanceSpec, Keep, Record};
use mimecast_sim::{EventKey, Sim, SimConfig};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A private copy of the built plugin: each test dlopens its own, so their globals (and
/// Unregister) never meet, as with one Fluent Bit process per test.
pub struct Plugin {
    pub path: PathBuf,
}

/// Builds the plugin's shared library (cargo test compiles the library only as an rlib for
/// linking the tests), once per test process and profile, in this test's target directory:
/// with this test's profile, or in release where a test measures what operators run.
fn built_plugin(release: bool) -> PathBuf {
    static BUILT: [std::sync::OnceLock<PathBuf>; 2] =
        [std::sync::OnceLock::new(), std::sync::OnceLock::new()];
    BUILT[usize::from(release)]
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("test executable path");
            let test_profile_dir = exe
                .parent()
                .and_then(|deps| deps.parent())
                .expect("target/<profile>")
                .to_path_buf();
            let target_dir = test_profile_dir
                .parent()
                .expect("target directory")
                .to_path_buf();
            let release =
                release || test_profile_dir.file_name().and_then(|n| n.to_str()) == Some("release");
            let profile_dir = target_dir.join(if release { "release" } else { "debug" });
            let mut cmd = std::process::Command::new(
                std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()),
            );
            // The variables cargo sets for this test process would reach the build scripts
            // (ring's reads CARGO_MANIFEST_DIR and OUT_DIR) and make them differ from the build outside
            // the tests: each would then rebuild the TLS stack for the other, about 20 s per
            // test binary.
            for (k, _) in std::env::vars_os() {
                let k = k.to_string_lossy();
                if [
                    "CARGO_MANIFEST_",
                    "CARGO_PKG_",
                    "CARGO_CRATE_",
                    "CARGO_BIN_",
                    "CARGO_PRIMARY_PACKAGE",
                    "CARGO_TARGET_TMPDIR",
                    "CARGO_RUSTC_CURRENT_DIR",
                    "OUT_DIR",
                ]
                .iter()
                .any(|p| k.starts_with(p))
                {
                    cmd.env_remove(k.as_ref());
                }
            }
            cmd.args(["build", "--quiet", "-p", "fluent-bit-mimecast", "--lib"])
                .arg("--target-dir")
                .arg(&target_dir)
                .current_dir(env!("CARGO_MANIFEST_DIR"));
            if release {
                cmd.arg("--release");
            }
            let status = cmd.status().expect("run cargo build for the plugin");
            assert!(status.success(), "building the plugin failed");
            let so = profile_dir.join("libfluent_bit_mimecast.so");
            assert!(so.exists(), "plugin not built at {}", so.display());
            so
        })
        .clone()
}

impl Plugin {
    /// A private copy of the plugin built with this test's profile.
    pub fn copy() -> Plugin {
        Plugin::copy_of(built_plugin(false))
    }

    /// A private copy of the release build: for what depends on the plugin's speed.
    pub fn release() -> Plugin {
        Plugin::copy_of(built_plugin(true))
    }

    fn copy_of(built: PathBuf) -> Plugin {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!("mimecast-e2e-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!(
            "libfluent_bit_mimecast_{}.so",
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::copy(&built, &path).unwrap();
        Plugin { path }
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

pub fn sim_with(f: impl FnOnce(&mut SimConfig)) -> Sim {
    let mut cfg = SimConfig {
        siem_rate: 20,
        ..Default::default()
    };
    f(&mut cfg);
    Sim::start(cfg).expect("simulator starts")
}

/// A fresh, empty directory under the system temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "mimecast-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Properties of an instance pointed at `sim`, with its own empty state directory unless
/// `extra` names one.
pub fn spec(sim: &Sim, extra: &[(&str, &str)]) -> InstanceSpec {
    let base = sim.base_url();
    let state = temp_dir("state").to_string_lossy().into_owned();
    let mut props = vec![
        ("client_id", "sim-client"),
        ("client_secret", "sim-secret"),
        ("base_url", base.as_str()),
        ("poll_interval", "1s"),
        ("state_dir", state.as_str()),
    ];
    for (k, v) in extra {
        props.retain(|(pk, _)| pk != k);
        props.push((k, v));
    }
    InstanceSpec::new(&props)
}

pub fn host(plugin: &Plugin, gen: Generation) -> Host {
    fbhost::set_log_echo(std::env::var_os("E2E_ECHO_LOGS").is_some());
    Host::load(&plugin.path, gen, Keep::All, None).expect("plugin loads")
}

/// Start of the UTC day `back` before now, in epoch ms: where a batch listing with
/// `dateRangeStartsAt` = that date begins.
pub fn day_start_ms(back: Duration) -> i64 {
    let t = jiff::Timestamp::now().as_millisecond() - back.as_millis() as i64;
    t.div_euclid(86_400_000) * 86_400_000
}

/// Every event of `types` in batch files published now, from `from_ms` on.
pub fn truth(sim: &Sim, types: &[&str], from_ms: i64) -> BTreeSet<EventKey> {
    types
        .iter()
        .flat_map(|t| {
            sim.truth_batch(t)
                .into_iter()
                .filter(|k| k.slot * 900_000 >= from_ms)
        })
        .collect()
}

/// Ground-truth identities of the data records (error records excluded).
pub fn ids(records: &[Record]) -> Vec<EventKey> {
    records
        .iter()
        .filter(|r| r.get("mimecast_error").is_none())
        .filter_map(|r| mimecast_sim::identity(&r.to_json()))
        .collect()
}

pub fn errors(records: &[Record]) -> Vec<&Record> {
    records
        .iter()
        .filter(|r| r.get("mimecast_error").is_some())
        .collect()
}

/// Waits until the delivered set equals the ground truth (recomputed as files appear) and
/// returns that truth: what the simulator had published when delivery was seen complete.
///
/// The simulator publishes a batch file per type every 15 minutes of wall-clock time, so one
/// can appear at any moment of a test, also after this returns. Compare what was delivered with
/// `assert_exactly_once_since(records, &settled, &truth(..))`, never with a truth computed
/// later alone: a file published during a test's final wait may rightly be on its way.
pub fn wait_complete(
    host: &Host,
    sim: &Sim,
    types: &[&str],
    from_ms: i64,
    timeout: Duration,
) -> Option<BTreeSet<EventKey>> {
    wait_settled(
        host,
        timeout,
        || truth(sim, types, from_ms),
        |recs, want| {
            let got: BTreeSet<EventKey> = ids(recs).into_iter().collect();
            !want.is_empty() && &got == want
        },
    )
}

/// Waits until `done(records, truth)` holds for the ground truth of that moment (`truth()` is
/// recomputed on every check) and returns that truth, the settled one.
pub fn wait_settled(
    host: &Host,
    timeout: Duration,
    truth: impl Fn() -> BTreeSet<EventKey>,
    done: impl Fn(&[Record], &BTreeSet<EventKey>) -> bool,
) -> Option<BTreeSet<EventKey>> {
    let settled = std::cell::RefCell::new(None);
    host.collected.wait_for(timeout, |recs| {
        let want = truth();
        let complete = done(recs, &want);
        if complete {
            *settled.borrow_mut() = Some(want);
        }
        complete
    });
    settled.into_inner()
}

/// Exactly once against a ground truth that does not move.
pub fn assert_exactly_once(records: &[Record], want: &BTreeSet<EventKey>) {
    assert_exactly_once_since(records, want, want);
}

/// Exactly once against a ground truth that grows while the test runs: every event of
/// `settled` (what was published when delivery was seen complete) arrived; anything else that
/// arrived is in `published` (what exists by the end: a file published since may be delivered
/// in part or not yet); nothing arrived twice.
pub fn assert_exactly_once_since(
    records: &[Record],
    settled: &BTreeSet<EventKey>,
    published: &BTreeSet<EventKey>,
) {
    assert!(
        settled.is_subset(published),
        "the simulator's ground truth shrank"
    );
    let got = ids(records);
    let unique: BTreeSet<EventKey> = got.iter().copied().collect();
    let lost: Vec<_> = settled.difference(&unique).take(5).collect();
    let extra: Vec<_> = unique.difference(published).take(5).collect();
    assert!(
        lost.is_empty(),
        "lost {} events, e.g. {lost:?}",
        settled.difference(&unique).count()
    );
    assert!(extra.is_empty(), "unexpected events, e.g. {extra:?}");
    assert_eq!(
        got.len(),
        unique.len(),
        "{} duplicates",
        got.len() - unique.len()
    );
}

pub fn logs_text(host_logs: &[(i32, String)]) -> String {
    host_logs
        .iter()
        .map(|(_, l)| l.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}
