using System.Diagnostics;
using Bench.Harness.LoadTools;
using Bench.Harness.Processes;
using Bench.Harness.Results;
using Bench.Harness.Run;
using Bench.Harness.Workloads;

namespace Bench.Harness.Tests;

/// <summary>The run stage's concepts each live in one place, and the commands a user types behave as the README says.</summary>
public class RunStageTests
{
    private static readonly string Sources = Path.Combine(Repo.Root, "harness", "src", "Bench.Harness");

    private static IEnumerable<(string File, int Line, string Text)> SourceLines() =>
        Directory.EnumerateFiles(Sources, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains("/obj/") && !f.Contains("/bin/"))
            .SelectMany(f => File.ReadLines(f).Select((text, i) => (Path.GetRelativePath(Sources, f), i + 1, text)));

    [Fact]
    public void no_workload_name_is_a_string_literal_outside_the_workloads_folder()
    {
        var literals = Workload.All.Select(w => $"\"{w.Name}\"").ToList();
        Assert.Contains("\"grpc-unary\"", literals); // the registry found the types
        var outside = SourceLines().Where(l => !l.File.StartsWith("Workloads/", StringComparison.Ordinal)
                                               && literals.Any(w => l.Text.Contains(w, StringComparison.Ordinal))).ToList();
        Assert.True(outside.Count == 0, string.Join("\n", outside.Select(l => $"{l.File}:{l.Line}: {l.Text.Trim()}")));
    }

    [Fact]
    public void no_load_tool_name_is_a_string_literal_outside_its_own_adapter()
    {
        foreach (var tool in IndependentLoadTools.All)
        {
            var literal = $"\"{tool.Name}\"";
            var inside = SourceLines().Where(l => l.Text.Contains(literal, StringComparison.Ordinal)).Select(l => l.File).Distinct().ToList();
            Assert.True(inside.Count == 1, $"{literal} appears in {string.Join(", ", inside)}");
        }
    }

    [Fact]
    public void every_manifest_workload_is_a_type_and_every_type_has_its_own_name()
    {
        Assert.Equal(Workload.All.Count, Workload.All.Select(w => w.Name).Distinct().Count());
        Assert.All(Repo.Catalog.All.SelectMany(i => i.Workloads), w => Assert.Same(Workload.Find(w.Name), w));
        var e = Assert.Throws<Catalog.ManifestException>(() => Catalog.Manifest.Parse("""
            { "language": "C", "build": { "toolchain": "cmake" },
              "implementations": [ { "name": "c", "design": "d", "server": ["s"], "workloads": ["bursty"] } ] }
            """, "x/bench.json"));
        Assert.Contains("workload 'bursty'", e.Message);
    }

    [Fact]
    public void quick_plan_sizes_each_workload_down_and_keeps_connections_and_in_flight_apart()
    {
        var plan = SuitePlan.Build(Repo.Catalog, SuiteOptions.Quick).Select(p => p.Experiment).ToList();
        Assert.Contains(plan, e => e.Workload is GrpcWorkload);
        Assert.All(plan.Where(e => e.Workload is Burst), e => Assert.Equal(1000, e.Connections));
        Assert.All(plan.Where(e => !e.Workload.Multiplexes), e => Assert.Equal(e.Connections, e.InFlight));
        Assert.All(plan.Where(e => e.Workload is GrpcWorkload), e => Assert.Equal((2, 16), (e.Connections, e.InFlight)));
        Assert.All(plan.Where(e => e.Workload is MemifWorkload), e => Assert.Equal((1, 16, 64), (e.Connections, e.InFlight, e.Payload)));
        // Small enough for a pull-request check: own clients only (the shared gRPC client for a server without one), closed loop, one transport per variant.
        Assert.All(plan.Where(e => e.Load.Client is not null), e => Assert.Equal(e.Server.HasClient ? e.Server.Name : SuiteOptions.Quick.GrpcClient, e.Load.Client!.Name));
        Assert.All(plan, e => Assert.Equal(0, e.Rate));
        Assert.Equal(plan.Count, plan.Select(e => (e.Server.Name, e.Load.Name, e.Workload.Name, e.Payload)).Distinct().Count());
        // ...still every language and every variant, and h2load where it is installed.
        Assert.Equal(Repo.Catalog.All.Where(i => i.InDefaultSuite && i.HasServer && (i.HasClient || i.Workloads.Any(w => w is GrpcWorkload)))
                .Select(i => i.Language).ToHashSet(),
            plan.Select(e => e.Server.Language).ToHashSet());
        Assert.Contains(plan, e => e.Workload is MemifWorkload);
        if (H2Load.IsInstalled) Assert.Contains(plan, e => e.Load.Name == H2Load.Name);
    }

