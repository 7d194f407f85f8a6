using Bench.Harness.Build;
using Bench.Harness.Catalog;
using Bench.Harness.LoadTools;
using Bench.Harness.Processes;
using Bench.Harness.Report;
using Bench.Harness.Results;
using Bench.Harness.Run;
using Bench.Harness.Workloads;

namespace Bench.Harness.CommandLine;

/// <summary>Each harness command: read its options, hand the work to its stage, return the exit code.</summary>
public static class Commands
{
    public static async Task<int> RunAsync(string root, ArgReader a, CancellationToken cancel)
    {
        var (options, settings, build, results) = SuiteArguments(a, root, repeats: 5);
        var hostsPath = a.Text("--hosts");
        var setup = a.Flag("--setup");
        a.EnsureEmpty();
        if (setup && hostsPath is null) throw new UsageException("--setup runs scripts/setup.sh on the hosts of --hosts FILE; there is none");
        var plan = Plan(root, options);
        if (!PlanIsRunnable(plan, settings, build)) return 2;
        if (hostsPath is null) return await SuiteRunner.RunAsync(root, plan, settings, results, build, cancel);
        // Every host verified, everything built here and shipped there, before anything is timed.
        var implementations = plan.SelectMany(p => p.Experiment.Implementations).Distinct().ToList();
        var hosts = await Remote.MultiHost.PrepareAsync(root, Remote.HostsFile.Load(hostsPath), implementations,
            plan.Max(p => p.Experiment.Connections), cancel, setup);
        if (hosts is null) return 2;
        return await SuiteRunner.RunAsync(root, plan, settings, results, build: false, cancel, hosts);
    }

    /// <summary>
    /// `ab BASE [HEAD]`: both revisions built in their own trees (HEAD: the working tree as it
    /// is) and measured interleaved in one session; exit 1 on a regression or a broken experiment.
    /// </summary>
    public static async Task<int> AbAsync(string root, ArgReader a, CancellationToken cancel)
    {
        var (options, run, build, results) = SuiteArguments(a, root, repeats: 0);
        var ab = new Ab.AbSettings(run,
            Blocks: a.Int("--blocks", 1, 100) ?? 3,
            Threshold: (a.Number("--threshold", 0, 1000) ?? 5) / 100,
            Alpha: a.Number("--alpha", 0.0001, 0.5) ?? 0.05);
        var worktrees = Path.GetFullPath(a.Text("--worktrees") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "bench-ab"));
        // Revisions last: every option and its value is taken by then.
        var baseRevision = a.Positional() ?? throw new UsageException("ab needs a BASE revision (a branch, tag or commit), and optionally HEAD");
        var headRevision = a.Positional();
        a.EnsureEmpty();
        if (run.Repeats != 0) throw new UsageException("ab runs each side twice per block: give --blocks, not --repeats");
        if (run.PairServers) throw new UsageException("ab pairs the two revisions of each experiment; --pair-servers is for a suite");

