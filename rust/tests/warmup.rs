//! The client with `--warmup`, run as the harness runs it: a real process against this
//! package's server on loopback. What it pins: `MEASURING` comes before `RESULT`, `RESULT`
//! carries the CPU keys in the contract's order, that CPU is some but not all of the
//! process's, and nothing of the warm-up is in the counts or the samples.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdout, Command, Stdio};

const RESULT_KEYS: [&str; 8] =
    ["ok", "failed", "wall_ns", "bytes", "conn_min", "conn_max", "cpu_user_us", "cpu_sys_us"];

/// The package's server, stopped when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start() -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_server"))
            .args(["--port", "0"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the server");
        let mut ready = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut ready).unwrap();
        let port = ready.trim().rsplit(':').next().and_then(|p| p.parse().ok());
        let port = port.unwrap_or_else(|| panic!("no ready line: {ready:?}"));
        Server { child, port }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Run {
    status: i32,
    stdout: Vec<String>,
    result: Vec<(String, u64)>,
    /// The whole process's CPU, user plus system, from wait4.
    process_cpu_us: u64,
    samples: usize,
}

impl Run {
    fn get(&self, key: &str) -> u64 {
        self.result.iter().find(|(k, _)| k == key).map(|&(_, v)| v).unwrap()
    }
}

fn run_client(port: u16, args: &[&str]) -> Run {
    // Each test has its own server, so the port names the file uniquely.
    let samples = std::env::temp_dir().join(format!("rust-echo-warmup-{}-{port}.bin", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_client"))
        .args(["--port", &port.to_string(), "--samples", samples.to_str().unwrap()])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the client");
    let mut out = String::new();
    let stdout: ChildStdout = child.stdout.take().unwrap();
    BufReader::new(stdout).read_to_string(&mut out).unwrap();
    // wait4 rather than Child::wait: it also returns the child's own CPU time.
    let (mut status, mut usage) = (0, unsafe { std::mem::zeroed::<libc::rusage>() });
    assert_eq!(unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) }, child.id() as i32);
    let us = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000 + tv.tv_usec as u64;
    let stdout: Vec<String> = out.lines().map(String::from).collect();
    let result_line = stdout.iter().find(|l| l.starts_with("RESULT ")).expect("a RESULT line");
    let result = result_line["RESULT ".len()..]
        .split(' ')
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap();
            (k.to_owned(), v.parse().unwrap())
        })
        .collect();
    let samples_count = std::fs::metadata(&samples).unwrap().len() as usize / 8;
    let _ = std::fs::remove_file(&samples);
    Run {
        status: libc::WEXITSTATUS(status),
        stdout,
        result,
        process_cpu_us: us(usage.ru_utime) + us(usage.ru_stime),
        samples: samples_count,
    }
}

/// What every run with `--warmup` must show, whatever the workload.
fn assert_measured_window_only(run: &Run) {
    assert_eq!(run.status, 0, "{:?}", run.stdout);
    let measuring = run.stdout.iter().position(|l| l == "MEASURING");
    let result = run.stdout.iter().position(|l| l.starts_with("RESULT "));
    assert!(measuring.is_some() && measuring < result, "MEASURING must come before RESULT: {:?}", run.stdout);
    assert_eq!(run.stdout.iter().filter(|l| *l == "MEASURING").count(), 1, "{:?}", run.stdout);
    let keys: Vec<&str> = run.result.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, RESULT_KEYS);
    let window_cpu = run.get("cpu_user_us") + run.get("cpu_sys_us");
    assert!(window_cpu > 0, "no CPU in the measured window");
    assert!(window_cpu < run.process_cpu_us, "window {window_cpu} us, process {} us", run.process_cpu_us);
    assert_eq!(run.get("failed"), 0);
    assert_eq!(run.samples as u64, run.get("ok"), "one sample per measured request, none from the warm-up");
}

#[test]
fn closed_loop_warmup_is_left_out_of_the_result_and_the_samples() {
    let server = Server::start();
    let run = run_client(
        server.port,
        &["--connections", "20", "--workload", "persistent", "--duration", "0.5", "--warmup", "0.5"],
    );
    assert_measured_window_only(&run);
    assert!(run.get("conn_min") >= 1);
}

#[test]
fn open_loop_measures_exactly_the_window_schedule_after_the_warmup() {
    let server = Server::start();
    let run = run_client(
        server.port,
        &["--connections", "20", "--workload", "persistent", "--duration", "0.5", "--rate", "2000", "--warmup", "0.5"],
    );
    assert_measured_window_only(&run);
    // 2000/s for 0.5 s is 1000 slots from the window's own t0; the warm-up's 1000 are not in.
    assert_eq!(run.get("ok"), 1000);
}

#[test]
fn burst_warmup_is_left_out_of_the_result_and_the_samples() {
    let server = Server::start();
    let run = run_client(server.port, &["--connections", "200", "--workload", "burst", "--warmup", "1"]);
    assert_measured_window_only(&run);
    assert_eq!(run.get("ok"), 200);
}
