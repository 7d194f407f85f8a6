using System.Globalization;
using Bench.Harness.LoadTools;
using Bench.Harness.Machine;
using Bench.Harness.Results;
using Bench.Harness.Run;
using Bench.Harness.Workloads;

namespace Bench.Harness.Remote;

/// <summary>
/// Runs one experiment across hosts: the server on the server host (listening on its address,
/// past its ready line, checked byte for byte and warmed up), then per repeat a client on every
/// client host, its share of the connections (18,000 over three hosts: 6,000 each), all held at
/// one start barrier and let go together. Each client's RESULT line and samples are collected;
/// the row sums the counts and takes its percentiles from every sample merged. Each row is in
/// runs.csv the moment its repeat ends.
/// </summary>
public sealed class MultiHostRunner(MultiHost hosts, RunSettings settings, ResultsCsv csv, string runId, Progress progress) : IExperimentRunner
{
    private RemoteHost ServerHost => hosts.Hosts.Server;
    private IReadOnlyList<RemoteHost> ClientHosts => hosts.Hosts.Clients;

    public async Task<IReadOnlyList<RunRecord>> RunAsync(Experiment e, CancellationToken cancel)
    {
        if (e.Workload is not EchoWorkload || e.Transport != Catalog.Transports.Tcp || e.Load.Client is null)
            return [Fail(e, RunStatus.Skipped, "multi-host runs take the TCP echo workloads (burst, persistent) with an implementation's own client so far")];
        var listen = ContractArguments.Tcp(ServerHost.Address, 0);
        await using var server = RemoteProcess.Start(hosts.Ssh, ServerHost, $"server {e.Server.Name} on {ServerHost}",
            hosts.Shipper.RemoteCommand(ServerHost, [.. e.Server.ServerCommand!, .. listen]), hosts.Shipper.RemoteFolder(ServerHost, e.Server), ServerHost.Cpus);
        ReadyLine ready;
        try { ready = ReadyLine.Parse(await server.WaitForLineAsync(ReadyLine.Matches, settings.Ready, cancel)); }
        catch (Exception x) when (x is TimeoutException or Processes.ProcessExitedException or FormatException)
        {
            return [Fail(e, RunStatus.ServerFailed, $"on {ServerHost}: {x.Message}; stderr: {server.StderrTail}")];
        }
        var (host, port) = ready.TcpEndpoint;
        if (await EchoVerifier.VerifyAsync(host, port, TimeSpan.FromSeconds(10), cancel) is { } wrong)
            return [Fail(e, RunStatus.VerifyFailed, $"{ready.Address} on {ServerHost}: {wrong}")];
        var rows = new List<RunRecord>();
        for (var w = 0; w < settings.Warmups; w++)
            if (await RepeatAsync(e, server, host, port, 0, cancel) is { Status: RunStatus.ServerFailed } dead) return [Record(dead)];
        for (var r = 1; r <= settings.Repeats; r++)
        {
            cancel.ThrowIfCancellationRequested();
            var row = Record(await RepeatAsync(e, server, host, port, r, cancel));
            rows.Add(row);
            if (row.Status == RunStatus.ServerFailed) break;
        }
        if (!await server.StopAsync(Processes.ServerProcess.StopGrace))
            progress.Note($"{e.Server.Name} on {ServerHost} did not exit within {Processes.ServerProcess.StopGrace.TotalSeconds:F0} s of SIGTERM and was killed");
        return rows;
    }

    private RunRecord Record(RunRecord row)
    {
        csv.Append(row);
        progress.Step($"{row.Server} [{row.Workload} {row.Connections} conn, {row.ClientHosts}] repeat {row.Repeat}: {row.Status}, {row.Ok} ok, {row.Failed} failed, " +
                      $"{row.WallMs:F0} ms, p99 {Figures.P99.Print(row.LatP99Us)} us{(row.Error.Length > 0 ? $": {row.Error}" : "")}");
        return row;
    }

    /// <summary>The connections each client host opens: an even split, the first hosts taking the remainder.</summary>
    public static IReadOnlyList<int> Split(int connections, int hosts) =>
        Enumerable.Range(0, hosts).Select(i => connections / hosts + (i < connections % hosts ? 1 : 0)).ToList();

    private sealed record Client(RemoteHost Host, int Connections, string Samples, RemoteProcess Process);

