namespace Bench.Harness.Workloads;

public sealed class MemifInterrupt : MemifWorkload
{
    public override string Name => "memif-interrupt";
    public override string Description => "memif frames, each side woken by the peer's eventfd";
    public override string ShortName => "interrupt";
    public override int Order => 31;
}
