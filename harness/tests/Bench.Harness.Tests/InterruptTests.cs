using System.Diagnostics;
using Bench.Harness.Results;
using Bench.Harness.Run;

namespace Bench.Harness.Tests;

public class InterruptTests
{
    /// <summary>
    /// Ctrl-C in the middle of a suite: the harness stops the server and the client it started,
    /// keeps every finished row, still writes its summary, and exits non-zero.
    /// </summary>
    [Fact]
    public async Task ctrl_c_mid_suite_stops_every_process_and_keeps_finished_rows()
    {
        using var root = new TempDir();
        var marker = $"marker{Guid.NewGuid():N}";
        File.WriteAllText(root.File("run-all.sh"), "");
        File.WriteAllText(root.File($"{marker}_server.py"), """
            import socket, threading
            s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(100)
            print(f"READY tcp 127.0.0.1:{s.getsockname()[1]}", flush=True)
            def serve(c):
                while data := c.recv(65536):
                    c.sendall(data)
                c.close()
            while True:
                c, _ = s.accept()
                threading.Thread(target=serve, args=(c,), daemon=True).start()
            """);
        // The first two runs finish at once; the third hangs until it is stopped.
        File.WriteAllText(root.File($"{marker}_client.py"), """
            import os, sys, time
            count_file = os.path.join(os.path.dirname(os.path.abspath(__file__)), "count")
            n = int(open(count_file).read()) + 1 if os.path.exists(count_file) else 1
            open(count_file, "w").write(str(n))
            if n <= 2:
                print("RESULT ok=5 failed=0 wall_ns=1000000 bytes=500 conn_min=5 conn_max=5", flush=True)
                sys.exit(0)
            time.sleep(600)
            """);
        File.WriteAllText(root.File("bench.json"), $$"""
            { "language": "Python", "build": { "toolchain": "python" },
              "implementations": [ { "name": "fake", "design": "a stand-in",
                "server": ["python3", "{{marker}}_server.py"], "client": ["python3", "{{marker}}_client.py"] } ] }
            """);

        var harness = Path.Combine(AppContext.BaseDirectory, "bench.dll");
        // As a terminal would: a process started in the background of a non-interactive shell
        // (CI, `cmd &`) inherits SIGINT ignored, and .NET keeps it so; restore the default first.
        const string sigintDefault = "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])";
        await using var run = ManagedProcess.Start("harness", ["python3", "-c", sigintDefault, "dotnet", harness, "run", "--root", root.Path, "--only", "fake", "--workload", "persistent",
            "--connections", "5", "--duration", "0.2", "--rate", "0", "--repeats", "3", "--warmups", "0", "--warmup-cap", "0", "--no-build", "--results", root.File("results")], root.Path);

        var csv = Path.Combine(root.File("results"), "latest", "runs.csv");
        var waited = Stopwatch.StartNew();
        while (!(File.Exists(root.File("count")) && File.ReadAllText(root.File("count")) == "3"))
        {
            Assert.True(waited.Elapsed < TimeSpan.FromSeconds(60), "the third run never started");
            Assert.False(run.HasExited, $"the harness ended early: {run.StderrTail}");
            await Task.Delay(50);
        }
        Assert.True(Marked(marker).Count >= 2, "server and client should both be running");

        Process.Start("kill", ["-INT", run.Pid.ToString()])!.WaitForExit();

        Assert.Equal(1, await run.Exited.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Empty(Marked(marker));
        var rows = ResultsCsv.Read(csv);
        Assert.Equal(2, rows.Count);
        Assert.All(rows, r => Assert.Equal(RunStatus.Ok, r.Status));
        Assert.True(File.Exists(Path.Combine(root.File("results"), "latest", "summary.md")));
        Assert.Contains(run.StderrTail.Split(" | "), l => l.Contains("interrupted"));
    }

    /// <summary>Live processes whose command line holds the marker.</summary>
    private static List<int> Marked(string marker) =>
        Directory.EnumerateDirectories("/proc").Select(Path.GetFileName).Where(d => int.TryParse(d, out _)).Select(int.Parse!)
            .Where(pid =>
            {
                try { return File.ReadAllText($"/proc/{pid}/cmdline").Contains(marker) && !File.ReadAllText($"/proc/{pid}/stat").Contains(") Z "); }
                catch (IOException) { return false; }
            }).ToList();
}
