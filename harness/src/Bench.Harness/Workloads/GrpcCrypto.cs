namespace Bench.Harness.Workloads;

public sealed class GrpcCrypto : GrpcWorkload
{
    public override string Name => "grpc-crypto";
    public override string Description => "gRPC signing calls (RSA PKCS#1 v1.5 and PSS, ECDSA P-256 and P-384)";
    public override string ShortName => "crypto";
    public override int Order => 22;
}
