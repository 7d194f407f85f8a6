//! Shared pieces of the Tokio echo server and load client: the contract's command line,
//! the payload pattern, the runtime sizing, the file-descriptor limit and the report.

pub mod cli;
pub mod payload;
pub mod report;

use std::io;
use std::num::NonZeroUsize;

/// Worker threads for the runtime: the CPUs this process may run on.
///
/// `available_parallelism` reads the affinity mask (and cgroup quota) on Linux, so a
/// process started under `taskset -c 0` gets one worker instead of one per machine core.
pub fn worker_threads() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

/// A multi-threaded Tokio runtime sized from the affinity mask.
pub fn runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads())
        .enable_all()
        .build()
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit, because 10,000 sockets do not fit
/// in the usual soft limit of 1024. Returns the soft limit now in force.
pub fn raise_nofile_limit() -> io::Result<libc::rlim_t> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err(io::Error::last_os_error());
        }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(limit.rlim_cur)
}
