"""Unit tests for what the Python designs share: python3 -m unittest (from python/)."""

import contextlib
import io
import os
import resource
import subprocess
import sys
import tempfile
import unittest

import echo_contract as contract


class PayloadTests(unittest.TestCase):
    def test_pattern_follows_the_contract(self):
        data = contract.payload(7, 3, 600)
        self.assertEqual(len(data), 600)
        self.assertEqual(list(data), [(7 + 3 + j) % 251 for j in range(600)])

    def test_neighbouring_requests_and_connections_differ(self):
        self.assertNotEqual(contract.payload(0, 1, 100), contract.payload(0, 0, 100))
        self.assertNotEqual(contract.payload(1, 0, 100), contract.payload(0, 0, 100))

    def test_large_payloads_keep_the_pattern(self):
        data = contract.payload(250, 250, 1 << 20)
        self.assertEqual(data[0], (250 + 250) % 251)
        self.assertEqual(data[-1], (250 + 250 + (1 << 20) - 1) % 251)

    def test_mismatch_names_the_first_differing_byte(self):
        self.assertIn("byte 2", str(contract.mismatch(b"abcd", b"abXd")))


class ArgumentTests(unittest.TestCase):
    def parse_fails(self, argv):
        with self.assertRaises(SystemExit) as exit, contextlib.redirect_stderr(io.StringIO()):
            contract.parse_client_args("test", argv)
        return exit.exception.code

    def test_client_defaults_follow_the_contract(self):
        args = contract.parse_client_args("test", ["--port", "9000"])
        self.assertEqual((args.host, args.connections, args.payload, args.workload),
                         ("127.0.0.1", 10000, 100, "burst"))
        self.assertEqual((args.duration, args.rate, args.timeout, args.samples), (5.0, 0.0, 30.0, None))
        self.assertEqual(args.warmup, 0.0)
        self.assertEqual(args.address, ("127.0.0.1", 9000))

    def test_bad_arguments_exit_with_status_2(self):
        for argv in ([], ["--port", "x"], ["--port", "0"], ["--port", "1", "--workload", "nope"],
                     ["--port", "1", "--duration", "-1"], ["--port", "1", "--connections", "0"],
                     ["--port", "1", "--rate", "nan"], ["--port", "1", "--bogus", "3"]):
            with self.subTest(argv=argv):
                self.assertEqual(self.parse_fails(argv), 2)

    def test_a_bad_warmup_is_one_line_naming_the_option(self):
        for value, reason in (("-1", "must be 0 or a positive number of seconds"),
                              ("nan", "must be 0 or a positive number of seconds"),
                              ("inf", "must be 0 or a positive number of seconds"),
                              ("x", "'x' is not a number of seconds")):
            with self.subTest(value=value):
                err = io.StringIO()
                with self.assertRaises(SystemExit) as exit, contextlib.redirect_stderr(err):
                    contract.parse_client_args("test", ["--port", "1", "--warmup", value])
                self.assertEqual(exit.exception.code, 2)
                line, = err.getvalue().splitlines()
                prog = os.path.basename(sys.argv[0])  # what argparse names the program
                self.assertEqual(line, f"{prog}: argument --warmup: {reason}")

    def test_server_defaults(self):
        args = contract.parse_server_args("test", [])
        self.assertEqual((args.host, args.port), ("127.0.0.1", 0))


class TallyTests(unittest.TestCase):
    def test_counts_and_per_connection_extremes(self):
        tally = contract.Tally(payload=10)
        tally.add_connection([5, 6, 7], failed=0)
        tally.add_connection([], failed=1)
        tally.add_connection([9], failed=0)
        self.assertEqual((tally.ok, tally.failed, tally.conn_min, tally.conn_max), (4, 1, 0, 3))

    def test_result_line_has_the_contract_keys_in_order(self):
        tally = contract.Tally(payload=100)
        tally.add_connection([1000], failed=0)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            tally.print(1, 123, contract.CpuTime(user_us=7, sys_us=8))
        human, result = out.getvalue().splitlines()
        self.assertTrue(human.startswith("Python: 1 clients, total time = 0.00 ms, avg latency = "))
        self.assertEqual(result, "RESULT ok=1 failed=0 wall_ns=123 bytes=100 conn_min=1 conn_max=1 "
                                 "cpu_user_us=7 cpu_sys_us=8")

    def test_samples_are_little_endian_u64_nanoseconds(self):
        tally = contract.Tally(payload=1)
        tally.add_connection([1, 2 ** 40], failed=0)
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "samples.bin")
            tally.write_samples(path)
            with open(path, "rb") as f:
                raw = f.read()
        self.assertEqual(raw, (1).to_bytes(8, "little") + (2 ** 40).to_bytes(8, "little"))


