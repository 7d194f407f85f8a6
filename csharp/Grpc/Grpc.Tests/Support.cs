using Microsoft.Extensions.Logging;
using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Grpc.Net.Client;
using GrpcBench.Server;

namespace GrpcBench.Tests;

/// <summary>The real server, in this process, on a real socket (TCP loopback or a Unix socket).</summary>
public sealed class LiveServer : IAsyncDisposable
{
    private readonly RunningServer _server;

    private LiveServer(RunningServer server, ServerAddress address)
    {
        _server = server;
        Address = address;
        Channel = OpenChannel(address);
    }

    public ServerAddress Address { get; }
    public GrpcChannel Channel { get; }
    public string ReadyLine => _server.ReadyLine;
    public int Port => int.Parse(_server.ReadyAddress.Split(':')[^1]);

    public static async Task<LiveServer> StartAsync(ServerAddress? address = null, int maxMessageBytes = 4 << 20, bool defaults = false)
    {
        var settings = new ServerSettings(address ?? new ServerAddress.Tcp("127.0.0.1", 0), 2, LogLevel.Warning, maxMessageBytes, defaults);
        var server = await BenchServer.StartAsync(settings);
        var bound = settings.Address is ServerAddress.Tcp
            ? new ServerAddress.Tcp("127.0.0.1", int.Parse(server.ReadyAddress.Split(':')[^1]))
            : settings.Address;
        return new LiveServer(server, bound);
    }

    public static GrpcChannel OpenChannel(ServerAddress address)
    {
        var handler = new SocketsHttpHandler();
        string uri;
        if (address is ServerAddress.Tcp tcp) uri = $"http://127.0.0.1:{tcp.Port}";
        else
        {
            var path = address is ServerAddress.Unix u ? u.Path : throw new ArgumentException("test channels speak tcp or unix");
            uri = "http://localhost";
            handler.ConnectCallback = async (_, cancel) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cancel);
                return new NetworkStream(socket, ownsSocket: true);
            };
        }
        return GrpcChannel.ForAddress(uri, new GrpcChannelOptions { HttpHandler = handler, MaxSendMessageSize = null, MaxReceiveMessageSize = null });
    }

    public async ValueTask DisposeAsync()
    {
        Channel.Dispose();
        await _server.DisposeAsync();
    }
}

/// <summary>One tuned TCP server shared by the tests of a class.</summary>
public sealed class ServerFixture : IAsyncLifetime
{
    public LiveServer Server { get; private set; } = null!;
    public async Task InitializeAsync() => Server = await LiveServer.StartAsync();
    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>What a finished program said and how it ended.</summary>
public sealed record ProgramRun(int ExitCode, string Stdout, string Stderr)
{
    public string ResultLine => Stdout.Split('\n').Single(l => l.StartsWith("RESULT "));

    public Dictionary<string, long> Result() =>
        ResultLine["RESULT ".Length..].Split(' ').Select(p => p.Split('=')).ToDictionary(p => p[0], p => long.Parse(p[1]));
}

/// <summary>The built server and client programs, run as real processes.</summary>
public static class Programs
{
    // Tests run from Grpc.Tests/bin/<configuration>/<tfm>/; the programs were built beside it.
    private static string Built(string project, string name) =>
        Path.GetFullPath(Path.Combine(AppContext.BaseDirectory.Replace(
            $"{Path.DirectorySeparatorChar}Grpc.Tests{Path.DirectorySeparatorChar}",
            $"{Path.DirectorySeparatorChar}{project}{Path.DirectorySeparatorChar}"), name));

    public static string Client => Built("Grpc.Client", "csharp-grpc-client");
    public static string Server => Built("Grpc.Server", "csharp-grpc-server");

    public static Process Start(string program, params string[] args)
    {
        var info = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args) info.ArgumentList.Add(a);
        return Process.Start(info)!;
    }

    public static async Task<ProgramRun> RunAsync(string program, params string[] args)
    {
        using var process = Start(program, args);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{Path.GetFileName(program)} {string.Join(' ', args)} did not finish within 60 s");
        }
        return new ProgramRun(process.ExitCode, await stdout, await stderr);
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);

    public static void Terminate(Process process) => kill(process.Id, 15);
}
