//! A faithful, deterministic Mimecast API 2.0 simulator on loopback.
//!
//! ```no_run
//! let sim = mimecast_sim::Sim::start(mimecast_sim::SimConfig::default()).unwrap();
//! println!("base_url = {}", sim.base_url());
//! ```
//! See `sim/README.md` for endpoints, options, fault knobs and the control API.

pub mod faults;
pub mod model;
mod server;
mod tls;

pub use faults::{FaultKind, FaultRule};
pub use model::{identity, EventKey, STREAMS};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One API client (an "API application" in Mimecast terms).
#[derive(Clone, Debug)]
pub struct Client {
    pub id: String,
    pub secret: String,
    /// Endpoint names this client lacks the permission for (answered 403).
    pub forbidden: Vec<String>,
}

/// Shape of error bodies on the `/siem/v1/...` endpoints: the sources disagree (reference §8.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SiemErrorStyle {
    /// `{"fail":[{"code":..,"message":..}]}`
    Fail,
    /// `{"error":{"code":..,"message":..}}`
    Error,
}

#[derive(Clone, Copy, Debug)]
pub struct RateLimit {
    /// Requests allowed per window, per client id.
    pub limit: u64,
    pub window: Duration,
    /// Send `X-RateLimit-*` on every response; by default only on the 429 (reference §7).
    pub headers_always: bool,
}

#[derive(Clone, Debug)]
pub struct SimConfig {
    pub seed: u64,
    pub bind: SocketAddr,
    pub tls: bool,
    /// Where to write the generated CA certificate (PEM) when `tls` is on.
    pub ca_file: Option<PathBuf>,
    pub clients: Vec<Client>,
    /// Endpoint names the tenant is not licensed for (answered 404).
    pub unlicensed: Vec<String>,
    pub token_ttl: Duration,
    /// Events per hour for every SIEM type unless overridden in `rates`.
    pub siem_rate: u64,
    /// Events per hour for every `/api/...` log source unless overridden in `rates`.
    pub api_rate: u64,
    /// Per-stream overrides, keyed by stream name (`receipt`, `audit`, `ttp_url`, ...).
    pub rates: HashMap<String, u64>,
    /// Simulated time at start (epoch ms); default: the real clock.
    pub start_ms: Option<i64>,
    /// Simulated milliseconds per real millisecond.
    pub speed: f64,
    /// A batch file appears this long after its 15-minute window closes.
    pub batch_lag: Duration,
    /// Validity of a batch-file URL, in simulated time.
    pub url_ttl: Duration,
    pub retention: Duration,
    /// Maximum random delay before an audit record becomes retrievable.
    pub audit_lag: Duration,
    pub rate_limit: Option<RateLimit>,
    pub siem_error_style: SiemErrorStyle,
    pub account: String,
    /// Users of the Awareness Training tables.
    pub awareness_users: usize,
    /// Phishing campaigns, each targeting about half of the users.
    pub phishing_campaigns: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 1,
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: false,
            ca_file: None,
            clients: vec![Client {
                id: "sim-client".into(),
                secret: "sim-secret".into(),
                forbidden: Vec::new(),
            }],
            unlicensed: Vec::new(),
            token_ttl: Duration::from_secs(1799),
            siem_rate: 400,
            api_rate: 60,
            rates: HashMap::new(),
            start_ms: None,
            speed: 1.0,
            batch_lag: Duration::from_secs(60),
            url_ttl: Duration::from_secs(900),
            retention: Duration::from_secs(7 * 86_400),
            audit_lag: Duration::from_secs(600),
            rate_limit: None,
            siem_error_style: SiemErrorStyle::Fail,
            account: "CSIM00001".into(),
            awareness_users: 30,
            phishing_campaigns: 3,
        }
    }
}

/// Simulated time: real time scaled by `speed`, plus manual advances.
pub(crate) struct Clock {
    real0: Instant,
    sim0: i64,
    speed: f64,
    advanced: AtomicI64,
}

impl Clock {
    pub(crate) fn now_ms(&self) -> i64 {
        let real = self.real0.elapsed().as_millis() as f64 * self.speed;
        self.sim0 + real as i64 + self.advanced.load(Ordering::SeqCst)
    }
}

