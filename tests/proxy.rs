//! The `proxy` property: every request goes through the proxy, with its credentials, and the
//! credentials never show in logs.

mod common;
use common::*;
use fbhost::Generation;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A minimal HTTP forward proxy (absolute-form requests, Content-Length bodies) that demands
/// Basic credentials `mc:pr0xy-pass` and counts what it relays.
fn start_proxy() -> (u16, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let relayed = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let (r, f) = (relayed.clone(), refused.clone());
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let (r, f) = (r.clone(), f.clone());
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut conn = conn;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut headers = Vec::new();
                    let mut len = 0usize;
                    let mut authorised = false;
                    loop {
                        let mut h = String::new();
                        reader.read_line(&mut h).unwrap();
                        if h == "\r\n" || h.is_empty() {
                            break;
                        }
                        let lower = h.to_ascii_lowercase();
                        if let Some(v) = lower.strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                        // base64("mc:pr0xy-pass")
                        if lower.starts_with("proxy-authorization:") {
                            authorised = h.contains("bWM6cHIweHktcGFzcw==");
                            continue;
                        }
                        if !lower.starts_with("proxy-connection:")
                            && !lower.starts_with("connection:")
                        {
                            headers.push(h);
                        }
                    }
                    let mut body = vec![0; len];
                    reader.read_exact(&mut body).unwrap();
                    if !authorised {
                        f.fetch_add(1, Ordering::SeqCst);
                        let _ = conn.write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n");
                        continue;
                    }
                    let mut parts = line.split(' ');
                    let (method, url) = (
                        parts.next().unwrap().to_string(),
                        parts.next().unwrap().to_string(),
                    );
                    let rest = url.strip_prefix("http://").unwrap();
                    let (host, path) = rest.split_at(rest.find('/').unwrap());
                    let mut up = TcpStream::connect(host).unwrap();
                    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
                    headers.iter().for_each(|h| req.push_str(h));
                    req.push_str("\r\n");
                    up.write_all(req.as_bytes()).unwrap();
                    up.write_all(&body).unwrap();
                    let mut resp = Vec::new();
                    up.read_to_end(&mut resp).unwrap();
                    r.fetch_add(1, Ordering::SeqCst);
                    let _ = conn.write_all(&resp);
                    return; // the upstream answer was read to its end: close, the client reconnects
                }
            });
        }
    });
    (port, relayed, refused)
}

#[test]
fn every_request_goes_through_the_proxy_with_hidden_credentials() {
    let sim = sim_with(|_| {});
    let (port, relayed, refused) = start_proxy();
    let plugin = Plugin::copy();
    let mut host = host(&plugin, Generation::V5_1_1);
    let proxy = format!("http://mc:pr0xy-pass@127.0.0.1:{port}");
    host.add_instance(spec(&sim, &[("siem_types", "av"), ("proxy", &proxy)]))
        .unwrap();
    let wrong = format!("http://mc:wrong-pass@127.0.0.1:{port}");
    host.add_instance(spec(&sim, &[("siem_types", "spam"), ("proxy", &wrong)]))
        .unwrap();
    let from = day_start_ms(Duration::from_secs(86_400));
    host.start();
    assert!(
        wait_complete(&host, &sim, &["av"], from, Duration::from_secs(60)).is_some(),
        "every published event delivered in time"
    );
    let c = host.stop();
    let direct: u64 = sim.stats().values().flat_map(|m| m.values()).sum();
    assert!(
        relayed.load(Ordering::SeqCst) as u64 >= direct,
        "everything the simulator served came through the proxy"
    );
    assert!(
        refused.load(Ordering::SeqCst) > 0,
        "the wrong password was refused"
    );
    assert!(c.snapshot().iter().all(|r| r.instance == 0));
    let logs = logs_text(&c.logs());
    assert!(
        !logs.contains("pr0xy-pass") && !logs.contains("wrong-pass"),
        "proxy password in the logs:\n{logs}"
    );
    assert!(
        logs.contains("[input:mimecast:mimecast.1]"),
        "the refused instance reported its trouble:\n{logs}"
    );
}
