//! The contract's command lines, parsed by hand: Debian packages no argument-parsing crate
//! that builds offline here, and the grammar is small (`--name value` or `--name=value`).

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process;
use std::time::Duration;

pub const SERVER_USAGE: &str = "usage: server [--host HOST] [--port PORT]";
pub const CLIENT_USAGE: &str = "usage: client [--host HOST] --port PORT [--connections N] [--payload BYTES]
              [--workload burst|persistent] [--duration SECONDS] [--rate REQ_PER_S]
              [--samples PATH] [--timeout SECONDS] [--warmup SECONDS]";

/// More connections than one client could ever open (ports and descriptors run out far
/// sooner); the bound keeps a typo from allocating gigabytes up front.
pub const MAX_CONNECTIONS: usize = 1_000_000;
/// Every connection holds a request and a reply buffer of this size.
pub const MAX_PAYLOAD: usize = 256 << 20;

#[derive(Debug, Clone)]
pub struct ServerArgs {
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    Burst,
    Persistent,
}

#[derive(Debug, Clone)]
pub struct ClientArgs {
    pub host: String,
    pub port: u16,
    pub connections: usize,
    pub payload: usize,
    pub workload: Workload,
    pub duration: Duration,
    /// Total requests per second across all connections; 0 means closed loop.
    pub rate: f64,
    pub samples: Option<PathBuf>,
    pub timeout: Duration,
    /// Unrecorded load before the measured window; zero means none.
    pub warmup: Duration,
}

impl ClientArgs {
    /// The server's address; the host may be a name, resolved once here.
    pub fn address(&self) -> Result<SocketAddr, String> {
        resolve(&self.host, self.port)
    }
}

pub fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve host '{host}': {e}"))?
        .next()
        .ok_or_else(|| format!("host '{host}' has no address"))
}

/// Splits `--name value` and `--name=value` into (name, value) pairs.
fn pairs(args: impl IntoIterator<Item = String>, usage: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            println!("{usage}");
            process::exit(0);
        }
        // No let-else: Debian 12's rustc (1.63) is a supported fallback toolchain.
        let name = match arg.strip_prefix("--") {
            Some(name) => name,
            None => return Err(format!("unexpected argument '{arg}'")),
        };
        match name.split_once('=') {
            Some((n, v)) => out.push((n.to_owned(), v.to_owned())),
            None => {
                let value = args.next().ok_or_else(|| format!("--{name} needs a value"))?;
                out.push((name.to_owned(), value));
            }
        }
    }
    Ok(out)
}

fn number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, String> {
    value.parse().map_err(|_| format!("--{name}: '{value}' is not a valid number"))
}

fn seconds(name: &str, value: &str) -> Result<Duration, String> {
    let secs: f64 = number(name, value)?;
    if !secs.is_finite() || secs <= 0.0 {
        return Err(format!("--{name} must be a positive number of seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn seconds_or_zero(name: &str, value: &str) -> Result<Duration, String> {
    let secs: f64 = number(name, value)?;
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("--{name} must be 0 or a positive number of seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

pub fn parse_server(args: impl IntoIterator<Item = String>) -> Result<ServerArgs, String> {
    let mut parsed = ServerArgs { host: "127.0.0.1".into(), port: 0 };
    for (name, value) in pairs(args, SERVER_USAGE)? {
        match name.as_str() {
            "host" => parsed.host = value,
            "port" => parsed.port = number(&name, &value)?,
            _ => return Err(format!("unknown option --{name}")),
        }
    }
    Ok(parsed)
}

pub fn parse_client(args: impl IntoIterator<Item = String>) -> Result<ClientArgs, String> {
    let mut parsed = ClientArgs {
        host: "127.0.0.1".into(),
        port: 0,
        connections: 10_000,
        payload: 100,
        workload: Workload::Burst,
        duration: Duration::from_secs(5),
        rate: 0.0,
        samples: None,
        timeout: Duration::from_secs(30),
        warmup: Duration::ZERO,
    };
    let mut port = None;
    for (name, value) in pairs(args, CLIENT_USAGE)? {
        match name.as_str() {
            "host" => parsed.host = value,
            "port" => port = Some(number(&name, &value)?),
            "connections" => parsed.connections = number(&name, &value)?,
            "payload" => parsed.payload = number(&name, &value)?,
            "workload" => {
                parsed.workload = match value.as_str() {
                    "burst" => Workload::Burst,
                    "persistent" => Workload::Persistent,
                    other => return Err(format!("--workload: unknown workload '{other}'")),
                }
            }
            "duration" => parsed.duration = seconds(&name, &value)?,
            "rate" => parsed.rate = number(&name, &value)?,
            "samples" => parsed.samples = Some(PathBuf::from(value)),
            "timeout" => parsed.timeout = seconds(&name, &value)?,
            "warmup" => parsed.warmup = seconds_or_zero(&name, &value)?,
            _ => return Err(format!("unknown option --{name}")),
        }
    }
    parsed.port = port.ok_or("--port is required")?;
    if parsed.port == 0 {
        return Err("--port must be between 1 and 65535".into());
    }
    if parsed.connections == 0 || parsed.connections > MAX_CONNECTIONS {
        return Err(format!("--connections must be between 1 and {MAX_CONNECTIONS}"));
    }
    if parsed.payload == 0 || parsed.payload > MAX_PAYLOAD {
        return Err(format!("--payload must be between 1 and {MAX_PAYLOAD} bytes"));
    }
    if !parsed.rate.is_finite() || parsed.rate < 0.0 {
        return Err("--rate must be 0 (closed loop) or a positive number of requests/s".into());
    }
    Ok(parsed)
}

/// Parses or exits with status 2 and one line on stderr, `program: message`, as the
/// contract asks (the usage is one `--help` away).
pub fn or_exit<T>(parsed: Result<T, String>, program: &str) -> T {
    parsed.unwrap_or_else(|message| {
        eprintln!("{program}: {message}");
        process::exit(2)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn client_defaults_follow_the_contract() {
        let a = parse_client(args("--port 9000")).unwrap();
        assert_eq!((a.connections, a.payload, a.workload), (10_000, 100, Workload::Burst));
        assert_eq!(a.timeout, Duration::from_secs(30));
        assert_eq!(a.rate, 0.0);
        assert_eq!(a.warmup, Duration::ZERO);
    }

    #[test]
    fn warmup_takes_zero_or_more_seconds() {
        assert_eq!(parse_client(args("--port 1 --warmup 0")).unwrap().warmup, Duration::ZERO);
        assert_eq!(parse_client(args("--port 1 --warmup 1.5")).unwrap().warmup, Duration::from_millis(1500));
        for bad in ["-1", "x", "nan", "inf"] {
            let err = parse_client(args(&format!("--port 1 --warmup {bad}"))).unwrap_err();
            assert!(err.contains("--warmup"), "{err}");
        }
    }

    #[test]
    fn client_rejects_bad_input() {
        assert!(parse_client(args("")).is_err());
        assert!(parse_client(args("--port x")).is_err());
        assert!(parse_client(args("--port 1 --workload nope")).is_err());
        assert!(parse_client(args("--port 1 --duration -1")).is_err());
        assert!(parse_client(args("--port 1 --bogus 3")).is_err());
        assert!(parse_client(args("--port 1 --connections")).is_err());
    }

    #[test]
    fn equals_form_is_accepted() {
        let a = parse_client(args("--port=9000 --workload=persistent --rate=5000")).unwrap();
        assert_eq!((a.port, a.workload, a.rate), (9000, Workload::Persistent, 5000.0));
    }
}
