//! The listener (TCP or a Unix socket), the accept loop, the ready line and shutdown.

use std::io::{self, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, UnixListener};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};

use crate::cli::{Args, Listen};
use crate::connection;
use crate::service::Service;

/// Ask for the largest backlog; the kernel clamps it to net.core.somaxconn.
const BACKLOG: i32 = 65_535;
/// On SIGTERM, open calls get this long to finish after GOAWAY; the contract allows 1 s.
const DRAIN: Duration = Duration::from_millis(400);
/// And whatever happens meanwhile (a worker busy for long in one poll, say, which would
/// delay the drain's timer), the process ends this long after the signal was seen.
const HARD_EXIT: Duration = Duration::from_millis(800);

pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

impl Listener {
    /// The address half of the ready line: `tcp 127.0.0.1:40123` or `unix /path`.
    pub fn ready_address(&self) -> io::Result<String> {
        match self {
            Listener::Tcp(l) => Ok(format!("tcp {}", l.local_addr()?)),
            Listener::Unix(_, path) => Ok(format!("unix {}", path.display())),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Binds what `--host/--port` or `--unix` name; the error is the stderr message.
pub fn bind(listen: &Listen) -> Result<Listener, String> {
    match listen {
        Listen::Tcp { host, port } => {
            let addr = resolve(host, *port)?;
            bind_tcp(addr).map(Listener::Tcp).map_err(|e| format!("cannot listen on {addr}: {e}"))
        }
        Listen::Unix(path) => {
            remove_stale_socket(path);
            bind_unix(path)
                .map(|l| Listener::Unix(l, path.clone()))
                .map_err(|e| format!("cannot listen on unix socket {}: {e}", path.display()))
        }
    }
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    let host = if host == "localhost" { "127.0.0.1" } else { host };
    let mut addrs = (host, port).to_socket_addrs().map_err(|e| format!("cannot resolve host '{host}': {e}"))?;
    addrs.next().ok_or_else(|| format!("host '{host}' has no address"))
}

fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    // A rerun can bind the port while the last run's connections sit in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG as u32)
}

fn bind_unix(path: &Path) -> io::Result<UnixListener> {
    // Through socket2 for the backlog: std's UnixListener::bind asks for 128.
    let socket = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None)?;
    socket.bind(&socket2::SockAddr::unix(path)?)?;
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    UnixListener::from_std(socket.into())
}

/// A socket file left by a killed server makes the bind fail. Remove it only when it is a
/// socket and nobody answers on it; anything else is left for the bind to report.
fn remove_stale_socket(path: &Path) {
    use std::os::unix::fs::FileTypeExt;
    let is_socket = std::fs::symlink_metadata(path).map(|m| m.file_type().is_socket()).unwrap_or(false);
    if !is_socket {
        return;
    }
    if let Err(e) = std::os::unix::net::UnixStream::connect(path) {
        if e.kind() == io::ErrorKind::ConnectionRefused {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn announce(address: &str) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "READY {address}")?;
    stdout.flush()
}

fn is_resource_exhaustion(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM))
}

/// Binds, prints the ready line, serves until SIGTERM or SIGINT, then drains briefly.
/// The exit status: 0 after a signal, 1 when it cannot listen.
pub async fn run(args: Args, service: Arc<Service>) -> i32 {
    let listener = match bind(&args.listen) {
        Ok(l) => l,
        Err(message) => {
            eprintln!("rust-h2-server: {message}");
            return 1;
        }
    };
    // Installed before the ready line, so a SIGTERM right after it is not lost.
    let (mut terminate, mut interrupt) = match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(t), Ok(i)) => (t, i),
        _ => {
            eprintln!("rust-h2-server: cannot install signal handlers");
            return 1;
        }
    };
    match listener.ready_address() {
        Ok(address) => {
            if announce(&address).is_err() {
                return 1;
            }
        }
        Err(e) => {
            eprintln!("rust-h2-server: cannot read the bound address: {e}");
            return 1;
        }
    }

    let settings = Arc::new(connection::h2_settings());
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    // Every connection task holds a clone; recv() returns None once all have ended.
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    let mut warned = false;
    loop {
        let accepted = tokio::select! {
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            accepted = accept(&listener) => accepted,
        };
        match accepted {
            Ok(conn) => {
                let (settings, service, shutdown, alive) =
                    (settings.clone(), service.clone(), shutdown_rx.clone(), alive_tx.clone());
                tokio::spawn(async move {
                    match conn {
                        Accepted::Tcp(s) => connection::serve(s, settings, service, shutdown).await,
                        Accepted::Unix(s) => connection::serve(s, settings, service, shutdown).await,
                    }
                    drop(alive);
                });
            }
            Err(e) if is_resource_exhaustion(&e) => {
                // Out of descriptors or memory: back off so connections can close,
                // rather than spinning on an accept that keeps failing.
                if !warned {
                    eprintln!("rust-h2-server: accept: {e}; backing off");
                    warned = true;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(_) => {} // a peer that reset before we accepted it
        }
    }
    // Stop accepting (the socket closes; a Unix socket's file goes), GOAWAY on every
    // connection, give open calls a moment, then leave: main abandons whatever still runs.
    drop(listener);
    std::thread::spawn(|| {
        std::thread::sleep(HARD_EXIT);
        // SAFETY: ends the process at once; nothing needs flushing (stdout had its one line).
        unsafe { libc::_exit(0) }
    });
    let _ = shutdown_tx.send(true);
    drop(alive_tx);
    let _ = tokio::time::timeout(DRAIN, alive_rx.recv()).await;
    0
}

enum Accepted {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

async fn accept(listener: &Listener) -> io::Result<Accepted> {
    match listener {
        Listener::Tcp(l) => {
            let (stream, _) = l.accept().await?;
            // gRPC replies are small writes that must not wait for Nagle.
            let _ = stream.set_nodelay(true);
            Ok(Accepted::Tcp(stream))
        }
        Listener::Unix(l, _) => {
            let (stream, _) = l.accept().await?;
            Ok(Accepted::Unix(stream))
        }
    }
}
