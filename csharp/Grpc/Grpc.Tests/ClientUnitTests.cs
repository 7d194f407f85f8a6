using Bench.CommandLine;
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
        var env = new Dictionary<string, string>
        {
            ["SERVER_ADDR"] = "unix:/run/x.sock", ["CONNECTIONS"] = "3", ["IN_FLIGHT"] = "7", ["DURATION"] = "2", ["RATE_LIMIT"] = "50",
        };
        var s = ClientSettings.Parse(["--in-flight", "9"], env.GetValueOrDefault);
        Assert.Equal(new ServerAddress.Unix("/run/x.sock"), s.Address);
        Assert.Equal(9, s.InFlight);
        Assert.Equal(3, s.Connections);
        Assert.True(s.ConnectionsGiven);
        Assert.Equal(TimeSpan.FromSeconds(2), s.Duration);
        Assert.Equal(50, s.Rate);

        var vsock = ClientSettings.Parse([], new Dictionary<string, string> { ["SERVER_ADDR"] = "3:5000", ["TRANSPORT"] = "vsock" }.GetValueOrDefault);
        Assert.Equal(new ServerAddress.Vsock(3, 5000), vsock.Address);
    }

    [Fact]
    public void Connections_are_HTTP2_connections_and_in_flight_is_calls()
    {
        var s = Settings("--port", "1", "--connections", "3", "--in-flight", "50");
        Assert.Equal((3, 50, true), (s.Connections, s.InFlight, s.ConnectionsGiven));

        // Defaults: 200 calls (the harness suite's), on enough connections for 1,000 streams each, at least 2.
        var defaults = Settings("--port", "1");
        Assert.Equal((2, 200, false), (defaults.Connections, defaults.InFlight, defaults.ConnectionsGiven));
        Assert.Equal(10, Settings("--port", "1", "--in-flight", "10000").Connections);
        Assert.Equal(11, Settings("--port", "1", "--in-flight", "10001").Connections);
        Assert.Equal(1, Settings("--port", "1", "--in-flight", "1").Connections); // never more connections than calls
        Assert.Equal(4, Settings("--port", "1", "--in-flight", "4", "--connections", "8").Connections);
    }

    [Theory]
    [InlineData(new[] { "--port", "1", "--channels", "2" }, "--channels is no longer accepted: use --connections N for HTTP/2 connections and --in-flight N for calls in flight")]
    [InlineData(new[] { "--port", "1", "--connections", "0" }, "--connections must be a whole number from 1 to 10000, not '0'")]
    [InlineData(new[] { "--port", "1", "--in-flight", "1.5" }, "--in-flight must be a whole number from 1 to 1000000, not '1.5'")]
    [InlineData(new[] { "--port", "1", "--duration", "NaN" }, "--duration must be a number from 0.001 to 86400, not 'NaN'")]
    [InlineData(new[] { "--port", "1", "--in-flight", "4", "--in-flight", "5" }, "--in-flight is given twice")]
    [InlineData(new[] { "--port", "--in-flight", "4" }, "--port needs a value")]
    [InlineData(new[] { "--port=1" }, "unknown argument '--port=1' (write '--port VALUE', with a space)")]
    public void Bad_arguments_are_usage_errors_that_name_the_option_and_the_range(string[] args, string message)
    {
        var e = Assert.Throws<UsageException>(() => Settings(args));
        Assert.Equal(message, e.Message);
    }

    [Fact]
    public void Environment_settings_go_through_the_same_range_checks()
    {
        UsageException Fails(params (string, string)[] variables) => Assert.Throws<UsageException>(() =>
            ClientSettings.Parse([], variables.Append(("SERVER_ADDR", "127.0.0.1:9")).ToDictionary(v => v.Item1, v => v.Item2).GetValueOrDefault));
        Assert.Equal("CONNECTIONS must be a whole number from 1 to 10000, not '20000'", Fails(("CONNECTIONS", "20000")).Message);
        Assert.Equal("IN_FLIGHT must be a whole number from 1 to 1000000, not '-3'", Fails(("IN_FLIGHT", "-3")).Message);
        Assert.Equal("RATE_LIMIT must be a number from 0 to 1000000000, not 'fast'", Fails(("RATE_LIMIT", "fast")).Message);
        Assert.Equal("the port in '127.0.0.1:x' must be a whole number from 0 to 65535, not 'x'",
            Assert.Throws<UsageException>(() => ClientSettings.Parse([], new Dictionary<string, string> { ["SERVER_ADDR"] = "127.0.0.1:x" }.GetValueOrDefault)).Message);
        // An argument wins over the variable, and its own range check names the argument.
        Assert.Equal(5, ClientSettings.Parse(["--connections", "5"], new Dictionary<string, string> { ["SERVER_ADDR"] = "127.0.0.1:9", ["CONNECTIONS"] = "x" }.GetValueOrDefault).Connections);
    }

    [Fact]
    public void The_shared_parser_tells_a_programs_mistake_from_a_users()
    {
        var a = new CommandArguments(["--name", "x", "--flag"], valued: ["name", "other"], switches: ["flag"]);
        Assert.Equal("x", a.Text("name"));
        Assert.True(a.Switch("flag"));
        Assert.False(a.Has("other"));
        Assert.Equal(7, a.Integer("other", 7, 1, 10));
        // Asking for a name the command never declared is a bug in the program: not a usage error.
        Assert.Throws<ArgumentException>(() => a.Text("undeclared"));
        Assert.Throws<ArgumentException>(() => a.Switch("name"));
        Assert.Equal("--flag is given twice",
            Assert.Throws<UsageException>(() => new CommandArguments(["--flag", "--flag"], [], ["flag"])).Message);
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
        Assert.Throws<H2Exception>(() => decoder.Decode([0x88, 0x00, 0x81, 0xFF])); // a Huffman string of 8 padding bits is malformed
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