    [Fact]
    public async Task two_suites_started_in_the_same_second_get_two_result_sets()
    {
        using var results = new TempDir();
        var sets = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() => SuiteRunner.NewResultSet(results.Path))));
        Assert.Equal(4, sets.Select(s => s.RunId).Distinct().Count());
        Assert.All(sets, s => Assert.True(Directory.Exists(s.Dir)));
    }

    [Fact]
    public void old_rows_read_with_in_flight_and_independent_tools_as_no_client()
    {
        using var dir = new TempDir();
        // A header without in_flight, as every harness wrote before it: a gRPC row's connections were its calls in flight.
        File.WriteAllText(dir.File("runs.csv"), """
            run_id,timestamp,server,client,transport,workload,connections,payload_bytes,rate,duration_s,repeat,ok,failed,load_tool,status,error
            old,2026-11-30T11:48:54Z,csharp-grpc,h2load,tcp,grpc-unary,200,100,0,5,1,1000,0,h2load,ok,
            old,2026-11-30T11:48:55Z,csharp,csharp,tcp,burst,1000,100,0,0,1,1000,0,csharp,ok,

            """.Replace("\n            ", "\n"));
        var rows = ResultsCsv.Read(dir.File("runs.csv"));
        var grpc = rows.Single(r => r.Workload == "grpc-unary");
        Assert.Equal((0, 200, "", "h2load"), (grpc.Connections, grpc.InFlight, grpc.Client, grpc.Generator));
        var burst = rows.Single(r => r.Workload == "burst");
        Assert.Equal((1000, 1000, "csharp"), (burst.Connections, burst.InFlight, burst.Client));
    }

    [Fact]
    public void every_summary_table_has_its_legend_under_it()
    {
        using var dir = new TempDir();
        var sample = Path.Combine(Repo.Root, "results", "sample", "runs.csv");
        var summary = File.ReadAllText(Report.ReportWriter.WriteFromCsv(sample, dir.Path));
        var tables = summary.Split("\n## ").Where(s => s.Contains("| server | client | load |")).ToList();
        Assert.NotEmpty(tables);
        Assert.All(tables, t => Assert.Contains($"**{Figures.ReqPerS.Heading}**: {Figures.ReqPerS.Legend}", t));
    }

    /// <summary>A folder copied without its build output, as a fresh clone has it.</summary>
    private static string FreshCopy(TempDir root, string relative, params string[] alongside)
    {
        File.WriteAllText(root.File("run-all.sh"), "");
        foreach (var shared in new[] { "Directory.Build.props", "Directory.Packages.props" })
            File.Copy(Path.Combine(Repo.Root, shared), root.File(shared));
        foreach (var folder in alongside.Append(relative))
            CopyTree(Path.Combine(Repo.Root, folder), root.File(folder));
        return root.File(relative);
    }

    private static void CopyTree(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.EnumerateFiles(from).Where(f => !Path.GetFileName(f).StartsWith(".bench-build", StringComparison.Ordinal)))
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        foreach (var dir in Directory.EnumerateDirectories(from).Where(d => Path.GetFileName(d) is not ("bin" or "obj" or "build" or "target")))
            CopyTree(dir, Path.Combine(to, Path.GetFileName(dir)));
    }

    private static ManagedProcess Harness(TempDir root, params string[] args) =>
        ManagedProcess.Start("harness", ["dotnet", Path.Combine(AppContext.BaseDirectory, "bench.dll"), .. args, "--root", root.Path], root.Path);

    [Fact]
    public async Task serve_of_an_unbuilt_implementation_builds_it_and_becomes_ready()
    {
        using var root = new TempDir();
        var folder = FreshCopy(root, "csharp/Echo", "csharp/Shared"); // the C# programs' shared argument parser
        Assert.False(Directory.Exists(Path.Combine(folder, "bin")));
        await using var serve = Harness(root, "serve", "csharp", "--port", "0");
        var ready = ReadyLine.Parse(await serve.WaitForLineAsync(ReadyLine.Matches, TimeSpan.FromMinutes(5), CancellationToken.None));
        var (host, port) = ready.TcpEndpoint;
        Assert.Null(await EchoVerifier.VerifyAsync(host, port, TimeSpan.FromSeconds(30), CancellationToken.None));
        Assert.True(await serve.StopAsync(TimeSpan.FromSeconds(10)), "serve did not stop on SIGTERM");
        Assert.Equal(0, serve.ExitCode);
    }

    [Fact]
    public async Task a_suite_that_cannot_run_says_why_before_building_anything()
    {
        using var root = new TempDir();
        File.WriteAllText(root.File("run-all.sh"), "");
        File.WriteAllText(root.File("echo.py"), "print('never run')\n");
        File.WriteAllText(root.File("bench.json"), """
            { "language": "Python", "build": { "toolchain": "python" },
              "implementations": [ { "name": "fake", "design": "a stand-in", "server": ["python3", "echo.py"], "client": ["python3", "echo.py"] } ] }
            """);
        var clock = Stopwatch.StartNew();
        await using var run = Harness(root, "run", "--only", "fake", "--workload", "burst", "--connections", "60000",
            "--server-cpus", "4096", "--results", root.File("results"));
        Assert.Equal(2, await run.Exited.WaitAsync(Processes.Patience));
        var said = run.StderrTail;
        Assert.Contains("--server-cpus 4096", said);
        Assert.Contains("hard limit", said); // 60,000 connections need more descriptors than this machine allows
        Assert.False(Directory.Exists(root.File("__pycache__")), "the suite built before it checked its plan");
        Assert.False(Directory.Exists(root.File("results")), "the suite made a result set it could not fill");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"took {clock.Elapsed}");
    }

    [Fact]
    public async Task load_takes_the_suites_defaults_for_a_grpc_client()
    {
        var grpc = await Repo.BuiltAsync("csharp-grpc");
        var (server, host, port) = await Processes.StartServerAsync(grpc);
        await using var _ = server;
        await using var load = ManagedProcess.Start("load", ["dotnet", Path.Combine(AppContext.BaseDirectory, "bench.dll"), "load", "csharp-grpc",
            "--root", Repo.Root, "--target", $"{host}:{port}", "--duration", "1"], Repo.Root);
        Assert.Equal(0, await load.Exited.WaitAsync(Processes.Patience));
        var defaults = new SuiteOptions();
        var unary = Workload.Get<GrpcUnary>();
        Assert.Contains($"--connections {unary.DefaultConnections(defaults)} --payload 100 --workload {unary.Name} --in-flight {defaults.InFlight}", load.StderrTail);
        Assert.True(ResultLine.Parse(load.StdoutLines.Single(ResultLine.Matches)).Ok > 0);
    }
}
