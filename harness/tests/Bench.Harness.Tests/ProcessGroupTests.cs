using System.Diagnostics;
using Bench.Harness.Machine;
using Bench.Harness.Processes;

namespace Bench.Harness.Tests;

/// <summary>
/// Every process the harness starts is in a process group of its own and dies with it: when it
/// is disposed, when its leader has gone first, and when the harness itself is killed with SIGKILL.
/// </summary>
public class ProcessGroupTests
{
    private static readonly TimeSpan Bounded = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task a_child_leads_a_group_and_a_session_of_its_own_and_dispose_kills_its_grandchild()
    {
        using var dir = new TempDir();
        var marker = $"marker{Guid.NewGuid():N}";
        var cpus = Environment.ProcessorCount > 1 ? "1" : "0";
        await using var cleanup = new KillMarked(marker);
        var child = ManagedProcess.Start("grouped", ["python3", "-c", """
            import subprocess, sys, time
            g = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", sys.argv[1]])
            print(f"GRANDCHILD {g.pid}", flush=True)
            time.sleep(300)
            """, marker], dir.Path, cpus);
        var grandchild = await GrandchildAsync(child);

        // The pid held is the program's own: setsid and taskset exec'd into it, nothing stayed in between.
        Assert.Contains(marker, Live.CommandLine(child.Pid));
        Assert.Equal(Environment.ProcessId, Live.Stat(child.Pid)!.Value.Parent);
        Assert.Equal(cpus, Live.CpusAllowed(child.Pid));

        var leader = Live.Stat(child.Pid)!.Value;
        Assert.Equal(child.Pid, leader.Group);
        Assert.Equal(child.Pid, leader.Session);
        Assert.NotEqual(Live.Stat(Environment.ProcessId)!.Value.Group, leader.Group);
        Assert.Equal(child.Pid, Live.Stat(grandchild)!.Value.Group);
        Assert.Contains(child.Pid, ProcessGroups.Live);

        await child.DisposeAsync().AsTask().WaitAsync(Bounded);
        Assert.False(Live.IsAlive(child.Pid), "the child survived its disposal");
        Assert.False(Live.IsAlive(grandchild), "the grandchild survived the child's disposal");
        Assert.Equal(-1, child.ExitCode);
        Assert.DoesNotContain(child.Pid, ProcessGroups.Live);
    }

    /// <summary>The dpdk-testpmd wrappers start testpmd with start_new_session: it leaves our group and session, but not our tree.</summary>
    [Fact]
    public async Task dispose_kills_a_grandchild_that_moved_to_a_session_of_its_own()
    {
        using var dir = new TempDir();
        var marker = $"marker{Guid.NewGuid():N}";
        await using var cleanup = new KillMarked(marker);
        var child = ManagedProcess.Start("wrapper", ["python3", "-c", $$"""
            import subprocess, sys, time
            g = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", "{{marker}}"], start_new_session=True)
            print(f"GRANDCHILD {g.pid}", flush=True)
            time.sleep(300)
            """], dir.Path);
        var grandchild = await GrandchildAsync(child);
        Assert.Equal(grandchild, Live.Stat(grandchild)!.Value.Session); // in neither our group nor our session any more

        await child.DisposeAsync().AsTask().WaitAsync(Bounded);
        Assert.False(Live.IsAlive(grandchild), "the grandchild in a session of its own survived");
        Assert.Empty(Live.Marked(marker));
    }

    /// <summary>A paused server takes no CPU: pausing stops a grandchild in a session of its own too (the testpmd wrapper's), and resuming continues it.</summary>
    [Fact]
    public async Task pause_stops_a_grandchild_that_moved_to_a_session_of_its_own()
    {
        using var dir = new TempDir();
        var marker = $"marker{Guid.NewGuid():N}";
        await using var cleanup = new KillMarked(marker);
        await using var child = ManagedProcess.Start("wrapper", ["python3", "-c", $$"""
            import subprocess, sys, time
            g = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", "{{marker}}"], start_new_session=True)
            print(f"GRANDCHILD {g.pid}", flush=True)
            time.sleep(300)
            """], dir.Path);
        var grandchild = await GrandchildAsync(child);

        child.Pause();
        // A signal is delivered asynchronously: wait for the kernel to report the state.
        Assert.True(await StateAsync([child.Pid, grandchild], 'T'), "the family did not stop");
        child.Resume();
        Assert.True(await StateAsync([child.Pid, grandchild], 'S'), "the family did not continue");
    }

