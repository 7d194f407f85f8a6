using System.Text;

namespace GrpcBench.Client.Lean;

/// <summary>
/// HPACK (RFC 7541) for the few headers a gRPC client sends and reads. Requests index their
/// headers in the server's dynamic table once per connection, so every later request costs the
/// server a few indexed bytes to decode (what h2load does too).
/// </summary>
sealed class HpackEncoder(string authority)
{
    private readonly List<(string Name, string Value)> _inserted = new();
    private int _used;
    private int _capacity = 4096;

    /// <summary>The server's SETTINGS_HEADER_TABLE_SIZE: never insert more than it keeps (no eviction to track).</summary>
    public void SetCapacity(int capacity) => _capacity = Math.Min(_capacity, capacity);

    public void EncodeRequest(string path, ByteWriter w)
    {
        w.Byte(0x83); // :method POST (static 3)
        w.Byte(0x86); // :scheme http (static 6)
        Field(4, ":path", path, w);
        Field(1, ":authority", authority, w);
        Field(31, "content-type", "application/grpc", w);
        Field(0, "te", "trailers", w);
    }

    private void Field(int staticName, string name, string value, ByteWriter w)
    {
        var at = _inserted.IndexOf((name, value));
        if (at >= 0)
        {
            Integer(w, 0x80, 7, 62 + _inserted.Count - 1 - at); // indexed, dynamic
            return;
        }
        var size = name.Length + value.Length + 32;
        var insert = _used + size <= _capacity;
        if (insert)
        {
            _inserted.Add((name, value));
            _used += size;
        }
        // Literal with incremental indexing (01), or without indexing (0000) once the table is full.
        var (prefix, bits) = insert ? (0x40, 6) : (0x00, 4);
        Integer(w, prefix, bits, staticName);
        if (staticName == 0) String(w, name);
        String(w, value);
    }

    private static void String(ByteWriter w, string s)
    {
        Integer(w, 0x00, 7, s.Length); // H=0: no Huffman
        w.Ascii(s);
    }

    public static void Integer(ByteWriter w, int prefix, int bits, int value)
    {
        var max = (1 << bits) - 1;
        if (value < max)
        {
            w.Byte((byte)(prefix | value));
            return;
        }
        w.Byte((byte)(prefix | max));
        value -= max;
        while (value >= 128)
        {
            w.Byte((byte)(value % 128 + 128));
            value /= 128;
        }
        w.Byte((byte)value);
    }
}

/// <summary>The headers a gRPC response carries that the client acts on.</summary>
struct ResponseHeaders
{
    public int HttpStatus;
    public int GrpcStatus; // -1 when absent
    public string? GrpcMessage;
}

/// <summary>Decodes response header blocks: static and dynamic table, literals; not Huffman.</summary>
sealed class HpackDecoder
{
    private static readonly (string Name, string Value)[] Static =
    [
        ("", ""), (":authority", ""), (":method", "GET"), (":method", "POST"), (":path", "/"), (":path", "/index.html"),
        (":scheme", "http"), (":scheme", "https"), (":status", "200"), (":status", "204"), (":status", "206"),
        (":status", "304"), (":status", "400"), (":status", "404"), (":status", "500"), ("accept-charset", ""),
        ("accept-encoding", "gzip, deflate"), ("accept-language", ""), ("accept-ranges", ""), ("accept", ""),
        ("access-control-allow-origin", ""), ("age", ""), ("allow", ""), ("authorization", ""), ("cache-control", ""),
        ("content-disposition", ""), ("content-encoding", ""), ("content-language", ""), ("content-length", ""),
        ("content-location", ""), ("content-range", ""), ("content-type", ""), ("cookie", ""), ("date", ""),
        ("etag", ""), ("expect", ""), ("expires", ""), ("from", ""), ("host", ""), ("if-match", ""),
        ("if-modified-since", ""), ("if-none-match", ""), ("if-range", ""), ("if-unmodified-since", ""),
        ("last-modified", ""), ("link", ""), ("location", ""), ("max-forwards", ""), ("proxy-authenticate", ""),
        ("proxy-authorization", ""), ("range", ""), ("referer", ""), ("refresh", ""), ("retry-after", ""),
        ("server", ""), ("set-cookie", ""), ("strict-transport-security", ""), ("transfer-encoding", ""),
        ("user-agent", ""), ("vary", ""), ("via", ""), ("www-authenticate", ""),
    ];

    // Newest first, as HPACK numbers them. Strings are interned per entry, so an indexed
    // header (the common case after the first response) allocates nothing.
    private readonly LinkedList<(string Name, string Value)> _dynamic = new();
    private int _size;
    private int _capacity = 4096; // our SETTINGS_HEADER_TABLE_SIZE (the default)

