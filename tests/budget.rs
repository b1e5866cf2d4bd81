//! The request budget (`requests_per_second`), measured where it matters: at the server. Two
//! instances of one client id with many sources each start at once, the burst a restart makes;
//! the requests reaching the simulator never come faster than the lowest budget allows.

mod common;
use common::*;
use fbhost::Generation;
use std::time::{Duration, Instant};

/// Requests to the Mimecast API (token requests included) as the simulator saw them arrive,
/// with their endpoints; batch-file downloads go to storage and the control API is the test's.
fn api_arrivals(sim: &mimecast_sim::Sim, since: Instant) -> Vec<(Instant, &'static str)> {
    sim.arrival_times()
        .into_iter()
        .filter(|(t, ep)| *t >= since && !matches!(*ep, "control" | "batch_file"))
        .collect()
}

/// The most requests that arrived within any `window` (from a request's arrival on): the
/// index of the first and how many.
fn busiest(times: &[(Instant, &str)], window: Duration) -> (usize, usize) {
    (0..times.len())
        .map(|i| {
            let n = times
                .get(i..)
                .unwrap_or_default()
                .iter()
                .take_while(|(t, _)| t.duration_since(times[i].0) < window)
                .count();
            (i, n)
        })
        .max_by_key(|(_, n)| *n)
        .unwrap_or((0, 0))
}

/// What a budget of `rate` lets arrive within `window`: the requests it lets leave (one more
/// than rate x window, as a window can hold both ends of its slots) and one that left in the
/// slot before but was held up in transit (a fresh connection on a busy 2-core machine).
fn allowed(rate: f64, window: Duration) -> usize {
    (rate * window.as_secs_f64()).floor() as usize + 2
}

#[test]
fn a_burst_of_sources_under_a_low_budget_never_exceeds_it() {
    let sim = sim_with(|c| c.api_rate = 600);
    let plugin = Plugin::copy();
    let mut host = host(&plugin, Generation::V5_1_1);
    let since = Instant::now();
    // One instance with the budget and many /api sources, one without a budget of its own:
    // it follows the budget of its client id.
    host.add_instance(spec(
        &sim,
        &[
            (
                "sources",
                "audit,ttp_url,ttp_attachment,ttp_impersonation,dlp,held_release,archive_view",
            ),
            ("requests_per_second", "4"),
            ("page_size", "5"),
            ("initial_lookback", "6h"),
        ],
    ))
    .unwrap();
    host.add_instance(spec(
        &sim,
        &[
            ("sources", "siem_cg,hold_list,hold_summary,dashboard"),
            ("siem_types", "receipt,process,delivery"),
            ("page_size", "5"),
            ("initial_lookback", "6h"),
        ],
    ))
    .unwrap();
    host.start();
    std::thread::sleep(Duration::from_secs(8));
    let c = host.stop();
    let elapsed = since.elapsed().as_secs_f64();
    let times = api_arrivals(&sim, since);
    // Without the budget these sources make hundreds of requests in 8 s (small pages, a long
    // lookback); with it about 4 a second, the budget used rather than wasted.
    assert!(
        times.len() as f64 >= 0.6 * 4.0 * 8.0 && times.len() as f64 <= 4.0 * elapsed + 1.0,
        "{} requests in {elapsed:.1} s under a budget of 4/s",
        times.len()
    );
    for window in [Duration::from_secs(1), Duration::from_secs(4)] {
        let (i, n) = busiest(&times, window);
        let t0 = times[i].0;
        let seen: Vec<String> = times[i..i + n]
            .iter()
            .map(|(t, ep)| format!("+{}ms {ep}", t.duration_since(t0).as_millis()))
            .collect();
        assert!(
            n <= allowed(4.0, window),
            "{n} requests within {window:?} under a budget of 4/s: {seen:?}"
        );
    }
    assert!(
        !c.snapshot().is_empty(),
        "records still flow under the budget"
    );
    assert!(c.violations().is_empty(), "{:?}", c.violations());
}

#[test]
fn the_window_count_sees_a_burst() {
    let t0 = Instant::now();
    let mut paced: Vec<(Instant, &str)> = (0..16)
        .map(|i| (t0 + Duration::from_millis(250 * i), "audit"))
        .collect();
    let second = Duration::from_secs(1);
    assert_eq!(busiest(&paced, second).1, 4);
    assert!(busiest(&paced, second).1 <= allowed(4.0, second));
    // Three more within a second: over the budget.
    for ms in [1010, 1020, 1030] {
        paced.push((t0 + Duration::from_millis(ms), "dlp"));
    }
    paced.sort();
    let n = busiest(&paced, second).1;
    assert_eq!(n, 7);
    assert!(n > allowed(4.0, second));
}
