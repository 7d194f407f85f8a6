using System.Globalization;
using Bench.Harness.Catalog;
using Bench.Harness.LoadTools;
using Bench.Harness.Machine;
using Bench.Harness.Processes;
using Bench.Harness.Results;
using Bench.Harness.Workloads;

namespace Bench.Harness.Run;

/// <summary>
/// Runs one experiment: start the server pinned, wait for its ready line, verify it (as its
/// workload says), warm it up, run the load generator once per repeat, record each run as a CSV
/// row the moment it ends, stop the server. Every load generator speaks the contract, so
/// there is one way to run them all.
/// </summary>
public sealed class ExperimentRunner(RunSettings settings, ResultsCsv csv, string runId, string scratch, Progress progress)
{
    /// <summary>Runs and records every repeat; returns the rows written.</summary>
    public async Task<IReadOnlyList<RunRecord>> RunAsync(Experiment e, CancellationToken cancel)
    {
        var rows = new List<RunRecord>();
        void Record(RunRecord row)
        {
            csv.Append(row);
            rows.Add(row);
        }
        void FailAll(string status, string error) => rows.Add(Fail(e, status, error));

        if (PlanValidator.Limit(e) is { } limit) { FailAll(RunStatus.Skipped, limit); return rows; }

        ServerProcess server;
        try { server = await ServerProcess.StartAsync(e.Server, ServerProcess.Listen(e.Transport, e.Server.Name, scratch), settings.ServerCpus, cancel, settings.Ready); }
        catch (ServerStartException x) { FailAll(RunStatus.ServerFailed, x.Message); return rows; }
        await using var _ = server;
        var bursts = new BurstClock();

        if (await e.Workload.VerifyAsync(e, server, tiny => RunClientAsync(tiny, server, bursts, repeat: 0, cancel), cancel) is { } wrong)
        {
            FailAll(RunStatus.VerifyFailed, wrong);
            return rows;
        }

        var warmup = await WarmUpAsync(e, server, bursts, cancel);
        if (warmup.Fatal is { } dead) { Record(dead); progress.Step($"{e}: warm-up: {dead.Error}"); return rows; }
        if (warmup.Steady == false)
            progress.Note($"{e}: the rate was not steady after {warmup.Seconds:F0} s of warm-up; measuring anyway (warmup_steady=false in the rows)");

        for (var r = 1; r <= settings.Repeats; r++)
        {
            cancel.ThrowIfCancellationRequested();
            var row = await RunClientAsync(e, server, bursts, r, cancel);
            (row.WarmupS, row.WarmupSteady) = (Math.Round(warmup.Seconds, 1), warmup.Steady);
            Record(row);
            progress.Step($"{e} repeat {r}/{settings.Repeats}: {Describe(row)}");
            if (row.Status == RunStatus.ServerFailed) break;
        }

        if (!server.HasExited && !await server.StopAsync())
            progress.Note($"{e.Server.Name} did not exit within {ServerProcess.StopGrace.TotalSeconds:F0} s of SIGTERM and was killed (the contract asks for a prompt exit)");
        return rows;
    }

    /// <summary>Records the one row of an experiment that could not run at all (a build, the server, the check, a limit).</summary>
    public RunRecord Fail(Experiment e, string status, string error)
    {
        var row = NewRow(e, 0);
        (row.Status, row.Error) = (status, error);
        csv.Append(row);
        progress.Step($"{e}: {status}: {error}");
        return row;
    }

    /// <summary>When the last burst against one server ended (see EphemeralPorts.BurstSpacing).</summary>
    private sealed class BurstClock
    {
        public DateTime LastEnded { get; set; }
    }

    /// <summary>
    /// Warms the server up before anything is recorded. Timed closed-loop workloads run 1 s
    /// passes until three in a row agree within 5% (.NET's tiered JIT on one core needs 20-30 s
    /// of load to settle), up to a cap; bursts and open-loop runs get a fixed number of passes.
    /// </summary>
    private async Task<(double Seconds, bool? Steady, RunRecord? Fatal)> WarmUpAsync(Experiment e, ServerProcess server, BurstClock bursts, CancellationToken cancel)
    {
        var started = DateTime.UtcNow;
        double Elapsed() => (DateTime.UtcNow - started).TotalSeconds;
        if (!e.Workload.WarmsUpToSteadyRate(e) || settings.WarmupCap <= TimeSpan.Zero)
        {
            for (var w = 0; w < settings.Warmups; w++)
                if (await RunClientAsync(e, server, bursts, repeat: 0, cancel) is { Status: RunStatus.ServerFailed } dead) return (Elapsed(), null, dead);
            return (Elapsed(), null, null);
        }
        var window = e with { DurationS = 1 };
        var rates = new List<double>();
        while (Elapsed() < settings.WarmupCap.TotalSeconds)
        {
            var pass = await RunClientAsync(window, server, bursts, repeat: 0, cancel);
            if (pass.Status == RunStatus.ServerFailed) return (Elapsed(), null, pass);
            rates.Add(pass.ReqPerS ?? 0);
            var last = rates.TakeLast(3).ToList();
            if (last.Count == 3 && last.Min() > 0 && last.Max() / last.Min() <= 1.05) return (Elapsed(), true, null);
        }
        return (Elapsed(), false, null);
    }

