using Fuzz.Targets;
using Memif.SharedMemory;

namespace Fuzz.Tests;

/// <summary>The checks the targets add to the readers' own: each must fail when its rule is broken.</summary>
public class CheckTests
{
    [Fact]
    public void A_descriptor_left_open_is_a_crash()
    {
        var before = OpenDescriptors.Snapshot();
        using (Region.Create("fuzz-check", 4096))
        {
            var e = Assert.Throws<InvariantException>(() => OpenDescriptors.Expect(before, "in this test"));
            Assert.Contains("memfd:fuzz-check", e.Message);
        }
        OpenDescriptors.Expect(before, "once it is closed");
    }

    [Fact]
    public void An_exception_a_catch_all_swallowed_is_a_crash_and_a_rejection_is_not()
    {
        using var watch = new SwallowedExceptions(e => e is FormatException);
        try { throw new FormatException("a rejection"); }
        catch (FormatException) { }
        watch.ThrowFirst();

        var one = new int[1];
        try { _ = one[Random.Shared.Next(1, 2)]; }
        catch (IndexOutOfRangeException) { }
        var e = Assert.Throws<SwallowedException>(watch.ThrowFirst);
        Assert.IsType<IndexOutOfRangeException>(e.InnerException);
        Assert.Contains(nameof(An_exception_a_catch_all_swallowed_is_a_crash_and_a_rejection_is_not), e.Message);
    }
}
