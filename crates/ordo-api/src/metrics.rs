//! Prometheus text exposition of a few counters and histograms: request latency per route,
//! commit latency as the API waits for it. Hand-written: a dozen lines do not need a crate.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// Bucket upper bounds, seconds.
const BUCKETS: [f64; 10] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, d: Duration) {
        let s = d.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if s <= *bound {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += s;
    }

    fn render(&self, name: &str, labels: &str, out: &mut String) {
        for (i, bound) in BUCKETS.iter().enumerate() {
            out.push_str(&format!("{name}_bucket{{{labels}le=\"{bound}\"}} {}\n", self.counts[i]));
        }
        out.push_str(&format!("{name}_bucket{{{labels}le=\"+Inf\"}} {}\n", self.count));
        let plain = labels.trim_end_matches(',');
        out.push_str(&format!("{name}_sum{{{plain}}} {}\n{name}_count{{{plain}}} {}\n", self.sum, self.count));
    }
}

#[derive(Debug, Default)]
pub(crate) struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), Histogram>>,
    commits: Mutex<Histogram>,
}

impl Metrics {
    pub(crate) fn observe_request(&self, method: &str, route: &str, status: u16, d: Duration) {
        let mut m = self.requests.lock().expect("metrics lock");
        m.entry((method.to_owned(), route.to_owned(), status)).or_default().observe(d);
    }

    pub(crate) fn observe_commit(&self, d: Duration) {
        self.commits.lock().expect("metrics lock").observe(d);
    }

    pub(crate) fn render(&self, journal_seq: u64) -> String {
        let mut out = String::new();
        out.push_str("# HELP ordo_http_request_duration_seconds Time to answer a request.\n");
        out.push_str("# TYPE ordo_http_request_duration_seconds histogram\n");
        for ((method, route, status), h) in self.requests.lock().expect("metrics lock").iter() {
            let labels = format!("method=\"{method}\",route=\"{route}\",status=\"{status}\",");
            h.render("ordo_http_request_duration_seconds", &labels, &mut out);
        }
        out.push_str("# HELP ordo_commit_wait_seconds Time from submission to durable commit, as the API waits.\n");
        out.push_str("# TYPE ordo_commit_wait_seconds histogram\n");
        self.commits.lock().expect("metrics lock").render("ordo_commit_wait_seconds", "", &mut out);
        out.push_str("# HELP ordo_journal_sequence Last committed journal sequence.\n");
        out.push_str("# TYPE ordo_journal_sequence gauge\n");
        out.push_str(&format!("ordo_journal_sequence {journal_seq}\n"));
        out
    }
}
