using Bench.Harness.Build;
using Bench.Harness.Catalog;
using Bench.Harness.Report;
using Bench.Harness.Results;
using Bench.Harness.Run;

namespace Bench.Harness.CommandLine;

/// <summary>Each harness command: read its options, hand the work to its stage, return the exit code.</summary>
public static class Commands
{
    public static async Task<int> RunAsync(string root, ArgReader a, CancellationToken cancel)
    {
        var quick = a.Flag("--quick");
        var defaults = quick ? SuiteOptions.Quick : new SuiteOptions();
        var options = defaults with
        {
            Only = a.List("--only"),
            Workloads = a.List("--workload"),
            Connections = a.Ints("--connections", 1, 1_000_000) ?? defaults.Connections,
            Payloads = a.Ints("--payload", 1, 64 << 20) ?? defaults.Payloads,
            DurationS = a.Number("--duration", 0.1, 3600) ?? defaults.DurationS,
            Rate = a.Number("--rate", 0, 1e9) ?? defaults.Rate,
            Sweep = a.Flag("--sweep"),
            Matrix = a.Flag("--matrix"),
            ReferenceClient = a.Text("--reference-client") ?? defaults.ReferenceClient,
            VariantConnections = a.Int("--calls", 1, 1_000_000) ?? defaults.VariantConnections,
            H2Load = !a.Flag("--no-h2load") && defaults.H2Load,
        };
        var settings = new RunSettings(
            Repeats: a.Int("--repeats", 1, 1000) ?? (quick ? 2 : 5),
            Warmups: a.Int("--warmups", 0, 100) ?? 1,
            ServerCpus: a.Text("--server-cpus") ?? DefaultCpus(0),
            ClientCpus: a.Text("--client-cpus") ?? DefaultCpus(1),
            ClientTimeout: a.Number("--timeout", 0.1, 3600) is { } t ? TimeSpan.FromSeconds(t) : null,
            KeepSamples: a.Flag("--keep-samples"),
            SteadyWarmupCap: TimeSpan.FromSeconds(a.Number("--warmup-cap", 0, 3600) ?? (quick ? 10 : 60)));
        var build = !a.Flag("--no-build");
        var results = Path.GetFullPath(a.Text("--results") ?? Path.Combine(root, "results"));
        a.EnsureEmpty();

        var catalog = ImplementationCatalog.Discover(root);
        var known = catalog.All.SelectMany(i => i.Workloads).Distinct().Order().ToList();
        foreach (var w in options.Workloads ?? [])
            if (!known.Contains(w)) throw new UsageException($"--workload: no implementation has a workload '{w}' (known: {string.Join(", ", known)})");
        var plan = SuitePlan.Build(catalog, options);
        if (plan.Count == 0) throw new UsageException("nothing to run: no implementation in the selection has a server and a client for these workloads");
        return await SuiteRunner.RunAsync(root, plan, settings, results, build, cancel);
    }

    /// <summary>One core each when the machine has two; on one core both share it (and the rows say so).</summary>
    private static string DefaultCpus(int preferred) => Environment.ProcessorCount > preferred ? preferred.ToString() : "0";

    public static int List(string root, ArgReader a)
    {
        a.EnsureEmpty();
        foreach (var i in ImplementationCatalog.Discover(root).All)
            Console.WriteLine($"{i.Name,-22} {i.Language,-7} {string.Join('/', i.Transports),-14} {i.Design}");
        return 0;
    }

    public static async Task<int> BuildAsync(string root, ArgReader a, CancellationToken cancel)
    {
        var catalog = ImplementationCatalog.Discover(root);
        var chosen = a.List("--only") is { } only ? catalog.Select(only) : catalog.All;
        a.EnsureEmpty();
        var failed = 0;
        foreach (var (folder, spec) in chosen.Select(i => (i.Folder, i.Build)).Distinct())
        {
            Console.Error.WriteLine($"bench: building {Path.GetRelativePath(root, folder)} ({spec.Toolchain})");
            var outcome = await Builder.BuildAsync(folder, spec, TimeSpan.FromMinutes(15), cancel);
            if (!outcome.Succeeded)
            {
                failed++;
                Console.Error.WriteLine(outcome.Log);
                Console.Error.WriteLine($"bench: build of {Path.GetRelativePath(root, folder)} failed: {outcome.Error}");
            }
        }
        return failed == 0 ? 0 : 1;
    }