    private async Task<RunRecord> RepeatAsync(Experiment e, RemoteProcess server, string host, int port, int repeat, CancellationToken cancel)
    {
        var row = NewRow(e, repeat);
        var shares = Split(e.Connections, ClientHosts.Count);
        var folder = (RemoteHost h) => hosts.Shipper.RemoteFolder(h, e.Load.Client!);
        // The first MEASURING line and the last RESULT line are the window every host is read over.
        var readings = new List<Task<(RemoteHost Host, HostReading? Reading)>>[2] { [], [] };
        var serverPid = await server.RemotePid;
        var clients = new List<Client>();
        var seenMeasuring = 0;
        var seenResult = 0;
        void ReadAll(int edge, IEnumerable<(RemoteHost Host, int Pid)> at)
        {
            lock (readings) readings[edge].AddRange(at.Select(async x => (x.Host, await HostReading.ReadAsync(hosts.Ssh, x.Host, x.Pid, cancel))));
        }
        IEnumerable<(RemoteHost, int)> Everyone() =>
            [(ServerHost, serverPid), .. clients.Select(c => (c.Host, c.Process.RemotePid.IsCompletedSuccessfully ? c.Process.RemotePid.Result : 0))];
        for (var i = 0; i < ClientHosts.Count; i++)
        {
            if (shares[i] == 0) continue;
            var h = ClientHosts[i];
            var samples = $"samples-{Guid.NewGuid():N}.bin";
            var args = ContractArguments.Client([.. e.Load.Command, .. ContractArguments.Tcp(host, port)], e.Workload, shares[i], shares[i], e.Payload,
                e.Rate * shares[i] / e.Connections, e.DurationS, samples, settings.ConnectionTimeout, repeat > 0 ? settings.ClientWarmupS : 0);
            var process = RemoteProcess.Start(hosts.Ssh, h, $"client {e.Load.Name} on {h}", hosts.Shipper.RemoteCommand(h, args), folder(h), h.Cpus, atBarrier: true,
                onStdout: line =>
                {
                    if (MeasuringLine.Matches(line) && Interlocked.Increment(ref seenMeasuring) == 1) ReadAll(0, Everyone());
                    else if (ResultLine.Matches(line) && Interlocked.Increment(ref seenResult) == clients.Count) ReadAll(1, Everyone());
                });
            clients.Add(new Client(h, shares[i], samples, process));
        }
        try
        {
            await Task.WhenAll(clients.Select(c => c.Process.AtBarrier)).WaitAsync(TimeSpan.FromSeconds(60), cancel);
            // The TCP counters from before any client connects: a burst's SYNs are sent (and dropped) before its
            // MEASURING line's readings are in, so counters read there would miss them (CPU is still read over the window).
            var atBarrier = (await Task.WhenAll(hosts.Hosts.Hosts.Select(async h => (h, await HostReading.ReadAsync(hosts.Ssh, h, 0, cancel)))))
                .ToDictionary(x => x.h.Name, x => x.Item2);
            // What the clients' connect() has to search past: off loopback tcp_tw_reuse=2 (the default) reuses none of it.
            row.TimeWaitBefore = clients.Sum(c => atBarrier.GetValueOrDefault(c.Host.Name)?.TimeWait ?? 0);
            foreach (var c in clients) c.Process.Go();
            var deadline = settings.ClientDeadline(e);
            var outcomes = await Task.WhenAll(clients.Select(async c =>
            {
                try
                {
                    var line = await c.Process.WaitForLineAsync(ResultLine.Matches, deadline, cancel);
                    var exit = await c.Process.Exited.WaitAsync(TimeSpan.FromSeconds(30), cancel);
                    var result = ResultLine.Parse(line);
                    return (c, Result: result, Error: exit != 0 || result.Failed > 0 ? $"{c.Host}: {result.Failed} failed, exit {exit}; {c.Process.StderrTail}" : null);
                }
                catch (Exception x) when (x is TimeoutException or Processes.ProcessExitedException or FormatException)
                {
                    // ssh's own status 255: the connection to the host is gone, not the client.
                    var why = c.Process.ExitCode == 255 ? $"the host was lost (ssh exited 255): {c.Process.StderrTail}" : x.Message;
                    return (c, Result: (ResultLine?)null, Error: $"client on {c.Host}: {why}");
                }
            }));
            Merge(row, e, outcomes.Select(o => o.Result).ToList());
            var errors = outcomes.Select(o => o.Error).OfType<string>().ToList();
            var lost = outcomes.Any(o => o.Result is null);
            if (server.HasExited) (row.Status, row.Error) = (RunStatus.ServerFailed, $"the server on {ServerHost} died during the run: {server.StderrTail}");
            else if (lost) (row.Status, row.Error) = (RunStatus.ClientFailed, string.Join("; ", errors));
            else if (errors.Count > 0) (row.Status, row.Error) = (RunStatus.Failed, string.Join("; ", errors));
            else row.Status = RunStatus.Ok;
            await FillUsageAsync(row, readings, atBarrier, clients, outcomes.Where(o => o.Result is not null).Select(o => (o.c, o.Result!)).ToList());
            if (!lost) await FillLatencyAsync(row, clients, folder, repeat);
        }
        finally
        {
            foreach (var c in clients) await c.Process.DisposeAsync();
            foreach (var c in clients)
                _ = await hosts.Ssh.RunAsync(c.Host, ["rm", "-f", $"{folder(c.Host)}/{c.Samples}"], TimeSpan.FromSeconds(10), CancellationToken.None);
        }
        return row;
    }

