using GrpcBench.Client;

namespace GrpcBench.Client.Lean;

/// <summary>
/// Reads an EchoReply or SignReply in place (protobuf wire format: one bytes field, one int64,
/// one enum; unknown fields skipped), so checking an answer allocates nothing. Callers pass the
/// field numbers as the generated classes name them (EchoReply.PayloadFieldNumber, ...).
/// </summary>
static class Wire
{
    public ref struct Reply
    {
        public ReadOnlySpan<byte> Bytes;
        public long Timestamp;
        public int Enum;
    }

    public static Reply ReadReply(ReadOnlySpan<byte> m, int payloadField, int timestampField, int enumField)
    {
        var r = new Reply();
        var pos = 0;
        while (pos < m.Length)
        {
            var tag = (uint)Varint(m, ref pos);
            var field = (int)(tag >> 3);
            switch (tag & 7)
            {
                case 0:
                    var v = Varint(m, ref pos);
                    if (field == timestampField) r.Timestamp = (long)v;
                    else if (field == enumField) r.Enum = (int)v;
                    break;
                case 2:
                    var length = (int)Varint(m, ref pos);
                    if (length < 0 || pos + length > m.Length) throw Bad("truncated length-delimited field");
                    if (field == payloadField) r.Bytes = m.Slice(pos, length);
                    pos += length;
                    break;
                case 1: pos += 8; break;
                case 5: pos += 4; break;
                default: throw Bad($"wire type {tag & 7} in a reply");
            }
        }
        if (pos != m.Length) throw Bad("truncated reply");
        return r;
    }

    private static CallFailedException Bad(string why) => new("bad response", "malformed reply: " + why);

    private static ulong Varint(ReadOnlySpan<byte> m, ref int pos)
    {
        ulong value = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            if (pos >= m.Length) throw Bad("truncated varint");
            var b = m[pos++];
            value |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) return value;
        }
        throw Bad("varint too long");
    }
}
