using Bench.CommandLine;
using Bench.Epoll;

// Both halves of the contract in one executable, so the harness builds one project:
//   csharp-epoll server [--host H] [--port P]
//   csharp-epoll client --port P [--connections N] [--payload B] [--workload burst|persistent] ...
const string Usage = """
    usage: csharp-epoll server [--host H] [--port P]
           csharp-epoll client --port P [--host H] [--connections N] [--payload B] [--workload burst|persistent]
                               [--duration S] [--rate R] [--samples PATH] [--timeout S] [--warmup S]
    """;

if (CommandArguments.AsksForHelp(args))
{
    Console.Out.WriteLine(Usage);
    return 0;
}
try
{
    return args switch
    {
        ["server", .. var rest] => Server(rest),
        ["client", .. var rest] => EpollClient.Run(ClientOptions.Parse(rest)),
        _ => throw new UsageException("the first argument must be 'server' or 'client' (--help for usage)"),
    };
}
catch (UsageException e)
{
    // Only what the user got wrong lands here; anything else is a bug and crashes with its stack trace.
    return CommandArguments.ReportUsageError(EpollServer.Program, e);
}
catch (SystemFailure e)
{
    // Set-up only (no epoll, no eventfd, no threads); requests never throw.
    Console.Error.WriteLine($"{EpollServer.Program}: {e.Message}");
    return 1;
}

static int Server(string[] args)
{
    var a = new CommandArguments(args, ["host", "port"]);
    var host = a.Text("host", "127.0.0.1");
    if (host.Length == 0) throw new UsageException("--host must not be empty");
    return EpollServer.Run(host, a.Integer("port", 0, 0, 65535));
}