#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) by_endpoint: HashMap<String, HashMap<u16, u64>>,
    /// Per endpoint, counted as requests arrive and as their answers become ready.
    pub(crate) flow: HashMap<&'static str, Flow>,
    /// When the latest requests arrived, and at which endpoint (the newest `ARRIVALS_KEPT`).
    pub(crate) arrived_at: std::collections::VecDeque<(std::time::Instant, &'static str)>,
}

/// How many arrival times the simulator keeps (enough for any test, bounded for long demos).
pub(crate) const ARRIVALS_KEPT: usize = 100_000;

#[derive(Default, Clone, Copy)]
pub(crate) struct Flow {
    /// Requests that have arrived, counted before any answer is prepared.
    pub(crate) arrived: u64,
    /// Requests being answered now.
    pub(crate) in_flight: u64,
    /// Most requests ever answered at once.
    pub(crate) peak: u64,
}

/// A batch file: (stream, 15-minute slot).
pub(crate) type FileKey = (u16, i64);

pub(crate) struct State {
    pub(crate) cfg: SimConfig,
    pub(crate) grid: model::Grid,
    pub(crate) clock: Clock,
    pub(crate) faults: faults::Faults,
    /// access token -> (client index, expiry in real time)
    pub(crate) tokens: Mutex<HashMap<String, (usize, Instant)>>,
    pub(crate) token_seq: AtomicI64,
    pub(crate) issued: Mutex<Vec<String>>,
    /// client id -> (window start, requests in window)
    pub(crate) windows: Mutex<HashMap<String, (Instant, u64)>>,
    pub(crate) stats: Mutex<Stats>,
    /// (stream, slot) -> gzip size of the batch file
    pub(crate) sizes: Mutex<HashMap<(u16, i64), usize>>,
    /// (stream, slot) -> gzip bytes of the batch file, kept only after `warm_batch_files`
    pub(crate) files: Mutex<HashMap<FileKey, Arc<Vec<u8>>>>,
}

/// A running simulator. Dropping it stops the server and joins its thread.
pub struct Sim {
    state: Arc<State>,
    addr: SocketAddr,
    scheme: &'static str,
    ca_file: Option<PathBuf>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl State {
    fn new(cfg: SimConfig, rates: Vec<u64>) -> State {
        let now = jiff::Timestamp::now().as_millisecond();
        State {
            grid: model::Grid::new(cfg.seed, rates),
            clock: Clock {
                real0: Instant::now(),
                sim0: cfg.start_ms.unwrap_or(now),
                speed: cfg.speed,
                advanced: AtomicI64::new(0),
            },
            faults: faults::Faults::new(cfg.seed),
            tokens: Mutex::new(HashMap::new()),
            token_seq: AtomicI64::new(0),
            issued: Mutex::new(Vec::new()),
            windows: Mutex::new(HashMap::new()),
            stats: Mutex::new(Stats::default()),
            sizes: Mutex::new(HashMap::new()),
            files: Mutex::new(HashMap::new()),
            cfg,
        }
    }
}

/// Events per hour per stream id: the stream's entry in `rates`, or its family's default.
fn stream_rates(cfg: &SimConfig) -> std::io::Result<Vec<u64>> {
    let mut rates = vec![0u64; STREAMS.len()];
    for (i, name) in STREAMS.iter().enumerate() {
        let default = if i < 13 { cfg.siem_rate } else { cfg.api_rate };
        if let Some(r) = rates.get_mut(i) {
            *r = cfg.rates.get(*name).copied().unwrap_or(default);
        }
    }
    for name in cfg.rates.keys() {
        if model::stream_id(name).is_none() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "unknown stream '{name}' in rates; known: {}",
                    STREAMS.join(", ")
                ),
            ));
        }
    }
    Ok(rates)
}

