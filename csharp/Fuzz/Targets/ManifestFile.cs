using Bench.Harness.Catalog;

namespace Fuzz.Targets;

/// <summary>
/// A bench.json manifest, read as the catalog reads the tree (<see cref="ImplementationCatalog.Discover"/>:
/// parse, check, resolve commands). The rejection is a <see cref="ManifestException"/>, which names the file and the field.
/// </summary>
sealed class ManifestFile() : FuzzTarget("manifest", "ImplementationCatalog.Discover over a tree holding the input as bench.json")
{
    protected override void Feed(ReadOnlySpan<byte> input)
    {
        var manifest = Scratch.Write("tree/bench.json", input);
        ImplementationCatalog.Discover(Path.GetDirectoryName(manifest)!);
    }

    protected override bool IsRejection(Exception e) => e is ManifestException;
}
