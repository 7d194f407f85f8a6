using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;

// The same socket setting as the echo server: completions inline on the epoll thread.
var config = DefaultConfig.Instance.AddJob(Job.Default
    .WithEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS", "1")
    .AsDefault());
BenchmarkSwitcher.FromAssembly(typeof(Bench.Echo.Benchmarks.LoopbackRoundTrip).Assembly).Run(args, config);
