using Bench.Harness.LoadTools;
using Bench.Harness.Workloads;

namespace Bench.Harness.CommandLine;

public static class HelpText
{
    /// <summary>Workloads and load tools are listed from their types, so the text never goes stale.</summary>
    private static string WorkloadList => string.Join("\n", Workload.All.Select(w => $"                           {w.Name,-16} {w.Description}"));

    private static string ToolOptions => string.Join("\n", IndependentLoadTools.All.Select(t =>
        $"  --no-{t.Name,-20} skip the rows loaded by {t.Name} (an independent load tool; run when installed)"));

    public static string Usage => $$"""
        usage: ./run-all.sh [COMMAND] [OPTIONS]

        Builds every implementation from source, runs the echo benchmarks pinned to separate
        cores, and writes results/<run-id>/ (runs.csv, summary.md, charts); results/latest
        points at the newest. Exits non-zero when any run failed, after writing what it measured.
        Ctrl-C stops cleanly (finished runs kept, summary written); a second Ctrl-C stops at once.

        commands:
          run (default)            build, run the suite, report
          list                     one implementation a line: name, language, design
          hosts FILE [--only N,..] [--connections N] [--setup]
                                   check the hosts of a hosts file (docs/hosts.md) against N,.. (default:
                                   the default suite) and ship to them; --setup runs scripts/setup.sh
                                   over ssh on each host lacking tools or runtimes, then checks it again
          testbed up [--name NAME] [--hosts N] [--rate RATE] | testbed down [--name NAME]
                                   hosts in network namespaces on this machine, as root (scripts/testbed.sh);
                                   NAME (default bench) keeps test beds apart
          build [--only N,..] [--force]
                                   build implementations without running them; a folder whose
                                   sources did not change is skipped unless --force (after a
                                   toolchain or package upgrade, say)
          serve NAME [--port P] [--host H] [--socket PATH] [--role master|slave] [--cpus LIST]
                                   build NAME if needed, start its server alone, print its ready
                                   line, run until Ctrl-C
          load NAME --target HOST:PORT|unix:PATH [--duration S] [--connections N] [--in-flight N]
                   [--workload W] [--payload B] [--rate R]
                                   build NAME's client if needed and run it alone against a running
                                   server (e.g. one from 'serve'), with the suite's defaults
          report RUNS.csv|results.json [--out DIR]
                                   redraw summary.md, every chart, results.json and index.html
                                   from a result set's runs.csv (old ones too) or its results.json
          compare BASE NEW [--threshold PCT] [--alpha P] [--out DIR]
                                   (each a runs.csv or a results.json)
                                   changes per implementation and workload; exit 1 when an experiment
                                   broke (new failed runs, fewer good repeats, missing) or a figure
                                   regressed beyond the noise (exact Mann-Whitney U on the repeats)
                                   and the threshold; open-loop runs compared at the same rate only
          ab BASE [HEAD] [--blocks N] [--threshold PCT] [--alpha P] [--worktrees DIR] [run options]
                                   two git revisions (HEAD: default the working tree as it is),
                                   each built in its own worktree, measured interleaved in one
                                   session: per experiment N blocks (default 3) of A B B A / B A A B
                                   on fresh servers; writes results/ab/<run-id>/ab.md (B/A with its
                                   95% interval, the A/A spread, a verdict) and exits 1 when an
                                   experiment broke or a figure got worse than PCT (default 5) and
                                   beyond the noise (p < P, default 0.05)
          bench [--full] [--filter GLOB] [--into DIR]
                                   BenchmarkDotNet microbenchmarks of the C# hot paths (every
                                   *Benchmarks.csproj), folded into a result set (default
                                   results/latest) as microbench.csv and a summary section
          torture NAME [--idle N]  build NAME if needed and throw rude peers at one server (random bytes, one byte at a time,
                                   half-close, resets, N idle connections, a slow reader, empty
                                   connections) and print a table of cases; exit 1 if any failed
          soak NAME [--minutes M] [--connections N] [--workload W] [--interval S] [--run-seconds S]
                                   hold NAME's server under its own client (a gRPC server without
                                   one: the suite's gRPC load client) for M minutes (default 30)
                                   with churn (two clients of N/2 connections each, restarting
                                   every S s, default 10, half a run apart), sample its memory,
                                   descriptors and threads every S s (default 2) into
                                   results/soak/<run-id>/, chart them, exit 1 on a leak (a steady
                                   rise after the warm-up), a server death or failed requests
          test                     (run-all.sh only) install what is missing and run every test suite

        run options:
          --quick                  a small suite for PR checks: every language and variant once,
                                   own clients only (a 1,000-connection burst, 1,000 held
                                   connections x 1 s closed loop, 16 gRPC calls or memif frames
                                   in flight, one transport per variant, 64 B memif frames),
                                   2 repeats, warm-ups capped at 3 s, bursts warmed by their
                                   client's own tenth only
          --only NAME[,NAME..]     just these implementations (see 'list')
          --workload W[,W..]       these workloads only (default: every one):
        {{WorkloadList}}
          --connections N[,N..]    transport connections for every workload, memif excepted
                                   (default: 10000 burst, 1000 persistent, 2 gRPC; memif always 1);
                                   --workload picks the workloads it applies to
          --in-flight N            requests outstanding at once where a connection carries several
                                   (gRPC calls, memif frames; default 200, --quick 16); a raw echo
                                   connection always carries one
          --payload B[,B..]        payload bytes (default 100)
          --repeats N              measured repeats per experiment (default 5), after 1 warm-up
          --warmups N              warm-up passes for bursts and open-loop runs, not recorded (default 1, --quick 0)
          --warmup-cap S           closed-loop runs warm up in 1 s passes until three in a row agree
                                   within 5%, for at most S seconds (default 60, --quick 3; 0: off)
          --client-warmup S        each measured run's client first loads the server for S seconds
                                   on its own connections, unrecorded, then opens its timed window
                                   (bursts: an unrecorded tenth first; default 1, --quick 0.5; 0: off)
          --duration S             seconds per persistent run (default 5)
          --hosts FILE             the server on one host, the load from the others, over ssh (docs/hosts.md)
          --setup                  with --hosts: scripts/setup.sh run on each host lacking tools or runtimes
          --rate R                 open-loop rate for persistent runs (default: half the measured
                                   closed-loop peak; 0 turns open loop off)
          --sweep                  connections 100, 1000, 10000 and payloads 64 B-64 KiB
          --matrix                 every client against every server (burst) and a heatmap
          --reference-client NAME  the one client run against every server (default cpp-epoll)
          --grpc-client NAME       the gRPC client that loads every gRPC server without its own (default csharp-grpc)
          --calls N                the same as --in-flight
        {{ToolOptions}}
          --server-cpus LIST       taskset CPU list for servers (default 0)
          --client-cpus LIST       taskset CPU list for clients (default 1)
          --timeout S              per-connection timeout handed to clients (default 30)
          --no-build               use what is already built
          --keep-samples           keep the raw latency sample files
          --syscalls               count the server's system calls over each timed window (perf stat; root; costs a little rate)
          --pair-servers           the servers of one shape of load take turns too, as the loads of one
                                   server always do, so ratios between servers are paired (slower: every
                                   server of the shape is kept up at once)
          --results DIR            where result sets go (default results/)
        """;
}
