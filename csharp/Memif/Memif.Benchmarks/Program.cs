using BenchmarkDotNet.Running;

// dotnet run -c Release -- --filter '*'   (or pick one: --filter '*SlaveToMaster*')
BenchmarkSwitcher.FromAssembly(typeof(Memif.Benchmarks.RingBenchmarks).Assembly).Run(args);
