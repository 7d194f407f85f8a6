using Bench.Harness.Catalog;
using Bench.Harness.LoadTools;
using Bench.Harness.Results;
using Bench.Harness.Run;
using Bench.Harness.Workloads;

namespace Bench.Harness.Tests;

/// <summary>
/// Faults provoked for real with small misbehaving programs: each is recorded as a row with a
/// status and a reason, and the harness goes on.
/// </summary>
public class HarnessFaultTests
{
    private static Implementation Fake(TempDir dir, string name, string script, bool isServer = true)
    {
        File.WriteAllText(dir.File($"{name}.py"), script);
        IReadOnlyList<string> command = ["python3", $"{name}.py"];
        return new Implementation(name, "Python", "a misbehaving program", dir.Path, new BuildSpec(Toolchains.Python),
            isServer ? command : null, isServer ? null : command, [Transports.Tcp], [.. Workload.All.OfType<EchoWorkload>()], false,
            isServer ? null : string.Join(' ', command));
    }

    private static async Task<IReadOnlyList<RunRecord>> RunAsync(TempDir dir, Implementation server, Implementation client, RunSettings? settings = null,
        Workload? workload = null)
    {
        workload ??= Workload.Get<Burst>();
        var runner = new ExperimentRunner(settings ?? new RunSettings(Repeats: 2, Warmups: 0, ReadyTimeout: TimeSpan.FromSeconds(3)),
            new ResultsCsv(dir.File("runs.csv")), "test", dir.Path, new Progress(2, TextWriter.Null));
        var rows = await runner.RunAsync(new Experiment(server, LoadGenerator.ClientOf(client), Transports.Tcp, workload, 20, 20, 100, 0, workload.IsTimed ? 0.5 : 0), CancellationToken.None);
        Assert.Equal(rows.Count, ResultsCsv.Read(dir.File("runs.csv")).Count); // every row is on disk already
        return rows;
    }

    [Fact]
    public async Task server_that_never_prints_its_ready_line_fails_within_the_deadline()
    {
        using var dir = new TempDir();
        var silent = Fake(dir, "silent", "import time\ntime.sleep(120)\n");
        var row = Assert.Single(await RunAsync(dir, silent, await Repo.BuiltAsync("csharp")));
        Assert.Equal(RunStatus.ServerFailed, row.Status);
        Assert.Contains("no matching line within 3 s", row.Error);
    }

    [Fact]
    public async Task server_that_exits_before_ready_is_reported_with_what_it_said()
    {
        using var dir = new TempDir();
        var crash = Fake(dir, "crash", "import sys\nprint('cannot open the frobnicator', file=sys.stderr)\nsys.exit(3)\n");
        var row = Assert.Single(await RunAsync(dir, crash, await Repo.BuiltAsync("csharp")));
        Assert.Equal(RunStatus.ServerFailed, row.Status);
        Assert.Contains("status 3", row.Error);
        Assert.Contains("cannot open the frobnicator", row.Error);
    }

    [Fact]
    public async Task server_that_dies_mid_run_ends_the_experiment_with_its_reason()
    {
        using var dir = new TempDir();
        // Answers the harness's verification (five connections), then dies on the first client connection.
        var dying = Fake(dir, "dying", """
            import os, socket, sys
            s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(100)
            print(f"READY tcp 127.0.0.1:{s.getsockname()[1]}", flush=True)
            for _ in range(2):
                c, _ = s.accept()
                while data := c.recv(65536):
                    c.sendall(data)
                c.close()
            c, _ = s.accept()
            print("dying on purpose", file=sys.stderr, flush=True)
            os._exit(9)
            """);
        var rows = await RunAsync(dir, dying, await Repo.BuiltAsync("csharp"));
        var last = rows[^1];
        Assert.Equal(RunStatus.ServerFailed, last.Status);
        Assert.Contains("died during the run", last.Error);
        Assert.Contains("dying on purpose", last.Error);
        Assert.Single(rows); // no further repeats against a dead server
    }

    [Fact]
    public async Task client_that_hangs_is_killed_with_its_process_tree_at_the_deadline()
    {
        using var dir = new TempDir();
        var pidFile = dir.File("child.pid");
        var hanging = Fake(dir, "hanging", $"""
            import subprocess, time
            child = subprocess.Popen(["sleep", "300"])
            open({System.Text.Json.JsonSerializer.Serialize(pidFile)}, "w").write(str(child.pid))
            time.sleep(300)
            """, isServer: false);
        var settings = new RunSettings(Repeats: 1, Warmups: 0, ClientTimeout: TimeSpan.FromSeconds(1), DeadlineSlack: TimeSpan.FromSeconds(2));
        var row = Assert.Single(await RunAsync(dir, await Repo.BuiltAsync("csharp"), hanging, settings));
        Assert.Equal(RunStatus.Timeout, row.Status);
        Assert.Contains("killed", row.Error);
        var child = int.Parse(File.ReadAllText(pidFile));
        Assert.False(Directory.Exists($"/proc/{child}") && !File.ReadAllText($"/proc/{child}/stat").Contains(") Z "), "the client's child survived");
    }