    public static async Task<int> ServeAsync(string root, ArgReader a, CancellationToken cancel)
    {
        var name = a.Positional() ?? throw new UsageException("serve needs an implementation NAME (see 'list')");
        var impl = ImplementationCatalog.Discover(root).Select([name])[0];
        if (!impl.HasServer) throw new UsageException($"{name} has no server");
        var socket = a.Text("--socket");
        var role = a.Text("--role");
        var port = a.Int("--port", 0, 65535) ?? 0;
        var host = a.Text("--host") ?? "127.0.0.1";
        var cpus = a.Text("--cpus");
        a.EnsureEmpty();
        if (role is not null && role is not ("master" or "slave")) throw new UsageException("--role takes master or slave");

        string[] address = socket is null ? ["--host", host, "--port", port.ToString()]
            : impl.Transports.Contains(Transports.Memif) ? ["--memif-socket", socket, .. role is null ? Array.Empty<string>() : ["--role", role]]
            : ["--unix", socket];
        await using var server = ManagedProcess.Start($"server {name}", [.. impl.ServerCommand!, .. address], impl.Folder, cpus);
        try
        {
            Console.WriteLine(await server.WaitForLineAsync(ReadyLine.Matches, TimeSpan.FromSeconds(30), cancel));
            Console.Error.WriteLine($"bench: {name} is serving; Ctrl-C stops it");
            var exit = await server.Exited.WaitAsync(cancel);
            Console.Error.WriteLine($"bench: {name} exited with status {exit}: {server.StderrTail}");
            return exit == 0 ? 0 : 1;
        }
        catch (OperationCanceledException)
        {
            var clean = await server.StopAsync(TimeSpan.FromSeconds(5));
            Console.Error.WriteLine(clean ? $"bench: {name} stopped" : $"bench: {name} ignored SIGTERM for 5 s and was killed");
            return clean ? 0 : 1;
        }
        catch (Exception e) when (e is ProcessExitedException or TimeoutException)
        {
            Console.Error.WriteLine($"bench: {e.Message}");
            return 1;
        }
    }

    public static async Task<int> MicrobenchAsync(string root, ArgReader a, CancellationToken cancel)
    {
        var full = a.Flag("--full");
        var filter = a.Text("--filter") ?? "*";
        var set = a.Text("--into") ?? Path.Combine(root, "results", "latest");
        a.EnsureEmpty();
        // Fold into the set itself, not the results/latest link, so the run id is the set's name.
        set = Directory.Exists(set) ? Directory.ResolveLinkTarget(set, returnFinalTarget: true)?.FullName ?? set
            : Path.Combine(root, "results", DateTime.UtcNow.ToString("yyyyMMdd-HHmmss"));
        return await Microbench.MicrobenchCommand.RunAsync(root, Path.GetFullPath(set), full, filter, cancel);
    }

    public static async Task<int> TortureAsync(string root, ArgReader a, CancellationToken cancel)
    {
        var name = a.Positional() ?? throw new UsageException("torture needs an implementation NAME (see 'list')");
        var idle = a.Int("--idle", 0, 1_000_000) ?? 2000;
        a.EnsureEmpty();
        return await Torture.TortureCommand.MainAsync(root, name, idle, cancel);
    }

