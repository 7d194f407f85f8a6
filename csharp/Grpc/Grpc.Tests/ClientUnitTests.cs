using GrpcBench.Client;
using GrpcBench.Client.Lean;
using GrpcBench.Server;

namespace GrpcBench.Tests;

public sealed class ClientUnitTests
{
    private static ClientSettings Settings(params string[] args) => ClientSettings.Parse(args, _ => null);

    [Fact]
    public void Payloads_differ_by_slot_and_request_and_one_wrong_byte_is_caught()
    {
        var bench = new Workbench(Settings("--port", "1", "--payload", "64"));
        Assert.NotEqual(bench.Payload(0, 0).ToArray(), bench.Payload(1, 0).ToArray());
        Assert.NotEqual(bench.Payload(0, 0).ToArray(), bench.Payload(0, 1).ToArray());
        Assert.Equal((byte)((3 + 5 + 7) % 251), bench.Payload(3, 5).Span[7]);

        var echoed = bench.Payload(2, 9).ToArray();
        Assert.Equal(64, bench.CheckEcho(echoed, 2, 9));
        echoed[40] ^= 0x10;
        var e = Assert.Throws<CallFailedException>(() => bench.CheckEcho(echoed, 2, 9));
        Assert.Equal("wrong echo", e.Kind);
        Assert.Throws<CallFailedException>(() => bench.CheckEcho(echoed.AsSpan(0, 63), 2, 9));
    }

    [Fact]
    public void Settings_come_from_arguments_before_the_environment()
    {
        var env = new Dictionary<string, string> { ["SERVER_ADDR"] = "unix:/run/x.sock", ["CONNECTIONS"] = "7", ["DURATION"] = "2", ["RATE_LIMIT"] = "50" };
        var s = ClientSettings.Parse(["--connections", "9"], env.GetValueOrDefault);
        Assert.Equal(new ServerAddress.Unix("/run/x.sock"), s.Address);
        Assert.Equal(9, s.Concurrency);
        Assert.Equal(TimeSpan.FromSeconds(2), s.Duration);
        Assert.Equal(50, s.Rate);

        var vsock = ClientSettings.Parse([], new Dictionary<string, string> { ["SERVER_ADDR"] = "3:5000", ["TRANSPORT"] = "vsock" }.GetValueOrDefault);
        Assert.Equal(new ServerAddress.Vsock(3, 5000), vsock.Address);
        Assert.Equal(10, Settings("--port", "1", "--connections", "10000").Channels); // 1,000 calls per connection
    }

    [Fact]
    public void Server_settings_come_from_arguments_before_the_environment()
    {
        var env = new Dictionary<string, string> { ["SERVER_ADDR"] = "vsock://any:7000", ["WORKER_THREADS"] = "3", ["LOG_LEVEL"] = "debug" };
        var s = ServerSettings.Parse([], env.GetValueOrDefault);
        Assert.Equal(new ServerAddress.Vsock(uint.MaxValue, 7000), s.Address);
        Assert.Equal(3, s.WorkerThreads);
        Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Debug, s.LogLevel);
        Assert.Equal(new ServerAddress.Tcp("::1", 0), ServerSettings.Parse(["--host", "::1"], env.GetValueOrDefault).Address);
        Assert.Throws<GrpcBench.UsageException>(() => ServerSettings.Parse(["--worker-threads", "0"], _ => null));
    }

    [Fact]
    public void Hpack_decoder_reads_static_literal_and_dynamic_entries()
    {
        var decoder = new HpackDecoder();
        // :status 200 (static 8); grpc-status: 0 as a literal with incremental indexing, new name.
        byte[] first = [0x88, 0x40, 11, .. "grpc-status"u8, 1, (byte)'0'];
        var h = decoder.Decode(first);
        Assert.Equal(200, h.HttpStatus);
        Assert.Equal(0, h.GrpcStatus);
        // The same trailer again, now as dynamic index 62.
        Assert.Equal(0, decoder.Decode([0xBE]).GrpcStatus);
        // grpc-status 3 and a percent-encoded message, without indexing.
        byte[] error = [0x00, 11, .. "grpc-status"u8, 1, (byte)'3', 0x00, 12, .. "grpc-message"u8, 5, .. "a%20b"u8];
        var e = decoder.Decode(error);
        Assert.Equal(3, e.GrpcStatus);
        Assert.Equal("a b", e.GrpcMessage);
        Assert.Throws<H2Exception>(() => decoder.Decode([0x88, 0x00, 0x81, 0xFF])); // Huffman: refused clearly
    }

    [Fact]
    public void Hpack_encoder_indexes_request_headers_once_per_connection()
    {
        var encoder = new HpackEncoder("127.0.0.1:50051");
        var first = new ByteWriter(256);
        encoder.EncodeRequest("/bench.Echo/Unary", first);
        var second = new ByteWriter(256);
        encoder.EncodeRequest("/bench.Echo/Unary", second);
        Assert.True(first.Length > 60);
        Assert.Equal(new byte[] { 0x83, 0x86, 0xC1, 0xC0, 0xBF, 0xBE }, second.Buffer.AsSpan(0, second.Length).ToArray());
    }
}
