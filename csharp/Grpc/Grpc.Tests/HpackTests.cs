using GrpcBench.Client.Lean;

namespace GrpcBench.Tests;

/// <summary>HPACK against RFC 7541's own examples (Appendix C, plain and Huffman-coded) and the Huffman code's shape (Appendix B).</summary>
public sealed class HpackTests
{
    private static byte[] Hex(string hex) => Convert.FromHexString(hex.Replace(" ", ""));

    private static List<(string, string)> Fields(HpackDecoder decoder, byte[] block)
    {
        var fields = new List<(string Name, string Value)>();
        decoder.Decode(block, fields);
        return fields.Select(f => (f.Name, f.Value)).ToList();
    }

    [Fact]
    public void Huffman_code_table_is_complete_and_canonical_as_RFC_7541_builds_it()
    {
        var codes = Huffman.Codes;
        Assert.Equal(257, codes.Length);
        // Complete: the code space is used exactly (Kraft's sum is 1), so one wrong length shows.
        Assert.Equal(1L << 30, codes.Sum(c => 1L << (30 - c.Length)));
        // Canonical: sorted by length then symbol, each code is the previous plus one, shifted
        // to its length; so one wrong code shows too.
        var order = Enumerable.Range(0, codes.Length).OrderBy(s => codes[s].Length).ThenBy(s => s).ToArray();
        Assert.Equal(0u, codes[order[0]].Code);
        for (var i = 1; i < order.Length; i++)
        {
            var (previous, current) = (codes[order[i - 1]], codes[order[i]]);
            Assert.Equal((previous.Code + 1) << (current.Length - previous.Length), current.Code);
        }
        Assert.Equal((0x3fffffffu, (byte)30), codes[Huffman.Eos]);
    }

