//! A Prometheus endpoint for long campaigns: `--metrics-addr ADDR` serves
//! `http://ADDR/metrics` (OpenMetrics text, via `prometheus-client`) with
//! cycle, violation and hazard counters, cycles/s and the RocksDB figures
//! the writers publish, so a dashboard can watch a nightly run live.
//!
//! The server is a thread of the campaign process. That process forks
//! crash children; a child never touches the server's state (it runs only
//! its own closure and leaves with `_exit`).

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::campaign::{CycleSink, ModeStats};
use crate::fault::Fault;
use crate::store::WalMode;

/// Labels of the LSM-shape counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LevelLabels {
    /// Non-empty LSM levels at the kill.
    pub levels: String,
}

/// Labels of per-cycle counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CycleLabels {
    /// Durability mode.
    pub mode: String,
    /// Fault.
    pub fault: String,
}

/// The campaign's metrics; updated after every cycle.
pub struct Metrics {
    registry: Registry,
    started: Instant,
    cycles: Family<CycleLabels, Counter>,
    violations: Family<CycleLabels, Counter>,
    anomalies: Family<CycleLabels, Counter>,
    divergence: Family<CycleLabels, Counter>,
    acked: Family<CycleLabels, Counter>,
    io_errors: Family<CycleLabels, Counter>,
    io_failed_ops: Family<CycleLabels, Counter>,
    io_failed_reads: Family<CycleLabels, Counter>,
    background_errors: Family<CycleLabels, Counter>,
    resumes: Family<CycleLabels, Counter>,
    resumes_failed: Family<CycleLabels, Counter>,
    blob_cycles: Family<CycleLabels, Counter>,
    blob_gc_cycles: Family<CycleLabels, Counter>,
    txn_committed: Family<CycleLabels, Counter>,
    txn_rolled_back: Family<CycleLabels, Counter>,
    lsm_levels: Family<LevelLabels, Counter>,
    cycles_per_s: Gauge<f64, AtomicU64>,
    estimated_keys: Gauge,
    sst_bytes: Gauge,
    cache_hit: Counter,
    cache_miss: Counter,
    compaction_cpu: Counter,
    stall: Counter,
    total: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Fresh metrics, registered under the `crashcheck_` prefix.
    pub fn new() -> Metrics {
        // Every series names the engine under test (store::engine).
        let e = crate::store::engine::engine();
        let labels = [
            ("rocksdb_version".into(), e.rocksdb_version.into()),
            ("rust_rocksdb_version".into(), e.rust_rocksdb_version.into()),
            (
                "rocksdb_patch".into(),
                e.rocksdb_patch.unwrap_or_default().into(),
            ),
        ];
        let mut registry = Registry::with_prefix_and_labels("crashcheck", labels.into_iter());
        let m = Metrics {
            registry: Registry::default(),
            started: Instant::now(),
            cycles: Family::default(),
            violations: Family::default(),
            anomalies: Family::default(),
            divergence: Family::default(),
            acked: Family::default(),
            io_errors: Family::default(),
            io_failed_ops: Family::default(),
            io_failed_reads: Family::default(),
            background_errors: Family::default(),
            resumes: Family::default(),
            resumes_failed: Family::default(),
            blob_cycles: Family::default(),
            blob_gc_cycles: Family::default(),
            txn_committed: Family::default(),
            txn_rolled_back: Family::default(),
            lsm_levels: Family::default(),
            cycles_per_s: Gauge::default(),
            estimated_keys: Gauge::default(),
            sst_bytes: Gauge::default(),
            cache_hit: Counter::default(),
            cache_miss: Counter::default(),
            compaction_cpu: Counter::default(),
            stall: Counter::default(),
            total: AtomicU64::new(0),
        };
        m.register_per_cycle(&mut registry);
        registry.register(
            "cycles_by_levels_populated",
            "Cycles by the number of non-empty LSM levels at the kill",
            m.lsm_levels.clone(),
        );
        registry.register(
            "cycles_per_second",
            "Crash cycles per second so far",
            m.cycles_per_s.clone(),
        );
        registry.register(
            "rocksdb_estimated_keys",
            "rocksdb.estimate-num-keys at the end of the last cycle",
            m.estimated_keys.clone(),
        );
        registry.register(
            "rocksdb_total_sst_bytes",
            "rocksdb.total-sst-files-size at the end of the last cycle",
            m.sst_bytes.clone(),
        );
        registry.register(
            "rocksdb_block_cache_hit",
            "Ticker rocksdb.block.cache.hit",
            m.cache_hit.clone(),
        );
        registry.register(
            "rocksdb_block_cache_miss",
            "Ticker rocksdb.block.cache.miss",
            m.cache_miss.clone(),
        );
        registry.register(
            "rocksdb_compaction_cpu_micros",
            "Ticker rocksdb.compaction.total.time.cpu_micros",
            m.compaction_cpu.clone(),
        );
        registry.register(
            "rocksdb_write_stall_micros",
            "Ticker rocksdb.stall.micros",
            m.stall.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Registers the counters kept per mode and fault.
    fn register_per_cycle(&self, registry: &mut Registry) {
        let per_cycle: [(&str, &str, &Family<CycleLabels, Counter>); 15] = [
            ("cycles", "Crash cycles run", &self.cycles),
            ("violations", "Cycles with a violation", &self.violations),
            (
                "anomalies",
                "Hangs and abnormal child exits",
                &self.anomalies,
            ),
            (
                "cf_divergence",
                "Cycles whose column families recovered to different prefixes (hazard)",
                &self.divergence,
            ),
            ("acked_writes", "Write units acknowledged", &self.acked),
            (
                "io_errors_injected",
                "I/O errors injected on the writer threads",
                &self.io_errors,
            ),
            (
                "io_failed_ops",
                "Ops that returned an error under injected I/O errors (each in flight)",
                &self.io_failed_ops,
            ),
            (
                "background_errors",
                "Background errors RocksDB reported to the writer's database",
                &self.background_errors,
            ),
            (
                "resumes",
                "disk-full cycles in which space came back and DB::Resume succeeded",
                &self.resumes,
            ),
            (
                "resumes_failed",
                "DB::Resume calls that failed (the cycle ended in the error state)",
                &self.resumes_failed,
            ),
            (
                "io_failed_reads",
                "Reads that returned an error under injected read errors",
                &self.io_failed_reads,
            ),
            (
                "blob_cycles",
                "Cycles whose database held at least one blob file at the kill",
                &self.blob_cycles,
            ),
            (
                "blob_gc_cycles",
                "Cycles in which blob garbage collection relocated blobs",
                &self.blob_gc_cycles,
            ),
            (
                "transactions_committed",
                "Transactions whose commit returned OK (stores with transactions)",
                &self.txn_committed,
            ),
            (
                "transactions_rolled_back",
                "Transactions rolled back (stores with transactions)",
                &self.txn_rolled_back,
            ),
        ];
        for (name, help, fam) in per_cycle {
            registry.register(name, help, fam.clone());
        }
    }

    /// Records one finished cycle.
    pub fn record(&self, mode: &str, fault: &str, s: &ModeStats) {
        let l = CycleLabels {
            mode: mode.into(),
            fault: fault.into(),
        };
        self.cycles.get_or_create(&l).inc_by(s.cycles);
        self.violations.get_or_create(&l).inc_by(s.violations);
        self.anomalies.get_or_create(&l).inc_by(s.anomalies);
        self.divergence.get_or_create(&l).inc_by(s.cf_divergence);
        self.acked.get_or_create(&l).inc_by(s.acked_writes);
        self.io_errors
            .get_or_create(&l)
            .inc_by(s.io_errors_injected);
        self.io_failed_ops.get_or_create(&l).inc_by(s.io_failed_ops);
        self.io_failed_reads
            .get_or_create(&l)
            .inc_by(s.io_failed_reads);
        self.background_errors
            .get_or_create(&l)
            .inc_by(s.background_errors);
        self.resumes.get_or_create(&l).inc_by(s.resumes);
        self.resumes_failed
            .get_or_create(&l)
            .inc_by(s.resumes_failed);
        self.blob_cycles.get_or_create(&l).inc_by(s.blob_cycles);
        self.blob_gc_cycles
            .get_or_create(&l)
            .inc_by(s.blob_gc_cycles);
        self.txn_committed
            .get_or_create(&l)
            .inc_by(s.transactions.committed);
        self.txn_rolled_back
            .get_or_create(&l)
            .inc_by(s.transactions.rolled_back);
        for (levels, n) in &s.cycles_by_levels_populated {
            let k = LevelLabels {
                levels: levels.to_string(),
            };
            self.lsm_levels.get_or_create(&k).inc_by(*n);
        }
        let n = self
            .total
            .fetch_add(s.cycles, std::sync::atomic::Ordering::SeqCst)
            + s.cycles;
        self.cycles_per_s
            .set(n as f64 / self.started.elapsed().as_secs_f64().max(1e-9));
        if s.rocksdb_samples > 0 {
            let r = &s.rocksdb;
            self.estimated_keys.set(r.estimated_keys as i64);
            self.sst_bytes.set(r.total_sst_bytes as i64);
            self.cache_hit.inc_by(r.block_cache_hit);
            self.cache_miss.inc_by(r.block_cache_miss);
            self.compaction_cpu.inc_by(r.compaction_cpu_micros);
            self.stall.inc_by(r.write_stall_micros);
        }
    }

    /// The exposition text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl CycleSink for Metrics {
    fn record(&self, mode: WalMode, fault: Fault, stats: &ModeStats) {
        Metrics::record(self, mode.name(), fault.name(), stats);
    }
}

/// A running metrics endpoint; stops when dropped.
pub struct MetricsServer {
    metrics: Arc<Metrics>,
    server: Arc<tiny_http::Server>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The address it listens on.
    pub addr: String,
}

impl MetricsServer {
    /// The metrics the campaign updates.
    pub fn sink(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts serving `/metrics` at `addr` (e.g. `127.0.0.1:9464`).
pub fn serve(addr: &str) -> Result<MetricsServer, String> {
    let server = tiny_http::Server::http(addr)
        .map_err(|e| format!("--metrics-addr {addr}: cannot listen: {e}"))?;
    let addr = server
        .server_addr()
        .to_ip()
        .map_or_else(|| addr.to_string(), |a| a.to_string());
    let server = Arc::new(server);
    let metrics = Arc::new(Metrics::new());
    let (s, m) = (server.clone(), metrics.clone());
    let thread = std::thread::Builder::new()
        .name("crashcheck-metrics".into())
        .spawn(move || {
            for req in s.incoming_requests() {
                let resp = if req.url() == "/metrics" {
                    let ct = tiny_http::Header::from_bytes(
                        &b"Content-Type"[..],
                        &b"application/openmetrics-text; version=1.0.0; charset=utf-8"[..],
                    );
                    let r = tiny_http::Response::from_string(m.encode());
                    match ct {
                        Ok(h) => r.with_header(h),
                        Err(()) => r,
                    }
                } else {
                    tiny_http::Response::from_string("crashcheck: see /metrics\n")
                        .with_status_code(404)
                };
                let _ = req.respond(resp);
            }
        })
        .map_err(|e| format!("cannot start the metrics thread: {e}"))?;
    Ok(MetricsServer {
        metrics,
        server,
        thread: Some(thread),
        addr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_carries_the_recorded_counters() {
        let m = Metrics::new();
        let s = ModeStats {
            cycles: 3,
            violations: 1,
            io_errors_injected: 5,
            cycles_by_levels_populated: [(2, 3)].into(),
            rocksdb_samples: 1,
            rocksdb: crate::store::StoreStats {
                estimated_keys: 42,
                block_cache_hit: 7,
                ..Default::default()
            },
            ..ModeStats::default()
        };
        m.record("wal", "kill", &s);
        let t = m.encode();
        // Every series carries the engine under test.
        let e = crate::store::engine::engine();
        let engine = format!(
            "rocksdb_version=\"{}\",rust_rocksdb_version=\"{}\",rocksdb_patch=\"\"",
            e.rocksdb_version, e.rust_rocksdb_version
        );
        assert!(
            t.contains(&format!(
                "crashcheck_cycles_total{{{engine},mode=\"wal\",fault=\"kill\"}} 3"
            )),
            "{t}"
        );
        assert!(
            t.contains(&format!(
                "crashcheck_violations_total{{{engine},mode=\"wal\",fault=\"kill\"}} 1"
            )),
            "{t}"
        );
        assert!(
            t.contains(&format!("crashcheck_rocksdb_estimated_keys{{{engine}}} 42")),
            "{t}"
        );
        assert!(
            t.contains(&format!(
                "crashcheck_io_errors_injected_total{{{engine},mode=\"wal\",fault=\"kill\"}} 5"
            )),
            "{t}"
        );
        assert!(
            t.contains(&format!(
                "crashcheck_cycles_by_levels_populated_total{{{engine},levels=\"2\"}} 3"
            )),
            "{t}"
        );
        assert!(
            t.contains(&format!(
                "crashcheck_rocksdb_block_cache_hit_total{{{engine}}} 7"
            )),
            "{t}"
        );
    }
}
