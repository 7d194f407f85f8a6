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
/// <param name="label">Put before each progress line (e.g. "A: " for one side of an A/B run).</param>
public sealed class ExperimentRunner(RunSettings settings, ResultsCsv csv, string runId, string scratch, Progress progress, string label = "") : IExperimentRunner
{
    /// <summary>Runs and records every repeat; returns the rows written.</summary>
    public async Task<IReadOnlyList<RunRecord>> RunAsync(Experiment e, CancellationToken cancel)
    {
        var (session, rows) = await PrepareAsync(e, cancel);
        if (session is null) return rows;
        await using (session)
        {
            for (var r = 1; r <= settings.Repeats; r++)
            {
                cancel.ThrowIfCancellationRequested();
                var row = await MeasureAsync(session, r, cancel);
                rows.Add(row);
                if (row.Status == RunStatus.ServerFailed) break;
            }
            await StopAsync(session);
        }
        return rows;
    }

    /// <summary>
    /// Runs experiments that differ only in what loads the server (its own client, h2load, the
    /// reference client), or with --pair-servers also in which server it is, as one cell, so
    /// their ratios are paired: each gets its own server, verified
    /// and warmed up as in <see cref="RunAsync"/>, then their repeats take turns, forward in odd
    /// rounds and backward in even ones, each idle server paused with SIGSTOP so it takes no CPU.
    /// Drift of the machine over the minutes a cell takes (another tenant's steal) then falls on
    /// every load alike instead of on whichever ran last.
    /// </summary>
    public async Task<IReadOnlyList<RunRecord>> RunCellAsync(IReadOnlyList<Experiment> cell, CancellationToken cancel)
    {
        if (cell.Count == 1) return await RunAsync(cell[0], cancel);
        var rows = new List<RunRecord>();
        var sessions = new List<ServerSession>();
        try
        {
            foreach (var e in cell)
            {
                var (session, failed) = await PrepareAsync(e, cancel);
                rows.AddRange(failed);
                if (session is null) continue;
                session.Server.Process.Pause();
                sessions.Add(session);
            }
            for (var r = 1; r <= settings.Repeats; r++)
                foreach (var session in r % 2 == 1 ? [.. sessions] : Enumerable.Reverse(sessions).ToList())
                {
                    cancel.ThrowIfCancellationRequested();
                    session.Server.Process.Resume();
                    var row = await MeasureAsync(session, r, cancel);
                    rows.Add(row);
                    session.Server.Process.Pause();
                    if (row.Status != RunStatus.ServerFailed) continue;
                    sessions.Remove(session);
                    await session.DisposeAsync();
                }
            foreach (var session in sessions)
            {
                session.Server.Process.Resume();
                await StopAsync(session);
            }
        }
        finally
        {
            foreach (var session in sessions)
            {
                session.Server.Process.Resume();
                await session.DisposeAsync();
            }
        }
        return rows;
    }

    /// <summary>
    /// Starts the experiment's server pinned, waits for its ready line, verifies it (as its
    /// workload says) and warms it up. Null with the rows that say why when it cannot be
    /// measured (a limit of the machine, a server that did not start, failed the check or died
    /// warming up); every such row is already in the CSV.
    /// </summary>
    public async Task<(ServerSession? Session, List<RunRecord> Rows)> PrepareAsync(Experiment e, CancellationToken cancel)
    {
        if (PlanValidator.Limit(e) is { } limit) return (null, [Fail(e, RunStatus.Skipped, limit)]);

        ServerProcess server;
        try { server = await ServerProcess.StartAsync(e.Server, ServerProcess.Listen(e.Transport, e.Server.Name, scratch), settings.ServerCpus, cancel, settings.Ready); }
        catch (ServerStartException x) { return (null, [Fail(e, RunStatus.ServerFailed, x.Message)]); }
        var session = new ServerSession(e, server);
        try
        {
            if (await e.Workload.VerifyAsync(e, server, tiny => RunClientAsync(tiny, session, repeat: 0, cancel), cancel) is { } wrong)
            {
                await session.DisposeAsync();
                return (null, [Fail(e, RunStatus.VerifyFailed, wrong)]);
            }
            var warmup = await WarmUpAsync(session, cancel);
            if (warmup.Fatal is { } dead)
            {
                await session.DisposeAsync();
                csv.Append(dead);
                progress.Step($"{label}{e}: warm-up: {dead.Error}");
                return (null, [dead]);
            }
            if (warmup.Steady == false)
                progress.Note($"{label}{e}: the rate was not steady after {warmup.Seconds:F0} s of warm-up; measuring anyway (warmup_steady=false in the rows)");
            session.Warmup = (Math.Round(warmup.Seconds, 1), warmup.Steady);
            return (session, []);
        }
        catch
        {
            await session.DisposeAsync();
            throw;
        }
    }

