using Bench.Harness.Catalog;

namespace Bench.Harness.Tests;

public class CatalogTests
{
    private const string Valid = """
        { "language": "C++", "build": { "toolchain": "cmake" },
          "implementations": [ { "name": "cpp-x", "design": "a loop", "server": ["build/s"], "client": ["build/c"] } ] }
        """;

    [Fact]
    public void valid_manifest_fills_in_tcp_and_both_workloads()
    {
        var m = Manifest.Parse(Valid, "cpp/bench.json");
        var impl = Assert.Single(m.Implementations);
        Assert.Equal("cpp-x", impl.Name);
        Assert.Null(impl.Transports); // the catalog fills defaults in, see below
        using var dir = new TempDir();
        System.IO.File.WriteAllText(dir.File("bench.json"), Valid);
        var found = Assert.Single(ImplementationCatalog.Discover(dir.Path).All);
        Assert.Equal(["tcp"], found.Transports);
        Assert.Equal(["burst", "persistent"], found.Workloads.Select(w => w.Name));
        Assert.Equal(System.IO.Path.Combine(dir.Path, "build/s"), found.ServerCommand![0]);
    }

    [Theory]
    [InlineData("""{ "language": "C", "build": { "toolchain": "make" }, "implementations": [ { "name": "c", "design": "d", "server": ["s"] } ] }""", "toolchain 'make'")]
    [InlineData("""{ "language": "C", "build": { "toolchain": "cmake" }, "implementations": [ { "name": "C Bad", "design": "d", "server": ["s"] } ] }""", "lower-case")]
    [InlineData("""{ "language": "C", "build": { "toolchain": "cmake" }, "implementations": [ { "name": "c", "server": ["s"] } ] }""", "'design' is missing")]
    [InlineData("""{ "language": "C", "build": { "toolchain": "cmake" }, "implementations": [ { "name": "c", "design": "d" } ] }""", "needs a server, a client or both")]
    [InlineData("""{ "language": "C", "build": { "toolchain": "dotnet" }, "implementations": [ { "name": "c", "design": "d", "server": ["s"] } ] }""", "build.project")]
    [InlineData("""{ "language": "C", "build": { "toolchain": "cmake" }, "implementations": [ { "name": "c", "design": "d", "server": ["s"], "transports": ["udp"] } ] }""", "transport 'udp'")]
    [InlineData("""{ "language": "C", "build": { "toolchain": "cmake" }, "implementations": [], "extra": 1 }""", "extra")]
    [InlineData("""{ "language": """, "bench.json")]
    public void malformed_manifest_is_rejected_naming_the_problem(string json, string expected)
    {
        var e = Assert.Throws<ManifestException>(() => Manifest.Parse(json, "x/bench.json"));
        Assert.Contains("x/bench.json", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void the_same_name_in_two_manifests_is_an_error()
    {
        using var dir = new TempDir();
        foreach (var sub in new[] { "a", "b" })
        {
            Directory.CreateDirectory(dir.File(sub));
            System.IO.File.WriteAllText(System.IO.Path.Combine(dir.File(sub), "bench.json"), Valid);
        }
        var e = Assert.Throws<ManifestException>(() => ImplementationCatalog.Discover(dir.Path));
        Assert.Contains("'cpp-x' is already defined", e.Message);
    }

    [Fact]
    public void unknown_name_lists_the_known_ones()
    {
        var e = Assert.Throws<ArgumentException>(() => Repo.Catalog.Select(["no-such-thing"]));
        Assert.Contains("csharp", e.Message);
    }

    [Fact]
    public void repository_catalog_has_the_csharp_echo()
    {
        var csharp = Repo.Catalog.Select(["csharp"])[0];
        Assert.Equal("C#", csharp.Language);
        Assert.True(csharp.HasServer && csharp.HasClient);
    }
}
