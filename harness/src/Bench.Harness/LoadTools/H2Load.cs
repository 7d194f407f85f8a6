using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using Bench.Harness.Catalog;
using Bench.Harness.CommandLine;
using Bench.Harness.Machine;
using Bench.Harness.Processes;
using Bench.Harness.Results;
using Bench.Harness.Run;
using Bench.Harness.Workloads;
using Google.Protobuf;
using GrpcBench.Protos;

namespace Bench.Harness.LoadTools;

/// <summary>What h2load printed, in the harness's terms.</summary>
/// <remarks>h2load counts errored requests inside failed, and timed-out ones inside errored.</remarks>
public sealed record H2LoadOutput(double Seconds, long Succeeded, long Failed, long Errored, long TimedOut, double ReqPerS);

/// <summary>
/// h2load (nghttp2's C HTTP/2 load generator) as an independent load tool for gRPC unary, so a
/// figure can be checked against a load generator that is not ours. h2load knows nothing of
/// gRPC: its adapter builds the length-prefixed request from bench.proto, checks once that the
/// server answers it with grpc-status 0 and the exact echo (h2load cannot read grpc-status),
/// runs h2load, and turns its summary and per-request log into the contract's RESULT line and
/// samples file.
/// </summary>
public sealed partial class H2Load : IIndependentLoadTool
{
    public const string Name = "h2load";
    public const string UnaryPath = "/bench.Echo/Unary";

    /// <summary>Whether h2load is on PATH (scripts/setup.sh installs it from nghttp2-client).</summary>
    public static bool IsInstalled { get; } = Programs.Exists(Name);

    string IIndependentLoadTool.Name => Name;
    bool IIndependentLoadTool.IsInstalled => IsInstalled;
    public IReadOnlyList<string> VersionCommand => [Name, "--version"];
    public bool Drives(Workload workload) => workload is GrpcUnary;
    public bool Speaks(string transport) => transport == Transports.Tcp;

