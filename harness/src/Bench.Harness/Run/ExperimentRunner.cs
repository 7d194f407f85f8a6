using System.Globalization;
using Bench.Harness.Catalog;
using Bench.Harness.LoadTools;
using Bench.Harness.Machine;
using Bench.Harness.Results;

namespace Bench.Harness.Run;

/// <summary>
/// Runs one experiment: start the server pinned, wait for its ready line, verify it, warm
/// it up, run the client once per repeat, record each run as a CSV row the moment it ends,
/// stop the server. The only place that touches processes and sockets of a suite.
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
        void FailAll(string status, string error)
        {
            var row = NewRow(e, 0);
            (row.Status, row.Error) = (status, error);
            Record(row);
            progress.Step($"{e}: {status}: {error}");
        }

        if (CheckLimits(e) is { } limit) { FailAll(RunStatus.Skipped, limit); return rows; }

        await using var server = await StartServerAsync(e, cancel);
        if (server.Failure is { } startFailure) { FailAll(RunStatus.ServerFailed, startFailure); return rows; }

        if (await VerifyAsync(e, server, cancel) is { } wrong) { FailAll(RunStatus.VerifyFailed, wrong); return rows; }

        var warmup = await WarmUpAsync(e, server, cancel);
        if (warmup.Fatal is { } dead) { Record(dead); progress.Step($"{e}: warm-up: {dead.Error}"); return rows; }
        if (warmup.Steady == false)
            progress.Note($"{e}: the rate was not steady after {warmup.Seconds:F0} s of warm-up; measuring anyway (warmup_steady=false in the rows)");

        for (var r = 1; r <= settings.Repeats; r++)
        {
            cancel.ThrowIfCancellationRequested();
            var row = await RunClientAsync(e, server, r, cancel);
            (row.WarmupS, row.WarmupSteady) = (Math.Round(warmup.Seconds, 1), warmup.Steady);
            Record(row);
            progress.Step($"{e} repeat {r}/{settings.Repeats}: {Describe(row)}");
            if (row.Status == RunStatus.ServerFailed) break;
        }

        if (!server.Process!.HasExited && !await server.Process.StopAsync(TimeSpan.FromSeconds(5)))
            progress.Note($"{e.Server.Name} did not exit within 5 s of SIGTERM and was killed (the contract asks for a prompt exit)");
        return rows;
    }

    /// <summary>
    /// Warms the server up before anything is recorded. Timed closed-loop workloads run 1 s
    /// passes until three in a row agree within 5% (.NET's tiered JIT on one core needs 20-30 s
    /// of load to settle), up to a cap; bursts and open-loop runs get a fixed number of passes.
    /// </summary>
    private async Task<(double Seconds, bool? Steady, RunRecord? Fatal)> WarmUpAsync(Experiment e, StartedServer server, CancellationToken cancel)
    {
        var started = DateTime.UtcNow;
        double Elapsed() => (DateTime.UtcNow - started).TotalSeconds;
        if (e.IsBurst || e.Rate > 0 || settings.WarmupCap <= TimeSpan.Zero)
        {
            for (var w = 0; w < settings.Warmups; w++)
                if (await RunClientAsync(e, server, repeat: 0, cancel) is { Status: RunStatus.ServerFailed } dead) return (Elapsed(), null, dead);
            return (Elapsed(), null, null);
        }
        var window = e with { DurationS = 1 };
        var rates = new List<double>();
        while (Elapsed() < settings.WarmupCap.TotalSeconds)
        {
            var pass = await RunClientAsync(window, server, repeat: 0, cancel);
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
            $"{row.Status}, {row.Ok} ok, {row.Failed} failed, {row.WallMs:F0} ms, {row.ReqPerS:F0} req/s, p99 {row.LatP99Us:F0} us, {row.Bound}-bound"),
        _ => $"{row.Status}: {row.Error}",
    };

    private string? CheckLimits(Experiment e)
    {
        if (!e.Server.HasServer) return $"{e.Server.Name} has no server";
        if (!e.UsesH2Load && !e.Client.HasClient) return $"{e.Client.Name} has no client"; // h2load needs none
        // Each connection needs a descriptor at both ends; children inherit the harness's limit.
        if (Limits.EnsureFileDescriptors(e.Connections + 256) is { } fd) return fd;
        if (e.Transport == Transports.Tcp && e.Connections > Limits.EphemeralPorts)
            return $"{e.Connections} connections need more ephemeral ports than net.ipv4.ip_local_port_range gives ({Limits.EphemeralPorts})";
        return null;
    }

    private sealed class StartedServer : IAsyncDisposable
    {
        public ManagedProcess? Process { get; init; }
        public ReadyLine? Ready { get; init; }
        public string? Failure { get; init; }
        /// <summary>When the last burst against this server ended (see EphemeralPorts.BurstSpacing).</summary>
        public DateTime LastBurstEnded { get; set; }
        public ValueTask DisposeAsync() => Process?.DisposeAsync() ?? ValueTask.CompletedTask;
    }

    private async Task<StartedServer> StartServerAsync(Experiment e, CancellationToken cancel)
    {
        ManagedProcess process;
        try
        {
            process = ManagedProcess.Start($"server {e.Server.Name}", [.. e.Server.ServerCommand!, .. ServerAddressArgs(e)],
                e.Server.Folder, settings.ServerCpus);
        }
        catch (ProcessStartException x) { return new StartedServer { Failure = x.Message }; }
        try
        {
            var line = await process.WaitForLineAsync(ReadyLine.Matches, settings.Ready, cancel);
            return new StartedServer { Process = process, Ready = ReadyLine.Parse(line) };
        }
        catch (Exception x) when (x is TimeoutException or ProcessExitedException or FormatException)
        {
            var failure = x is TimeoutException ? $"{x.Message}; stderr: {process.StderrTail}" : x.Message;
            await process.DisposeAsync();
            return new StartedServer { Failure = failure };
        }
    }

    private IEnumerable<string> ServerAddressArgs(Experiment e) => e.Transport switch
    {
        Transports.Tcp => ["--host", "127.0.0.1", "--port", "0"],
        Transports.Unix => ["--unix", Path.Combine(scratch, $"{e.Server.Name}.sock")],
        Transports.Memif => ["--memif-socket", Path.Combine(scratch, $"{e.Server.Name}.memif.sock")],
        _ => throw new NotSupportedException($"the harness cannot drive transport '{e.Transport}' yet"),
    };

    private static IEnumerable<string> ClientAddressArgs(ReadyLine ready) => ready.Transport switch
    {
        Transports.Tcp => ["--host", ready.TcpEndpoint.Host, "--port", ready.TcpEndpoint.Port.ToString(CultureInfo.InvariantCulture)],
        Transports.Unix => ["--unix", ready.Address],
        Transports.Memif => ["--memif-socket", ready.Address],
        _ => throw new FormatException($"unknown transport '{ready.Transport}' in the ready line"),
    };

    private async Task<string?> VerifyAsync(Experiment e, StartedServer server, CancellationToken cancel)
    {
        if (e.UsesH2Load)
            return await H2Load.VerifyAsync(server.Ready!.TcpEndpoint.Host, server.Ready.TcpEndpoint.Port, e.Payload, cancel);
        if (e.IsRawEcho)
        {
            var (host, port) = server.Ready!.TcpEndpoint;
            return await EchoVerifier.VerifyAsync(host, port, TimeSpan.FromSeconds(10), cancel);
        }
        // Protocol servers (gRPC, memif) are checked by a tiny run of their own client, which verifies every byte.
        var tiny = e with { Connections = 1, DurationS = Math.Min(e.DurationS, 1), Rate = 0 };
        var row = await RunClientAsync(tiny, server, repeat: 0, cancel);
        return row.Status == RunStatus.Ok && row.Ok > 0 ? null : $"a one-connection check run failed: {row.Status}: {row.Error}";
    }

    private async Task<RunRecord> RunClientAsync(Experiment e, StartedServer server, int repeat, CancellationToken cancel)
    {
        if (e.IsBurst && e.Transport == Transports.Tcp)
            await EphemeralPorts.WaitForRoomAsync(e.Connections, server.LastBurstEnded, progress, cancel);
        var row = NewRow(e, repeat);
        var samplesPath = Path.Combine(scratch, $"samples-{Guid.NewGuid():N}.bin");
        var h2loadLog = Path.Combine(scratch, $"h2load-{Guid.NewGuid():N}.log");
        IReadOnlyList<string> args = e.UsesH2Load
            ? H2Load.Command(server.Ready!.TcpEndpoint.Host, server.Ready.TcpEndpoint.Port, e.Connections, e.DurationS, FrameFile(e.Payload), h2loadLog)
            : ContractClientArgs(e, server.Ready!, samplesPath);

        row.TimeWaitBefore = TcpCounters.CountTimeWait();
        var countersBefore = TcpCounters.Read();
        var serverBefore = ProcFs.ReadTree(server.Process!.Pid) ?? ProcessUsage.None;
        var cpuBefore = ProcFs.CpuTimes();

        // GNU time waits for the client and reports its rusage (children included): exact even
        // for a client that exits the instant it has printed RESULT, where /proc would be gone.
        var usagePath = Path.Combine(scratch, $"usage-{Guid.NewGuid():N}.txt");
        ManagedProcess client;
        try
        {
            client = ManagedProcess.Start($"client {row.Client}", [.. ProcessUsage.TimeCommand(usagePath), .. args], e.Client.Folder, settings.ClientCpus);
        }
        catch (ProcessStartException x) { (row.Status, row.Error) = (RunStatus.ClientFailed, x.Message); return row; }
        await using (client)
        {
            try
            {
                if (e.UsesH2Load)
                {
                    // h2load prints no RESULT line: its summary and per-request log say the same things.
                    var exit = await client.Exited.WaitAsync(settings.ClientDeadline(e), cancel);
                    var output = H2Load.Parse(string.Join('\n', client.StdoutLines));
                    var samples = H2Load.ReadLogSamples(h2loadLog);
                    LatencySamples.WriteFile(samplesPath, samples);
                    Fill(row, new ResultLine(output.Succeeded, output.Failed, (long)(output.Seconds * 1e9), output.Succeeded * e.Payload, 0, 0), exit, client.StderrTail);
                    (row.ConnMinReq, row.ConnMaxReq) = (null, null); // h2load does not count per connection
                }
                else
                {
                    var line = await client.WaitForLineAsync(ResultLine.Matches, settings.ClientDeadline(e), cancel);
                    var exit = await client.Exited.WaitAsync(TimeSpan.FromSeconds(30), cancel);
                    Fill(row, ResultLine.Parse(line), exit, client.StderrTail);
                }
            }
            catch (TimeoutException)
            {
                await client.KillAsync();
                (row.Status, row.Error) = (RunStatus.Timeout, $"the client did not finish within {settings.ClientDeadline(e).TotalSeconds:F0} s and was killed with its process tree");
            }
            catch (ProcessExitedException x) { (row.Status, row.Error) = (RunStatus.ClientFailed, $"{x.Message} (no RESULT line)"); }
            catch (FormatException x) { (row.Status, row.Error) = (RunStatus.ClientFailed, x.Message); }
        }
        if (e.IsBurst) server.LastBurstEnded = DateTime.UtcNow;
        var clientUsage = ProcessUsage.ReadTimeOutput(usagePath);
        File.Delete(usagePath);
        File.Delete(h2loadLog);

        var cpuAfter = ProcFs.CpuTimes();
        row.Absorb(TcpCounters.Read() - countersBefore);
        if (server.Process.HasExited)
            (row.Status, row.Error) = (RunStatus.ServerFailed, $"the server died during the run: {new ProcessExitedException(server.Process).Message}");
        else if (ProcFs.ReadTree(server.Process.Pid) is { } serverAfter)
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

    /// <summary>The contract's client arguments (docs/contract.md, "Clients").</summary>
    private IReadOnlyList<string> ContractClientArgs(Experiment e, ReadyLine ready, string samplesPath) =>
    [
        .. e.Client.ClientCommand!, .. ClientAddressArgs(ready),
        "--connections", e.Connections.ToString(CultureInfo.InvariantCulture),
        "--payload", e.Payload.ToString(CultureInfo.InvariantCulture),
        "--workload", e.Workload,
        .. e.IsBurst ? Array.Empty<string>() : ["--duration", e.DurationS.ToString(CultureInfo.InvariantCulture)],
        .. e.Rate > 0 ? ["--rate", e.Rate.ToString(CultureInfo.InvariantCulture)] : Array.Empty<string>(),
        "--samples", samplesPath,
        "--timeout", settings.ConnectionTimeout.TotalSeconds.ToString(CultureInfo.InvariantCulture),
    ];

    /// <summary>h2load's request body: one gRPC frame, written once per payload size.</summary>
    private string FrameFile(int payload)
    {
        var path = Path.Combine(scratch, $"grpc-echo-{payload}.frame");
        if (!File.Exists(path)) File.WriteAllBytes(path, H2Load.RequestFrame(payload));
        return path;
    }

    private RunRecord NewRow(Experiment e, int repeat) => new()
    {
        RunId = runId,
        Timestamp = DateTimeOffset.UtcNow,
        Server = e.Server.Name,
        Client = e.LoadTool ?? e.Client.Name,
        Transport = e.Transport,
        Workload = e.Workload,
        Connections = e.Connections,
        PayloadBytes = e.Payload,
        Rate = e.Rate,
        DurationS = e.IsBurst ? 0 : e.DurationS,
        Repeat = repeat,
        ServerCpus = settings.ServerCpus,
        ClientCpus = settings.ClientCpus,
        LoadTool = e.LoadTool ?? e.Client.Name,
    };

    private static void Fill(RunRecord row, ResultLine result, int exitCode, string stderr)
    {
        row.Ok = result.Ok;
        row.Failed = result.Failed;
        row.WallMs = result.WallNs / 1e6;
        var seconds = result.WallNs / 1e9;
        if (seconds > 0)
        {
            row.ReqPerS = result.Ok / seconds;
            if (row.Workload == Workloads.Burst) row.ConnPerS = result.Ok / seconds;
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
