namespace Bench.Harness.Workloads;

public sealed class GrpcStream : GrpcWorkload
{
    public override string Name => "grpc-stream";
    public override string Description => "gRPC echo messages on bidirectional streams";
    public override string ShortName => "stream";
    public override int Order => 21;
}