    /// <summary>
    /// The adapter: contract client arguments in; the check call, then h2load under GNU time
    /// (so the RESULT line can carry h2load's own CPU, not the adapter's); RESULT and samples out.
    /// </summary>
    public async Task<int> RunAdapterAsync(IReadOnlyList<string> contractArguments, CancellationToken cancel)
    {
        var a = new ArgReader(contractArguments);
        if (a.Text("--unix") is not null) throw new UsageException("h2load drives TCP only");
        var host = a.Text("--host") ?? "127.0.0.1";
        var port = a.Int("--port", 1, 65535) ?? throw new UsageException("--port is required");
        var connections = a.Int("--connections", 1, 1_000_000) ?? 2;
        var inFlight = a.Int("--in-flight", 1, 10_000_000) ?? 200;
        var payload = a.Int("--payload", 0, 64 << 20) ?? 100;
        var workload = a.Text("--workload") ?? Workload.Get<GrpcUnary>().Name;
        var duration = a.Number("--duration", 0.001, 86_400) ?? 5;
        var samples = a.Text("--samples");
        var timeout = a.Number("--timeout", 0.001, 86_400) ?? 30;
        var warmup = a.Number("--warmup", 0, 86_400) ?? 0;
        if (a.Number("--rate", 0, 1e9) is > 0) throw new UsageException("h2load's --rate paces connections, not requests: open loop is not offered");
        a.EnsureEmpty();
        if (Workload.Find(workload) is not { } w || !Drives(w)) throw new UsageException($"h2load drives {Workload.Get<GrpcUnary>().Name} only, not '{workload}'");

        if (await VerifyAsync(host, port, payload, cancel) is { } wrong)
        {
            Console.Error.WriteLine($"h2load adapter: the check call failed before loading: {wrong}");
            return 1;
        }
        // Beside the samples file, in the harness's own scratch folder: that goes even when this adapter is killed.
        var scratch = samples is null ? Directory.CreateTempSubdirectory("bench-h2load-").FullName
            : Directory.CreateDirectory(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(samples))!, $"h2load-{Guid.NewGuid():N}")).FullName;
        try
        {
            var (frame, log, usage) = (Path.Combine(scratch, "request.frame"), Path.Combine(scratch, "h2load.log"), Path.Combine(scratch, "usage.txt"));
            await File.WriteAllBytesAsync(frame, RequestFrame(payload), cancel);
            // h2load says when its main duration starts: that opens the timed window (MEASURING),
            // and its CPU so far is taken off its total, so server and load CPU cover the window only.
            // Without a warm-up that line can come before Start has returned, and blocking the
            // reader for it held Start back: the reading is done as soon as the process is known.
            var started = new TaskCompletionSource<ManagedProcess>(TaskCreationOptions.RunContinuationsAsynchronously);
            Task<ProcessUsage?>? atWindowStart = null; // called on the one stdout reader, in order
            void OnLine(string line)
            {
                if (atWindowStart is not null || !line.StartsWith(MainDurationStarted, StringComparison.Ordinal)) return;
                atWindowStart = started.Task.ContinueWith(t =>
                {
                    var soFar = ProcFs.ReadTree(t.Result.Pid);
                    if (soFar is not null) Console.WriteLine(MeasuringLine.Text);
                    return soFar;
                }, TaskScheduler.Default);
            }
            await using var h2load = ManagedProcess.Start(Name, [.. ProcessUsage.TimeCommand(usage), .. Command(host, port, connections, inFlight, duration, frame, log, warmup)], scratch,
                onStdout: OnLine);
            started.SetResult(h2load);
            var exit = await h2load.Exited.WaitAsync(TimeSpan.FromSeconds(warmup + duration * 2 + timeout), cancel);
            var output = Parse(string.Join('\n', h2load.StdoutLines), warmup);
            var latencies = ReadLogSamples(log);
            if (samples is not null) LatencySamples.WriteFile(samples, latencies);
            var cpu = ProcessUsage.ReadTimeOutput(usage);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"h2load: {output.Succeeded} succeeded, {output.Failed} failed in {output.Seconds:F2} s, {output.ReqPerS:F0} req/s"));
            // h2load counts no requests per connection, so conn_min and conn_max are left out.
            var loadUsage = cpu is { } c ? string.Create(CultureInfo.InvariantCulture, $" load_user_ms={(long)c.UserMs} load_sys_ms={(long)c.SystemMs} load_peak_rss_kb={c.PeakRssKb}") : "";
            // Awaited whatever GNU time said, so MEASURING never follows RESULT.
            var atStart = atWindowStart is { } reading ? await reading : null;
            if (cpu is { } total && atStart is { } soFar)
                loadUsage += string.Create(CultureInfo.InvariantCulture,
                    $" cpu_user_us={(long)Math.Max(0, (total.UserMs - soFar.UserMs) * 1000)} cpu_sys_us={(long)Math.Max(0, (total.SystemMs - soFar.SystemMs) * 1000)}");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"RESULT ok={output.Succeeded} failed={output.Failed} wall_ns={(long)(output.Seconds * 1e9)} bytes={output.Succeeded * payload}{loadUsage}"));
            if (exit != 0) Console.Error.WriteLine($"h2load exited with status {exit}: {h2load.StderrTail}");
            return output.Failed == 0 && exit == 0 ? 0 : 1;
        }
        catch (FormatException e)
        {
            Console.Error.WriteLine($"h2load adapter: {e.Message}");
            return 1;
        }
        catch (TimeoutException)
        {
            Console.Error.WriteLine($"h2load adapter: h2load did not finish within {duration * 2 + timeout:F0} s and was killed");
            return 1;
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }
    }

    /// <summary>The payload bytes an h2load request carries: fixed, since every request is the same frame.</summary>
    public static byte[] Payload(int size) => Enumerable.Range(0, size).Select(j => (byte)(j % 251)).ToArray();

    /// <summary>A gRPC message frame: compressed flag 0, big-endian u32 length, the serialized EchoRequest.</summary>
    public static byte[] RequestFrame(int payloadSize)
    {
        var message = new EchoRequest { Payload = ByteString.CopyFrom(Payload(payloadSize)) }.ToByteArray();
        var frame = new byte[5 + message.Length];
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), (uint)message.Length);
        message.CopyTo(frame, 5);
        return frame;
    }

    /// <summary>Sends the frame once over HTTP/2 without TLS; null when grpc-status is 0 and the echo is exact.</summary>
    public static async Task<string?> VerifyAsync(string host, int port, int payloadSize, CancellationToken cancel)
    {
        using var http = new HttpClient(new SocketsHttpHandler()) { Timeout = TimeSpan.FromSeconds(10) };
        using var request = new HttpRequestMessage(HttpMethod.Post, $"http://{host}:{port}{UnaryPath}")
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(RequestFrame(payloadSize)),
        };
        request.Content.Headers.ContentType = new("application/grpc");
        request.Headers.TryAddWithoutValidation("te", "trailers");
        try
        {
            using var response = await http.SendAsync(request, cancel);
            var body = await response.Content.ReadAsByteArrayAsync(cancel);
            string? Header(string name) => response.TrailingHeaders.TryGetValues(name, out var t) ? t.First()
                : response.Headers.TryGetValues(name, out var h) ? h.First() : null;
            if (response.StatusCode != HttpStatusCode.OK) return $"HTTP status {(int)response.StatusCode}";
            if (Header("grpc-status") is not "0") return $"grpc-status {Header("grpc-status") ?? "missing"}: {Header("grpc-message")}";
            if (body.Length < 5) return $"a {body.Length}-byte reply is not a gRPC message frame";
            var reply = EchoReply.Parser.ParseFrom(body.AsSpan(5, (int)BinaryPrimitives.ReadUInt32BigEndian(body.AsSpan(1))));
            return reply.Payload.Span.SequenceEqual(Payload(payloadSize)) ? null : "the echoed payload differs from the request's";
        }
        catch (Exception e) when (e is HttpRequestException or InvalidProtocolBufferException or ArgumentOutOfRangeException or TaskCanceledException)
        {
            return $"the check call failed: {e.Message}";
        }
    }

    /// <summary>
    /// The h2load command: the calls in flight spread evenly over the connections as concurrent
    /// streams; a warm-up runs the same load first and is left out of h2load's figures.
    /// </summary>
    public static IReadOnlyList<string> Command(string host, int port, int connections, int inFlight, double durationS, string frameFile, string logFile,
        double warmupS = 0)
    {
        var streams = (int)Math.Ceiling(inFlight / (double)connections);
        return
        [
            "h2load", "-c", connections.ToString(CultureInfo.InvariantCulture), "-m", streams.ToString(CultureInfo.InvariantCulture),
            "-D", Math.Max(1, (int)Math.Round(durationS)).ToString(CultureInfo.InvariantCulture),
            .. warmupS > 0 ? [$"--warm-up-time={Math.Max(1, (int)Math.Round(warmupS * 1000)).ToString(CultureInfo.InvariantCulture)}ms"] : Array.Empty<string>(),
            "-d", frameFile, "-H", "content-type: application/grpc", "-H", "te: trailers", $"--log-file={logFile}",
            $"http://{host}:{port}{UnaryPath}",
        ];
    }

    /// <summary>The line h2load prints as its main duration (the one it counts) begins, warm-up or not.</summary>
    private const string MainDurationStarted = "Main benchmark duration is started";

    [GeneratedRegex(@"finished in (?<t>[\d.]+)(?<u>us|ms|s), (?<rps>[\d.]+) req/s")]
    private static partial Regex Finished();

    [GeneratedRegex(@"requests: \d+ total, \d+ started, \d+ done, (?<ok>\d+) succeeded, (?<failed>\d+) failed, (?<errored>\d+) errored, (?<timeout>\d+) timeout")]
    private static partial Regex Requests();

    /// <summary>
    /// Reads h2load's summary; a run that never got as far as printing one is an error that quotes it.
    /// Its "finished in" includes the warm-up while its counts and req/s cover the main duration
    /// only, so the warm-up is taken off: the seconds are those the counts were made in.
    /// </summary>
    public static H2LoadOutput Parse(string output, double warmupS = 0)
    {
        var finished = Finished().Match(output);
        var requests = Requests().Match(output);
        if (!finished.Success || !requests.Success)
            throw new FormatException($"h2load printed no summary: {string.Join(" | ", output.Split('\n', StringSplitOptions.RemoveEmptyEntries).TakeLast(3))}");
        var t = double.Parse(finished.Groups["t"].Value, CultureInfo.InvariantCulture);
        var total = finished.Groups["u"].Value switch { "us" => t / 1e6, "ms" => t / 1e3, _ => t };
        // A run that ended inside its warm-up (every connection refused, say) counted only failures: its whole time stands.
        var seconds = total > warmupS ? total - warmupS : total;
        long N(string g) => long.Parse(requests.Groups[g].Value, CultureInfo.InvariantCulture);
        return new H2LoadOutput(seconds, N("ok"), N("failed"), N("errored"), N("timeout"), double.Parse(finished.Groups["rps"].Value, CultureInfo.InvariantCulture));
    }

    /// <summary>
    /// The per-request log (start in us since the epoch, HTTP status, duration in us), as
    /// latency samples in nanoseconds for the requests that got a 2xx: the same percentiles as every other row.
    /// </summary>
    public static List<long> ReadLogSamples(string logFile)
    {
        var samples = new List<long>();
        if (!File.Exists(logFile)) return samples;
        foreach (var line in File.ReadLines(logFile))
        {
            var f = line.Split('\t');
            if (f.Length >= 3 && int.TryParse(f[1], out var status) && status is >= 200 and < 300 && long.TryParse(f[2], out var us))
                samples.Add(us * 1000);
        }
        return samples;
    }
}
