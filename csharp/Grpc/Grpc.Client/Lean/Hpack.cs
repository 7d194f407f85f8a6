using System.Text;

namespace GrpcBench.Client.Lean;

/// <summary>
/// HPACK (RFC 7541) for the few headers a gRPC client sends and reads. Requests index their
/// headers in the server's dynamic table once per connection, so every later request costs the
/// server a few indexed bytes to decode (what h2load does too).
/// </summary>
sealed class HpackEncoder(string authority)
{
    /// <summary>The most table we use even if the server allows more: our few request headers fit in the default.</summary>
    private const int MaxCapacity = 4096;

    private readonly List<(string Name, string Value)> _inserted = new(); // oldest first
    private int _used;
    private int _capacity = MaxCapacity;
    private int _smallestSinceLastBlock = -1; // -1: no size change to signal

    /// <summary>
    /// The server's SETTINGS_HEADER_TABLE_SIZE changed: evict what no longer fits, and signal the
    /// new size at the start of the next header block (RFC 7541 section 4.2). The caller writes
    /// the SETTINGS ACK before any later block, which is when the server's new limit applies.
    /// </summary>
    public void SetCapacity(int limit)
    {
        var capacity = Math.Min(limit, MaxCapacity);
        if (capacity == _capacity) return;
        _capacity = capacity;
        _smallestSinceLastBlock = _smallestSinceLastBlock < 0 ? capacity : Math.Min(_smallestSinceLastBlock, capacity);
        while (_used > _capacity)
        {
            _used -= Size(_inserted[0]);
            _inserted.RemoveAt(0);
        }
    }

    public void EncodeRequest(string path, ByteWriter w)
    {
        if (_smallestSinceLastBlock >= 0)
        {
            // Lowered and raised again since the last block: the smallest size first, so the
            // server evicts what we evicted, then the size we use now.
            Integer(w, 0x20, 5, _smallestSinceLastBlock);
            if (_smallestSinceLastBlock != _capacity) Integer(w, 0x20, 5, _capacity);
            _smallestSinceLastBlock = -1;
        }
        w.Byte(0x83); // :method POST (static 3)
        w.Byte(0x86); // :scheme http (static 6)
        Field(4, ":path", path, w);
        Field(1, ":authority", authority, w);
        Field(31, "content-type", "application/grpc", w);
        Field(0, "te", "trailers", w);
    }

    private static int Size((string Name, string Value) field) => field.Name.Length + field.Value.Length + 32;

    private void Field(int staticName, string name, string value, ByteWriter w)
    {
        var at = _inserted.IndexOf((name, value));
        if (at >= 0)
        {
            Integer(w, 0x80, 7, 62 + _inserted.Count - 1 - at); // indexed, dynamic
            return;
        }
        // Insert only what fits without evicting, so the table never changes under an index.
        var size = Size((name, value));
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
    public int HttpStatus;  // 0 when absent
    public int GrpcStatus;  // -1 when absent
    public string? GrpcMessage;
    public string? GrpcEncoding;
}

/// <summary>Decodes response header blocks: static and dynamic table, literals, Huffman-coded strings, table size updates.</summary>
sealed class HpackDecoder
{
    /// <summary>Our SETTINGS_HEADER_TABLE_SIZE: the default, which we never change.</summary>
    public const int MaxCapacity = 4096;

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
    private int _capacity = MaxCapacity;
    private byte[] _huffmanScratch = new byte[256];

    /// <summary>The dynamic table's current size in HPACK's accounting (32 bytes per entry plus name and value).</summary>
    public int TableSize => _size;

    /// <summary>Decodes one whole header block; with <paramref name="fields"/>, also lists every field in order.</summary>
    public ResponseHeaders Decode(ReadOnlySpan<byte> block, List<(string Name, string Value)>? fields = null)
    {
        var h = new ResponseHeaders { GrpcStatus = -1 };
        var pos = 0;
        var fieldSeen = false;
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
                // RFC 7541 section 4.2: only at the start of a block, and within our setting.
                if (fieldSeen) throw Error("an HPACK dynamic table size update after a header field");
                var size = ReadInteger(block, ref pos, 5);
                if (size > MaxCapacity) throw Error($"an HPACK dynamic table size update to {size}, beyond our {MaxCapacity}");
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
            fieldSeen = true;
            fields?.Add(field);
            switch (field.Name)
            {
                case ":status": h.HttpStatus = int.TryParse(field.Value, out var s) ? s : 0; break;
                case "grpc-status": h.GrpcStatus = int.TryParse(field.Value, out var g) ? g : 2; break;
                case "grpc-message": h.GrpcMessage = Uri.UnescapeDataString(field.Value); break;
                case "grpc-encoding": h.GrpcEncoding = field.Value; break;
            }
        }
        return h;
    }

    private static H2Exception Error(string message) => new(Http2Error.CompressionError, message);

    private (string Name, string Value) Entry(int index)
    {
        if (index <= 0) throw Error("HPACK index 0");
        if (index < Static.Length) return Static[index];
        var i = index - Static.Length;
        if (i >= _dynamic.Count) throw Error($"HPACK index {index} beyond the dynamic table ({_dynamic.Count} entries)");
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
        if (pos >= block.Length) throw Error("truncated HPACK block");
        var max = (1 << bits) - 1;
        var value = block[pos++] & max;
        if (value < max) return value;
        for (var shift = 0; shift <= 21; shift += 7) // four continuation bytes reach 2^28, beyond any length or index we accept
        {
            if (pos >= block.Length) throw Error("truncated HPACK integer");
            var b = block[pos++];
            value += (b & 0x7F) << shift;
            if ((b & 0x80) == 0) return value;
        }
        throw Error("HPACK integer too large");
    }

    private string ReadString(ReadOnlySpan<byte> block, ref int pos)
    {
        if (pos >= block.Length) throw Error("truncated HPACK string");
        var huffman = (block[pos] & 0x80) != 0;
        var length = ReadInteger(block, ref pos, 7);
        if (length > block.Length - pos) throw Error($"HPACK string of {length} bytes beyond the end of its block");
        var raw = block.Slice(pos, length);
        pos += length;
        if (!huffman) return Encoding.Latin1.GetString(raw);
        var room = Huffman.MaxDecodedLength(length);
        if (_huffmanScratch.Length < room) _huffmanScratch = new byte[Math.Max(room, 2 * _huffmanScratch.Length)];
        return Encoding.Latin1.GetString(_huffmanScratch, 0, Huffman.Decode(raw, _huffmanScratch));
    }
}

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
