using System.Runtime.InteropServices;
using Bench.Harness.Catalog;
using Bench.Harness.CommandLine;
using Bench.Harness.Processes;
using Bench.Harness.Results;

// The harness's front door: ./run-all.sh passes its arguments straight here.
using var stop = new CancellationTokenSource();
// First Ctrl-C (or SIGTERM) stops the suite cleanly: every started process is stopped and
// every finished row kept. The runtime's default handling is cancelled so cleanup can run.
// A second one stops at once: every process group the harness started is killed, and the
// harness exits 130 without waiting for anything (a SIGKILL of the harness is covered too:
// its reaper kills the groups; see ProcessGroups).
var signals = 0;
void OnStopSignal(PosixSignalContext c)
{
    c.Cancel = true;
    if (Interlocked.Increment(ref signals) == 1)
    {
        // The one line an interrupted command prints (a suite adds what it kept).
        Console.Error.WriteLine($"bench: interrupted by {(c.Signal == PosixSignal.SIGINT ? "Ctrl-C" : c.Signal.ToString())}; stopping cleanly (Ctrl-C again stops at once)");
        stop.Cancel();
        return;
    }
    ManagedProcess.KillAll();
    Console.Error.WriteLine("bench: stopped at once; every process the harness started was killed; rows already written are kept, no summary was written");
    Environment.Exit(130);
}
using var onInt = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnStopSignal);
using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnStopSignal);

try
{
    // An independent load tool's adapter, started by the harness in place of a client: it needs no repository.
    if (args is ["load-tool", var tool, .. var contract]) return await Commands.LoadToolAsync(tool, contract, stop.Token);
    var reader = new ArgReader(args);
    if (reader.Flag("--help") || reader.Flag("-h")) { Console.WriteLine(HelpText.Usage); return 0; }
    var root = RepositoryRoot.Find(reader.Text("--root"));
    var command = args.Length > 0 && !args[0].StartsWith("--", StringComparison.Ordinal) ? reader.Positional()! : "run";
    return command switch
    {
        "run" => await Commands.RunAsync(root, reader, stop.Token),
        "ab" => await Commands.AbAsync(root, reader, stop.Token),
        "list" => Commands.List(root, reader),
        "build" => await Commands.BuildAsync(root, reader, stop.Token),
        "serve" => await Commands.ServeAsync(root, reader, stop.Token),
        "report" => Commands.Report(root, reader),
        "compare" => Commands.Compare(reader),
        "load" => await Commands.LoadAsync(root, reader, stop.Token),
        "bench" => await Commands.MicrobenchAsync(root, reader, stop.Token),
        "torture" => await Commands.TortureAsync(root, reader, stop.Token),
        "soak" => await Commands.SoakAsync(root, reader, stop.Token),
        "hosts" => await Commands.HostsAsync(root, reader, stop.Token),
        _ => throw new UsageException($"unknown command '{command}'"),
    };
}
catch (UsageException e)
{
    Console.Error.WriteLine($"bench: {e.Message}");
    Console.Error.WriteLine("bench: see ./run-all.sh --help");
    return 2;
}
catch (Exception e) when (stop.IsCancellationRequested && IsCancellation(e))
{
    // Ctrl-C during a build, a load or anything else with no interrupted state of its own to
    // report (an interrupted suite reports its own and returns 1): the signal's line said it all.
    return 130;
}
catch (Exception e) when (e is ManifestException or CorruptResultsException or ArgumentException or FileNotFoundException or DirectoryNotFoundException
                           or ServerStartException or Bench.Harness.Remote.HostsFileException)
{
    Console.Error.WriteLine($"bench: {e.Message}");
    return 2;
}

static bool IsCancellation(Exception e) =>
    e is OperationCanceledException || (e is AggregateException a && a.Flatten().InnerExceptions.All(i => i is OperationCanceledException));
