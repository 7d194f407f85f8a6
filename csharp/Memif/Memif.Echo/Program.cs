using System.Diagnostics;
using System.Runtime.InteropServices;
using Memif;
using Memif.Echo;

// memif echo: "server" answers frames with MACs swapped; "client" loads it and measures.
// Both follow docs/contract.md (memif transport): ready line, RESULT line, samples, exit codes.
const string Usage = """
    usage:
      Memif.Echo server --memif-socket PATH [--role master|slave] [--mode polling|interrupt] [--config s.json]
                        [--interface-id N] [--queues N] [--secret S]
      Memif.Echo client --memif-socket PATH [--payload BYTES] [--workload memif-polling|memif-interrupt]
                        [--duration S] [--samples PATH] [--connections WINDOW] [--timeout S] [--config c.json]
                        [--role master|slave] [--interface-id N] [--queues N] [--secret S]
    defaults follow the perf_tool memif test: the client is the memif master, the server the slave.
    """;

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
    if (args.Length == 0) throw new UsageException("say 'server' or 'client'");
    return args[0] switch
    {
        "server" => RunServer(args[1..], cts.Token),
        "client" => RunClient(args[1..], cts.Token),
        _ => throw new UsageException($"unknown command '{args[0]}'"),
    };
}
catch (UsageException e)
{
    Console.Error.WriteLine($"memif: {e.Message}");
    Console.Error.WriteLine(Usage);
    return 2;
}
catch (Exception e) when (e is MemifException or ArgumentException or TimeoutException)
{
    Console.Error.WriteLine($"memif: {e.Message}");
    return 1;
}

static EchoConfig Configure(Arguments a)
{
    var config = a.Get("config") is { } path ? EchoConfig.Load(path) : new EchoConfig();
    return config with
    {
        Socket = a.Get("memif-socket") ?? config.Socket,
        Role = a.Get("role") ?? config.Role,
        Mode = a.Get("mode") ?? config.Mode,
        Secret = a.Get("secret") ?? config.Secret,
        InterfaceId = (uint?)a.Int("interface-id", 0, int.MaxValue) ?? config.InterfaceId,
        Queues = a.Int("queues", 1, 255) ?? config.Queues,
    };
}

static int RunServer(string[] args, CancellationToken stop)
{
    var a = new Arguments(args, new HashSet<string> { "memif-socket", "role", "mode", "config", "interface-id", "queues", "secret" });
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
    var a = new Arguments(args, new HashSet<string>
    {
        "memif-socket", "role", "mode", "config", "interface-id", "queues", "secret",
        "payload", "workload", "duration", "samples", "connections", "timeout", "rate",
    });
    if (a.Double("rate", 0, double.MaxValue) is > 0) throw new UsageException("--rate (open loop) is not supported over memif; the window sets the load");
    var config = Configure(a);
    var workloadMode = a.Get("workload") switch
    {
        null => (MemifMode?)null,
        "memif-polling" => MemifMode.Polling,
        "memif-interrupt" => MemifMode.Interrupt,
        var w => throw new UsageException($"workload must be memif-polling or memif-interrupt, got '{w}'"),
    };
    // An explicit --mode wins, then the workload, then the config file.
    var options = config.ToOptions(MemifRole.Master, MemifMode.Polling, "csharp-memif-load") with { InterfaceName = "load" };
    if (a.Get("mode") is null && workloadMode is { } wm) options = options with { Mode = wm };
    int frameSize = a.Int("payload", EthernetFrame.MinBenchmarkFrame, 65535) ?? 64;
    var duration = TimeSpan.FromSeconds(a.Double("duration", 0.001, 86400) ?? 5);
    var timeout = TimeSpan.FromSeconds(a.Double("timeout", 0.1, 3600) ?? 30);
    int segments = (frameSize + options.BufferSize - 1) / options.BufferSize;
    int maxWindow = options.Queues * (options.RingSize / segments);
    int window = a.Int("connections", 1, int.MaxValue) ?? config.Window ?? 64;
    if (window > maxWindow)
    {
        Console.Error.WriteLine($"memif client: window {window} exceeds what {options.Queues} ring(s) of {options.RingSize} hold; using {maxWindow}");
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
    using (listener)
    using (connection)
    {
        Console.Error.WriteLine($"memif client: connected to '{connection.PeerName}', {connection.Options.Queues} queue(s), ring {connection.Options.RingSize}, {connection.Options.Mode}");
        r = new LoadClient(connection, new LoadSettings(frameSize, window, duration, timeout, a.Get("samples")), stop).Run();
        connection.Disconnect("load finished");
    }
    double seconds = r.WallNs / 1e9;
    double mpps = seconds > 0 ? r.Ok / seconds / 1e6 : 0;
    double avgUs = r.Ok > 0 ? r.SampleSumNs / (double)r.Ok / 1000 : 0;
    Console.Out.WriteLine($"C# memif: {frameSize} B frames, window {window}, {options.Mode}: {r.Ok} echoed in {seconds:0.###} s = {mpps:0.###} Mpps, avg round trip = {avgUs:0.#}us");
    Console.Out.WriteLine($"RESULT ok={r.Ok} failed={r.Failed} wall_ns={r.WallNs} bytes={r.Bytes} conn_min={r.ConnMin} conn_max={r.ConnMax}");
    return r.Failed == 0 && r.Ok > 0 ? 0 : 1;
}