    [Fact]
    public void Decoder_reads_the_literal_representations_of_RFC_7541_C2()
    {
        var decoder = new HpackDecoder();
        // C.2.1, with indexing: added to the table.
        Assert.Equal([("custom-key", "custom-header")], Fields(decoder, Hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572")));
        Assert.Equal(55, decoder.TableSize);
        // C.2.2 without indexing and C.2.3 never indexed: the table is left as it was.
        var fresh = new HpackDecoder();
        Assert.Equal([(":path", "/sample/path")], Fields(fresh, Hex("040c 2f73 616d 706c 652f 7061 7468")));
        Assert.Equal([("password", "secret")], Fields(fresh, Hex("1008 7061 7373 776f 7264 0673 6563 7265 74")));
        Assert.Equal(0, fresh.TableSize);
        // C.2.4, indexed from the static table.
        Assert.Equal([(":method", "GET")], Fields(fresh, Hex("82")));
        Assert.Equal(0, fresh.TableSize);
    }

    [Fact]
    public void Decoder_reads_the_plain_requests_of_RFC_7541_C3()
    {
        var decoder = new HpackDecoder();
        Assert.Equal(
            [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "www.example.com")],
            Fields(decoder, Hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d")));
        Assert.Equal(57, decoder.TableSize);
        Assert.Equal(
            [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "www.example.com"), ("cache-control", "no-cache")],
            Fields(decoder, Hex("8286 84be 5808 6e6f 2d63 6163 6865")));
        Assert.Equal(110, decoder.TableSize);
        Assert.Equal(
            [(":method", "GET"), (":scheme", "https"), (":path", "/index.html"), (":authority", "www.example.com"), ("custom-key", "custom-value")],
            Fields(decoder, Hex("8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65")));
        Assert.Equal(164, decoder.TableSize);
    }

    [Fact]
    public void Decoder_reads_the_plain_responses_of_RFC_7541_C5_evicting_as_they_do()
    {
        // C.5 runs with a 256-byte table, as C.6 does.
        var decoder = new HpackDecoder();
        Assert.Equal(
            [(":status", "302"), ("cache-control", "private"), ("date", "Mon, 21 Oct 2013 20:13:21 GMT"), ("location", "https://www.example.com")],
            Fields(decoder, [0x3F, 0xE1, 0x01, .. Hex(
                "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e" +
                "1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d")]));
        Assert.Equal(222, decoder.TableSize);
        Assert.Equal(
            [(":status", "307"), ("cache-control", "private"), ("date", "Mon, 21 Oct 2013 20:13:21 GMT"), ("location", "https://www.example.com")],
            Fields(decoder, Hex("4803 3330 37c1 c0bf")));
        Assert.Equal(222, decoder.TableSize);
        Assert.Equal(
            [(":status", "200"), ("cache-control", "private"), ("date", "Mon, 21 Oct 2013 20:13:22 GMT"), ("location", "https://www.example.com"),
             ("content-encoding", "gzip"), ("set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1")],
            Fields(decoder, Hex(
                "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d" +
                "4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572" +
                "7369 6f6e 3d31")));
        Assert.Equal(215, decoder.TableSize);
    }

    [Fact]
    public void Decoder_reads_the_Huffman_coded_requests_of_RFC_7541_C4()
    {
        // Requests, but the decoder does not care which side a block comes from.
        var decoder = new HpackDecoder();
        Assert.Equal(
            [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "www.example.com")],
            Fields(decoder, Hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff")));
        Assert.Equal(57, decoder.TableSize);
        Assert.Equal(
            [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "www.example.com"), ("cache-control", "no-cache")],
            Fields(decoder, Hex("8286 84be 5886 a8eb 1064 9cbf")));
        Assert.Equal(110, decoder.TableSize);
        Assert.Equal(
            [(":method", "GET"), (":scheme", "https"), (":path", "/index.html"), (":authority", "www.example.com"), ("custom-key", "custom-value")],
            Fields(decoder, Hex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf")));
        Assert.Equal(164, decoder.TableSize);
    }

    [Fact]
    public void Decoder_reads_the_Huffman_coded_responses_of_RFC_7541_C6_evicting_as_they_do()
    {
        // C.6 runs with a 256-byte table; a size update at the start of the first block sets it.
        var decoder = new HpackDecoder();
        var first = Fields(decoder, [0x3F, 0xE1, 0x01, .. Hex(
            "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6" +
            "2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3")]);
        Assert.Equal(
            [(":status", "302"), ("cache-control", "private"), ("date", "Mon, 21 Oct 2013 20:13:21 GMT"), ("location", "https://www.example.com")],
            first);
        Assert.Equal(222, decoder.TableSize);

        // ":status 302" is evicted for ":status 307"; the other three are found by index.
        Assert.Equal(
            [(":status", "307"), ("cache-control", "private"), ("date", "Mon, 21 Oct 2013 20:13:21 GMT"), ("location", "https://www.example.com")],
            Fields(decoder, Hex("4883 640e ffc1 c0bf")));
        Assert.Equal(222, decoder.TableSize);

        Assert.Equal(
            [(":status", "200"), ("cache-control", "private"), ("date", "Mon, 21 Oct 2013 20:13:22 GMT"), ("location", "https://www.example.com"),
             ("content-encoding", "gzip"), ("set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1")],
            Fields(decoder, Hex(
                "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab" +
                "77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f" +
                "9587 3160 65c0 03ed 4ee5 b106 3d50 07")));
        Assert.Equal(215, decoder.TableSize);
    }

    [Fact]
    public void Decoder_reads_gRPC_headers_as_nghttp2_Huffman_codes_them()
    {
        // Captured from nghttp2's encoder (nghttp -H ...): names and values it chose to Huffman-code.
        var decoder = new HpackDecoder();
        byte[] block =
        [
            0x88,
            0x5F, 0x8B, .. Hex("1d75d0620d263d4c4d6564"),
            0x40, 0x88, .. Hex("9acac8b21234da8f"), 0x81, 0x67, // '3' is 011001 and two bits of padding
            0x40, 0x89, .. Hex("9acac8b5254207317f"), 0x05, .. "a%20b"u8,
            0x40, 0x8A, .. Hex("9acac8b16a21e435537f"), 0x83, .. Hex("9bd9ab"),
        ];
        var h = decoder.Decode(block);
        Assert.Equal((200, 3, "a b", "gzip"), (h.HttpStatus, h.GrpcStatus, h.GrpcMessage, h.GrpcEncoding));
        Assert.Equal(("content-type", "application/grpc"), Fields(new HpackDecoder(), block)[1]);
    }

    [Theory]
    [InlineData("07ff", "ends in 11 bits of padding (at most 7)")]   // '0' then a whole byte of ones
    [InlineData("00", "ends in padding that is not all ones")]       // '0' then 000
    [InlineData("ffffffff", "contains EOS")]                          // EOS is 30 ones
    public void Malformed_Huffman_strings_are_compression_errors(string encoded, string reason)
    {
        var bytes = Convert.FromHexString(encoded);
        var e = Assert.Throws<H2Exception>(() => new HpackDecoder().Decode([0x88, 0x0F, 0x10, (byte)(0x80 | bytes.Length), .. bytes]));
        Assert.Equal(Http2Error.CompressionError, e.Code);
        Assert.Contains(reason, e.Message);
    }

    [Fact]
    public void Encoder_signals_the_smallest_table_size_since_its_last_block_then_the_current_one()
    {
        var encoder = new HpackEncoder("127.0.0.1:50051");
        var server = new HpackDecoder();
        ByteWriter Encode()
        {
            var w = new ByteWriter(256);
            encoder.EncodeRequest("/bench.Echo/Unary", w);
            server.Decode(w.Buffer.AsSpan(0, w.Length)); // the server's table must stay in step
            return w;
        }

        Encode();
        Assert.True(server.TableSize > 0);
        // Lowered to 0 and raised to 4096 between two blocks: the server must evict everything
        // (an update to 0) before the table grows again (an update to 4096).
        encoder.SetCapacity(0);
        encoder.SetCapacity(4096);
        var block = Encode();
        Assert.Equal(new byte[] { 0x20, 0x3F, 0xE1, 0x1F }, block.Buffer[..4]);
        Assert.Equal(new byte[] { 0x83, 0x86, 0xC1, 0xC0, 0xBF, 0xBE }, Encode().Buffer[..6]);
    }
}