    public ResponseHeaders Decode(ReadOnlySpan<byte> block)
    {
        var h = new ResponseHeaders { GrpcStatus = -1 };
        var pos = 0;
        while (pos < block.Length)
        {
            var b = block[pos];
            (string Name, string Value) field;
            if ((b & 0x80) != 0)
            {
                field = Entry(ReadInteger(block, ref pos, 7));
            }
            else if ((b & 0xC0) == 0x40)
            {
                var index = ReadInteger(block, ref pos, 6);
                var name = index == 0 ? ReadString(block, ref pos) : Entry(index).Name;
                field = (name, ReadString(block, ref pos));
                Insert(field);
            }
            else if ((b & 0xE0) == 0x20)
            {
                var size = ReadInteger(block, ref pos, 5);
                if (size > 4096) throw new H2Exception("HPACK table size update beyond our limit");
                _capacity = size;
                Evict(0);
                continue;
            }
            else
            {
                var index = ReadInteger(block, ref pos, 4); // without indexing / never indexed
                var name = index == 0 ? ReadString(block, ref pos) : Entry(index).Name;
                field = (name, ReadString(block, ref pos));
            }
            switch (field.Name)
            {
                case ":status": h.HttpStatus = int.TryParse(field.Value, out var s) ? s : 0; break;
                case "grpc-status": h.GrpcStatus = int.TryParse(field.Value, out var g) ? g : 2; break;
                case "grpc-message": h.GrpcMessage = Uri.UnescapeDataString(field.Value); break;
            }
        }
        return h;
    }

    private (string Name, string Value) Entry(int index)
    {
        if (index <= 0) throw new H2Exception("HPACK index 0");
        if (index < Static.Length) return Static[index];
        var i = index - Static.Length;
        if (i >= _dynamic.Count) throw new H2Exception($"HPACK index {index} beyond the dynamic table");
        var node = _dynamic.First!;
        while (i-- > 0) node = node.Next!;
        return node.Value;
    }

    private void Insert((string Name, string Value) field)
    {
        var size = field.Name.Length + field.Value.Length + 32;
        Evict(size);
        if (size > _capacity) return; // too big for the table: it empties it and is not stored
        _dynamic.AddFirst(field);
        _size += size;
    }

    private void Evict(int room)
    {
        while (_dynamic.Count > 0 && _size + room > _capacity)
        {
            var last = _dynamic.Last!.Value;
            _size -= last.Name.Length + last.Value.Length + 32;
            _dynamic.RemoveLast();
        }
    }

    private static int ReadInteger(ReadOnlySpan<byte> block, ref int pos, int bits)
    {
        var max = (1 << bits) - 1;
        var value = block[pos++] & max;
        if (value < max) return value;
        var shift = 0;
        while (true)
        {
            if (pos >= block.Length || shift > 28) throw new H2Exception("bad HPACK integer");
            var b = block[pos++];
            value += (b & 0x7F) << shift;
            shift += 7;
            if ((b & 0x80) == 0) return value;
        }
    }

    private static string ReadString(ReadOnlySpan<byte> block, ref int pos)
    {
        if (pos >= block.Length) throw new H2Exception("truncated HPACK string");
        var huffman = (block[pos] & 0x80) != 0;
        var length = ReadInteger(block, ref pos, 7);
        if (pos + length > block.Length) throw new H2Exception("truncated HPACK string");
        if (huffman)
            throw new H2Exception("the server sent a Huffman-coded header, which the lean engine does not decode (Kestrel never does); use --engine grpcnet");
        var s = Encoding.Latin1.GetString(block.Slice(pos, length));
        pos += length;
        return s;
    }
}

/// <summary>An HTTP/2 protocol error on the connection.</summary>
sealed class H2Exception(string message) : Exception(message);

/// <summary>Appends bytes to a growable array (the connection's pending output).</summary>
sealed class ByteWriter(int capacity)
{
    public byte[] Buffer = new byte[capacity];
    public int Length;

    public Span<byte> Reserve(int count)
    {
        if (Length + count > Buffer.Length) Array.Resize(ref Buffer, Math.Max(Buffer.Length * 2, Length + count));
        var span = Buffer.AsSpan(Length, count);
        Length += count;
        return span;
    }

    public void Byte(byte b) => Reserve(1)[0] = b;

    public void Bytes(ReadOnlySpan<byte> bytes) => bytes.CopyTo(Reserve(bytes.Length));

    public void Ascii(string s) => Encoding.ASCII.GetBytes(s, Reserve(s.Length));
}
