using System.Net;
using System.Net.Sockets;
using BenchmarkDotNet.Attributes;

namespace Bench.Echo.Benchmarks;

/// <summary>
/// One 100-byte echo round trip over loopback, server and client in one process, for each
/// server design: the cost of the design without the harness, the kernel scheduler or a
/// second process in the way.
/// </summary>
[MemoryDiagnoser]
public class LoopbackRoundTrip
{
    private Socket _listener = null!;
    private Socket _client = null!;
    private readonly byte[] _request = new byte[100];
    private readonly byte[] _reply = new byte[100];

    [Params(ServerDesign.ZeroByte, ServerDesign.Async, ServerDesign.Saea, ServerDesign.Pipelines)]
    public ServerDesign Design { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen();
        var accepted = _listener.AcceptAsync();
        _client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        _client.Connect(_listener.LocalEndPoint!);
        var server = accepted.GetAwaiter().GetResult();
        server.NoDelay = true;
        _ = EchoServer.ConnectionHandler(Design)(server);
        Wire.FillPayload(_request, 1, 1);
    }

    [Benchmark]
    public async Task<int> Echo100Bytes()
    {
        await _client.SendAsync(_request, SocketFlags.None);
        var got = 0;
        while (got < _reply.Length) got += await _client.ReceiveAsync(_reply.AsMemory(got), SocketFlags.None);
        return got;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _client.Dispose();
        _listener.Dispose();
    }
}