    [Fact]
    public async Task cpu_figures_cover_the_window_a_client_draws_and_the_row_says_which()
    {
        const string result = "RESULT ok=1000 failed=0 wall_ns=500000000 bytes=100000 conn_min=500 conn_max=500";
        const string startUp = "import time\nuntil = time.process_time() + 0.3\nwhile time.process_time() < until: pass\n";
        var settings = new RunSettings(Repeats: 1, Warmups: 0, SteadyWarmupCap: TimeSpan.Zero);
        var server = await Repo.BuiltAsync("csharp");

        using (var dir = new TempDir())
        {
            // 300 ms of CPU before its window: its own report of the window is what the row must hold.
            var windowed = Fake(dir, "windowed", $"{startUp}print('MEASURING', flush=True)\nprint('{result} cpu_user_us=123000 cpu_sys_us=4000', flush=True)\n", isServer: false);
            var row = Assert.Single(await RunAsync(dir, server, windowed, settings, Workload.Get<Persistent>()));
            Assert.Equal((RunStatus.Ok, CpuWindows.Timed, 123.0, 4.0, 127.0), (row.Status, row.CpuWindow, row.ClientUserMs, row.ClientSysMs, row.ClientCpuUsPerReq));
        }
        using (var dir = new TempDir())
        {
            var whole = Fake(dir, "whole", $"{startUp}print('{result}', flush=True)\n", isServer: false);
            var row = Assert.Single(await RunAsync(dir, server, whole, settings, Workload.Get<Persistent>()));
            Assert.Equal((RunStatus.Ok, CpuWindows.Process), (row.Status, row.CpuWindow));
            Assert.True(row.ClientUserMs + row.ClientSysMs >= 290, $"the whole life's CPU was {row.ClientUserMs} + {row.ClientSysMs} ms");
        }
    }

    [Fact]
    public async Task client_that_breaks_the_contract_is_reported()
    {
        using var dir = new TempDir();
        var mute = Fake(dir, "mute", "print('all good, trust me')\n", isServer: false);
        var rows = await RunAsync(dir, await Repo.BuiltAsync("csharp"), mute);
        Assert.All(rows, r => Assert.Equal(RunStatus.ClientFailed, r.Status));
        Assert.Contains("no RESULT line", rows[0].Error);
    }

    [Fact]
    public async Task server_that_echoes_wrong_bytes_fails_verification_and_is_not_timed()
    {
        using var dir = new TempDir();
        var wrong = Fake(dir, "wrong", """
            import socket, threading
            s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(100)
            print(f"READY tcp 127.0.0.1:{s.getsockname()[1]}", flush=True)
            def serve(c):
                while data := c.recv(65536):
                    c.sendall(data.upper())
                c.close()
            while True:
                c, _ = s.accept()
                threading.Thread(target=serve, args=(c,), daemon=True).start()
            """);
        var row = Assert.Single(await RunAsync(dir, wrong, await Repo.BuiltAsync("csharp")));
        Assert.Equal(RunStatus.VerifyFailed, row.Status);
        Assert.Contains("differs", row.Error);
        Assert.Equal(0, row.Ok);
    }

    [Fact]
    public async Task more_connections_than_the_hard_fd_limit_are_skipped_with_the_limit_named()
    {
        using var dir = new TempDir();
        var csharp = await Repo.BuiltAsync("csharp");
        var runner = new ExperimentRunner(new RunSettings(Repeats: 1, Warmups: 0), new ResultsCsv(dir.File("runs.csv")), "test", dir.Path, new Progress(1, TextWriter.Null));
        var hard = (int)Math.Min(Machine.Limits.FileDescriptors().Hard, int.MaxValue - 1000);
        var row = Assert.Single(await runner.RunAsync(new Experiment(csharp, LoadGenerator.ClientOf(csharp), Transports.Tcp, Workload.Get<Burst>(), hard, hard, 100, 0, 0), CancellationToken.None));
        Assert.Equal(RunStatus.Skipped, row.Status);
        Assert.Contains("hard limit", row.Error);
    }

    [Fact]
    public async Task build_that_fails_is_recorded_and_the_suite_goes_on()
    {
        using var dir = new TempDir();
        using var results = new TempDir();
        var broken = Fake(dir, "broken", "def oops(:\n");
        var csharp = await Repo.BuiltAsync("csharp");
        IReadOnlyList<PlannedExperiment> plan =
        [
            new(new Experiment(broken, LoadGenerator.ClientOf(csharp), Transports.Tcp, Workload.Get<Burst>(), 10, 10, 100, 0, 0)),
            new(new Experiment(csharp, LoadGenerator.ClientOf(csharp), Transports.Tcp, Workload.Get<Burst>(), 10, 10, 100, 0, 0)),
        ];
        var exit = await SuiteRunner.RunAsync(Repo.Root, plan, new RunSettings(Repeats: 1, Warmups: 0), results.Path, build: true, CancellationToken.None);
        Assert.Equal(1, exit);
        var rows = ResultsCsv.Read(Path.Combine(results.Path, "latest", "runs.csv"));
        Assert.Equal(RunStatus.BuildFailed, rows.Single(r => r.Server == "broken").Status);
        Assert.Contains("py_compile", rows.Single(r => r.Server == "broken").Error);
        Assert.Equal(RunStatus.Ok, rows.Single(r => r.Server == "csharp").Status);
    }
}