    private static string Describe(RunRecord row) => row.Status switch
    {
        RunStatus.Ok or RunStatus.Failed => string.Create(CultureInfo.InvariantCulture,
            $"{row.Status}, {row.Ok} ok, {row.Failed} failed, {row.WallMs:F0} ms, {row.ReqPerS:F0} req/s, p99 {Figures.P99.Print(row.LatP99Us)} us, {row.Bound}-bound"),
        _ => $"{row.Status}: {row.Error}",
    };

    /// <summary>
    /// One run of the load generator against the server, recorded as a row: the contract's
    /// arguments in, the RESULT line and samples file out, both sides' CPU and memory, the
    /// cores' busy time and the kernel's TCP counters around it.
    /// </summary>
    private async Task<RunRecord> RunClientAsync(Experiment e, ServerProcess server, BurstClock bursts, int repeat, CancellationToken cancel)
    {
        if (e.Workload.OneConnectionPerRequest && e.Transport == Transports.Tcp)
            await EphemeralPorts.WaitForRoomAsync(e.Connections, bursts.LastEnded, progress, cancel);
        var row = NewRow(e, repeat);
        var samplesPath = Path.Combine(scratch, $"samples-{Guid.NewGuid():N}.bin");
        var args = ContractArguments.Client([.. e.Load.Command, .. ContractArguments.Address(server.Ready)], e.Workload,
            e.Connections, e.InFlight, e.Payload, e.Rate, e.DurationS, samplesPath, settings.ConnectionTimeout);

        row.TimeWaitBefore = TcpCounters.CountTimeWait();
        var countersBefore = TcpCounters.Read();
        var serverBefore = ProcFs.ReadTree(server.Pid) ?? ProcessUsage.None;
        var cpuBefore = ProcFs.CpuTimes();

        // GNU time waits for the client and reports its rusage (children included): exact even
        // for a client that exits the instant it has printed RESULT, where /proc would be gone.
        var usagePath = Path.Combine(scratch, $"usage-{Guid.NewGuid():N}.txt");
        ManagedProcess client;
        ProcessUsage? loadUsage = null;
        try
        {
            client = ManagedProcess.Start($"client {e.Load.Name}", [.. ProcessUsage.TimeCommand(usagePath), .. args], e.Load.Folder, settings.ClientCpus);
        }
        catch (ProcessStartException x) { (row.Status, row.Error) = (RunStatus.ClientFailed, x.Message); return row; }
        await using (client)
        {
            try
            {
                var line = await client.WaitForLineAsync(ResultLine.Matches, settings.ClientDeadline(e), cancel);
                var exit = await client.Exited.WaitAsync(TimeSpan.FromSeconds(30), cancel);
                var result = ResultLine.Parse(line);
                Fill(row, e.Workload, result, exit, client.StderrTail);
                loadUsage = result.LoadUsage;
            }
            catch (TimeoutException)
            {
                await client.KillAsync();
                (row.Status, row.Error) = (RunStatus.Timeout, $"the client did not finish within {settings.ClientDeadline(e).TotalSeconds:F0} s and was killed with its process tree");
            }
            catch (ProcessExitedException x) { (row.Status, row.Error) = (RunStatus.ClientFailed, $"{x.Message} (no RESULT line)"); }
            catch (FormatException x) { (row.Status, row.Error) = (RunStatus.ClientFailed, x.Message); }
        }
        if (e.Workload.OneConnectionPerRequest) bursts.LastEnded = DateTime.UtcNow;
        // An adapter in front of an independent tool reports the tool's own usage, without the adapter's.
        var clientUsage = loadUsage ?? ProcessUsage.ReadTimeOutput(usagePath);
        File.Delete(usagePath);

        var cpuAfter = ProcFs.CpuTimes();
        row.Absorb(TcpCounters.Read() - countersBefore);
        if (server.HasExited)
            (row.Status, row.Error) = (RunStatus.ServerFailed, $"the server died during the run: {new ProcessExitedException(server.Process).Message}");
        else if (ProcFs.ReadTree(server.Pid) is { } serverAfter)
        {
            row.ServerUserMs = serverAfter.UserMs - serverBefore.UserMs;
            row.ServerSysMs = serverAfter.SystemMs - serverBefore.SystemMs;
            row.ServerPeakRssKb = serverAfter.PeakRssKb;
        }
        if (clientUsage is { } c) (row.ClientUserMs, row.ClientSysMs, row.ClientPeakRssKb) = (c.UserMs, c.SystemMs, c.PeakRssKb);
        FillCpu(row, cpuBefore, cpuAfter);
        FillLatency(row, samplesPath);
        if (!settings.KeepSamples) File.Delete(samplesPath);
        return row;
    }