    /// <summary>
    /// `load NAME --target HOST:PORT`: one implementation's client alone against a server that is
    /// already running (started with `serve`, or anyone's), its own output shown as it comes.
    /// </summary>
    public static async Task<int> LoadAsync(string root, ArgReader a, CancellationToken cancel)
    {
        var name = a.Positional() ?? throw new UsageException("load needs an implementation NAME (see 'list')");
        var target = a.Text("--target") ?? throw new UsageException("load needs --target HOST:PORT (or --target unix:PATH)");
        var duration = a.Number("--duration", 0.1, 86_400) ?? 10;
        var connections = a.Int("--connections", 1, 1_000_000);
        var concurrency = a.Int("--concurrency", 1, 1_000_000);
        var workload = a.Text("--workload");
        var payload = a.Int("--payload", 1, 64 << 20) ?? 100;
        var rate = a.Number("--rate", 0, 1e9) ?? 0;
        a.EnsureEmpty();
        var impl = ImplementationCatalog.Discover(root).Select([name])[0];
        if (!impl.HasClient) throw new UsageException($"{name} has no client");
        workload ??= impl.Workloads.Contains(Workloads.Persistent) ? Workloads.Persistent : impl.Workloads[0];

        string[] address;
        if (target.StartsWith("unix:", StringComparison.Ordinal)) address = ["--unix", target[5..]];
        else
        {
            try { var (host, port) = ReadyLine.Parse($"READY tcp {target}").TcpEndpoint; address = ["--host", host, "--port", port.ToString()]; }
            catch (FormatException) { throw new UsageException($"--target '{target}' is not HOST:PORT or unix:PATH"); }
        }
        // gRPC clients separate HTTP/2 connections (--channels) from calls in flight (the contract's
        // --connections); a raw echo client has one request in flight per connection.
        var grpc = workload.StartsWith("grpc-", StringComparison.Ordinal);
        if (!grpc && concurrency is not null && connections is not null && concurrency != connections)
            throw new UsageException($"{name} keeps one request in flight per connection: give --connections or --concurrency, not both");
        string[] load = grpc
            ? [.. concurrency is { } c ? ["--connections", c.ToString()] : Array.Empty<string>(), .. connections is { } ch ? ["--channels", ch.ToString()] : Array.Empty<string>()]
            : ["--connections", (connections ?? concurrency ?? 100).ToString()];
        string[] args = [.. impl.ClientCommand!, .. address, .. load, "--workload", workload, "--payload", payload.ToString(),
            .. workload == Workloads.Burst ? Array.Empty<string>() : ["--duration", duration.ToString(System.Globalization.CultureInfo.InvariantCulture)],
            .. rate > 0 ? ["--rate", rate.ToString(System.Globalization.CultureInfo.InvariantCulture)] : Array.Empty<string>()];
        Console.Error.WriteLine($"bench: {string.Join(' ', args.Skip(impl.ClientCommand!.Count - 1))}");
        var result = await CliWrap.Cli.Wrap(args[0]).WithArguments(args.Skip(1)).WithWorkingDirectory(impl.Folder)
            .WithStandardOutputPipe(CliWrap.PipeTarget.ToStream(Console.OpenStandardOutput()))
            .WithStandardErrorPipe(CliWrap.PipeTarget.ToStream(Console.OpenStandardError()))
            .WithValidation(CliWrap.CommandResultValidation.None)
            .ExecuteAsync(cancel);
        return result.ExitCode;
    }

    public static int Report(ArgReader a)
    {
        var csv = a.Positional() ?? throw new UsageException("report needs a RUNS.csv");
        var outDir = a.Text("--out") ?? Path.GetDirectoryName(Path.GetFullPath(csv))!;
        a.EnsureEmpty();
        var summary = ReportWriter.WriteFromCsv(csv, outDir);
        Console.Error.WriteLine($"bench: wrote {summary} and its charts");
        return 0;
    }

    public static int Compare(ArgReader a)
    {
        var baseCsv = a.Positional() ?? throw new UsageException("compare needs BASE.csv and NEW.csv");
        var newCsv = a.Positional() ?? throw new UsageException("compare needs BASE.csv and NEW.csv");
        var threshold = a.Number("--threshold", 0, 1000) ?? 10;
        var alpha = a.Number("--alpha", 0.0001, 0.5) ?? 0.05;
        var outDir = a.Text("--out") ?? Path.GetDirectoryName(Path.GetFullPath(newCsv))!;
        a.EnsureEmpty();
        var comparison = Comparison.Compute(ResultsCsv.Read(baseCsv), ResultsCsv.Read(newCsv), threshold / 100, alpha);
        var path = comparison.Write(outDir, baseCsv, newCsv);
        Console.WriteLine(File.ReadAllText(path));
        var regressions = comparison.Rows.Count(r => r.Verdict == Verdict.Regression);
        Console.Error.WriteLine($"bench: {regressions} regressions beyond {threshold}% and p < {alpha}; wrote {path}");
        return regressions == 0 ? 0 : 1;
    }
}
