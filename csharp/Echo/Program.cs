using Bench.Echo;

// Both halves of the contract in one executable, so the harness builds one project:
//   csharp-echo server [--host H] [--port P] [--design zerobyte|async|saea|pipelines]
//   csharp-echo client --port P [--connections N] [--payload B] [--workload burst|persistent] ...
try
{
    return args switch
    {
        ["server", .. var rest] => await EchoServer.RunAsync(ServerOptions.Parse(rest)),
        ["client", .. var rest] => await EchoClient.RunAsync(ClientOptions.Parse(rest)),
        _ => throw new UsageException("the first argument must be 'server' or 'client'"),
    };
}
catch (UsageException e)
{
    Console.Error.WriteLine($"csharp-echo: {e.Message}");
    Console.Error.WriteLine("usage: csharp-echo server [--host H] [--port P] [--design zerobyte|async|saea|pipelines]");
    Console.Error.WriteLine("       csharp-echo client --port P [--host H] [--connections N] [--payload B] [--workload burst|persistent]");
    Console.Error.WriteLine("                          [--duration S] [--rate R] [--samples PATH] [--timeout S]");
    return 2;
}