    private static async Task<bool> StateAsync(int[] pids, char state)
    {
        for (var waited = System.Diagnostics.Stopwatch.StartNew(); waited.Elapsed < Processes.Patience; await Task.Delay(10))
            if (pids.All(pid => Live.Stat(pid)?.State == state)) return true;
        return false;
    }

    /// <summary>A grandchild that outlives its parent (and moved to a group of its own) is still in the session: dispose reaps it.</summary>
    [Fact]
    public async Task dispose_kills_what_an_exited_leader_left_behind()
    {
        using var dir = new TempDir();
        var marker = $"marker{Guid.NewGuid():N}";
        await using var cleanup = new KillMarked(marker);
        var child = ManagedProcess.Start("leaver", ["python3", "-c", $$"""
            import subprocess, sys
            g = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", "{{marker}}"], process_group=0,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            print(f"GRANDCHILD {g.pid}", flush=True)
            """], dir.Path);
        var grandchild = await GrandchildAsync(child);
        Assert.Equal(0, await child.Exited.WaitAsync(Processes.Patience));
        Assert.True(Live.IsAlive(grandchild), "the grandchild should outlive its parent until the harness reaps it");
        Assert.Equal(child.Pid, Live.Stat(grandchild)!.Value.Session);

        await child.DisposeAsync().AsTask().WaitAsync(Bounded);
        Assert.False(Live.IsAlive(grandchild), "the orphaned grandchild survived the disposal");
        Assert.Equal(0, child.ExitCode); // it exited by itself: its status is kept
    }

    [Fact]
    public void a_program_that_is_not_there_is_still_an_error_at_start()
    {
        using var dir = new TempDir();
        var e = Assert.Throws<ProcessStartException>(() => ManagedProcess.Start("ghost", ["build/no-such-server"], dir.Path, "0"));
        Assert.Contains("cannot start 'build/no-such-server'", e.Message);
        Assert.Throws<ProcessStartException>(() => ManagedProcess.Start("ghost", ["no-such-program-anywhere"], dir.Path));
    }

