using GrpcBench.Client.Lean;

namespace Fuzz.Targets;

/// <summary>
/// The lean engine's HPACK decoder (<see cref="HpackDecoder"/>), fed the input twice as two
/// header blocks of one connection, so the second reads the dynamic table the first left.
/// Its rejection is a protocol error (<see cref="H2Exception"/>).
/// </summary>
sealed class GrpcHpack() : FuzzTarget("grpc-hpack", "HpackDecoder.Decode, the input as two consecutive header blocks")
{
    protected override void Feed(ReadOnlySpan<byte> input)
    {
        var decoder = new HpackDecoder();
        decoder.Decode(input);
        decoder.Decode(input);
    }

    protected override bool IsRejection(Exception e) => e is H2Exception;

    public override IEnumerable<(string Name, byte[] Input)> Seeds =>
    [
        // A gRPC response's headers, then its trailers, as a server that indexes them sends them.
        ("response", [0x88, 0x5f, 16, .. "application/grpc"u8, 0x40, 11, .. "grpc-status"u8, 1, (byte)'0']),
        ("trailers-with-message", [0x40, 11, .. "grpc-status"u8, 2, .. "14"u8, 0x00, 12, .. "grpc-message"u8, 11, .. "try%20again"u8]),
        // RFC 7541 C.3.1 and C.4.1: the same request without and with Huffman coding.
        ("rfc7541-c3", [0x82, 0x86, 0x84, 0x41, 0x0f, .. "www.example.com"u8]),
        ("rfc7541-c4", [0x82, 0x86, 0x84, 0x41, 0x8c, 0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff]),
        // Table size updates to 0 and back to 4096, then an entry inserted and read back by its index (62).
        ("table-size-update", [0x20, 0x3f, 0xe1, 0x1f, 0x40, 1, (byte)'a', 1, (byte)'b', 0xbe]),
    ];
}
