//! What a client reports: the first error of each kind on stderr, the samples file and the
//! contract's `RESULT` line beside the seed's human line.

use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Why a request failed; the first failure of each kind is printed, the rest only counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    Connect,
    Timeout,
    Io,
    ShortRead,
    Mismatch,
}

const KINDS: usize = 5;

impl FailureKind {
    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug)]
pub struct Failure {
    pub kind: FailureKind,
    pub detail: String,
}

impl Failure {
    pub fn new(kind: FailureKind, detail: impl fmt::Display) -> Self {
        Self { kind, detail: detail.to_string() }
    }

    /// Classifies an I/O error from a read or write on an open connection.
    pub fn io(what: &str, err: io::Error) -> Self {
        let kind = if err.kind() == io::ErrorKind::UnexpectedEof { FailureKind::ShortRead } else { FailureKind::Io };
        Self::new(kind, format!("{what}: {err}"))
    }
}

/// Prints the first failure of each kind, once, from any task.
#[derive(Debug, Default)]
pub struct FirstErrors {
    seen: [AtomicBool; KINDS],
}

impl FirstErrors {
    pub fn record(&self, failure: &Failure) {
        if !self.seen[failure.kind.index()].swap(true, Ordering::Relaxed) {
            eprintln!("client: first {:?} failure: {}", failure.kind, failure.detail);
        }
    }

}

/// Warm-up failures are left out of `RESULT`; this says how many there were (if any).
pub fn warmup_failed(count: u64) {
    if count > 0 {
        eprintln!("client: warm-up: {count} requests failed");
    }
}

/// CPU time this process has used, all threads, in microseconds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CpuTime {
    pub user_us: u64,
    pub sys_us: u64,
}

impl CpuTime {
    /// `getrusage(RUSAGE_SELF)`, through the `libc` crate the crate already uses.
    pub fn now() -> Self {
        // SAFETY: getrusage only writes the struct we pass; all-zero is a valid rusage.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
        let us = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000 + tv.tv_usec as u64;
        Self { user_us: us(usage.ru_utime), sys_us: us(usage.ru_stime) }
    }

    fn since(self, start: Self) -> Self {
        Self { user_us: self.user_us - start.user_us, sys_us: self.sys_us - start.sys_us }
    }
}

/// The measured window. Opening it prints `MEASURING`, where the harness takes its first
/// readings of the server's CPU and the cores' busy time, so the client's own start-up,
/// warm-up and connects stay out of every CPU figure; `RESULT` reports the client's CPU
/// between opening and closing it.
#[derive(Debug)]
pub struct MeasuredWindow {
    start: CpuTime,
}

impl MeasuredWindow {
    pub fn open() -> Self {
        // A stdout that is gone fails the RESULT line later, which reports it.
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "MEASURING").and_then(|()| out.flush());
        Self { start: CpuTime::now() }
    }

    /// The CPU used since the window opened.
    pub fn close(self) -> CpuTime {
        CpuTime::now().since(self.start)
    }
}

/// The counts behind the `RESULT` line.
#[derive(Debug, Default)]
pub struct Tally {
    pub ok: u64,
    pub failed: u64,
    pub bytes: u64,
    pub conn_min: u64,
    pub conn_max: u64,
    pub samples: Vec<u64>,
}

impl Tally {
    /// Folds in one connection's outcome: its successful samples and whether it failed.
    pub fn add_connection(&mut self, first: bool, samples: Vec<u64>, failed: u64, payload: usize) {
        let ok = samples.len() as u64;
        self.ok += ok;
        self.failed += failed;
        self.bytes += ok * payload as u64;
        self.conn_min = if first { ok } else { self.conn_min.min(ok) };
        self.conn_max = self.conn_max.max(ok);
        self.samples.extend(samples);
    }

    pub fn write_samples(&self, path: &Path) -> io::Result<()> {
        let mut out = BufWriter::new(File::create(path)?);
        for ns in &self.samples {
            out.write_all(&ns.to_le_bytes())?;
        }
        out.flush()
    }

    /// Prints the human line and the `RESULT` line on stdout. An error (say, the reader
    /// went away) is returned rather than panicking as `println!` would.
    pub fn print(&self, clients: usize, wall: Duration, cpu: CpuTime) -> io::Result<()> {
        let avg_us = if self.samples.is_empty() {
            0.0
        } else {
            self.samples.iter().map(|&ns| ns as f64).sum::<f64>() / self.samples.len() as f64 / 1_000.0
        };
        let mut out = io::stdout().lock();
        writeln!(out, "Rust: {clients} clients, total time = {:.2}s, avg = {avg_us:.0}μs", wall.as_secs_f64())?;
        writeln!(
            out,
            "RESULT ok={} failed={} wall_ns={} bytes={} conn_min={} conn_max={} cpu_user_us={} cpu_sys_us={}",
            self.ok,
            self.failed,
            wall.as_nanos(),
            self.bytes,
            self.conn_min,
            self.conn_max,
            cpu.user_us,
            cpu.sys_us
        )?;
        out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_tracks_per_connection_extremes() {
        let mut t = Tally::default();
        t.add_connection(true, vec![5, 6, 7], 0, 10);
        t.add_connection(false, vec![], 1, 10);
        t.add_connection(false, vec![9], 0, 10);
        assert_eq!((t.ok, t.failed, t.bytes, t.conn_min, t.conn_max), (4, 1, 40, 0, 3));
    }
}