    /// <summary>
    /// SIGKILL of the harness in the middle of a suite: the kernel closes its reaper's pipe and
    /// the reaper kills the server (which forked two grandchildren, one of them into a session
    /// of its own) and the hanging client. Checked by marker, by process group and by the CPUs
    /// the suite pinned them to.
    /// </summary>
    [Fact]
    public async Task kill_9_of_the_harness_mid_suite_leaves_nothing_of_it_running()
    {
        using var root = new TempDir();
        var marker = $"marker{Guid.NewGuid():N}";
        await using var cleanup = new KillMarked(marker);
        var (serverCpus, clientCpus) = Environment.ProcessorCount > 1 ? ("0", "1") : ("0", "0");
        File.WriteAllText(root.File("run-all.sh"), "");
        File.WriteAllText(root.File($"{marker}_server.py"), FakePrograms.ThreadedEchoServer($$"""
            import subprocess, sys
            sleeper = "import time; time.sleep(600)"
            subprocess.Popen([sys.executable, "-c", sleeper, "{{marker}}-grandchild"])
            subprocess.Popen([sys.executable, "-c", sleeper, "{{marker}}-own-session"], start_new_session=True)
            """));
        File.WriteAllText(root.File($"{marker}_client.py"), "import time\ntime.sleep(600)\n");
        File.WriteAllText(root.File("bench.json"), $$"""
            { "language": "Python", "build": { "toolchain": "python" },
              "implementations": [ { "name": "fake", "design": "a stand-in",
                "server": ["python3", "{{marker}}_server.py"], "client": ["python3", "{{marker}}_client.py"] } ] }
            """);

        var harness = Path.Combine(AppContext.BaseDirectory, "bench.dll");
        await using var run = ManagedProcess.Start("harness", ["dotnet", harness, "run", "--root", root.Path, "--only", "fake", "--workload", "persistent",
            "--connections", "5", "--duration", "0.2", "--rate", "0", "--repeats", "1", "--warmups", "0", "--warmup-cap", "0", "--no-build",
            "--server-cpus", serverCpus, "--client-cpus", clientCpus, "--results", root.File("results")], root.Path);

        // Wait until the server, both grandchildren and the client (under GNU time) are all running.
        var waited = Stopwatch.StartNew();
        string[] roles = [$"{marker}_server.py", $"{marker}-grandchild", $"{marker}-own-session", $"{marker}_client.py"];
        while (!roles.All(role => Live.Marked(marker).Any(pid => Live.CommandLine(pid).Contains(role))))
        {
            Assert.True(waited.Elapsed < Processes.Patience, $"the suite never got as far as the client; the harness said: {run.StderrTail}");
            Assert.False(run.HasExited, $"the harness ended early: {run.StderrTail}");
            await Task.Delay(50);
        }
        var marked = Live.Marked(marker);
        var server = marked.Single(pid => Live.CommandLine(pid).Contains("_server.py"));
        var client = marked.Single(pid => Live.Stat(pid)?.Parent == run.Pid && Live.CommandLine(pid).Contains("_client.py"));
        var reaper = Live.Children(run.Pid).Single(pid => Live.CommandLine(pid).Contains("bench-reaper"));
        // Each started program leads its own group, apart from the harness's.
        Assert.Equal(server, Live.Stat(server)!.Value.Group);
        Assert.Equal(client, Live.Stat(client)!.Value.Group);
        Assert.NotEqual(Live.Stat(run.Pid)!.Value.Group, Live.Stat(server)!.Value.Group);
        Assert.Equal(serverCpus, Live.CpusAllowed(server));
        Assert.Equal(clientCpus, Live.CpusAllowed(client));
        var groups = marked.Select(pid => Live.Stat(pid)?.Group).OfType<int>().ToHashSet();

        Process.GetProcessById(run.Pid).Kill(); // SIGKILL: the harness runs no code of its own after this

        var left = new List<string>();
        var watch = Stopwatch.StartNew();
        do
        {
            left.Clear();
            left.AddRange(Live.Marked(marker).Select(pid => $"{pid} (marked): {Live.CommandLine(pid)}"));
            left.AddRange(Live.All().Where(pid => Live.Stat(pid) is { } s && groups.Contains(s.Group)).Select(pid => $"{pid} (in group {Live.Stat(pid)?.Group}): {Live.CommandLine(pid)}"));
            left.AddRange(Live.Marked(marker).Where(pid => Live.CpusAllowed(pid) is { } c && (c == serverCpus || c == clientCpus))
                .Select(pid => $"{pid} (pinned to {Live.CpusAllowed(pid)}): {Live.CommandLine(pid)}"));
            if (Live.IsAlive(reaper)) left.Add($"{reaper}: the reaper itself");
            if (left.Count == 0) break;
            await Task.Delay(50);
        } while (watch.Elapsed < Bounded);
        Assert.True(left.Count == 0, $"still running {watch.Elapsed.TotalSeconds:F1} s after kill -9 of the harness:\n{string.Join('\n', left.Distinct())}");
        await run.Exited.WaitAsync(Bounded);
    }

