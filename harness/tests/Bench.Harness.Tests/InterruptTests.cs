using System.Diagnostics;
using Bench.Harness.Processes;
using Bench.Harness.Results;

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
        File.WriteAllText(root.File($"{marker}_server.py"), FakePrograms.ThreadedEchoServer());
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

    /// <summary>
    /// A second Ctrl-C stops at once. The server ignores SIGTERM, so the harness's clean stop at
    /// the end of the experiment waits out its 5 s grace period; Ctrl-C, then Ctrl-C again, must
    /// end the harness well within it: exit 130, every process of it killed.
    /// </summary>
    [Fact]
    public async Task second_ctrl_c_stops_at_once_and_kills_every_process()
    {
        using var root = new TempDir();
        var marker = $"marker{Guid.NewGuid():N}";
        await using var cleanup = new KillMarked(marker);
        var termed = root.File("server-got-sigterm");
        File.WriteAllText(root.File("run-all.sh"), "");
        // SIGTERM is ignored (its handler only leaves a note, so the test sees the harness's clean stop begin).
        File.WriteAllText(root.File($"{marker}_server.py"), FakePrograms.ThreadedEchoServer($$"""
            import signal, subprocess, sys
            signal.signal(signal.SIGTERM, lambda *_: open({{System.Text.Json.JsonSerializer.Serialize(termed)}}, "w").close())
            subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "{{marker}}-grandchild"])
            """));
        File.WriteAllText(root.File($"{marker}_client.py"), """
            print("RESULT ok=5 failed=0 wall_ns=1000000 bytes=500 conn_min=5 conn_max=5", flush=True)
            """);
        File.WriteAllText(root.File("bench.json"), $$"""
            { "language": "Python", "build": { "toolchain": "python" },
              "implementations": [ { "name": "fake", "design": "a stand-in",
                "server": ["python3", "{{marker}}_server.py"], "client": ["python3", "{{marker}}_client.py"] } ] }
            """);

        var stderr = new System.Collections.Concurrent.ConcurrentQueue<string>();
        await using var run = ManagedProcess.Start("harness", ["python3", "-c", SigintDefault, "dotnet", Harness, "run", "--root", root.Path, "--only", "fake",
            "--workload", "persistent", "--connections", "5", "--duration", "0.2", "--rate", "0", "--repeats", "1", "--warmups", "0", "--warmup-cap", "0",
            "--no-build", "--results", root.File("results")], root.Path, onStderr: stderr.Enqueue);

        await WaitForAsync(() => File.Exists(termed), run, "the harness never began to stop the server");
        Assert.NotEmpty(Marked(marker));

        Process.Start("kill", ["-INT", run.Pid.ToString()])!.WaitForExit();
        // The harness says when it has the first one; a second sent before that could merge with it.
        await WaitForAsync(() => stderr.Any(l => l.Contains("Ctrl-C again")), run, "the harness did not acknowledge the first Ctrl-C");
        var second = Stopwatch.StartNew();
        Process.Start("kill", ["-INT", run.Pid.ToString()])!.WaitForExit();

        Assert.Equal(130, await run.Exited.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.True(second.Elapsed < TimeSpan.FromSeconds(3), $"the second Ctrl-C took {second.Elapsed.TotalSeconds:F1} s to stop the harness");
        Assert.Contains(stderr, l => l.StartsWith("bench: stopped at once", StringComparison.Ordinal));
        await WaitForAsync(() => Marked(marker).Count == 0, null, $"processes outlived the harness: {string.Join(", ", Marked(marker))}", TimeSpan.FromSeconds(10));
    }

    /// <summary>Ctrl-C during a build: one line that says so, exit 130, no stack trace, nothing of the build left running.</summary>
    [Fact]
    public async Task ctrl_c_during_a_build_exits_130_with_one_line()
    {
        using var root = new TempDir();
        var marker = $"marker{Guid.NewGuid():N}";
        await using var cleanup = new KillMarked(marker);
        File.WriteAllText(root.File("run-all.sh"), "");
        // A cmake folder whose configure step takes ten minutes, in a process the test can see by its marker.
        File.WriteAllText(root.File("CMakeLists.txt"), $$"""
            cmake_minimum_required(VERSION 3.13)
            project(slow NONE)
            execute_process(COMMAND python3 -c "__import__('time').sleep(600)" {{marker}})
            """);
        File.WriteAllText(root.File("bench.json"), """
            { "language": "C++", "build": { "toolchain": "cmake" },
              "implementations": [ { "name": "slow", "design": "a build that takes its time",
                "server": ["build/slow-server"], "client": ["build/slow-client"] } ] }
            """);

        var stderr = new System.Collections.Concurrent.ConcurrentQueue<string>();
        await using var build = ManagedProcess.Start("harness", ["python3", "-c", SigintDefault, "dotnet", Harness, "build", "--root", root.Path, "--only", "slow"],
            root.Path, onStderr: stderr.Enqueue);
        await WaitForAsync(() => Marked(marker).Count > 0, build, "the slow build step never started");

        Process.Start("kill", ["-INT", build.Pid.ToString()])!.WaitForExit();

        Assert.Equal(130, await build.Exited.WaitAsync(TimeSpan.FromSeconds(30)));
        var said = string.Join('\n', stderr);
        Assert.Single(stderr, l => l.Contains("interrupted"));
        Assert.DoesNotContain(stderr, l => l.Contains("   at "));
        Assert.DoesNotContain(stderr, l => l.Contains("Exception"));
        await WaitForAsync(() => Marked(marker).Count == 0, null, $"the build step outlived the harness; it said:\n{said}", TimeSpan.FromSeconds(10));
    }

    private static readonly string Harness = Path.Combine(AppContext.BaseDirectory, "bench.dll");

    /// <summary>
    /// As a terminal would: a process started in the background of a non-interactive shell
    /// (CI, `cmd &`) inherits SIGINT ignored, and .NET keeps it so; restore the default first.
    /// </summary>
    private const string SigintDefault = "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])";

    /// <summary>Polls until the condition holds; fails with the message (and what the harness said) after the patience runs out or the harness ends.</summary>
    private static async Task WaitForAsync(Func<bool> condition, ManagedProcess? harness, string failure, TimeSpan? patience = null)
    {
        var waited = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(waited.Elapsed < (patience ?? Processes.Patience), $"{failure} (waited {waited.Elapsed.TotalSeconds:F0} s); the harness said: {harness?.StderrTail}");
            if (harness is not null) Assert.False(harness.HasExited && !condition(), $"{failure}: the harness ended first with status {harness.ExitCode}: {harness.StderrTail}");
            await Task.Delay(50);
        }
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
