using System.Diagnostics;
using System.Runtime.InteropServices;
using Bench.CommandLine;
using Memif;
using Memif.Echo;

// memif echo: "server" answers frames with MACs swapped; "client" loads it and measures.
// Both follow docs/contract.md (memif transport): ready line, RESULT line, samples, exit codes.
const string Usage = """
    usage:
      Memif.Echo server --memif-socket PATH [--role master|slave] [--mode polling|interrupt] [--config s.json]
                        [--interface-id N] [--queues N] [--secret S]
      Memif.Echo client --memif-socket PATH [--payload BYTES] [--workload memif-polling|memif-interrupt]
                        [--duration S] [--warmup S] [--samples PATH] [--in-flight FRAMES] [--timeout S] [--config c.json]
                        [--role master|slave] [--interface-id N] [--queues N] [--secret S] [--connections 1]
    --in-flight: frames in flight across all queues (the window; default 64, or "window" in the config).
    --connections: only 1, one memif connection per interface (more load: --queues, --in-flight).
    defaults follow the perf_tool memif test: the client is the memif master, the server the slave.
    """;
const string ProgramName = "Memif.Echo";

if (CommandArguments.AsksForHelp(args))
{
    Console.Out.WriteLine(Usage);
    return 0;
}

using var cts = new CancellationTokenSource();
void OnSignal(PosixSignalContext ctx)
{
    ctx.Cancel = true; // we exit 0 ourselves once the loops notice
    cts.Cancel();
}
using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
using var intr = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);

try
{
    return args switch
    {
        ["server", .. var rest] => RunServer(rest, cts.Token),
        ["client", .. var rest] => RunClient(rest, cts.Token),
        [] => throw new UsageException("say 'server' or 'client' (--help for usage)"),
        [var other, ..] => throw new UsageException($"unknown command '{other}': say 'server' or 'client' (--help for usage)"),
    };
}
catch (UsageException e)
{
    // Only what the user got wrong lands here; anything else is a bug and crashes with its stack trace.
    return CommandArguments.ReportUsageError(ProgramName, e);
}
catch (Exception e) when (e is MemifException or TimeoutException)
{
    // The peer or the machine said no (refused handshake, socket in use, no master in time): exit 1.
    Console.Error.WriteLine($"{ProgramName}: {e.Message}");
    return 1;
}

static EchoConfig Configure(CommandArguments a)
{
    var config = a.Text("config") is { } path ? EchoConfig.Load(path) : new EchoConfig();
    return config with
    {
        Socket = a.Text("memif-socket") ?? config.Socket,
        Role = a.Text("role") ?? config.Role,
        Mode = a.Text("mode") ?? config.Mode,
        Secret = a.Text("secret") ?? config.Secret,
        InterfaceId = (uint)a.LongInteger("interface-id", config.InterfaceId, 0, uint.MaxValue),
        Queues = a.Integer("queues", config.Queues, 1, 255),
    };
}

static int RunServer(string[] args, CancellationToken stop)
{
    var a = new CommandArguments(args, ["memif-socket", "role", "mode", "config", "interface-id", "queues", "secret"]);
    var config = Configure(a);
    var options = config.ToOptions(MemifRole.Slave, MemifMode.Polling, "csharp-memif-echo") with { InterfaceName = "echo" };
    if (config.Core is { } core) CpuPinning.PinCurrentThread(core);
    var server = new EchoServer(options, stop);
    server.Run(() =>
    {
        Console.Out.WriteLine($"READY memif {options.SocketPath}");
        Console.Out.Flush();
    });
    return 0;
}

