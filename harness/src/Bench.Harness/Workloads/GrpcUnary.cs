namespace Bench.Harness.Workloads;

public sealed class GrpcUnary : GrpcWorkload
{
    public override string Name => "grpc-unary";
    public override string Description => "gRPC unary echo calls";
    public override string ShortName => "unary";
    public override int Order => 20;
}
