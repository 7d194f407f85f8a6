//! rust-h2-server: the benchmark's gRPC services over h2c, on h2 + prost + Tokio.

use std::process::ExitCode;
use std::sync::Arc;

use rust_h2_grpc::cli::{self, Command};
use rust_h2_grpc::crypto::SigningKeys;
use rust_h2_grpc::server;
use rust_h2_grpc::service::Service;

fn main() -> ExitCode {
    let args = match cli::parse(std::env::args().skip(1)) {
        Ok(Command::Run(args)) => args,
        Ok(Command::Help) => {
            println!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("rust-h2-server: {message}");
            return ExitCode::from(2);
        }
    };
    // Keys before the listener: start-up cost stays out of every measurement.
    let keys = match SigningKeys::generate() {
        Ok(keys) => keys,
        Err(e) => {
            eprintln!("rust-h2-server: cannot generate the signing keys: {e}");
            return ExitCode::from(1);
        }
    };
    let threads = args.worker_threads.unwrap_or_else(rust_h2_grpc::allowed_cpus);
    let service = Arc::new(Service { keys, max_message: args.max_message, spawn_signing: threads > 1 });
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rust-h2-server: cannot start the Tokio runtime: {e}");
            return ExitCode::from(1);
        }
    };
    // The accept loop runs as a task on the workers, beside the connections it spawns: on
    // the main thread (plain block_on) every accept would wake a second thread.
    let code = runtime.block_on(async { tokio::spawn(server::run(args, service)).await.unwrap_or(1) });
    // Calls still open after the drain are abandoned: the contract wants a prompt exit. And
    // the process ends with _exit, not exit: a worker may still be inside OpenSSL (a Sign
    // call's poll runs to its end), and exit's atexit handlers include OpenSSL's cleanup,
    // which must not free what that worker is using. stdout was flushed with the ready line.
    runtime.shutdown_background();
    let _ = std::io::Write::flush(&mut std::io::stdout());
    // SAFETY: _exit ends the process; nothing after it runs.
    unsafe { libc::_exit(code) }
}