/// Serves `std_listener` on a thread of its own, with its own runtime, until `stop_rx` fires.
fn spawn_server(
    std_listener: std::net::TcpListener,
    st: Arc<State>,
    tls_acceptor: Option<tokio_rustls::TlsAcceptor>,
    stop_rx: tokio::sync::oneshot::Receiver<()>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("mimecast-sim".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("mimecast-sim: cannot start runtime: {e}");
                    return;
                }
            };
            rt.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(std_listener) {
                    Ok(l) => l,
                    Err(e) => {
                        eprintln!("mimecast-sim: cannot listen: {e}");
                        return;
                    }
                };
                tokio::select! {
                    _ = server::serve(listener, st, tls_acceptor) => {}
                    _ = stop_rx => {}
                }
            });
            rt.shutdown_timeout(Duration::from_secs(1));
        })
}

impl Sim {
    pub fn start(cfg: SimConfig) -> std::io::Result<Sim> {
        let rates = stream_rates(&cfg)?;
        let state = Arc::new(State::new(cfg, rates));
        let acceptor = if state.cfg.tls {
            let path = state.cfg.ca_file.clone().unwrap_or_else(|| {
                std::env::temp_dir().join(format!("mimecast-sim-ca-{}.pem", std::process::id()))
            });
            Some((tls::acceptor(&path)?, path))
        } else {
            None
        };
        let std_listener = std::net::TcpListener::bind(state.cfg.bind)?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let tls_acceptor = acceptor.as_ref().map(|(a, _)| a.clone());
        let thread = spawn_server(std_listener, state.clone(), tls_acceptor, stop_rx)?;
        Ok(Sim {
            state,
            addr,
            scheme: if acceptor.is_some() { "https" } else { "http" },
            ca_file: acceptor.map(|(_, p)| p),
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (or `https://localhost:PORT` with TLS, matching the certificate).
    pub fn base_url(&self) -> String {
        if self.scheme == "https" {
            format!("https://localhost:{}", self.addr.port())
        } else {
            format!("http://{}", self.addr)
        }
    }

    pub fn ca_file(&self) -> Option<&std::path::Path> {
        self.ca_file.as_deref()
    }

    pub fn client(&self) -> &Client {
        &self.state.cfg.clients[0]
    }

    pub fn add_fault(&self, rule: FaultRule) {
        self.state.faults.add(rule);
    }

    pub fn clear_faults(&self) {
        self.state.faults.clear();
    }

    /// Moves simulated time forward.
    pub fn advance(&self, by: Duration) {
        self.state
            .clock
            .advanced
            .fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }

    pub fn now_ms(&self) -> i64 {
        self.state.clock.now_ms()
    }

    /// Every access token issued so far (to check none leaks into logs or records).
    pub fn issued_tokens(&self) -> Vec<String> {
        faults::lock(&self.state.issued).clone()
    }

    /// Invalidates every access token issued so far.
    pub fn revoke_tokens(&self) {
        faults::lock(&self.state.tokens).clear();
    }

    /// Ground truth: the events of `stream` with `from_ms <= timestamp < to_ms`.
    pub fn truth(&self, stream: &str, from_ms: i64, to_ms: i64) -> Vec<EventKey> {
        match model::stream_id(stream) {
            Some(s) => self
                .state
                .grid
                .range(s, from_ms, to_ms)
                .map(|(k, _)| k)
                .collect(),
            None => Vec::new(),
        }
    }

    /// Ground truth for SIEM batch: the events in every batch file listed as available now
    /// (within retention), for one type.
    pub fn truth_batch(&self, stream: &str) -> Vec<EventKey> {
        let (from, to) = server::batch_bounds(&self.state);
        self.truth(stream, from, to)
    }

    /// Compresses every batch file of `streams` (type names) published now once and keeps
    /// the bytes, so that serving them costs what a static file server's sends cost: a
    /// benchmark then measures the client, not the simulator's gzip. Takes memory: about a
    /// tenth of the NDJSON. Files of other streams are still compressed per request.
    pub fn warm_batch_files(&self, streams: &[&str]) {
        let (from, to) = server::batch_bounds(&self.state);
        let all = model::CG_TYPES.chain(model::CI_TYPES);
        for s in all.filter(|&s| streams.contains(&model::stream_name(s))) {
            let mut k = from / model::SLOT_MS;
            while (k + 1) * model::SLOT_MS <= to {
                if self.state.grid.count(s, k) > 0 {
                    let gz = server::batch_file_gz(&self.state, s, k);
                    faults::lock(&self.state.sizes).insert((s, k), gz.len());
                    faults::lock(&self.state.files).insert((s, k), Arc::new(gz));
                }
                k += 1;
            }
        }
    }

    /// The gzip bytes of one batch file (stream name, 15-minute slot), as served: the copy
    /// `warm_batch_files` made, or compressed now.
    pub fn batch_file_bytes(&self, stream: &str, slot: i64) -> Option<Vec<u8>> {
        let s = model::stream_id(stream)?;
        if let Some(gz) = faults::lock(&self.state.files).get(&(s, slot)) {
            return Some(gz.as_ref().clone());
        }
        Some(server::batch_file_gz(&self.state, s, slot))
    }

    /// The rows an Awareness Training table holds now: `performance`, `watchlist`,
    /// `safe_score` or `campaigns`; for `campaign_users`, every campaign's user rows, each with
    /// the `campaignId` the plugin adds.
    pub fn awareness_rows(&self, table: &str) -> Vec<serde_json::Value> {
        use server::awareness as aw;
        let (st, now) = (&*self.state, self.state.clock.now_ms());
        match table {
            "performance" => aw::performance_rows(st, now),
            "watchlist" => aw::watchlist_rows(st, now),
            "safe_score" => aw::safe_score_rows(st, now),
            "campaigns" => aw::campaign_rows(st, now),
            "campaign_users" => (0..st.cfg.phishing_campaigns)
                .flat_map(|c| {
                    aw::campaign_user_rows(st, c, now)
                        .into_iter()
                        .map(move |mut r| {
                            if let Some(o) = r.as_object_mut() {
                                o.insert("campaignId".into(), format!("aw-campaign-{c}").into());
                            }
                            r
                        })
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The email-queue samples in `[from, to)` as of now: (time ms, inbound, outbound).
    pub fn queue_samples(&self, from: i64, to: i64) -> Vec<(i64, u64, u64)> {
        let now = self.state.clock.now_ms();
        server::email_queues::samples(self.state.cfg.seed, from, to, now)
    }

    /// When the remediation incident `key` (created at `ts`) is changed, if it ever is.
    pub fn remediation_change(&self, key: EventKey, ts: i64) -> Option<i64> {
        model::remediation_change(&self.state.grid, key, ts)
    }

    /// Requests served so far: endpoint -> status -> count (status 0 = connection reset).
    pub fn stats(&self) -> HashMap<String, HashMap<u16, u64>> {
        faults::lock(&self.state.stats).by_endpoint.clone()
    }

    /// Most requests to `endpoint` ever answered at the same time (a request counts from its
    /// arrival until its response is ready, so a `slow` fault makes overlaps visible).
    pub fn peak_in_flight(&self, endpoint: &str) -> u64 {
        self.flow(endpoint).peak
    }

    /// Requests to `endpoint` that have arrived so far, answered or not. `requests` counts a
    /// request only once its answer is ready, so it can still rise after the client has gone;
    /// this count cannot.
    pub fn arrivals(&self, endpoint: &str) -> u64 {
        self.flow(endpoint).arrived
    }

    /// When each of the latest requests arrived (before any fault or answer), oldest first, with
    /// its endpoint's name: what a client's pacing looks like from the server's side.
    pub fn arrival_times(&self) -> Vec<(std::time::Instant, &'static str)> {
        faults::lock(&self.state.stats)
            .arrived_at
            .iter()
            .copied()
            .collect()
    }

    fn flow(&self, endpoint: &str) -> Flow {
        faults::lock(&self.state.stats)
            .flow
            .get(endpoint)
            .copied()
            .unwrap_or_default()
    }

    pub fn requests(&self, endpoint: &str, status: u16) -> u64 {
        faults::lock(&self.state.stats)
            .by_endpoint
            .get(endpoint)
            .and_then(|m| m.get(&status))
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
