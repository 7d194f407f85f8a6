using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace GrpcBench.Server;

/// <summary>A started server and the address its ready line names (`tcp 127.0.0.1:40123`).</summary>
public sealed class RunningServer(WebApplication app, string readyAddress, Action cleanup) : IAsyncDisposable
{
    public WebApplication App => app;
    public string ReadyAddress => readyAddress;
    public string ReadyLine => "READY " + readyAddress;

    public async ValueTask DisposeAsync()
    {
        await app.StopAsync();
        await app.DisposeAsync();
        cleanup();
    }
}

/// <summary>A socket already listening, given by descriptor; only tests use it, to drive the VSOCK transport over a Unix socket.</summary>
public sealed record DescriptorAddress(nint Fd) : ServerAddress;

/// <summary>Builds and starts the gRPC server: Echo, Crypto, health and reflection on Kestrel.</summary>
public static class BenchServer
{
    /// <summary>Streams one HTTP/2 connection may carry at once (Kestrel's default is 100).</summary>
    public const int MaxStreamsPerConnection = 1000;

    public static async Task<RunningServer> StartAsync(ServerSettings settings, CancellationToken cancel = default)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });

        // stdout carries the ready line and nothing else, so every log line goes to stderr.
        builder.Logging.ClearProviders();
        builder.Logging.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        builder.Logging.SetMinimumLevel(settings.LogLevel);

        // The contract gives a server one second to exit after SIGTERM; calls still running
        // after half of that are aborted rather than waited for.
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromMilliseconds(500));

        ThreadPool.SetMinThreads(settings.WorkerThreads, settings.WorkerThreads);
        builder.WebHost.UseSockets(o =>
        {
            // Ask for the largest backlog; the kernel clamps it to net.core.somaxconn.
            o.Backlog = 65535;
            if (settings.Defaults) return;
            // One I/O queue per worker thread the process may use (1 under `taskset -c 0`).
            o.IOQueueCount = settings.WorkerThreads;
            // Not UnsafePreferInlineScheduling: tried, it cut h2load's rate to 0.3-0.5x (README.md,
            // "Tuning"): run inline on the socket's completion, each response went out in its own
            // send instead of being coalesced with the others that were ready.
        });

        // Kestrel's socket transport for TCP and Unix sockets; ours for VSOCK (see DescriptorTransport).
        builder.Services.AddSingleton<Microsoft.AspNetCore.Connections.IConnectionListenerFactory, DescriptorTransportFactory>();

        var unixPath = (settings.Address as ServerAddress.Unix)?.Path;
        nint vsockFd = -1;
        uint vsockPort = 0;
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false; // a few bytes less on every response, nothing lost
            if (!settings.Defaults) Tune(k.Limits.Http2);
            Action<ListenOptions> h2c = lo => lo.Protocols = HttpProtocols.Http2; // gRPC without TLS: HTTP/2 prior knowledge
            switch (settings.Address)
            {
                case ServerAddress.Tcp tcp:
                    k.Listen(Resolve(tcp.Host), tcp.Port, h2c);
                    break;
                case ServerAddress.Unix unix:
                    RemoveStaleSocket(unix.Path);
                    k.ListenUnixSocket(unix.Path, h2c);
                    break;
                case ServerAddress.Vsock vsock:
                    (vsockFd, vsockPort) = GrpcBench.Vsock.Listen(vsock.Cid, vsock.Port, 65535);
                    k.Listen(new DescriptorEndPoint(vsockFd, $"vsock {vsock.Cid}:{vsockPort}"), h2c);
                    break;
                case DescriptorAddress d: // tests: the descriptor transport over a Unix socket
                    k.Listen(new DescriptorEndPoint(d.Fd, "fd " + d.Fd), h2c);
                    break;
            }
        });

        builder.Services.AddSingleton<SigningKeys>();
        builder.Services.AddGrpc(o =>
        {
            // Enforced in both modes: a message larger than this ends its call with
            // RESOURCE_EXHAUSTED before the server buffers it.
            o.MaxReceiveMessageSize = settings.MaxMessageBytes;
            o.MaxSendMessageSize = settings.MaxMessageBytes;
        });
        // grpc-dotnet reports UNKNOWN for the whole server until a check is registered.
        // Each service by name too, as gRPC's other servers answer: a client may ask for the one it calls.
        builder.Services.AddGrpcHealthChecks(o =>
        {
            foreach (var service in new[] { GrpcBench.Protos.Echo.Descriptor.FullName, GrpcBench.Protos.Crypto.Descriptor.FullName }) o.Services.Map(service, _ => true);
        }).AddCheck("bench", () => HealthCheckResult.Healthy());
        builder.Services.AddGrpcReflection();

        var app = builder.Build();
        app.MapGrpcService<EchoService>();
        app.MapGrpcService<CryptoService>();
        app.MapGrpcHealthChecksService();
        app.MapGrpcReflectionService();

        // Make the keys now, not on the first call, so start-up cost stays out of measurements.
        app.Services.GetRequiredService<SigningKeys>();
        await app.StartAsync(cancel);

        var ready = settings.Address switch
        {
            ServerAddress.Tcp => "tcp " + BoundTcpAddress(app),
            ServerAddress.Unix unix => "unix " + unix.Path,
            DescriptorAddress d => "fd " + d.Fd,
            ServerAddress.Vsock vsock => $"vsock {(vsock.Cid == GrpcBench.Vsock.CidAny ? "any" : vsock.Cid.ToString())}:{vsockPort}",
            _ => throw new InvalidOperationException(),
        };
        return new RunningServer(app, ready, () => { if (unixPath is not null) RemoveStaleSocket(unixPath); });
    }

    /// <summary>The HTTP/2 settings of the tuned server; README.md gives the reasons and figures.</summary>
    private static void Tune(Http2Limits h2)
    {
        // Let one connection carry up to 1,000 concurrent calls, so 10,000 calls need 10
        // connections instead of 100 (fewer connections: fewer reads and syscalls per call).
        h2.MaxStreamsPerConnection = MaxStreamsPerConnection;
        // Flow-control windows bound what one connection and one stream may have in flight,
        // and so what the server buffers. Kestrel's 1 MiB connection window stalls 1,000
        // streams of 64 KiB each; 16 MiB does not, and is still a fixed bound per connection.
        h2.InitialConnectionWindowSize = 16 << 20;
        h2.InitialStreamWindowSize = 1 << 20;
        // Ping idle connections so a peer that vanished (no FIN, no RST) is found and its
        // streams released within 40 s instead of holding memory until TCP gives up.
        h2.KeepAlivePingDelay = TimeSpan.FromSeconds(30);
        h2.KeepAlivePingTimeout = TimeSpan.FromSeconds(10);
    }

    private static IPAddress Resolve(string host) =>
        IPAddress.TryParse(host, out var ip) ? ip
        : host == "localhost" ? IPAddress.Loopback
        : Dns.GetHostAddresses(host).FirstOrDefault() ?? throw new IOException($"cannot resolve host '{host}'");

    private static string BoundTcpAddress(WebApplication app)
    {
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var uri = new Uri(address);
        return $"{uri.Host}:{uri.Port}"; // Uri keeps IPv6 brackets: [::1]:40123
    }

    /// <summary>
    /// A socket file left by a killed server makes the bind fail. Remove it only when it is a
    /// socket and nobody answers on it; a live server's socket or any other file is left alone
    /// (the bind then fails with a clear error).
    /// </summary>
    private static void RemoveStaleSocket(string path)
    {
        if (!UnixSocketFile.IsSocket(path)) return;
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(path));
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
        {
            File.Delete(path);
        }
        catch (SocketException)
        {
            // not ours to judge: let the bind report it
        }
    }
}
