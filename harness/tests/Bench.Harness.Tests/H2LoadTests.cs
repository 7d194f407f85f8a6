using System.Buffers.Binary;
using Bench.Harness.Catalog;
using Bench.Harness.LoadTools;
using Bench.Harness.Processes;
using Bench.Harness.Results;
using Bench.Harness.Run;
using Bench.Harness.Workloads;
using GrpcBench.Protos;

namespace Bench.Harness.Tests;

public class H2LoadTests
{
    private static string Fixture(string name) => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", name));

    [Fact]
    public void parser_reads_a_captured_successful_run()
    {
        var o = H2Load.Parse(Fixture("h2load-ok.txt"));
        Assert.Equal(new H2LoadOutput(2.00, 26258, 0, 0, 0, 13129.00), o);
    }

    [Fact]
    public void parser_times_the_counts_over_the_main_duration_not_the_warm_up()
    {
        // Captured with --warm-up-time=1000ms -D 2: "finished in 3.00s", counts and req/s over the 2 s.
        var o = H2Load.Parse(Fixture("h2load-warmup.txt"), warmupS: 1);
        Assert.Equal(2.00, o.Seconds, 6);
        Assert.Equal(o.ReqPerS, o.Succeeded / o.Seconds, 0);
        // A run that ended inside its warm-up keeps its whole time (its counts are failures only).
        Assert.Equal(387e-6, H2Load.Parse(Fixture("h2load-refused.txt"), warmupS: 1).Seconds, 9);
    }

    [Fact]
    public void parser_reads_a_refused_connection_as_failures()
    {
        var o = H2Load.Parse(Fixture("h2load-refused.txt"));
        Assert.Equal((0L, 10L, 10L), (o.Succeeded, o.Failed, o.Errored));
        Assert.Equal(387e-6, o.Seconds, 9);
    }

    [Fact]
    public void parser_reads_timeouts_inside_the_failed_count()
    {
        var o = H2Load.Parse(Fixture("h2load-timeout.txt"));
        Assert.Equal((0L, 10L, 10L, 1L), (o.Succeeded, o.Failed, o.Errored, o.TimedOut));
    }

    [Fact]
    public void parser_rejects_output_without_a_summary()
    {
        var e = Assert.Throws<FormatException>(() => H2Load.Parse("invalid URI: http://127.0.0.1:/bench.Echo/Unary\n"));
        Assert.Contains("invalid URI", e.Message);
    }

    [Fact]
    public void request_frame_is_a_length_prefixed_echo_request_built_from_the_proto()
    {
        var frame = H2Load.RequestFrame(100);
        Assert.Equal(0, frame[0]); // not compressed
        Assert.Equal((uint)(frame.Length - 5), BinaryPrimitives.ReadUInt32BigEndian(frame.AsSpan(1)));
        var request = EchoRequest.Parser.ParseFrom(frame.AsSpan(5));
        Assert.Equal(H2Load.Payload(100), request.Payload.ToByteArray());
    }

    [Fact]
    public async Task request_frame_round_trips_through_a_real_grpc_server()
    {
        var grpc = await Repo.BuiltAsync("csharp-grpc");
        var (server, host, port) = await Processes.StartServerAsync(grpc);
        await using var _ = server;
        Assert.Null(await H2Load.VerifyAsync(host, port, 100, CancellationToken.None));
        Assert.Null(await H2Load.VerifyAsync(host, port, 1, CancellationToken.None));
    }

    [Fact]
    public async Task check_call_against_a_server_that_is_not_grpc_says_why()
    {
        var echo = await Repo.BuiltAsync("csharp");
        var (server, host, port) = await Processes.StartServerAsync(echo);
        await using var _ = server;
        Assert.NotNull(await H2Load.VerifyAsync(host, port, 100, CancellationToken.None));
    }

    [Fact]
    public async Task h2load_row_is_recorded_like_any_other_load_tool()
    {
        Assert.True(H2Load.IsInstalled, "h2load is missing: scripts/setup.sh installs nghttp2-client");
        var grpc = await Repo.BuiltAsync("csharp-grpc");
        using var dir = new TempDir();
        var runner = new ExperimentRunner(new RunSettings(Repeats: 1, Warmups: 0, SteadyWarmupCap: TimeSpan.Zero),
            new ResultsCsv(dir.File("runs.csv")), "test", dir.Path, new Progress(1, TextWriter.Null));
        var e = new Experiment(grpc, LoadGenerator.ToolOf(IndependentLoadTools.Find(H2Load.Name)!), Transports.Tcp, Workload.Get<GrpcUnary>(), 2, 20, 100, 0, 1);
        var row = Assert.Single(await runner.RunAsync(e, CancellationToken.None));
        Assert.True(row.Status == RunStatus.Ok, row.Error);
        // No implementation's client ran; h2load made the load.
        Assert.Equal(("", "h2load"), (row.Client, row.LoadTool));
        Assert.True(row.Ok > 0 && row.ReqPerS > 0 && row.LatP50Us > 0, $"ok {row.Ok}, {row.ReqPerS} req/s, p50 {row.LatP50Us}");
        // h2load's own CPU comes from GNU time, the server's from /proc: both sides are measured.
        Assert.True(row.ClientUserMs + row.ClientSysMs > 0, "h2load's CPU time was not recorded");
        Assert.True(row.ServerUserMs + row.ServerSysMs > 0, "the server's CPU time was not recorded");
        // The adapter opens the window when h2load's main duration starts, so both CPU figures leave out its warm-up.
        Assert.Equal(CpuWindows.Timed, row.CpuWindow);
    }
}

public class LoadCommandTests
{
    [Fact]
    public async Task load_command_drives_a_running_grpc_server_and_reports_req_per_s()
    {
        var grpc = await Repo.BuiltAsync("csharp-grpc");
        var (server, host, port) = await Processes.StartServerAsync(grpc);
        await using var _ = server;
        var harness = Path.Combine(AppContext.BaseDirectory, "bench.dll");
        await using var load = ManagedProcess.Start("load", ["dotnet", harness, "load", "csharp-grpc", "--root", Repo.Root, "--target", $"{host}:{port}",
            "--duration", "1", "--connections", "1", "--concurrency", "8"], Repo.Root);
        Assert.Equal(0, await load.Exited.WaitAsync(Processes.Patience));
        Assert.Contains(load.StdoutLines, l => l.Contains("req/s"));
        var result = ResultLine.Parse(load.StdoutLines.Single(ResultLine.Matches));
        Assert.True(result.Ok > 0 && result.Failed == 0);
    }

    [Fact]
    public async Task load_command_rejects_a_malformed_target()
    {
        var harness = Path.Combine(AppContext.BaseDirectory, "bench.dll");
        await using var load = ManagedProcess.Start("load", ["dotnet", harness, "load", "csharp-grpc", "--root", Repo.Root, "--target", "nowhere"], Repo.Root);
        Assert.Equal(2, await load.Exited.WaitAsync(Processes.Patience));
        Assert.Contains("not HOST:PORT", load.StderrTail);
    }
}
