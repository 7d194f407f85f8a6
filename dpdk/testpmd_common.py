"""Shared pieces of the dpdk-testpmd wrappers: how to start testpmd on one memif end without
hugepages, pinned to the CPU the harness gave us, and how to watch and stop it."""

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time

TESTPMD = shutil.which("dpdk-testpmd") or "/usr/bin/dpdk-testpmd"


def fail_usage(message, usage):
    print(f"testpmd wrapper: {message}", file=sys.stderr)
    print(usage, file=sys.stderr)
    sys.exit(2)


def pinned_cpu():
    """The first CPU of our affinity mask (set by the harness's taskset).

    testpmd needs two lcores (a main one that mostly sleeps, one that forwards); EAL pins each
    lcore thread itself, so both are mapped onto this one CPU with --lcores, or EAL would spread
    them over CPUs the harness meant for the other side.
    """
    return min(os.sched_getaffinity(0))


def vdev(role, socket_path):
    """net_memif devargs: a leading '@' names an abstract socket (DPDK's default kind)."""
    if socket_path.startswith("@"):
        return f"net_memif0,role={role},id=0,socket={socket_path[1:]},socket-abstract=yes"
    return f"net_memif0,role={role},id=0,socket={socket_path},socket-abstract=no"


def file_prefix(role):
    return f"memif-{role}-{os.getpid()}"


def remove_runtime_dir(prefix):
    """EAL leaves its (by then empty) runtime directory behind; tidy it up."""
    base = "/var/run/dpdk" if os.geteuid() == 0 else os.path.join(os.environ.get("XDG_RUNTIME_DIR", "/tmp"), "dpdk")
    shutil.rmtree(os.path.join(base, prefix), ignore_errors=True)


def testpmd_command(role, socket_path, testpmd_args):
    cpu = pinned_cpu()
    eal = [
        "--lcores", f"0@{cpu},1@{cpu}",
        "--no-huge", "--no-pci", "-m", "256",
        # Each instance its own runtime directory, so the two ends never collide. (--in-memory
        # would avoid the files altogether, but EAL refuses it together with --no-huge.)
        "--file-prefix", file_prefix(role),
        f"--vdev={vdev(role, socket_path)}",
    ]
    app = ["--no-mlockall", "--total-num-mbufs=8192", "--stats-period=1"] + testpmd_args
    # testpmd prints with stdio: line-buffer it so we see progress as it happens.
    prefix = ["stdbuf", "-oL"] if shutil.which("stdbuf") else []
    return prefix + [TESTPMD] + eal + ["--"] + app


def socket_listening(socket_path):
    """True once some process listens on the memif socket (filesystem or abstract), per /proc/net/unix."""
    name = socket_path
    try:
        with open("/proc/net/unix", encoding="utf-8", errors="replace") as f:
            next(f)
            for line in f:
                fields = line.split()
                # Flags 00010000 = listening; the path is the last field ('@' for abstract).
                if len(fields) >= 8 and fields[-1] == name and fields[3] == "00010000":
                    return True
    except OSError:
        pass
    return False


def remove_stale_socket(socket_path):
    """DPDK does not unlink an old socket file and then fails to bind; remove one nobody listens on."""
    if socket_path.startswith("@") or not os.path.exists(socket_path):
        return
    if socket_listening(socket_path):
        print(f"testpmd wrapper: {socket_path} is in use by another process", file=sys.stderr)
        sys.exit(1)
    import stat
    if stat.S_ISSOCK(os.lstat(socket_path).st_mode):
        os.unlink(socket_path)


class Testpmd:
    """A running testpmd whose output is copied to our stderr line by line and kept for parsing."""

    def __init__(self, command, prefix):
        self.prefix = prefix
        print("testpmd wrapper: " + " ".join(command), file=sys.stderr, flush=True)
        self.lines = queue.Queue()
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, errors="replace", start_new_session=True)
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.process.stdout:
            sys.stderr.write(line)
            self.lines.put((time.monotonic(), line.rstrip("\n")))
        self.lines.put(None)

    def next_line(self, timeout):
        """(time, line), None at EOF, or raises queue.Empty after the timeout."""
        return self.lines.get(timeout=timeout)

    def stop(self, grace=10.0):
        """SIGINT makes testpmd stop forwarding, print its final stats, close the port and exit."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        remove_runtime_dir(self.prefix)
        return self.process.returncode


def install_stop_handler(event):
    """SIGTERM/SIGINT set the event; the wrapper then stops testpmd and exits 0."""
    def handler(signum, frame):
        event.set()
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def parse_args(argv, known, usage):
    """--name value pairs, only the names given; anything else is a usage error."""
    values = {}
    i = 0
    while i < len(argv):
        name = argv[i]
        if not name.startswith("--") or name[2:] not in known:
            fail_usage(f"unknown argument '{name}'", usage)
        if i + 1 >= len(argv):
            fail_usage(f"{name} needs a value", usage)
        values[name[2:]] = argv[i + 1]
        i += 2
    return values


def number(values, name, default, kind, low, high, usage):
    if name not in values:
        return default
    try:
        v = kind(values[name])
    except ValueError:
        v = None
    if v is None or v < low or v > high:
        fail_usage(f"--{name} must be a number from {low} to {high}, got '{values[name]}'", usage)
    return v
