namespace Bench.Harness.CommandLine;

public static class HelpText
{
    public const string Usage = """
        usage: ./run-all.sh [COMMAND] [OPTIONS]

        Builds every implementation from source, runs the echo benchmarks pinned to separate
        cores, and writes results/<run-id>/ (runs.csv, summary.md, charts); results/latest
        points at the newest. Exits non-zero when any run failed, after writing what it measured.

        commands:
          run (default)            build, run the suite, report
          list                     one implementation a line: name, language, design
          build [--only N,..]      build implementations without running them
          serve NAME [--port P] [--host H] [--socket PATH] [--role master|slave]
                                   start one server alone, print its ready line, run until Ctrl-C
          load NAME --target HOST:PORT|unix:PATH [--duration S] [--connections N] [--concurrency N]
                   [--workload W] [--payload B] [--rate R]
                                   run one client alone against a running server (e.g. one from
                                   'serve'); for gRPC, --connections is HTTP/2 connections and
                                   --concurrency the calls in flight
          report RUNS.csv [--out DIR]
                                   redraw summary.md and every chart from a CSV (old ones too)
          compare BASE.csv NEW.csv [--threshold PCT] [--alpha P] [--out DIR]
                                   changes per implementation and workload; exit 1 on a regression
                                   beyond the noise (Mann-Whitney U on the repeats) and the threshold
          bench [--full] [--filter GLOB] [--into DIR]
                                   BenchmarkDotNet microbenchmarks of the C# hot paths (every
                                   *Benchmarks.csproj), folded into a result set (default
                                   results/latest) as microbench.csv and a summary section
          torture NAME [--idle N]  throw rude peers at one server (random bytes, one byte at a time,
                                   half-close, resets, N idle connections, a slow reader, empty
                                   connections) and print a table of cases; exit 1 if any failed
          test                     (run-all.sh only) install what is missing and run every test suite

        run options:
          --quick                  a small suite for CI and PR checks (1,000-connection burst,
                                   100 connections x 1 s persistent, 2 repeats)
          --only NAME[,NAME..]     just these implementations (see 'list')
          --workload W[,W..]       burst, persistent, or a variant's own such as grpc-unary or
                                   memif-polling (default: every workload)
          --connections N[,N..]    connection counts (default 10000 burst, 1000 persistent)
          --payload B[,B..]        payload bytes (default 100)
          --repeats N              measured repeats per experiment (default 5), after 1 warm-up
          --warmups N              warm-up passes for bursts and open-loop runs, not recorded (default 1)
          --warmup-cap S           closed-loop runs warm up in 1 s passes until three in a row agree
                                   within 5%, for at most S seconds (default 60, --quick 10; 0: off)
          --duration S             seconds per persistent run (default 5)
          --rate R                 open-loop rate for persistent runs (default: half the measured
                                   closed-loop peak; 0 turns open loop off)
          --sweep                  connections 100, 1000, 10000 and payloads 64 B-64 KiB
          --matrix                 every client against every server (burst) and a heatmap
          --reference-client NAME  the one client run against every server (default cpp-epoll)
          --calls N                requests in flight for gRPC and memif workloads (default 200)
          --no-h2load              skip the gRPC unary rows loaded by h2load (run when it is installed)
          --server-cpus LIST       taskset CPU list for servers (default 0)
          --client-cpus LIST       taskset CPU list for clients (default 1)
          --timeout S              per-connection timeout handed to clients (default 30)
          --no-build               use what is already built
          --keep-samples           keep the raw latency sample files
          --results DIR            where result sets go (default results/)
        """;
}