    /// <summary>
    /// The reaper on its own, told by hand: at end of input it kills a registered family (with a
    /// grandchild in a session of its own), and spares a process whose pid is registered under
    /// another start time (a pid the kernel gave out again) and a group that was unregistered.
    /// </summary>
    [Fact]
    public async Task the_reaper_kills_registered_families_and_spares_a_reused_pid_and_a_released_group()
    {
        using var dir = new TempDir();
        var marker = $"marker{Guid.NewGuid():N}";
        await using var cleanup = new KillMarked(marker);
        const string sleeper = "import time; time.sleep(300)";
        await using var family = ManagedProcess.Start("family", ["python3", "-c", $$"""
            import subprocess, sys, time
            a = subprocess.Popen([sys.executable, "-c", "{{sleeper}}", sys.argv[1]])
            b = subprocess.Popen([sys.executable, "-c", "{{sleeper}}", sys.argv[1]], start_new_session=True)
            print(f"GRANDCHILDREN {a.pid} {b.pid}", flush=True)
            time.sleep(300)
            """, marker], dir.Path);
        var line = await family.WaitForLineAsync(l => l.StartsWith("GRANDCHILDREN ", StringComparison.Ordinal), Processes.Patience, CancellationToken.None);
        var grandchildren = line.Split(' ').Skip(1).Select(int.Parse).ToList();
        await using var stranger = ManagedProcess.Start("stranger", ["python3", "-c", $"print('UP', flush=True); {sleeper}", marker], dir.Path);
        await using var released = ManagedProcess.Start("released", ["python3", "-c", $"print('UP', flush=True); {sleeper}", marker], dir.Path);
        await stranger.WaitForLineAsync(l => l == "UP", Processes.Patience, CancellationToken.None);
        await released.WaitForLineAsync(l => l == "UP", Processes.Patience, CancellationToken.None);

        var start = new ProcessStartInfo("bash") { RedirectStandardInput = true, UseShellExecute = false };
        foreach (var arg in new[] { "-c", "eval \"$BENCH_REAPER_SCRIPT\"", "bench-reaper-under-test" }) start.ArgumentList.Add(arg);
        start.Environment["BENCH_REAPER_SCRIPT"] = ProcessGroups.ReaperScript;
        using var reaper = Process.Start(start)!;
        reaper.StandardInput.WriteLine($"+{family.Pid} {Live.Stat(family.Pid)!.Value.StartTime}");
        reaper.StandardInput.WriteLine($"+{stranger.Pid} {Live.Stat(stranger.Pid)!.Value.StartTime + 1}");
        reaper.StandardInput.WriteLine($"+{released.Pid} {Live.Stat(released.Pid)!.Value.StartTime}");
        reaper.StandardInput.WriteLine($"-{released.Pid}");
        reaper.StandardInput.WriteLine("not a registration");
        reaper.StandardInput.Close();
        await reaper.WaitForExitAsync().WaitAsync(Bounded);

        await family.Exited.WaitAsync(Bounded);
        // SIGKILL is sent, not done, when kill returns: a loaded machine may run the dying process a moment later.
        var waited = Stopwatch.StartNew();
        while (grandchildren.Any(Live.IsAlive) && waited.Elapsed < Bounded) await Task.Delay(50);
        Assert.All(grandchildren, g => Assert.False(Live.IsAlive(g), $"grandchild {g} survived the reaper"));
        Assert.True(Live.IsAlive(stranger.Pid), "the reaper killed a process whose pid was registered under another start time");
        Assert.True(Live.IsAlive(released.Pid), "the reaper killed an unregistered group");
    }

    private static async Task<int> GrandchildAsync(ManagedProcess child)
    {
        var line = await child.WaitForLineAsync(l => l.StartsWith("GRANDCHILD ", StringComparison.Ordinal), Processes.Patience, CancellationToken.None);
        return int.Parse(line.Split(' ')[1]);
    }
}

/// <summary>After a test, whatever it started that still runs (a failed test's leftovers), found by its marker, is killed.</summary>
internal sealed class KillMarked(string marker) : IAsyncDisposable
{
    public ValueTask DisposeAsync()
    {
        foreach (var pid in Live.Marked(marker))
            try { Process.GetProcessById(pid).Kill(); }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception) { }
        return ValueTask.CompletedTask;
    }
}

/// <summary>Live processes as /proc shows them; zombies count as gone.</summary>
internal static class Live
{
    public static IEnumerable<int> All() =>
        Directory.EnumerateDirectories("/proc").Select(Path.GetFileName).Where(d => int.TryParse(d, out _)).Select(int.Parse!).Where(IsAlive);

    public static bool IsAlive(int pid) => ProcFs.Stat(pid) is { State: not ('Z' or 'X') };

    public static ProcFs.ProcEntry? Stat(int pid) => ProcFs.Stat(pid);

    public static string CommandLine(int pid)
    {
        try { return File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ').Trim(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return ""; }
    }

    /// <summary>Live processes whose command line holds the marker.</summary>
    public static List<int> Marked(string marker) => All().Where(pid => CommandLine(pid).Contains(marker)).ToList();

    public static IEnumerable<int> Children(int parent) => All().Where(pid => Stat(pid)?.Parent == parent);

    /// <summary>The CPUs a process may run on (Cpus_allowed_list), or null once it is gone.</summary>
    public static string? CpusAllowed(int pid)
    {
        try
        {
            return File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("Cpus_allowed_list:", StringComparison.Ordinal))?
                ["Cpus_allowed_list:".Length..].Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }
}