    /// <summary>Counts are summed; the wall is the slowest client's (they started together).</summary>
    private static void Merge(RunRecord row, Experiment e, IReadOnlyList<ResultLine?> results)
    {
        var got = results.OfType<ResultLine>().ToList();
        if (got.Count == 0) return;
        row.Ok = got.Sum(r => r.Ok);
        row.Failed = got.Sum(r => r.Failed) + (results.Count - got.Count);
        var wall = got.Max(r => r.WallNs);
        row.WallMs = wall / 1e6;
        if (wall > 0)
        {
            row.ReqPerS = row.Ok / (wall / 1e9);
            if (e.Workload.OneConnectionPerRequest) row.ConnPerS = row.ReqPerS;
        }
        if (got.All(r => r.ConnMin is not null)) (row.ConnMinReq, row.ConnMaxReq) = (got.Min(r => r.ConnMin), got.Max(r => r.ConnMax));
        if (got.All(r => r.WindowUsage is not null))
            (row.ClientUserMs, row.ClientSysMs) = (got.Sum(r => r.WindowUsage!.Value.UserMs), got.Sum(r => r.WindowUsage!.Value.SystemMs));
    }

    private async Task FillUsageAsync(RunRecord row, List<Task<(RemoteHost Host, HostReading? Reading)>>[] readings,
        IReadOnlyDictionary<string, HostReading?> atBarrier,
        IReadOnlyList<Client> clients, IReadOnlyList<(Client Client, ResultLine Result)> results)
    {
        Task<(RemoteHost Host, HostReading? Reading)>[] from, to;
        lock (readings) (from, to) = (readings[0].ToArray(), readings[1].ToArray());
        if (from.Length == 0 || to.Length == 0) return;
        var before = (await Task.WhenAll(from)).ToDictionary(x => x.Host.Name, x => x.Reading);
        var after = (await Task.WhenAll(to)).ToDictionary(x => x.Host.Name, x => x.Reading);
        row.CpuWindow = CpuWindows.Timed;
        var total = new TcpCounters(0, 0, 0, 0, 0);
        var kernels = new HashSet<string>();
        var parts = new List<string>();
        foreach (var h in hosts.Hosts.Hosts)
        {
            if (before.GetValueOrDefault(h.Name) is not { } b || after.GetValueOrDefault(h.Name) is not { } a) continue;
            // The counters over the clients' whole lives (from the barrier), as a single-host run reads them around its client.
            var counters = a.Counters - (atBarrier.GetValueOrDefault(h.Name)?.Counters ?? b.Counters);
            // The input backlog is the kernel's: hosts that share one (the test bed's) count it once.
            var backlog = a.BootId.Length == 0 || kernels.Add(a.BootId) ? counters.BacklogDrops : 0;
            total += counters with { BacklogDrops = backlog };
            var cpu = int.Parse(h.Cpus.Split(',', '-')[0], CultureInfo.InvariantCulture);
            var busy = Math.Round(ProcFs.BusyFraction(b.Cpus, a.Cpus, cpu), 3);
            var steal = Math.Round(ProcFs.StealFraction(b.Cpus, a.Cpus, cpu), 3);
            var usage = a.Group is { } ga && b.Group is { } gb ? (User: ga.UserMs - gb.UserMs, Sys: ga.SystemMs - gb.SystemMs, Peak: ga.PeakRssKb) : default;
            // A client has exited by its last RESULT line: its CPU is its own report over its window, its memory as read at MEASURING.
            if (results.FirstOrDefault(r => r.Client.Host == h) is { Result.WindowUsage: { } window })
                usage = (window.UserMs, window.SystemMs, b.Group?.PeakRssKb ?? 0);
            if (h == ServerHost)
            {
                (row.ServerUserMs, row.ServerSysMs, row.ServerPeakRssKb, row.ServerCoreBusy, row.ServerCoreSteal) = (usage.User, usage.Sys, usage.Peak, busy, steal);
            }
            else if (clients.FirstOrDefault(c => c.Host == h) is { } c && usage.Peak > 0)
                row.ClientPeakRssKb = Math.Max(row.ClientPeakRssKb ?? 0, usage.Peak);
            if (h != ServerHost) (row.ClientCoreBusy, row.ClientCoreSteal) = (Math.Max(row.ClientCoreBusy ?? 0, busy), Math.Max(row.ClientCoreSteal ?? 0, steal));
            parts.Add(string.Create(CultureInfo.InvariantCulture,
                $"{h.Name}: cpu {usage.User + usage.Sys:F0} ms, peak {usage.Peak} kB, core {busy:F2} busy, retrans {counters.RetransSegs}, syn_retrans {counters.SynRetrans}, listen_overflows {counters.ListenOverflows}, backlog_drops {counters.BacklogDrops}"));
        }
        row.Absorb(total);
        row.HostUsage = string.Join("; ", parts);
        row.Bound = row.ServerCoreBusy is { } s && row.ClientCoreBusy is { } cl ? Bottleneck.Classify(s, cl) : "";
        row.ServerCpuUsPerReq = PerRequestUs(row.ServerUserMs + row.ServerSysMs, row.Ok);
        row.ClientCpuUsPerReq = PerRequestUs(row.ClientUserMs + row.ClientSysMs, row.Ok);
    }