    private RunRecord NewRow(Experiment e, int repeat) => new()
    {
        RunId = runId,
        Timestamp = DateTimeOffset.UtcNow,
        Server = e.Server.Name,
        Client = e.Load.Client?.Name ?? "",
        Transport = e.Transport,
        Workload = e.Workload.Name,
        Connections = e.Connections,
        InFlight = e.InFlight,
        PayloadBytes = e.Payload,
        Rate = e.Rate,
        DurationS = e.Workload.IsTimed ? e.DurationS : 0,
        Repeat = repeat,
        ServerCpus = settings.ServerCpus,
        ClientCpus = settings.ClientCpus,
        LoadTool = e.Load.Program,
    };

    private static void Fill(RunRecord row, Workload workload, ResultLine result, int exitCode, string stderr)
    {
        row.Ok = result.Ok;
        row.Failed = result.Failed;
        row.WallMs = result.WallNs / 1e6;
        var seconds = result.WallNs / 1e9;
        if (seconds > 0)
        {
            row.ReqPerS = result.Ok / seconds;
            if (workload.OneConnectionPerRequest) row.ConnPerS = result.Ok / seconds;
        }
        (row.ConnMinReq, row.ConnMaxReq) = (result.ConnMin, result.ConnMax);
        if (result.Failed > 0 || exitCode != 0)
            (row.Status, row.Error) = (RunStatus.Failed, $"{result.Failed} failed requests, exit status {exitCode}; {stderr}");
        else
            row.Status = RunStatus.Ok;
    }

    private void FillCpu(RunRecord row, IReadOnlyDictionary<int, (long, long)> before, IReadOnlyDictionary<int, (long, long)> after)
    {
        // Pinned to one core each, so the first CPU of each set is the one that did the work.
        var serverCpu = FirstCpu(settings.ServerCpus);
        var clientCpu = FirstCpu(settings.ClientCpus);
        row.ServerCoreBusy = Math.Round(ProcFs.BusyFraction(before, after, serverCpu), 3);
        row.ClientCoreBusy = Math.Round(ProcFs.BusyFraction(before, after, clientCpu), 3);
        row.Bound = serverCpu == clientCpu ? "shared-core" : Bottleneck.Classify(row.ServerCoreBusy.Value, row.ClientCoreBusy.Value);
        row.ServerCpuUsPerReq = PerRequestUs(row.ServerUserMs + row.ServerSysMs, row.Ok);
        row.ClientCpuUsPerReq = PerRequestUs(row.ClientUserMs + row.ClientSysMs, row.Ok);
    }

    /// <summary>
    /// CPU microseconds per request, or nothing when the run used under 100 ms of CPU: the kernel
    /// counts CPU time in 10 ms ticks, so a shorter total would be more rounding than figure.
    /// </summary>
    private static double? PerRequestUs(double? cpuMs, long ok) =>
        cpuMs is >= 100 && ok > 0 ? Math.Round(cpuMs.Value * 1000 / ok, 3) : null;

    private static int FirstCpu(string cpus) => int.Parse(cpus.Split(',', '-')[0], CultureInfo.InvariantCulture);

    private static void FillLatency(RunRecord row, string samplesPath)
    {
        if (!File.Exists(samplesPath)) return;
        try
        {
            var samples = LatencySamples.ReadFile(samplesPath);
            if (samples.Count == 0) return; // a client that measures no latency (e.g. testpmd) writes none
            if (samples.Count != row.Ok && row.Status == RunStatus.Ok)
                (row.Status, row.Error) = (RunStatus.ClientFailed, $"the samples file holds {samples.Count} samples but RESULT says ok={row.Ok}");
            row.LatP50Us = samples.PercentileUs(50);
            row.LatP90Us = samples.PercentileUs(90);
            row.LatP99Us = samples.PercentileUs(99);
            row.LatP999Us = samples.PercentileUs(99.9);
            row.LatMaxUs = samples.MaxUs;
            row.LatMeanUs = samples.MeanUs;
        }
        catch (InvalidDataException x) { (row.Status, row.Error) = (RunStatus.ClientFailed, x.Message); }
    }
}
