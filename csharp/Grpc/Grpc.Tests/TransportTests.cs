using Grpc.Core;
using System.Net.Sockets;
using Google.Protobuf;
using GrpcBench.Protos;
using GrpcBench.Server;

namespace GrpcBench.Tests;

public sealed class TransportTests
{
    private static string TempSocketPath() => Path.Combine(Path.GetTempPath(), $"grpc-bench-{Guid.NewGuid():N}.sock");

    [Fact]
    public async Task Unix_socket_serves_echo_and_crypto_end_to_end_and_removes_its_file()
    {
        var path = TempSocketPath();
        await using (var server = await LiveServer.StartAsync(new ServerAddress.Unix(path)))
        {
            Assert.Equal("READY unix " + path, server.ReadyLine);
            var reply = await new Echo.EchoClient(server.Channel).UnaryAsync(new EchoRequest { Payload = ByteString.CopyFromUtf8("over unix") });
            Assert.Equal("over unix", reply.Payload.ToStringUtf8());

            // And our load client, as a process, over the same socket.
            var run = await Programs.RunAsync(Programs.Client, "--unix", path, "--in-flight", "8", "--duration", "0.5",
                "--workload", "grpc-unary");
            Assert.True(run.ExitCode == 0, run.Stderr);
            Assert.True(run.Result()["ok"] > 0);
            Assert.Equal(0, run.Result()["failed"]);
        }
        Assert.False(File.Exists(path));
    }

    [Fact]
    public async Task A_stale_socket_file_from_a_killed_server_does_not_block_the_next_one()
    {
        var path = TempSocketPath();
        // A process that binds and exits without cleaning up (.NET would unlink the file itself).
        var run = await Programs.RunAsync("python3", "-c", "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", path);
        Assert.Equal(0, run.ExitCode);
        Assert.True(File.Exists(path));
        await using var server = await LiveServer.StartAsync(new ServerAddress.Unix(path));
        Assert.Equal("x", (await new Echo.EchoClient(server.Channel).UnaryAsync(new EchoRequest { Payload = ByteString.CopyFromUtf8("x") })).Payload.ToStringUtf8());
    }

    [Fact]
    public async Task The_VSOCK_transport_serves_gRPC_when_given_a_listening_socket()
    {
        // This machine has no VSOCK route, so drive the same descriptor transport (accept4 and
        // pipes, no Kestrel socket code) with a listening Unix socket instead.
        var path = TempSocketPath();
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(128);
        var settings = new ServerSettings(new DescriptorAddress(listener.SafeHandle.DangerousGetHandle()), 2,
            Microsoft.Extensions.Logging.LogLevel.Warning, 4 << 20, false);
        await using var server = await BenchServer.StartAsync(settings);
        using var channel = LiveServer.OpenChannel(new ServerAddress.Unix(path));
        var echo = new Echo.EchoClient(channel);
        for (var i = 0; i < 50; i++)
        {
            var payload = ByteString.CopyFrom(Enumerable.Range(0, 1000 + i).Select(b => (byte)(b * 7 + i)).ToArray());
            Assert.Equal(payload, (await echo.UnaryAsync(new EchoRequest { Payload = payload })).Payload);
        }
        using var call = echo.Stream();
        await call.RequestStream.WriteAsync(new EchoRequest { Payload = ByteString.CopyFromUtf8("streamed") });
        Assert.True(await call.ResponseStream.MoveNext());
        Assert.Equal("streamed", call.ResponseStream.Current.Payload.ToStringUtf8());
        await call.RequestStream.CompleteAsync();
    }

    [Fact]
    public async Task Without_a_VSOCK_route_the_server_says_so_at_once_and_exits_1()
    {
        // CID 1 is the local loopback CID; without vsock_loopback nothing can bind it.
        var run = await Programs.RunAsync(Programs.Server, "--vsock", "1:5999");
        Assert.Equal(1, run.ExitCode);
        Assert.Equal("", run.Stdout);
        Assert.Contains("vsock", run.Stderr, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Without_a_VSOCK_route_the_client_says_so_and_exits_1()
    {
        var run = await Programs.RunAsync(Programs.Client, "--vsock", "1:5999", "--in-flight", "2", "--timeout", "1");
        Assert.Equal(1, run.ExitCode);
        Assert.Contains("vsock", run.Stderr, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(0, run.Result()["ok"]);
    }
}
