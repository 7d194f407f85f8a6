//! Tokio echo server: one lightweight task per connection on a multi-threaded runtime
//! sized from the process's CPU affinity.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use rust_tokio_echo::cli;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::signal::unix::{signal, SignalKind};

/// Ask for the largest backlog; the kernel clamps it to net.core.somaxconn. A 10k burst
/// arrives faster than one core accepts, and a short queue turns that into SYN retries.
const BACKLOG: u32 = 65_535;

fn main() -> ExitCode {
    let args = cli::or_exit(cli::parse_server(std::env::args().skip(1)), "server");
    if let Err(e) = rust_tokio_echo::raise_nofile_limit() {
        eprintln!("server: cannot raise the open-file limit: {e}");
    }
    let runtime = match rust_tokio_echo::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("server: cannot start the Tokio runtime: {e}");
            return ExitCode::from(1);
        }
    };
    // The accept loop runs as a task on the workers, beside the connections it spawns:
    // left on the main thread (plain block_on) every accept would wake a second thread.
    let code = runtime.block_on(async { tokio::spawn(serve(args)).await.unwrap_or(ExitCode::from(1)) });
    // Connections still open are abandoned, not drained: the contract wants a prompt exit.
    runtime.shutdown_background();
    code
}

fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    // Lets a rerun bind the port while the last run's connections sit in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

async fn serve(args: cli::ServerArgs) -> ExitCode {
    let listener = match cli::resolve(&args.host, args.port).and_then(|addr| {
        listen(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))
    }) {
        Ok(listener) => listener,
        Err(message) => {
            eprintln!("server: {message}");
            return ExitCode::from(1);
        }
    };
    // Signal handlers go in before the ready line so a SIGTERM right after it is not lost.
    let (mut terminate, mut interrupt) = match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(terminate), Ok(interrupt)) => (terminate, interrupt),
        _ => {
            eprintln!("server: cannot install signal handlers");
            return ExitCode::from(1);
        }
    };
    let local = match listener.local_addr() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("server: cannot read the bound address: {e}");
            return ExitCode::from(1);
        }
    };
    if announce(local).is_err() {
        return ExitCode::from(1);
    }

    let mut warned_exhausted = false;
    loop {
        tokio::select! {
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(echo(stream));
                }
                Err(e) if is_resource_exhaustion(&e) => {
                    // Out of descriptors or memory: back off so connections can close,
                    // rather than spinning on an accept that keeps failing.
                    if !warned_exhausted {
                        eprintln!("server: accept: {e}; backing off");
                        warned_exhausted = true;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                // A peer that reset before we accepted it is its own business.
                Err(_) => {}
            }
        }
    }
    ExitCode::SUCCESS
}

/// The contract's ready line, flushed: the harness waits for it before it starts a client.
fn announce(local: SocketAddr) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "READY tcp {local}")?;
    stdout.flush()
}

fn is_resource_exhaustion(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM))
}

/// Echoes until the peer shuts down its write side, then closes ours.
///
/// `tokio::io::copy` holds one 8 KiB buffer and does not read again while a write is
/// pending, so a peer that sends without reading meets back-pressure, not our memory.
/// Errors (resets, broken pipes) end the connection quietly: rude peers are expected.
async fn echo(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    // Idle connections hold no buffer: copy's buffer is allocated once there is data.
    if stream.readable().await.is_err() {
        return;
    }
    let (mut reader, mut writer) = stream.split();
    if tokio::io::copy(&mut reader, &mut writer).await.is_ok() {
        let _ = writer.shutdown().await;
    }
}
