//! Tokio echo load client: the contract's burst and persistent workloads, one task per
//! connection on a multi-threaded runtime sized from the process's CPU affinity.

use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use rust_tokio_echo::cli::{self, ClientArgs, Workload};
use rust_tokio_echo::payload;
use rust_tokio_echo::report::{self, CpuTime, Failure, FailureKind, FirstErrors, MeasuredWindow, Tally};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::{self, Instant};

fn main() -> ExitCode {
    let args = cli::or_exit(cli::parse_client(std::env::args().skip(1)), "client");
    let addr = cli::or_exit(args.address(), "client");
    match rust_tokio_echo::raise_nofile_limit() {
        Ok(soft) if soft < args.connections as libc::rlim_t + 64 => eprintln!(
            "client: the open-file limit ({soft}) is below {} connections; raise `ulimit -Hn`",
            args.connections
        ),
        Ok(_) => {}
        Err(e) => eprintln!("client: cannot raise the open-file limit: {e}"),
    }
    let runtime = match rust_tokio_echo::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("client: cannot start the Tokio runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let args = Arc::new(args);
    let (tally, wall, cpu) = runtime.block_on(async {
        match args.workload {
            Workload::Burst => {
                if !args.warmup.is_zero() {
                    // An unrecorded burst of a tenth of the connections first: the same code, warm.
                    let warmup = ClientArgs { connections: (args.connections / 10).max(1), ..(*args).clone() };
                    let (tally, _) = burst(Arc::new(warmup), addr).await;
                    report::warmup_failed(tally.failed);
                }
                let window = MeasuredWindow::open();
                let (tally, wall) = burst(args.clone(), addr).await;
                (tally, wall, window.close())
            }
            Workload::Persistent => persistent(args.clone(), addr).await,
        }
    });
    runtime.shutdown_background();

    if let Err(e) = tally.print(args.connections, wall, cpu) {
        eprintln!("client: cannot print the result: {e}");
        return ExitCode::from(1);
    }
    if let Some(path) = &args.samples {
        if let Err(e) = tally.write_samples(path) {
            eprintln!("client: cannot write samples to {}: {e}", path.display());
            return ExitCode::from(1);
        }
    }
    if tally.failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

/// Runs one step of a request under the per-operation deadline.
async fn within<T>(
    limit: Duration,
    what: &str,
    step: impl Future<Output = std::io::Result<T>>,
) -> Result<T, Failure> {
    match time::timeout(limit, step).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(Failure::io(what, e)),
        Err(_) => Err(Failure::new(FailureKind::Timeout, format!("{what}: no progress in {limit:?}"))),
    }
}

async fn connect(addr: SocketAddr, limit: Duration) -> Result<TcpStream, Failure> {
    let stream = match time::timeout(limit, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Err(Failure::new(FailureKind::Connect, format!("connect to {addr}: {e}"))),
        Err(_) => return Err(Failure::new(FailureKind::Timeout, format!("connect to {addr}: no answer in {limit:?}"))),
    };
    // Requests are small and latency-bound: do not let Nagle hold them back.
    stream.set_nodelay(true).map_err(|e| Failure::io("set TCP_NODELAY", e))?;
    Ok(stream)
}

/// Sends `request` and reads its echo into `reply`, verifying every byte.
///
/// Writing and reading run together: a payload larger than the socket buffers would
/// deadlock a client that only starts reading once its write is done.
async fn exchange(stream: &mut TcpStream, request: &[u8], reply: &mut [u8], limit: Duration) -> Result<(), Failure> {
    let (mut reader, mut writer) = stream.split();
    tokio::try_join!(
        within(limit, "write", writer.write_all(request)),
        within(limit, "read", reader.read_exact(reply)),
    )?;
    if let Some(at) = request.iter().zip(reply.iter()).position(|(a, b)| a != b) {
        return Err(Failure::new(
            FailureKind::Mismatch,
            format!("echo differs at byte {at}: sent {}, got {}", request[at], reply[at]),
        ));
    }
    Ok(())
}

/// Burst: every connection starts at once, connects, echoes one payload and closes.
async fn burst(args: Arc<ClientArgs>, addr: SocketAddr) -> (Tally, Duration) {
    let errors = Arc::new(FirstErrors::default());
    let mut tasks = JoinSet::new();
    let start = Instant::now();
    for conn in 0..args.connections {
        let (args, errors) = (args.clone(), errors.clone());
        tasks.spawn(async move {
            let began = Instant::now();
            let result = async {
                let mut stream = connect(addr, args.timeout).await?;
                let request = payload::make(args.payload, conn, 0);
                let mut reply = vec![0; args.payload];
                exchange(&mut stream, &request, &mut reply, args.timeout).await
                // The stream drops here: the close is part of the connection's life.
            }
            .await;
            match result {
                Ok(()) => Some(began.elapsed().as_nanos() as u64),
                Err(failure) => {
                    errors.record(&failure);
                    None
                }
            }
        });
    }
    let mut tally = Tally::default();
    let mut first = true;
    while let Some(joined) = tasks.join_next().await {
        let sample = joined.unwrap_or(None);
        let failed = u64::from(sample.is_none());
        tally.add_connection(first, sample.into_iter().collect(), failed, args.payload);
        first = false;
    }
    (tally, start.elapsed())
}

/// What one persistent connection did in one window; `stream` is gone when it failed.
struct ConnRun {
    conn: usize,
    samples: Vec<u64>,
    failed: u64,
    last_echo: Option<Instant>,
    stream: Option<TcpStream>,
}

/// Persistent: open every connection (untimed), then each one echoes until the duration
/// ends, as fast as it can (closed loop) or on a fixed schedule (open loop, `--rate`).
/// A warm-up first runs the same load on the same connections; its counts are dropped,
/// but a connection it lost stays lost: the measured window counts it failed.
async fn persistent(args: Arc<ClientArgs>, addr: SocketAddr) -> (Tally, Duration, CpuTime) {
    let errors = Arc::new(FirstErrors::default());
    let mut tally = Tally::default();
    let mut first = true;

    let mut opening = JoinSet::new();
    for conn in 0..args.connections {
        let limit = args.timeout;
        opening.spawn(async move { (conn, connect(addr, limit).await) });
    }
    let mut streams = Vec::with_capacity(args.connections);
    while let Some(joined) = opening.join_next().await {
        match joined {
            Ok((conn, Ok(stream))) => streams.push((conn, stream)),
            Ok((_, Err(failure))) => {
                errors.record(&failure);
                tally.add_connection(first, Vec::new(), 1, args.payload);
                first = false;
            }
            Err(_) => {
                tally.add_connection(first, Vec::new(), 1, args.payload);
                first = false;
            }
        }
    }

    if !args.warmup.is_zero() {
        let (runs, _) = load(&args, &errors, streams, args.warmup).await;
        report::warmup_failed(runs.iter().map(|run| run.failed).sum());
        streams = Vec::with_capacity(runs.len());
        for run in runs {
            match run.stream {
                Some(stream) => streams.push((run.conn, stream)),
                None => {
                    tally.add_connection(first, Vec::new(), 1, args.payload);
                    first = false;
                }
            }
        }
    }

    let window = MeasuredWindow::open();
    let (runs, t0) = load(&args, &errors, streams, args.duration).await;
    // The last in-window echo is in; the connections close after the reading.
    let cpu = window.close();
    let mut last_echo = None;
    for run in runs {
        last_echo = last_echo.max(run.last_echo);
        tally.add_connection(first, run.samples, run.failed, args.payload);
        first = false;
    }
    let wall = last_echo.map_or(Duration::ZERO, |last| last.saturating_duration_since(t0));
    (tally, wall, cpu)
}

/// One window of load on every open connection, all starting together at the t0 it
/// returns and stopping after `duration`.
async fn load(
    args: &Arc<ClientArgs>,
    errors: &Arc<FirstErrors>,
    streams: Vec<(usize, TcpStream)>,
    duration: Duration,
) -> (Vec<ConnRun>, Instant) {
    // A common start a little ahead, so every connection is spawned before any sends.
    let t0 = Instant::now() + Duration::from_millis(20);
    let end = t0 + duration;
    let mut running = JoinSet::new();
    for (conn, stream) in streams {
        let (args, errors) = (args.clone(), errors.clone());
        running.spawn(async move {
            let (run, outcome) = echo_until(&args, conn, stream, t0, end).await;
            if let Err(failure) = &outcome {
                errors.record(failure);
            }
            run
        });
    }
    let mut runs = Vec::with_capacity(running.len());
    while let Some(joined) = running.join_next().await {
        // A task that panicked took its connection with it (no stream, so no number needed).
        runs.push(joined.unwrap_or(ConnRun {
            conn: usize::MAX,
            samples: Vec::new(),
            failed: 1,
            last_echo: None,
            stream: None,
        }));
    }
    (runs, t0)
}

async fn echo_until(
    args: &ClientArgs,
    conn: usize,
    mut stream: TcpStream,
    t0: Instant,
    end: Instant,
) -> (ConnRun, Result<(), Failure>) {
    let mut run = ConnRun { conn, samples: Vec::new(), failed: 0, last_echo: None, stream: None };
    let mut request = vec![0; args.payload];
    let mut reply = vec![0; args.payload];
    // Open loop: connection `conn` of N owns the slots conn, conn + N, conn + 2N, ...
    // of a schedule ticking R times a second.
    let open_loop = args.rate > 0.0;
    let n = args.connections as f64;
    time::sleep_until(t0).await;
    for k in 0u64.. {
        let began = if open_loop {
            let intended = t0 + Duration::from_secs_f64((conn as f64 + k as f64 * n) / args.rate);
            if intended >= end {
                break;
            }
            // Late (the last echo came back after this slot) means send now; the sample
            // still counts from the intended time, so a stall shows as queueing.
            wait_until(intended).await;
            intended
        } else {
            let now = Instant::now();
            if now >= end {
                break;
            }
            now
        };
        payload::fill(&mut request, conn, k);
        if let Err(failure) = exchange(&mut stream, &request, &mut reply, args.timeout).await {
            // The stream is out of step after a failure: this connection is done.
            run.failed = 1;
            return (run, Err(failure));
        }
        let done = Instant::now();
        run.samples.push(done.saturating_duration_since(began).as_nanos() as u64);
        run.last_echo = Some(done);
    }
    run.stream = Some(stream);
    (run, Ok(()))
}

/// Tokio's timer wheel ticks once a millisecond, rounds deadlines up and parks in
/// millisecond steps, which would add up to a couple of milliseconds of the client's own
/// lateness to every open-loop sample. So sleep on the timer until just short of the slot,
/// then yield to other tasks until it arrives. This costs client CPU, never server time.
async fn wait_until(slot: Instant) {
    const TIMER_SLACK: Duration = Duration::from_millis(2);
    if let Some(early) = slot.checked_sub(TIMER_SLACK) {
        if early > Instant::now() {
            time::sleep_until(early).await;
        }
    }
    while Instant::now() < slot {
        tokio::task::yield_now().await;
    }
}