        Ab.Revision revA, revB;
        try
        {
            revA = await Ab.Revisions.CheckOutAsync(root, baseRevision, worktrees, cancel);
            revB = headRevision is null ? await Ab.Revisions.WorkingTreeAsync(root, cancel)
                : await Ab.Revisions.CheckOutAsync(root, headRevision, worktrees, cancel, inUse: revA.Root);
        }
        catch (Ab.RevisionException e) { throw new UsageException(e.Message); }
        var (pairs, onlyA, onlyB) = Ab.AbRunner.Match(Plan(revA.Root, options), Plan(revB.Root, options));
        if (pairs.Count == 0) throw new UsageException("nothing to compare: the two revisions plan no experiment in common for these options");
        if (!PlanIsRunnable([.. pairs.Select(p => p.A), .. pairs.Select(p => p.B)], run, build)) return 2;
        IReadOnlyList<string> notRun = [.. onlyA.Select(e => $"{e} (A only)"), .. onlyB.Select(e => $"{e} (B only)")];
        return await Ab.AbRunner.RunAsync(revA, revB, pairs, ab, Path.Combine(results, "ab"), build, notRun, cancel);
    }

    /// <summary>The options a suite and an A/B run share: what to measure, and how.</summary>
    private static (SuiteOptions Options, RunSettings Settings, bool Build, string Results) SuiteArguments(ArgReader a, string root, int repeats)
    {
        var quick = a.Flag("--quick");
        var defaults = quick ? SuiteOptions.Quick : new SuiteOptions();
        var options = defaults with
        {
            Only = a.List("--only"),
            Workloads = a.List("--workload"),
            Connections = a.Ints("--connections", 1, 1_000_000) ?? defaults.Connections,
            InFlight = a.Int("--in-flight", 1, 1_000_000) ?? a.Int("--calls", 1, 1_000_000) ?? defaults.InFlight,
            Payloads = a.Ints("--payload", 1, 64 << 20) ?? defaults.Payloads,
            DurationS = a.Number("--duration", 0.1, 3600) ?? defaults.DurationS,
            Rate = a.Number("--rate", 0, 1e9) ?? defaults.Rate,
            Sweep = a.Flag("--sweep"),
            Matrix = a.Flag("--matrix"),
            ReferenceClient = a.Text("--reference-client") ?? defaults.ReferenceClient,
            GrpcClient = a.Text("--grpc-client") ?? defaults.GrpcClient,
            // --no-NAME: every independent tool can be left out by name.
            LoadTools = defaults.LoadTools.Where(t => !a.Flag($"--no-{t.Name}")).ToList(),
        };
        var settings = new RunSettings(
            Repeats: a.Int("--repeats", 1, 1000) ?? (repeats > 0 && quick ? 2 : repeats),
            // --quick: a burst's client warms both sides with its own unrecorded tenth (--client-warmup).
            Warmups: a.Int("--warmups", 0, 100) ?? (quick ? 0 : 1),
            ServerCpus: a.Text("--server-cpus") ?? DefaultCpus(0),
            ClientCpus: a.Text("--client-cpus") ?? DefaultCpus(1),
            ClientTimeout: a.Number("--timeout", 0.1, 3600) is { } t ? TimeSpan.FromSeconds(t) : null,
            KeepSamples: a.Flag("--keep-samples"),
            SteadyWarmupCap: TimeSpan.FromSeconds(a.Number("--warmup-cap", 0, 3600) ?? (quick ? 3 : 60)),
            ClientWarmupS: a.Number("--client-warmup", 0, 3600) ?? (quick ? 0.5 : 1),
            CountSyscalls: a.Flag("--syscalls"),
            PairServers: a.Flag("--pair-servers"));
        if (settings.CountSyscalls && Machine.SyscallCounter.WhyUnavailable() is { } noCount) throw new UsageException($"--syscalls: {noCount}");
        var build = !a.Flag("--no-build");
        var results = Path.GetFullPath(a.Text("--results") ?? Path.Combine(root, "results"));
        foreach (var w in options.Workloads ?? [])
            if (Workload.Find(w) is null) throw new UsageException($"--workload: no workload '{w}' (known: {Workload.Names})");
        return (options, settings, build, results);
    }

    private static IReadOnlyList<PlannedExperiment> Plan(string root, SuiteOptions options)
    {
        var plan = SuitePlan.Build(ImplementationCatalog.Discover(root), options);
        if (plan.Count == 0) throw new UsageException("nothing to run: no implementation in the selection has a server and a client for these workloads");
        return plan;
    }

    /// <summary>Says every problem of the plan at once; false when any of them stops it (nothing has been built or run).</summary>
    private static bool PlanIsRunnable(IReadOnlyList<PlannedExperiment> plan, RunSettings settings, bool build)
    {
        var problems = PlanValidator.Check(plan, settings, build);
        foreach (var p in problems.Skipped) Console.Error.WriteLine($"bench: will skip: {p}");
        foreach (var p in problems.Fatal) Console.Error.WriteLine($"bench: cannot run: {p}");
        if (problems.Fatal.Count == 0) return true;
        Console.Error.WriteLine($"bench: {problems.Fatal.Count} problems stop this run; nothing was built or run");
        return false;
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
        var force = a.Flag("--force");
        a.EnsureEmpty();
        return await BuildStage.EnsureBuiltAsync(root, chosen, cancel, force) ? 0 : 1;
    }

    /// <summary>`serve NAME`: build it if needed, start its server alone, print its ready line, run until Ctrl-C.</summary>
    public static async Task<int> ServeAsync(string root, ArgReader a, CancellationToken cancel)
    {
        var name = a.Positional() ?? throw new UsageException("serve needs an implementation NAME (see 'list')");
        var socket = a.Text("--socket");
        var role = a.Text("--role");
        var port = a.Int("--port", 0, 65535) ?? 0;
        var host = a.Text("--host") ?? "127.0.0.1";
        var cpus = a.Text("--cpus");
        a.EnsureEmpty();
        var impl = ImplementationCatalog.Discover(root).Select([name])[0];
        if (!impl.HasServer) throw new UsageException($"{name} has no server");
        if (role is not null && role is not ("master" or "slave")) throw new UsageException("--role takes master or slave");
        if (cpus is not null && PlanValidator.CpuProblem(cpus) is { } bad) throw new UsageException($"--cpus {cpus}: {bad}");
        if (!await BuildStage.EnsureBuiltAsync(root, [impl], cancel)) return 1;

        IReadOnlyList<string> listen = socket is null ? ContractArguments.Tcp(host, port)
            : impl.Transports.Contains(Transports.Memif) ? ["--memif-socket", socket, .. role is null ? Array.Empty<string>() : ["--role", role]]
            : ["--unix", socket];
        ServerProcess server;
        try { server = await ServerProcess.StartAsync(impl, listen, cpus, cancel); }
        catch (ServerStartException e) { Console.Error.WriteLine($"bench: {e.Message}"); return 1; }
        await using (server)
        {
            Console.WriteLine($"READY {server.Ready.Transport} {server.Ready.Address}");
            Console.Error.WriteLine($"bench: {name} is serving; Ctrl-C stops it");
            try
            {
                var exit = await server.Process.Exited.WaitAsync(cancel);
                Console.Error.WriteLine($"bench: {name} exited with status {exit}: {server.Process.StderrTail}");
                return exit == 0 ? 0 : 1;
            }
            catch (OperationCanceledException)
            {
                var clean = await server.StopAsync();
                Console.Error.WriteLine(clean ? $"bench: {name} stopped" : $"bench: {name} ignored SIGTERM for {ServerProcess.StopGrace.TotalSeconds:F0} s and was killed");
                return clean ? 0 : 1;
            }
        }
    }

    /// <summary>`soak NAME`: one server under churning load for minutes, its footprint sampled; exit 1 on a leak, a death or failed requests.</summary>
    public static async Task<int> SoakAsync(string root, ArgReader a, CancellationToken cancel)
    {
        var name = a.Positional() ?? throw new UsageException("soak needs an implementation NAME (see 'list')");
        var minutes = a.Number("--minutes", 0.05, 24 * 60) ?? 30;
        var workloadName = a.Text("--workload");
        var connections = a.Int("--connections", 1, 1_000_000);
        var settings = new Soak.SoakSettings(TimeSpan.FromMinutes(minutes),
            Interval: TimeSpan.FromSeconds(a.Number("--interval", 0.1, 3600) ?? 2),
            RunSeconds: a.Number("--run-seconds", 0.5, 3600) ?? 10,
            ServerCpus: a.Text("--server-cpus") ?? DefaultCpus(0),
            ClientCpus: a.Text("--client-cpus") ?? DefaultCpus(1));
        var results = Path.GetFullPath(a.Text("--results") ?? Path.Combine(root, "results"));
        a.EnsureEmpty();
        var catalog = ImplementationCatalog.Discover(root);
        var impl = catalog.Select([name])[0];
        var workload = WorkloadOf(impl, workloadName);
        if (!workload.IsTimed) throw new UsageException($"a soak holds connections: {name} needs a timed workload (it runs {string.Join(", ", impl.Workloads)})");
        var e = Soak.SoakCommand.Cell(catalog, impl, workload, connections)
            ?? throw new UsageException($"{name} has no client of its own for {workload.Name}, and the suite loads it with none");
        if (!PlanIsRunnable([new PlannedExperiment(e)], new RunSettings(ServerCpus: settings.ServerCpus, ClientCpus: settings.ClientCpus), build: true)) return 2;
        if (!await BuildStage.EnsureBuiltAsync(root, [.. e.Implementations.Distinct()], cancel)) return 1;
        return await Soak.SoakCommand.RunAsync(e, settings, Path.Combine(results, "soak"), cancel);
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
    /// `load NAME --target HOST:PORT`: one implementation's client (built first if needed) alone
    /// against a server that is already running (started with `serve`, or anyone's), with the
    /// suite's defaults for its workload, its own output shown as it comes.
    /// </summary>
    public static async Task<int> LoadAsync(string root, ArgReader a, CancellationToken cancel)
    {
        var name = a.Positional() ?? throw new UsageException("load needs an implementation NAME (see 'list')");
        var target = a.Text("--target") ?? throw new UsageException("load needs --target HOST:PORT (or --target unix:PATH)");
        var suite = new SuiteOptions();
        var duration = a.Number("--duration", 0.1, 86_400) ?? suite.DurationS;
        var connections = a.Int("--connections", 1, 1_000_000);
        var inFlight = a.Int("--in-flight", 1, 1_000_000) ?? a.Int("--concurrency", 1, 1_000_000);
        var workloadName = a.Text("--workload");
        var payload = a.Int("--payload", 1, 64 << 20) ?? suite.Payloads[0];
        var rate = a.Number("--rate", 0, 1e9) ?? 0;
        a.EnsureEmpty();
        var impl = ImplementationCatalog.Discover(root).Select([name])[0];
        if (!impl.HasClient) throw new UsageException($"{name} has no client");
        var workload = WorkloadOf(impl, workloadName);

        IReadOnlyList<string> address;
        if (target.StartsWith("unix:", StringComparison.Ordinal)) address = ["--unix", target[5..]];
        else
        {
            try { var (host, port) = ReadyLine.Parse($"READY tcp {target}").TcpEndpoint; address = ContractArguments.Tcp(host, port); }
            catch (FormatException) { throw new UsageException($"--target '{target}' is not HOST:PORT or unix:PATH"); }
        }
        if (!workload.Multiplexes && inFlight is not null && inFlight != (connections ?? inFlight))
            throw new UsageException($"{workload.Name} keeps one request in flight per connection: give --connections, not --in-flight");
        var conns = connections ?? (workload.Multiplexes ? workload.DefaultConnections(suite) : inFlight ?? workload.DefaultConnections(suite));
        var calls = workload.Multiplexes ? inFlight ?? suite.InFlight : conns;
        var args = ContractArguments.Client(address, workload, conns, calls, payload, rate, duration, samplesPath: null, TimeSpan.FromSeconds(30));
        if (!await BuildStage.EnsureBuiltAsync(root, [impl], cancel)) return 1;

        Console.Error.WriteLine($"bench: {impl.ClientProgram} {string.Join(' ', args)}");
        await using var client = ManagedProcess.Start($"client {name}", [.. impl.ClientCommand!, .. args], impl.Folder,
            onStdout: Console.Out.WriteLine, onStderr: Console.Error.WriteLine);
        return await client.Exited.WaitAsync(cancel);
    }

    /// <summary>
    /// The workload a one-implementation command (`load`, `soak`) runs: the one named, or its first
    /// timed one (a burst is over before a tool can watch it), else its first.
    /// </summary>
    private static Workload WorkloadOf(Implementation impl, string? name) =>
        name is null ? impl.Workloads.FirstOrDefault(w => w.IsTimed) ?? impl.Workloads[0]
        : impl.Workloads.FirstOrDefault(w => w.Name == name)
          ?? throw new UsageException($"{impl.Name} does not run '{name}' (it runs {string.Join(", ", impl.Workloads)})");

    /// <summary>`load-tool NAME ...`: an independent tool's adapter, as the harness starts it in place of a client.</summary>
    public static async Task<int> LoadToolAsync(string name, IReadOnlyList<string> contractArguments, CancellationToken cancel)
    {
        var tool = IndependentLoadTools.Find(name)
            ?? throw new UsageException($"no load tool '{name}' (known: {string.Join(", ", IndependentLoadTools.All.Select(t => t.Name))})");
        return await tool.RunAdapterAsync(contractArguments, cancel);
    }

    /// <summary>
    /// `hosts FILE`: the verify step of a multi-host run on its own: every host reached, its tools
    /// and limits checked against the implementations (--only, default the default suite's, as a run checks them) and --connections
    /// (default 10000), with --setup scripts/setup.sh run on each host lacking tools or runtimes and the host
    /// verified again, built here and shipped there, its facts printed. Exit 1 naming each host
    /// that fails and why.
    /// </summary>
    public static async Task<int> HostsAsync(string root, ArgReader a, CancellationToken cancel)
    {
        var path = a.Text("--hosts") ?? a.Positional() ?? throw new UsageException("hosts needs a hosts FILE (docs/hosts.md)");
        var only = a.List("--only");
        var connections = a.Int("--connections", 1, 10_000_000) ?? 10_000;
        var setup = a.Flag("--setup");
        a.EnsureEmpty();
        var hosts = Remote.HostsFile.Load(path);
        var catalog = ImplementationCatalog.Discover(root);
        var impls = only is null ? catalog.All.Where(i => i.InDefaultSuite).ToList() : catalog.Select(only);
        var prepared = await Remote.MultiHost.PrepareAsync(root, hosts, impls, connections, cancel, setup);
        if (prepared is null) return 1;
        foreach (var f in prepared.Facts)
            Console.WriteLine($"{f.Host,-12} {f.Role,-6} {f.Address,-15} cpus {f.Cpus,-5} Linux {f.Kernel}, {f.CpuCount} x {f.CpuModel}, " +
                              $"ulimit -n {f.FdSoft}/{f.FdHard}, somaxconn {f.SoMaxConn}, syn backlog {f.SynBacklog}, syncookies {f.SynCookies}, ports {f.PortRange}, clock {f.ClockOffsetMs:+0.000;-0.000} ms (rtt {f.RttMs:F1} ms)");
        return 0;
    }

    /// <summary>`report PATH`: redraws a result set from its runs.csv or its results.json.</summary>
    public static int Report(string root, ArgReader a)
    {
        var path = a.Positional() ?? throw new UsageException("report needs a runs.csv or a results.json");
        var outDir = a.Text("--out") ?? Path.GetDirectoryName(Path.GetFullPath(path))!;
        a.EnsureEmpty();
        var set = ResultSet.Read(path);
        // A set from before results.json names no implementations: this repository's catalog says what they are.
        if (set.Implementations.Count == 0)
            set = set with
            {
                Implementations = [.. ImplementationCatalog.Discover(root).All.Where(i => set.Rows.Any(r => r.Server == i.Name || r.Client == i.Name))
                    .Select(i => ImplementationFacts.Of(i, root))],
            };
        var summary = ReportWriter.Write(outDir, set);
        Console.Error.WriteLine($"bench: wrote {summary}, its charts, {ResultsJson.FileName} and {ResultsPage.FileName}");
        return 0;
    }

    public static int Compare(ArgReader a)
    {
        // Each side is a runs.csv or a results.json.
        var baseCsv = a.Positional() ?? throw new UsageException("compare needs BASE and NEW (runs.csv or results.json each)");
        var newCsv = a.Positional() ?? throw new UsageException("compare needs BASE and NEW (runs.csv or results.json each)");
        var threshold = a.Number("--threshold", 0, 1000) ?? 10;
        var alpha = a.Number("--alpha", 0.0001, 0.5) ?? 0.05;
        var outDir = a.Text("--out") ?? Path.GetDirectoryName(Path.GetFullPath(newCsv))!;
        a.EnsureEmpty();
        var comparison = Comparison.Compute(ResultSet.Read(baseCsv).Rows, ResultSet.Read(newCsv).Rows, threshold / 100, alpha);
        var path = comparison.Write(outDir, baseCsv, newCsv);
        Console.WriteLine(File.ReadAllText(path));
        Console.Error.WriteLine($"bench: {Comparison.Plural(comparison.Broken, "broken experiment")} (new failures, lost repeats, missing), "
            + $"{Comparison.Plural(comparison.Regressions, "figure regression")} beyond {threshold}% and p < {alpha}; wrote {path}");
        return comparison.Broken == 0 && comparison.Regressions == 0 ? 0 : 1;
    }
}
