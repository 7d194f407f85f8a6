using Bench.Harness.Build;
using Bench.Harness.Catalog;

namespace Bench.Harness.Tests;

/// <summary>The repository under test, and its implementations built once per test run from source.</summary>
public static class Repo
{
    public static string Root { get; } = FindRoot();

    public static ImplementationCatalog Catalog { get; } = ImplementationCatalog.Discover(Root);

    private static readonly Dictionary<string, Task<BuildOutcome>> Builds = new();

    private static string FindRoot() =>
        CommandLine.RepositoryRoot.Above(AppContext.BaseDirectory) ?? throw new InvalidOperationException("tests must run inside the repository");

    /// <summary>Builds the implementation's folder (once, shared by every test) and fails with the build log if it does not build.</summary>
    public static async Task<Implementation> BuiltAsync(string name)
    {
        var impl = Catalog.Select([name])[0];
        Task<BuildOutcome> build;
        lock (Builds)
            if (!Builds.TryGetValue(impl.Folder, out build!))
                Builds[impl.Folder] = build = Builder.BuildAsync(impl.Folder, impl.Build, TimeSpan.FromMinutes(15), CancellationToken.None);
        var outcome = await build;
        Assert.True(outcome.Succeeded, $"{name} did not build: {outcome.Error}\n{outcome.Log}");
        return impl;
    }

    /// <summary>Catalog names as theory data, filtered.</summary>
    public static TheoryData<string> Names(Func<Implementation, bool> keep)
    {
        var data = new TheoryData<string>();
        foreach (var i in Catalog.All.Where(keep)) data.Add(i.Name);
        return data;
    }

    public static bool SpeaksRawTcpEcho(Implementation i) => Workloads.EchoWorkload.SpeaksEcho(i);
}

/// <summary>A scratch folder deleted after the test.</summary>
public sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("bench-test-").FullName;
    public string File(string name) => System.IO.Path.Combine(Path, name);
    public void Dispose() => Directory.Delete(Path, recursive: true);
}

/// <summary>Small stand-in programs for the fault, interrupt and process-group tests.</summary>
public static class FakePrograms
{
    /// <summary>A Python echo server, a thread per connection, that prints its ready line; <paramref name="prelude"/> runs first.</summary>
    public static string ThreadedEchoServer(string prelude = "") => prelude + "\n" + """
        import socket, threading
        s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(100)
        print(f"READY tcp 127.0.0.1:{s.getsockname()[1]}", flush=True)
        def serve(c):
            while data := c.recv(65536):
                c.sendall(data)
            c.close()
        while True:
            c, _ = s.accept()
            threading.Thread(target=serve, args=(c,), daemon=True).start()

        """;
}
