using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Bench.Echo.Tests;

/// <summary>Alone: the whole-process CPU of a client is read as the growth of this process's reaped children's CPU.</summary>
[CollectionDefinition(nameof(WarmupTests), DisableParallelization = true)]
public sealed class WarmupCollection;

/// <summary>
/// The client with --warmup, run as the harness runs it: a real process against the real server on
/// loopback. What it pins: MEASURING comes before RESULT, RESULT carries the CPU keys in the contract's
/// order, that CPU is some but not all of the process's, and nothing of the warm-up is in the counts
/// or the samples.
/// </summary>
[Collection(nameof(WarmupTests))]
public sealed class WarmupTests
{
    private static readonly string[] ResultKeys = ["ok", "failed", "wall_ns", "bytes", "conn_min", "conn_max", "cpu_user_us", "cpu_sys_us"];
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Closed_loop_warmup_is_left_out_of_the_result_and_the_samples()
    {
        var run = await RunClientAsync("--connections", "20", "--workload", "persistent", "--duration", "0.5", "--warmup", "0.5");
        AssertMeasuredWindowOnly(run);
        Assert.True(run.Get("conn_min") >= 1);
    }

    [Fact]
    public async Task Open_loop_measures_exactly_the_window_schedule_after_the_warmup()
    {
        var run = await RunClientAsync("--connections", "20", "--workload", "persistent", "--duration", "0.5", "--rate", "2000", "--warmup", "0.5");
        AssertMeasuredWindowOnly(run);
        // 2000/s for 0.5 s is 1000 slots from the window's own start; the warm-up's 1000 are not in.
        Assert.Equal(1000, run.Get("ok"));
    }

    [Fact]
    public async Task Burst_warmup_is_left_out_of_the_result_and_the_samples()
    {
        var run = await RunClientAsync("--connections", "200", "--workload", "burst", "--warmup", "1");
        AssertMeasuredWindowOnly(run);
        Assert.Equal(200, run.Get("ok"));
    }

    private static void AssertMeasuredWindowOnly(ClientRun run)
    {
        Assert.True(run.Exit == 0, $"exit {run.Exit}\n{string.Join('\n', run.Stdout)}\n{run.Stderr}");
        var measuring = run.Stdout.IndexOf("MEASURING");
        var result = run.Stdout.FindIndex(l => l.StartsWith("RESULT ", StringComparison.Ordinal));
        Assert.True(measuring >= 0 && measuring < result, $"MEASURING must come before RESULT:\n{string.Join('\n', run.Stdout)}");
        Assert.Single(run.Stdout, l => l == "MEASURING");
        Assert.Equal(ResultKeys, run.Result.Select(p => p.Key));
        var windowUs = run.Get("cpu_user_us") + run.Get("cpu_sys_us");
        Assert.True(windowUs > 0, "no CPU in the measured window");
        Assert.True(windowUs < run.ProcessCpuUs, $"window {windowUs} us, whole process {run.ProcessCpuUs} us");
        Assert.Equal(0, run.Get("failed"));
        Assert.Equal(run.Get("ok"), run.Samples); // one sample per measured request, none from the warm-up
    }

    /// <param name="Result">the RESULT line's pairs, in its order</param>
    /// <param name="ProcessCpuUs">the whole client process's CPU, user plus system</param>
    /// <param name="Samples">samples in the samples file</param>
    private sealed record ClientRun(int Exit, List<string> Stdout, string Stderr, List<(string Key, long Value)> Result, long ProcessCpuUs, long Samples)
    {
        public long Get(string key) => Result.Single(p => p.Key == key).Value;
    }

    private static async Task<ClientRun> RunClientAsync(params string[] args)
    {
        using var server = Start("server", "--port", "0");
        try
        {
            var ready = await server.StandardOutput.ReadLineAsync().WaitAsync(Bound);
            Assert.True(ready is not null && ready.StartsWith("READY tcp 127.0.0.1:"), $"no ready line: '{ready}'");
            var port = ready["READY tcp 127.0.0.1:".Length..];
            var samples = Path.Combine(Path.GetTempPath(), $"echo-warmup-{Guid.NewGuid():N}.bin");
            try
            {
                var before = ChildrenCpuUs();
                using var client = Start(["client", "--port", port, "--samples", samples, .. args]);
                var stdout = client.StandardOutput.ReadToEndAsync();
                var stderr = client.StandardError.ReadToEndAsync();
                using var deadline = new CancellationTokenSource(Bound);
                await client.WaitForExitAsync(deadline.Token);
                var processCpuUs = ChildrenCpuUs() - before; // the client was reaped: its CPU is in
                var lines = (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();
                var result = lines.Single(l => l.StartsWith("RESULT ", StringComparison.Ordinal))["RESULT ".Length..]
                    .Split(' ').Select(p => p.Split('=')).Select(kv => (kv[0], long.Parse(kv[1]))).ToList();
                return new(client.ExitCode, lines, await stderr, result, processCpuUs, new FileInfo(samples).Length / 8);
            }
            finally { File.Delete(samples); }
        }
        finally { server.Kill(); }
    }

    private static Process Start(params string[] args)
    {
        var info = new ProcessStartInfo(ArgumentTests.Binary) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) info.ArgumentList.Add(a);
        return Process.Start(info)!;
    }

    private const int RUSAGE_CHILDREN = -1;

    /// <summary>User plus system CPU of every child this process has reaped, in microseconds.</summary>
    private static long ChildrenCpuUs()
    {
        Assert.Equal(0, getrusage(RUSAGE_CHILDREN, out var usage));
        return usage.UserSeconds * 1_000_000 + usage.UserMicroseconds + usage.SystemSeconds * 1_000_000 + usage.SystemMicroseconds;
    }

    /// <summary>struct rusage on 64-bit Linux: two timevals, then fourteen longs not read here (144 bytes).</summary>
    [StructLayout(LayoutKind.Sequential, Size = 144)]
    private struct RUsage
    {
        public long UserSeconds, UserMicroseconds, SystemSeconds, SystemMicroseconds;
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int getrusage(int who, out RUsage usage);
}