HERE = os.path.dirname(os.path.abspath(__file__))
RESULT_KEYS = ["ok", "failed", "wall_ns", "bytes", "conn_min", "conn_max", "cpu_user_us", "cpu_sys_us"]


def children_cpu_us() -> int:
    """User plus system CPU of every child this process has reaped."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return round((usage.ru_utime + usage.ru_stime) * 1e6)


class WarmupTests(unittest.TestCase):
    """Both clients with --warmup, as the harness runs them: real processes against the real
    server on loopback. MEASURING comes before RESULT, RESULT carries the CPU keys in the
    contract's order, that CPU is some but not all of the process's, and nothing of the
    warm-up is in the counts or the samples."""

    CLIENTS = ("asyncio_client.py", "fast_client.py")

    @classmethod
    def setUpClass(cls):
        cls.server = subprocess.Popen([sys.executable, os.path.join(HERE, "fast_server.py"), "--port", "0"],
                                      stdout=subprocess.PIPE, text=True)
        ready = cls.server.stdout.readline()
        if not ready.startswith("READY tcp 127.0.0.1:"):
            cls.server.kill()
            raise RuntimeError(f"no ready line: {ready!r}")
        cls.port = ready.strip().rsplit(":", 1)[1]

    @classmethod
    def tearDownClass(cls):
        cls.server.terminate()
        cls.server.wait(timeout=10)
        cls.server.stdout.close()

    def run_client(self, client: str, *args: str) -> tuple[list[str], dict[str, int], list[str], int, int]:
        """Runs one client; its stdout lines, the RESULT pairs (in order), its samples count
        and its whole CPU time (it is the only child reaped meanwhile)."""
        with tempfile.TemporaryDirectory() as folder:
            samples = os.path.join(folder, "samples.bin")
            before = children_cpu_us()
            done = subprocess.run([sys.executable, os.path.join(HERE, client), "--port", self.port,
                                   "--samples", samples, *args],
                                  capture_output=True, text=True, timeout=120)
            process_cpu_us = children_cpu_us() - before
            self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
            count = os.path.getsize(samples) // 8
        lines = done.stdout.splitlines()
        result, = [line for line in lines if line.startswith("RESULT ")]
        pairs = [pair.split("=") for pair in result.split()[1:]]
        return lines, {k: int(v) for k, v in pairs}, [k for k, _ in pairs], count, process_cpu_us

    def assert_measured_window_only(self, client: str, *args: str) -> dict[str, int]:
        lines, result, keys, samples, process_cpu_us = self.run_client(client, *args)
        self.assertEqual(lines.count("MEASURING"), 1, lines)
        self.assertLess(lines.index("MEASURING"), next(i for i, l in enumerate(lines) if l.startswith("RESULT ")))
        self.assertEqual(keys, RESULT_KEYS)
        window_cpu_us = result["cpu_user_us"] + result["cpu_sys_us"]
        self.assertGreater(window_cpu_us, 0)
        self.assertLess(window_cpu_us, process_cpu_us)
        self.assertEqual(result["failed"], 0)
        self.assertEqual(samples, result["ok"], "one sample per measured request, none from the warm-up")
        return result

    def test_closed_loop_warmup_is_left_out_of_the_result_and_the_samples(self):
        for client in self.CLIENTS:
            with self.subTest(client=client):
                result = self.assert_measured_window_only(
                    client, "--connections", "20", "--workload", "persistent", "--duration", "0.5", "--warmup", "0.5")
                self.assertGreaterEqual(result["conn_min"], 1)

    def test_open_loop_measures_exactly_the_window_schedule_after_the_warmup(self):
        for client in self.CLIENTS:
            with self.subTest(client=client):
                result = self.assert_measured_window_only(
                    client, "--connections", "20", "--workload", "persistent", "--duration", "0.5",
                    "--rate", "400", "--warmup", "0.5")
                # 400/s for 0.5 s is 200 slots from the window's own t0; the warm-up's 200 are not in.
                self.assertEqual(result["ok"], 200)

    def test_burst_warmup_is_left_out_of_the_result_and_the_samples(self):
        for client in self.CLIENTS:
            with self.subTest(client=client):
                result = self.assert_measured_window_only(
                    client, "--connections", "200", "--workload", "burst", "--warmup", "1")
                self.assertEqual(result["ok"], 200)


if __name__ == "__main__":
    unittest.main()