static int RunClient(string[] args, CancellationToken stop)
{
    var a = new CommandArguments(args,
    [
        "memif-socket", "role", "mode", "config", "interface-id", "queues", "secret",
        "payload", "workload", "duration", "samples", "connections", "in-flight", "timeout", "rate", "warmup",
    ]);
    if (a.Number("rate", 0, 0, 1e12) > 0) throw new UsageException("--rate (open loop) is not supported over memif; --in-flight sets the load");
    // The contract's --connections counts transport connections: a memif client has one per interface.
    if (a.Text("connections") is { } connections && connections != "1")
        throw new UsageException($"--connections must be 1, not '{connections}': the client opens one memif connection per interface; " +
                                 "for more load use --queues N (queue pairs) or --in-flight N (frames in flight)");
    var config = Configure(a);
    var workloadMode = a.Text("workload") switch
    {
        null => (MemifMode?)null,
        "memif-polling" => MemifMode.Polling,
        "memif-interrupt" => MemifMode.Interrupt,
        var w => throw new UsageException($"workload must be memif-polling or memif-interrupt, got '{w}'"),
    };
    // An explicit --mode wins, then the workload, then the config file.
    var options = config.ToOptions(MemifRole.Master, MemifMode.Polling, "csharp-memif-load") with { InterfaceName = "load" };
    if (!a.Has("mode") && workloadMode is { } wm) options = options with { Mode = wm };
    int frameSize = a.Integer("payload", 64, EthernetFrame.MinBenchmarkFrame, 65535);
    var duration = TimeSpan.FromSeconds(a.Number("duration", 5, 0.001, 86400));
    var warmup = TimeSpan.FromSeconds(a.Number("warmup", 0, 0, 86400));
    var timeout = TimeSpan.FromSeconds(a.Number("timeout", 30, 0.1, 3600));
    int segments = (frameSize + options.BufferSize - 1) / options.BufferSize;
    int maxWindow = options.Queues * (options.RingSize / segments);
    int window = a.Integer("in-flight", config.Window ?? 64, 1, int.MaxValue);
    if (window > maxWindow)
    {
        Console.Error.WriteLine($"memif client: {window} frames in flight exceed what {options.Queues} ring(s) of {options.RingSize} hold; using {maxWindow}");
        window = maxWindow;
    }
    if (config.Core is { } core) CpuPinning.PinCurrentThread(core);

    MemifConnection? connection;
    MemifListener? listener = null;
    try
    {
        if (options.Role == MemifRole.Master)
        {
            listener = MemifListener.Listen(options);
            listener.Rejected = reason => Console.Error.WriteLine($"memif client: refused a slave: {reason}");
            connection = listener.Accept(timeout, stop);
        }
        else
        {
            connection = MemifSlave.Connect(options, timeout, stop);
        }
    }
    catch (OperationCanceledException)
    {
        connection = null;
    }
    if (connection is null)
    {
        listener?.Dispose();
        Console.Error.WriteLine($"memif client: no peer connected on {options.SocketPath} within {timeout.TotalSeconds:0.#} s");
        Console.Out.WriteLine("RESULT ok=0 failed=1 wall_ns=0 bytes=0 conn_min=0 conn_max=0");
        return 1;
    }

    LoadResult r;
    string cpuKeys;
    using (listener)
    using (connection)
    {
        Console.Error.WriteLine($"memif client: connected to '{connection.PeerName}', {connection.Options.Queues} queue(s), ring {connection.Options.RingSize}, {connection.Options.Mode}");
        if (warmup > TimeSpan.Zero)
        {
            // The same load on the same connection, unrecorded: the rings, caches and JIT settle first.
            var w = new LoadClient(connection, new LoadSettings(frameSize, window, warmup, timeout, SamplesPath: null), stop).Run();
            if (w.Failed > 0) Console.Error.WriteLine($"memif client: warm-up: {w.Failed} frames failed");
        }
        var measured = new MeasuredWindow();
        measured.Start();
        r = new LoadClient(connection, new LoadSettings(frameSize, window, duration, timeout, a.Text("samples")), stop).Run();
        measured.Stop();
        connection.Disconnect("load finished");
        cpuKeys = measured.ResultKeys;
    }
    double seconds = r.WallNs / 1e9;
    double mpps = seconds > 0 ? r.Ok / seconds / 1e6 : 0;
    double avgUs = r.Ok > 0 ? r.SampleSumNs / (double)r.Ok / 1000 : 0;
    Console.Out.WriteLine($"C# memif: {frameSize} B frames, window {window}, {options.Mode}: {r.Ok} echoed in {seconds:0.###} s = {mpps:0.###} Mpps, avg round trip = {avgUs:0.#}us");
    if (r.Late > 0 || r.Unexpected > 0)
        Console.Error.WriteLine($"memif client: {r.Late} late echoes (of frames already counted failed after --timeout; not counted again), " +
                                $"{r.Unexpected} unexpected frames (matching nothing sent; not counted as requests)");
    Console.Out.WriteLine($"RESULT ok={r.Ok} failed={r.Failed} wall_ns={r.WallNs} bytes={r.Bytes} conn_min={r.ConnMin} conn_max={r.ConnMax} {cpuKeys}");
    return r.Failed == 0 && r.Ok > 0 ? 0 : 1;
}
