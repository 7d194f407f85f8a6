"""Unit tests for what the Python designs share: python3 -m unittest (from python/)."""

import contextlib
import io
import os
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
        self.assertEqual(args.address, ("127.0.0.1", 9000))

    def test_bad_arguments_exit_with_status_2(self):
        for argv in ([], ["--port", "x"], ["--port", "0"], ["--port", "1", "--workload", "nope"],
                     ["--port", "1", "--duration", "-1"], ["--port", "1", "--connections", "0"],
                     ["--port", "1", "--rate", "nan"], ["--port", "1", "--bogus", "3"]):
            with self.subTest(argv=argv):
                self.assertEqual(self.parse_fails(argv), 2)

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
            tally.print(1, 123)
        human, result = out.getvalue().splitlines()
        self.assertTrue(human.startswith("Python: 1 clients, total time = 0.00 ms, avg latency = "))
        self.assertEqual(result, "RESULT ok=1 failed=0 wall_ns=123 bytes=100 conn_min=1 conn_max=1")

    def test_samples_are_little_endian_u64_nanoseconds(self):
        tally = contract.Tally(payload=1)
        tally.add_connection([1, 2 ** 40], failed=0)
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "samples.bin")
            tally.write_samples(path)
            with open(path, "rb") as f:
                raw = f.read()
        self.assertEqual(raw, (1).to_bytes(8, "little") + (2 ** 40).to_bytes(8, "little"))


if __name__ == "__main__":
    unittest.main()
