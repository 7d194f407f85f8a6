using Bench.Harness.Catalog;
using Bench.Harness.CommandLine;
using Bench.Harness.Results;

// The harness's front door: ./run-all.sh passes its arguments straight here.
using var stop = new CancellationTokenSource();
// First Ctrl-C (or SIGTERM) stops the suite cleanly: every started process is stopped and
// every finished row kept. The runtime's default handling is cancelled so cleanup can run.
using var onInt = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });
using var onTerm = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });

try
{
    var reader = new ArgReader(args);
    if (reader.Flag("--help") || reader.Flag("-h")) { Console.WriteLine(HelpText.Usage); return 0; }
    var root = RepositoryRoot.Find(reader.Text("--root"));
    var command = args.Length > 0 && !args[0].StartsWith("--", StringComparison.Ordinal) ? reader.Positional()! : "run";
    return command switch
    {
        "run" => await Commands.RunAsync(root, reader, stop.Token),
        "list" => Commands.List(root, reader),
        "build" => await Commands.BuildAsync(root, reader, stop.Token),
        "serve" => await Commands.ServeAsync(root, reader, stop.Token),
        "report" => Commands.Report(reader),
        "compare" => Commands.Compare(reader),
        "load" => await Commands.LoadAsync(root, reader, stop.Token),
        "bench" => await Commands.MicrobenchAsync(root, reader, stop.Token),
        "torture" => await Commands.TortureAsync(root, reader, stop.Token),
        _ => throw new UsageException($"unknown command '{command}'"),
    };
}
catch (UsageException e)
{
    Console.Error.WriteLine($"bench: {e.Message}");
    Console.Error.WriteLine("bench: see ./run-all.sh --help");
    return 2;
}
catch (Exception e) when (e is ManifestException or CorruptResultsException or ArgumentException or FileNotFoundException or DirectoryNotFoundException)
{
    Console.Error.WriteLine($"bench: {e.Message}");
    return 2;
}
