using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Google.Protobuf;
using GrpcBench.Protos;

namespace GrpcBench.Tests;

/// <summary>The server and client programs as the harness drives them: arguments in, ready line and RESULT out.</summary>
public sealed class ProgramTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    [Fact]
    public async Task Server_prints_its_ready_line_serves_and_exits_0_on_SIGTERM()
    {
        using var server = Programs.Start(Programs.Server, "--port", "0");
        var ready = await server.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Matches(@"^READY tcp 127\.0\.0\.1:\d+$", ready);
        var port = int.Parse(ready!.Split(':')[^1]);
        Assert.NotEqual(0, port);

        using var channel = LiveServer.OpenChannel(new ServerAddress.Tcp("127.0.0.1", port));
        Assert.Equal("hi", (await new Echo.EchoClient(channel).UnaryAsync(new EchoRequest { Payload = ByteString.CopyFromUtf8("hi") })).Payload.ToStringUtf8());

        var stopwatch = Stopwatch.StartNew();
        Programs.Terminate(server);
        await server.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(0, server.ExitCode);
        // The contract asks for one second; the slack is for a loaded test machine, not the server.
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(3), $"took {stopwatch.Elapsed}");
    }

    [Fact]
    public async Task Server_and_client_speak_over_IPv6_loopback()
    {
        using var server = Programs.Start(Programs.Server, "--host", "::1");
        try
        {
            var ready = await server.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Matches(@"^READY tcp \[::1\]:\d+$", ready);
            var port = ready!.Split(':')[^1];
            foreach (var engine in new[] { "lean", "grpcnet" })
            {
                var run = await Programs.RunAsync(Programs.Client, "--host", "::1", "--port", port, "--in-flight", "4",
                    "--requests", "100", "--engine", engine);
                Assert.True(run.ExitCode == 0, run.Stderr);
                Assert.Equal(100, run.Result()["ok"]);
            }
        }
        finally
        {
            Programs.Terminate(server);
            await server.WaitForExitAsync();
        }
    }

    [Fact]
    public async Task Server_that_cannot_bind_says_why_and_exits_1()
    {
        var run = await Programs.RunAsync(Programs.Server, "--port", fixture.Server.Port.ToString());
        Assert.Equal(1, run.ExitCode);
        Assert.Contains("cannot listen", run.Stderr);
    }

    [Theory]
    [InlineData("--port", "99999")]
    [InlineData("--bogus", "1")]
    [InlineData("--unix", "/tmp/x", "--port", "1")]
    [InlineData("--port", "1", "--port", "2")]
    [InlineData("--port")]
    public async Task Bad_arguments_exit_2_with_one_line_on_stderr(params string[] args)
    {
        foreach (var (program, name) in new[] { (Programs.Server, "csharp-grpc-server"), (Programs.Client, "csharp-grpc-client") })
        {
            var run = await Programs.RunAsync(program, args);
            Assert.True(run.ExitCode == 2, $"{name} {string.Join(' ', args)}: exit {run.ExitCode}: {run.Stderr}");
            var line = Assert.Single(run.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.StartsWith(name + ": ", line);
            Assert.Equal("", run.Stdout);
        }
    }

    [Theory]
    [InlineData("CONNECTIONS", "0", "CONNECTIONS must be a whole number from 1 to 10000, not '0'")]
    [InlineData("IN_FLIGHT", "lots", "IN_FLIGHT must be a whole number from 1 to 1000000, not 'lots'")]
    public async Task Bad_environment_settings_are_usage_errors_that_name_the_variable(string variable, string value, string message)
    {
        var info = new ProcessStartInfo(Programs.Client) { RedirectStandardOutput = true, RedirectStandardError = true };
        info.Environment["SERVER_ADDR"] = "127.0.0.1:1";
        info.Environment[variable] = value;
        using var process = Process.Start(info)!;
        var stderr = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.Equal(2, process.ExitCode);
        Assert.Equal($"csharp-grpc-client: {message}", stderr.TrimEnd('\n'));
    }

    [Fact]
    public async Task Channels_is_gone_and_says_what_replaced_it()
    {
        var run = await Programs.RunAsync(Programs.Client, "--port", "1", "--channels", "2");
        Assert.Equal(2, run.ExitCode);
        var line = Assert.Single(run.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("--connections", line);
        Assert.Contains("--in-flight", line);
    }

    [Fact]
    public async Task Help_prints_the_usage_on_stdout_and_exits_0()
    {
        foreach (var program in new[] { Programs.Server, Programs.Client })
        {
            var run = await Programs.RunAsync(program, "--help");
            Assert.Equal(0, run.ExitCode);
            Assert.StartsWith("usage:", run.Stdout);
            Assert.Equal("", run.Stderr);
        }
        Assert.Contains("--in-flight", (await Programs.RunAsync(Programs.Client, "--help")).Stdout);
    }

    [Fact]
    public async Task Connections_and_in_flight_are_two_numbers()
    {
        // 3 HTTP/2 connections carrying 50 calls in flight, as the report says and the server saw.
        var run = await Programs.RunAsync(Programs.Client, "--port", fixture.Server.Port.ToString(),
            "--connections", "3", "--in-flight", "50", "--requests", "500");
        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.Contains("50 calls on 3 connection(s)", run.Stdout);
        Assert.Contains("C# gRPC: 50 calls", run.Stdout);
        Assert.Equal(500, run.Result()["ok"]);
    }

    [Theory]
    [InlineData("grpc-unary", "lean")]
    [InlineData("grpc-stream", "lean")]
    [InlineData("grpc-crypto", "lean")]
    [InlineData("grpc-unary", "grpcnet")]
    [InlineData("grpc-stream", "grpcnet")]
    [InlineData("grpc-crypto", "grpcnet")]
    public async Task Client_prints_the_RESULT_line_and_writes_one_sample_per_request(string workload, string engine)
    {
        var samples = Path.GetTempFileName();
        try
        {
            var run = await Programs.RunAsync(Programs.Client, "--port", fixture.Server.Port.ToString(), "--in-flight", "16",
                "--workload", workload, "--engine", engine, "--requests", "320", "--samples", samples, "--payload", "300");
            Assert.True(run.ExitCode == 0, run.Stderr);
            Assert.Matches(@"^RESULT ok=\d+ failed=0 wall_ns=\d+ bytes=\d+ conn_min=\d+ conn_max=\d+ cpu_user_us=\d+ cpu_sys_us=\d+$", run.ResultLine);
            var r = run.Result();
            // A count, not a duration, so a loaded machine cannot leave a slot without a call in the window.
            Assert.Equal(320, r["ok"]);
            // The timed window opens with its own line, and the client's CPU over it is reported.
            Assert.Equal(1, run.Stdout.Split('\n').Count(l => l.Trim() == "MEASURING"));
            Assert.True(run.Stdout.IndexOf("MEASURING", StringComparison.Ordinal) < run.Stdout.IndexOf("RESULT ", StringComparison.Ordinal));
            Assert.True(r["cpu_user_us"] + r["cpu_sys_us"] > 0);
            Assert.True(r["conn_min"] > 0, "every call slot completed requests");
            Assert.Equal(workload == "grpc-crypto" ? 0 : r["ok"] * 300, r["bytes"]);
            Assert.Equal(r["ok"] * 8, new FileInfo(samples).Length);
            Assert.Contains("requests/s", run.Stdout);
            Assert.Contains("p99.9", run.Stdout);
            if (workload == "grpc-crypto") Assert.Contains("EcdsaP384Sha384", run.Stdout);
        }
        finally
        {
            File.Delete(samples);
        }
    }

    [Theory]
    [InlineData("grpc-unary", "65536")]
    [InlineData("grpc-stream", "65536")]
    [InlineData("grpc-unary", "1048576")]
    [InlineData("grpc-stream", "1048576")]
    public async Task Lean_client_carries_messages_larger_than_a_frame_and_a_window(string workload, string payload)
    {
        // 64 KiB spans four 16 KiB DATA frames; 1 MiB also waits for WINDOW_UPDATEs.
        var run = await Programs.RunAsync(Programs.Client, "--port", fixture.Server.Port.ToString(), "--in-flight", "4",
            "--workload", workload, "--payload", payload, "--requests", "40");
        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.Equal(40, run.Result()["ok"]);
        Assert.Equal(40 * long.Parse(payload), run.Result()["bytes"]);
    }

    [Fact]
    public async Task Lean_client_reports_the_servers_ResourceExhausted_for_an_oversize_message()
    {
        var run = await Programs.RunAsync(Programs.Client, "--port", fixture.Server.Port.ToString(), "--in-flight", "2",
            "--payload", (5 << 20).ToString(), "--requests", "4", "--timeout", "10");
        Assert.Equal(1, run.ExitCode);
        Assert.Equal(4, run.Result()["failed"]);
        Assert.Contains("ResourceExhausted", run.Stderr);
    }

    [Fact]
    public async Task Pipelined_streams_pair_every_reply_with_its_request()
    {
        // 40 calls on 5 streams, 8 in flight on each; every echo is checked byte for byte, so a
        // reply paired with the wrong request would fail the run.
        var run = await Programs.RunAsync(Programs.Client, "--port", fixture.Server.Port.ToString(), "--in-flight", "40",
            "--workload", "grpc-stream", "--stream-depth", "8", "--duration", "0.5", "--payload", "200");
        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.True(run.Result()["conn_min"] > 0, run.ResultLine);
        Assert.Equal(run.Result()["ok"] * 200, run.Result()["bytes"]);
        Assert.Contains("8 per stream", run.Stdout);
    }

    [Fact]
    public async Task Calls_beyond_the_servers_stream_limit_wait_their_turn_and_none_starves()
    {
        // The defaults server allows 100 streams per connection; 250 calls share one connection.
        await using var server = await LiveServer.StartAsync(defaults: true);
        var run = await Programs.RunAsync(Programs.Client, "--port", server.Port.ToString(), "--in-flight", "250",
            "--connections", "1", "--duration", "1");
        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.Contains("the server allows 100 streams", run.Stderr);
        Assert.True(run.Result()["conn_min"] > 0, run.ResultLine);
    }

    [Fact]
    public async Task Open_loop_client_sends_exactly_the_requests_asked_for()
    {
        var run = await Programs.RunAsync(Programs.Client, "--port", fixture.Server.Port.ToString(), "--in-flight", "4",
            "--rate", "400", "--requests", "100", "--service", "both", "--algorithm", "ecdsa-p256-sha256");
        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.Equal(100, run.Result()["ok"]);
        Assert.Equal(0, run.Result()["failed"]);
    }

    [Fact]
    public async Task Client_reads_its_settings_from_the_environment()
    {
        var info = new ProcessStartInfo(Programs.Client) { RedirectStandardOutput = true, RedirectStandardError = true };
        info.Environment["SERVER_ADDR"] = $"127.0.0.1:{fixture.Server.Port}";
        info.Environment["IN_FLIGHT"] = "3";
        info.Environment["CONNECTIONS"] = "2";
        info.Environment["REQUESTS"] = "30";
        info.Environment["SERVICE"] = "both";
        using var process = Process.Start(info)!;
        var stdout = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.Equal(0, process.ExitCode);
        Assert.Contains("RESULT ok=30 failed=0", stdout);
        Assert.Contains("3 calls on 2 connection(s)", stdout);
    }

    [Fact]
    public async Task A_server_that_never_answers_is_counted_as_failed_with_exit_1()
    {
        // Accepts TCP connections and says nothing: no HTTP/2 settings, no answers.
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        var port = ((IPEndPoint)silent.LocalEndpoint).Port;
        var run = await Programs.RunAsync(Programs.Client, "--port", port.ToString(), "--in-flight", "5", "--timeout", "1");
        Assert.Equal(1, run.ExitCode);
        Assert.Equal(0, run.Result()["ok"]);
        Assert.Equal(5, run.Result()["failed"]);
        Assert.Contains("cannot reach", run.Stderr);
    }

    [Fact]
    public async Task Client_against_a_closed_port_fails_cleanly()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        var run = await Programs.RunAsync(Programs.Client, "--port", port.ToString(), "--in-flight", "2", "--timeout", "2");
        Assert.Equal(1, run.ExitCode);
        Assert.StartsWith("RESULT ok=0 failed=2", run.ResultLine);
    }
}
