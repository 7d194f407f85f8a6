//! The server's command line (the contract's arguments and two of the C# server's): no
//! argument-parsing crate needed for six options.

use std::path::PathBuf;

use crate::service::DEFAULT_MAX_MESSAGE;

pub const USAGE: &str = "\
usage: rust-h2-server [--host HOST] [--port PORT] | [--unix PATH]
                      [--worker-threads N] [--max-message-bytes N]

  --host HOST             address to bind (default 127.0.0.1)
  --port PORT             TCP port, 0 = the kernel picks (default 0)
  --unix PATH             listen on a Unix domain socket instead of TCP
  --worker-threads N      Tokio worker threads (default: the CPUs in the affinity mask)
  --max-message-bytes N   largest message received or sent (default 4194304)

Prints `READY tcp HOST:PORT` (or `READY unix PATH`) on stdout once listening.
Serves h2c gRPC: bench.Echo/Unary, bench.Echo/Stream, bench.Crypto/Sign,
bench.Crypto/GetPublicKey, grpc.health.v1.Health/Check.";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listen {
    Tcp { host: String, port: u16 },
    Unix(PathBuf),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Args {
    pub listen: Listen,
    pub worker_threads: Option<usize>,
    pub max_message: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Run(Args),
    Help,
}

fn number<T: std::str::FromStr + PartialOrd + std::fmt::Display>(name: &str, value: &str, min: T, max: T) -> Result<T, String> {
    match value.parse::<T>() {
        Ok(n) if n >= min && n <= max => Ok(n),
        _ => Err(format!("{name} takes a whole number from {min} to {max}, not '{value}'")),
    }
}

/// Parses the arguments (without the program name). `--name value` and `--name=value`.
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Command, String> {
    let mut host: Option<String> = None;
    let mut port: Option<u16> = None;
    let mut unix: Option<PathBuf> = None;
    let mut worker_threads = None;
    let mut max_message = DEFAULT_MAX_MESSAGE;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "--help" || arg == "-h" {
            return Ok(Command::Help);
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let known = matches!(name.as_str(), "--host" | "--port" | "--unix" | "--worker-threads" | "--max-message-bytes");
        if !known {
            return Err(format!("unknown argument '{arg}' (--help lists them)"));
        }
        let value = match inline.or_else(|| args.next()) {
            Some(v) => v,
            None => return Err(format!("{name} needs a value")),
        };
        match name.as_str() {
            "--host" => {
                if value.is_empty() {
                    return Err("--host needs a host name or address, not an empty string".into());
                }
                host = Some(value);
            }
            "--port" => port = Some(number("--port", &value, 0u16, u16::MAX)?),
            "--unix" => {
                if value.is_empty() {
                    return Err("--unix needs a socket path, not an empty string".into());
                }
                unix = Some(PathBuf::from(value));
            }
            "--worker-threads" => worker_threads = Some(number("--worker-threads", &value, 1usize, 1024)?),
            "--max-message-bytes" => max_message = number("--max-message-bytes", &value, 1usize, i32::MAX as usize)?,
            _ => unreachable!(),
        }
    }
    let listen = match unix {
        Some(path) => {
            if host.is_some() || port.is_some() {
                return Err("--unix cannot be combined with --host or --port".into());
            }
            Listen::Unix(path)
        }
        None => Listen::Tcp { host: host.unwrap_or_else(|| "127.0.0.1".into()), port: port.unwrap_or(0) },
    };
    Ok(Command::Run(Args { listen, worker_threads, max_message }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Args, String> {
        match parse(args.iter().map(|s| s.to_string()))? {
            Command::Run(a) => Ok(a),
            Command::Help => Err("help".into()),
        }
    }

    #[test]
    fn defaults_are_loopback_port_zero_four_mib() {
        let a = run(&[]).unwrap();
        assert_eq!(a.listen, Listen::Tcp { host: "127.0.0.1".into(), port: 0 });
        assert_eq!(a.worker_threads, None);
        assert_eq!(a.max_message, 4 << 20);
    }

    #[test]
    fn both_value_forms() {
        let a = run(&["--host", "::1", "--port=8080", "--worker-threads", "3", "--max-message-bytes=100"]).unwrap();
        assert_eq!(a.listen, Listen::Tcp { host: "::1".into(), port: 8080 });
        assert_eq!(a.worker_threads, Some(3));
        assert_eq!(a.max_message, 100);
        assert_eq!(run(&["--unix", "/tmp/x.sock"]).unwrap().listen, Listen::Unix("/tmp/x.sock".into()));
    }

    #[test]
    fn bad_arguments_say_what_is_wrong() {
        assert!(run(&["--port", "65536"]).unwrap_err().starts_with("--port takes a whole number from 0 to 65535"));
        assert!(run(&["--port", "-1"]).is_err());
        assert!(run(&["--port"]).unwrap_err().contains("needs a value"));
        assert!(run(&["--bogus"]).unwrap_err().starts_with("unknown argument '--bogus'"));
        assert!(run(&["extra"]).is_err());
        assert!(run(&["--worker-threads", "0"]).is_err());
        assert!(run(&["--unix", "/x", "--port", "1"]).unwrap_err().contains("cannot be combined"));
        assert!(run(&["--host", ""]).is_err());
        assert_eq!(parse(vec!["--help".to_string()]).unwrap(), Command::Help);
    }
}
