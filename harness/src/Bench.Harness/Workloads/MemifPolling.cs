namespace Bench.Harness.Workloads;

public sealed class MemifPolling : MemifWorkload
{
    public override string Name => "memif-polling";
    public override string Description => "memif frames, both sides busy-polling their rings";
    public override string ShortName => "polling";
    public override int Order => 30;
}
