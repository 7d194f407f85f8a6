using Bench.Harness.Run;

namespace Bench.Harness.Tests;

public class ContractLineTests
{
    [Fact]
    public void ready_line_gives_transport_and_address()
    {
        var r = ReadyLine.Parse("READY tcp 127.0.0.1:40123");
        Assert.Equal(("127.0.0.1", 40123), r.TcpEndpoint);
        Assert.Equal(("::1", 8080), ReadyLine.Parse("READY tcp [::1]:8080").TcpEndpoint);
        Assert.Equal("/tmp/a b.sock", ReadyLine.Parse("READY unix /tmp/a b.sock").Address);
        Assert.Throws<FormatException>(() => ReadyLine.Parse("READY tcp"));
        Assert.Throws<FormatException>(() => ReadyLine.Parse("READY tcp localhost").TcpEndpoint);
    }

    [Fact]
    public void result_line_needs_every_field()
    {
        var r = ResultLine.Parse("RESULT ok=10000 failed=2 wall_ns=612345678 bytes=1000000 conn_min=1 conn_max=3");
        Assert.Equal(new ResultLine(10000, 2, 612345678, 1000000, 1, 3), r);
        Assert.Contains("conn_max", Assert.Throws<FormatException>(() => ResultLine.Parse("RESULT ok=1 failed=0 wall_ns=1 bytes=1 conn_min=1")).Message);
        Assert.Throws<FormatException>(() => ResultLine.Parse("RESULT ok=x failed=0 wall_ns=1 bytes=1 conn_min=1 conn_max=1"));
        Assert.Throws<FormatException>(() => ResultLine.Parse("Rust: 10000 clients"));
    }

    [Fact]
    public void result_line_carries_the_clients_cpu_over_its_window_as_a_pair()
    {
        var r = ResultLine.Parse("RESULT ok=5 failed=0 wall_ns=1 bytes=500 conn_min=5 conn_max=5 cpu_user_us=1500 cpu_sys_us=250");
        Assert.Equal((1.5, 0.25), (r.WindowUsage!.Value.UserMs, r.WindowUsage.Value.SystemMs));
        Assert.Null(ResultLine.Parse("RESULT ok=5 failed=0 wall_ns=1 bytes=500").WindowUsage);
        Assert.Contains("cpu_sys_us", Assert.Throws<FormatException>(() => ResultLine.Parse("RESULT ok=5 failed=0 wall_ns=1 bytes=500 cpu_user_us=1")).Message);
        Assert.True(MeasuringLine.Matches("MEASURING"));
        Assert.False(MeasuringLine.Matches("MEASURING soon"));
    }
}