    /// <summary>One measured repeat against a prepared server, recorded in the CSV the moment it ends.</summary>
    public async Task<RunRecord> MeasureAsync(ServerSession session, int repeat, CancellationToken cancel)
    {
        var link = CoreRoundTrip(session);
        var row = await RunClientAsync(session.Experiment, session, repeat, cancel);
        (row.WarmupS, row.WarmupSteady) = session.Warmup;
        row.CoreRoundTripNs = link;
        csv.Append(row);
        progress.Step($"{label}{session.Experiment} repeat {repeat}: {Describe(row)}");
        return row;
    }

    /// <summary>Stops a session's server; one that ignores SIGTERM is killed, and the suite says so.</summary>
    public async Task StopAsync(ServerSession session)
    {
        if (!session.Server.HasExited && !await session.Server.StopAsync())
            progress.Note($"{label}{session.Experiment.Server.Name} did not exit within {ServerProcess.StopGrace.TotalSeconds:F0} s of SIGTERM and was killed (the contract asks for a prompt exit)");
    }

    /// <summary>Records the one row of an experiment that could not run at all (a build, the server, the check, a limit).</summary>
    public RunRecord Fail(Experiment e, string status, string error)
    {
        var row = NewRow(e, 0);
        (row.Status, row.Error) = (status, error);
        csv.Append(row);
        progress.Step($"{label}{e}: {status}: {error}");
        return row;
    }

    /// <summary>A started, verified and warmed server of one experiment, ready for measured repeats.</summary>
    public sealed class ServerSession(Experiment experiment, ServerProcess server) : IAsyncDisposable
    {
        public Experiment Experiment { get; } = experiment;
        public ServerProcess Server { get; } = server;

        /// <summary>How long the warm-up took and whether the rate settled (null: fixed passes).</summary>
        public (double Seconds, bool? Steady) Warmup { get; internal set; }

        /// <summary>When the last burst against this server ended (see EphemeralPorts.BurstSpacing).</summary>
        internal DateTime LastBurstEnded { get; set; }

        public ValueTask DisposeAsync() => Server.DisposeAsync();
    }