    private static double? PerRequestUs(double? cpuMs, long ok) => cpuMs is >= 100 && ok > 0 ? Math.Round(cpuMs.Value * 1000 / ok, 3) : null;

    /// <summary>
    /// Every client's samples, fetched and merged: the percentiles are those of all requests
    /// together, never an average of per-host ones. With --keep-samples each client's file of a
    /// measured repeat is kept in the result set as <see cref="LatencySamples.KeptFile"/>.
    /// </summary>
    private async Task FillLatencyAsync(RunRecord row, IReadOnlyList<Client> clients, Func<RemoteHost, string> folder, int repeat)
    {
        var fetched = new List<string>();
        try
        {
            foreach (var c in clients)
            {
                var path = Path.GetTempFileName();
                fetched.Add(path);
                await using (var file = File.Create(path))
                {
                    var argv = hosts.Ssh.Command(c.Host, ["cat", $"{folder(c.Host)}/{c.Samples}"]);
                    var result = await CliWrap.Cli.Wrap(argv[0]).WithArguments(argv.Skip(1)).WithValidation(CliWrap.CommandResultValidation.None)
                        .WithStandardOutputPipe(CliWrap.PipeTarget.ToStream(file)).ExecuteAsync();
                    if (result.ExitCode != 0) { (row.Status, row.Error) = (RunStatus.ClientFailed, $"{c.Host}: its samples file could not be fetched"); return; }
                }
                if (settings.KeepSamples && repeat > 0)
                {
                    var kept = Path.Combine(ResultSet, LatencySamples.KeptFile(row, c.Host.Name));
                    Directory.CreateDirectory(Path.GetDirectoryName(kept)!);
                    File.Copy(path, kept, overwrite: true);
                }
            }
            LatencyHistogram histogram;
            try { histogram = MergeSamples(fetched); }
            catch (InvalidDataException x)
            {
                var host = clients[fetched.FindIndex(f => x.Message.StartsWith(f, StringComparison.Ordinal)) is var i and >= 0 ? i : 0].Host;
                (row.Status, row.Error) = (RunStatus.ClientFailed, $"{host}: {x.Message}");
                return;
            }
            if (histogram.Count == 0) return;
            if (histogram.Count != row.Ok && row.Status == RunStatus.Ok)
                (row.Status, row.Error) = (RunStatus.ClientFailed, $"the clients' samples files hold {histogram.Count} samples but their RESULT lines say ok={row.Ok}");
            histogram.Fill(row);
            if (repeat > 0) histogram.WriteLog(LatencyHistogram.LogPath(ResultSet, row), row.Timestamp, DateTimeOffset.UtcNow);
        }
        finally
        {
            foreach (var f in fetched) File.Delete(f);
        }
    }

    /// <summary>
    /// The samples of several clients' files (the contract's format) as one distribution: every
    /// sample of every file recorded into one histogram, so its percentiles are those of the
    /// concatenated samples, never an average or the largest of the files' own percentiles.
    /// </summary>
    public static LatencyHistogram MergeSamples(IEnumerable<string> files) =>
        LatencyHistogram.Record(files.SelectMany(f => LatencySamples.ReadFile(f).Values));

    /// <summary>The result set's folder: where runs.csv is.</summary>
    private string ResultSet => Path.GetDirectoryName(Path.GetFullPath(csv.Path))!;

    public RunRecord Fail(Experiment e, string status, string error)
    {
        var row = NewRow(e, 0);
        (row.Status, row.Error) = (status, error);
        return Record(row);
    }

    private RunRecord NewRow(Experiment e, int repeat)
    {
        var shares = Split(e.Connections, ClientHosts.Count);
        var row = ExperimentRunner.NewRow(e, runId, repeat, ServerHost.Cpus, string.Join(' ', ClientHosts.Select(h => h.Cpus).Distinct()));
        row.ServerHost = ServerHost.Name;
        row.ClientHosts = string.Join(' ', ClientHosts.Zip(shares).Where(x => x.Second > 0).Select(x => $"{x.First.Name}:{x.Second}"));
        row.Link = hosts.Hosts.Link;
        return row;
    }
}
