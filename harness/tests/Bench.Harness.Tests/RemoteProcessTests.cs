using System.Diagnostics;
using Bench.Harness.Remote;

namespace Bench.Harness.Tests;

/// <summary>
/// Programs on a test-bed host under the watchdog: pinned, in a group of their own, and gone from
/// the host however their controller ends: stopped, killed, or its ssh client killed with SIGKILL.
/// </summary>
[Collection("testbed")]
public class RemoteProcessTests(TestBed bed)
{
    private RemoteHost Client => bed.Hosts.Clients[0];
    private Ssh Ssh => new(bed.Hosts.SshConfig);

    /// <summary>A program that starts a worker of its own and waits: both must go.</summary>
    private static readonly string[] Sleeper = ["sh", "-c", "sleep 300 & echo READY; taskset -pc $$; wait"];

    [TestBedFact]
    public async Task a_remote_program_runs_pinned_in_a_group_of_its_own_and_stopping_it_leaves_nothing_on_the_host()
    {
        await using var p = RemoteProcess.Start(Ssh, Client, "sleeper", Sleeper, "/", Client.Cpus);
        await p.WaitForLineAsync(l => l == "READY", TimeSpan.FromSeconds(30), CancellationToken.None);
        var affinity = await p.WaitForLineAsync(l => l.Contains("affinity"), TimeSpan.FromSeconds(10), CancellationToken.None);
        Assert.EndsWith($": {Client.Cpus}", affinity);
        var pid = await p.RemotePid;
        Assert.True(pid > 0);
        Assert.NotEmpty(TestBed.ProcessesInNamespaces());
        Assert.True(await p.StopAsync(TimeSpan.FromSeconds(10)));
        await AssertHostsEmptyWithin(TimeSpan.FromSeconds(5));
    }

    [TestBedFact]
    public async Task the_local_ssh_client_killed_with_sigkill_takes_the_remote_group_with_it()
    {
        await using var p = RemoteProcess.Start(Ssh, Client, "sleeper", Sleeper, "/", Client.Cpus);
        await p.WaitForLineAsync(l => l == "READY", TimeSpan.FromSeconds(30), CancellationToken.None);
        Assert.NotEmpty(TestBed.ProcessesInNamespaces());
        // What the harness's reaper does to the ssh client when the harness itself is killed with SIGKILL.
        Process.GetProcessById(p.LocalPid).Kill();
        await AssertHostsEmptyWithin(TimeSpan.FromSeconds(5));
    }

    [TestBedFact]
    public async Task programs_held_at_the_barrier_start_only_on_go_and_together()
    {
        var hosts = bed.Hosts.Clients;
        var started = hosts.Select(h => RemoteProcess.Start(Ssh, h, $"clock {h}", ["date", "+%s%N"], "/", h.Cpus, atBarrier: true)).ToList();
        try
        {
            await Task.WhenAll(started.Select(p => p.AtBarrier)).WaitAsync(TimeSpan.FromSeconds(30));
            await Task.Delay(200);
            Assert.All(started, p => Assert.Empty(p.StdoutLines)); // held: nothing ran yet
            var go = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            foreach (var p in started) p.Go();
            var exits = await Task.WhenAll(started.Select(p => p.Exited)).WaitAsync(TimeSpan.FromSeconds(30));
            Assert.All(exits, e => Assert.Equal(0, e));
            var clocks = started.Select(p => long.Parse(p.StdoutLines.Single()) / 1_000_000).ToList();
            Assert.All(clocks, c => Assert.InRange(c, go - 50, go + 5_000));
        }
        finally { foreach (var p in started) await p.DisposeAsync(); }
        await AssertHostsEmptyWithin(TimeSpan.FromSeconds(5));
    }

    internal static async Task AssertHostsEmptyWithin(TimeSpan patience)
    {
        var waited = Stopwatch.StartNew();
        IReadOnlyList<string> left;
        while ((left = TestBed.ProcessesInNamespaces()).Count > 0 && waited.Elapsed < patience) await Task.Delay(100);
        Assert.True(left.Count == 0, $"left running on the test bed after {patience.TotalSeconds} s: {string.Join("; ", left)}");
    }
}