    /// <summary>
    /// Warms the server up before anything is recorded. Timed closed-loop workloads run 1 s
    /// passes until three in a row agree within 5% (.NET's tiered JIT on one core needs 20-30 s
    /// of load to settle), up to a cap; bursts and open-loop runs get a fixed number of passes.
    /// </summary>
    private async Task<(double Seconds, bool? Steady, RunRecord? Fatal)> WarmUpAsync(ServerSession session, CancellationToken cancel)
    {
        var e = session.Experiment;
        var started = DateTime.UtcNow;
        double Elapsed() => (DateTime.UtcNow - started).TotalSeconds;
        if (!e.Workload.WarmsUpToSteadyRate(e) || settings.WarmupCap <= TimeSpan.Zero)
        {
            for (var w = 0; w < settings.Warmups; w++)
                if (await RunClientAsync(e, session, repeat: 0, cancel) is { Status: RunStatus.ServerFailed } dead) return (Elapsed(), null, dead);
            return (Elapsed(), null, null);
        }
        var window = e with { DurationS = 1 };
        var rates = new List<double>();
        while (Elapsed() < settings.WarmupCap.TotalSeconds)
        {
            var pass = await RunClientAsync(window, session, repeat: 0, cancel);
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
    private async Task<RunRecord> RunClientAsync(Experiment e, ServerSession session, int repeat, CancellationToken cancel)
    {
        var server = session.Server;
        if (e.Workload.OneConnectionPerRequest && e.Transport == Transports.Tcp)
            await EphemeralPorts.WaitForRoomAsync(e.Connections, session.LastBurstEnded, progress, cancel);
        var row = NewRow(e, repeat);
        var samplesPath = Path.Combine(scratch, $"samples-{Guid.NewGuid():N}.bin");
        // Only measured runs warm their client: a warm-up pass or the check is one already.
        var args = ContractArguments.Client([.. e.Load.Command, .. ContractArguments.Address(server.Ready)], e.Workload,
            e.Connections, e.InFlight, e.Payload, e.Rate, e.DurationS, samplesPath, settings.ConnectionTimeout,
            repeat > 0 ? settings.ClientWarmupS : 0);

        row.TimeWaitBefore = TcpCounters.CountTimeWait();
        var countersBefore = TcpCounters.Read();
        await using var syscalls = settings.CountSyscalls ? await SyscallCounter.AttachAsync(server.Pid, scratch) : null;
        var before = UsageSnapshot.Read(server.Pid);
        UsageSnapshot? windowStart = null, windowEnd = null;
        void OnLine(string line)
        {
            // Read the instant the line arrives: the edges of the window as the client drew them.
            if (MeasuringLine.Matches(line) && windowStart is null)
            {
                windowStart = UsageSnapshot.Read(server.Pid);
                syscalls?.Enable();
            }
            else if (ResultLine.Matches(line) && windowEnd is null)
            {
                syscalls?.Disable();
                windowEnd = UsageSnapshot.Read(server.Pid);
            }
        }

        // GNU time waits for the client and reports its rusage (children included): exact even
        // for a client that exits the instant it has printed RESULT, where /proc would be gone.
        var usagePath = Path.Combine(scratch, $"usage-{Guid.NewGuid():N}.txt");
        ManagedProcess client;
        ResultLine? result = null;
        try
        {
            client = ManagedProcess.Start($"client {e.Load.Name}", [.. ProcessUsage.TimeCommand(usagePath), .. args], e.Load.Folder, settings.ClientCpus,
                onStdout: OnLine);
        }
        catch (ProcessStartException x) { (row.Status, row.Error) = (RunStatus.ClientFailed, x.Message); return row; }
        await using (client)
        {
            try
            {
                var line = await client.WaitForLineAsync(ResultLine.Matches, settings.ClientDeadline(e), cancel);
                var exit = await client.Exited.WaitAsync(TimeSpan.FromSeconds(30), cancel);
                result = ResultLine.Parse(line);
                Fill(row, e.Workload, result, exit, client.StderrTail);
            }
            catch (TimeoutException)
            {
                await client.KillAsync();
                (row.Status, row.Error) = (RunStatus.Timeout, $"the client did not finish within {settings.ClientDeadline(e).TotalSeconds:F0} s and was killed with its process tree");
            }
            catch (ProcessExitedException x) { (row.Status, row.Error) = (RunStatus.ClientFailed, $"{x.Message} (no RESULT line)"); }
            catch (FormatException x) { (row.Status, row.Error) = (RunStatus.ClientFailed, x.Message); }
        }
        if (e.Workload.OneConnectionPerRequest) session.LastBurstEnded = DateTime.UtcNow;
        // An adapter in front of an independent tool reports the tool's own usage, without the adapter's.
        var clientUsage = result?.LoadUsage ?? ProcessUsage.ReadTimeOutput(usagePath);
        File.Delete(usagePath);

        var after = UsageSnapshot.Read(server.Pid);
        row.Absorb(TcpCounters.Read() - countersBefore);
        // The timed window when the client drew it and reported its own CPU over it; else the client's whole life.
        var timed = windowStart is not null && windowEnd is not null && result?.WindowUsage is not null;
        var (from, to) = timed ? (windowStart!, windowEnd!) : (before, after);
        row.CpuWindow = timed ? CpuWindows.Timed : CpuWindows.Process;
        if (server.HasExited)
            (row.Status, row.Error) = (RunStatus.ServerFailed, $"the server died during the run: {new ProcessExitedException(server.Process).Message}");
        else if (from.Server is { } serverFrom && to.Server is { } serverTo)
        {
            row.ServerUserMs = serverTo.UserMs - serverFrom.UserMs;
            row.ServerSysMs = serverTo.SystemMs - serverFrom.SystemMs;
            row.ServerPeakRssKb = (after.Server ?? serverTo).PeakRssKb;
            // Summed over live threads: one that ended inside the window takes its count with it, so a fall means unknown.
            row.ServerContextSwitches = to.Switches - from.Switches is >= 0 and var switches ? switches : null;
            // Counted over the timed window only: without one, perf was never switched on.
            if (syscalls is not null && timed) row.ServerSyscalls = await syscalls.StopAsync();
        }
        if (clientUsage is { } c) (row.ClientUserMs, row.ClientSysMs, row.ClientPeakRssKb) = (c.UserMs, c.SystemMs, c.PeakRssKb);
        if (timed) (row.ClientUserMs, row.ClientSysMs) = (result!.WindowUsage!.Value.UserMs, result.WindowUsage.Value.SystemMs);
        FillCpu(row, from.Cpus, to.Cpus);
        // Measured repeats keep their distribution; the check and warm-up passes are not recorded.
        FillLatency(row, samplesPath, repeat > 0 ? LatencyHistogram.LogPath(ResultSet, row) : null);
        // Kept in the result set (scratch goes at the end of the suite): the measured repeats' raw samples.
        if (settings.KeepSamples && repeat > 0 && File.Exists(samplesPath))
        {
            var kept = Path.Combine(ResultSet, LatencySamples.KeptFile(row));
            Directory.CreateDirectory(Path.GetDirectoryName(kept)!);
            File.Move(samplesPath, kept, overwrite: true);
        }
        else File.Delete(samplesPath);
        return row;
    }

    /// <summary>The server's CPU time and every core's busy time at one instant.</summary>
    private sealed record UsageSnapshot(ProcessUsage? Server, long? Switches, IReadOnlyDictionary<int, CpuTime> Cpus)
    {
        public static UsageSnapshot Read(int serverPid) => new(ProcFs.ReadTree(serverPid), ProcFs.ContextSwitches(serverPid), ProcFs.CpuTimes());
    }

    private RunRecord NewRow(Experiment e, int repeat) => NewRow(e, runId, repeat, settings.ServerCpus, settings.ClientCpus);

    /// <summary>A row of this experiment before anything is measured: what defines it, where it runs.</summary>
    internal static RunRecord NewRow(Experiment e, string runId, int repeat, string serverCpus, string clientCpus) => new()
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
        ServerCpus = serverCpus,
        ClientCpus = clientCpus,
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

    private void FillCpu(RunRecord row, IReadOnlyDictionary<int, CpuTime> before, IReadOnlyDictionary<int, CpuTime> after)
    {
        // Pinned to one core each, so the first CPU of each set is the one that did the work.
        var serverCpu = FirstCpu(settings.ServerCpus);
        var clientCpu = FirstCpu(settings.ClientCpus);
        row.ServerCoreBusy = Math.Round(ProcFs.BusyFraction(before, after, serverCpu), 3);
        row.ClientCoreBusy = Math.Round(ProcFs.BusyFraction(before, after, clientCpu), 3);
        row.ServerCoreSteal = Math.Round(ProcFs.StealFraction(before, after, serverCpu), 3);
        row.ClientCoreSteal = Math.Round(ProcFs.StealFraction(before, after, clientCpu), 3);
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

    /// <summary>
    /// A cache line's round trip between the server's core and the client's just before a run:
    /// where the hypervisor has put the two vCPUs, which can change between runs. Measured with
    /// the server stopped for those 20 ms, since a polling one would share the core with the probe.
    /// </summary>
    private double? CoreRoundTrip(ServerSession session)
    {
        session.Server.Process.Pause();
        try { return CoreLink.RoundTripNs(FirstCpu(settings.ServerCpus), FirstCpu(settings.ClientCpus), TimeSpan.FromMilliseconds(20)) is { } ns ? Math.Round(ns, 1) : null; }
        finally { session.Server.Process.Resume(); }
    }

    private static int FirstCpu(string cpus) => int.Parse(cpus.Split(',', '-')[0], CultureInfo.InvariantCulture);

    /// <summary>The result set's folder: where runs.csv is.</summary>
    private string ResultSet => Path.GetDirectoryName(Path.GetFullPath(csv.Path))!;

    /// <summary>
    /// The latency columns, from the run's samples recorded into a histogram; the histogram is
    /// written as an HdrHistogram log at <paramref name="logPath"/> when given.
    /// </summary>
    private static void FillLatency(RunRecord row, string samplesPath, string? logPath)
    {
        if (!File.Exists(samplesPath)) return;
        try
        {
            var samples = LatencySamples.ReadFile(samplesPath);
            if (samples.Count == 0) return; // a client that measures no latency (e.g. testpmd) writes none
            if (samples.Count != row.Ok && row.Status == RunStatus.Ok)
                (row.Status, row.Error) = (RunStatus.ClientFailed, $"the samples file holds {samples.Count} samples but RESULT says ok={row.Ok}");
            var histogram = LatencyHistogram.Record(samples.Values);
            histogram.Fill(row);
            if (logPath is not null) histogram.WriteLog(logPath, row.Timestamp, DateTimeOffset.UtcNow);
        }
        catch (InvalidDataException x) { (row.Status, row.Error) = (RunStatus.ClientFailed, x.Message); }
    }
}
