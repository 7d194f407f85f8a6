using Bench.CommandLine;
using Bench.Echo;

// Both halves of the contract in one executable, so the harness builds one project:
//   csharp-echo server [--host H] [--port P] [--design zerobyte|async|saea|pipelines]
//   csharp-echo client --port P [--connections N] [--payload B] [--workload burst|persistent] ...
const string Usage = """
    usage: csharp-echo server [--host H] [--port P] [--design zerobyte|async|saea|pipelines]
           csharp-echo client --port P [--host H] [--connections N] [--payload B] [--workload burst|persistent]
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
        ["server", .. var rest] => await EchoServer.RunAsync(ServerOptions.Parse(rest)),
        ["client", .. var rest] => await EchoClient.RunAsync(ClientOptions.Parse(rest)),
        _ => throw new UsageException("the first argument must be 'server' or 'client' (--help for usage)"),
    };
}
catch (UsageException e)
{
    // Only what the user got wrong lands here; anything else is a bug and crashes with its stack trace.
    return CommandArguments.ReportUsageError("csharp-echo", e);
}
