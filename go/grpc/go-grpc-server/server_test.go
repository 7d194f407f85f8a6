package main

// Tests over real sockets: the services through a grpc-go client, and the program itself (this
// test binary re-run as the server, see TestMain) for its arguments, ready line and signals.
// Run: see README.md ("Tests").

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"bench/benchpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

func TestMain(m *testing.M) {
	if os.Getenv("GO_GRPC_SERVER_RUN_MAIN") == "1" {
		main() // exits
	}
	os.Exit(m.Run())
}

// serve starts the tuned server in this process on a loopback port and dials it.
func serve(t *testing.T) *grpc.ClientConn {
	t.Helper()
	opts, err := parseArgs(nil)
	if err != nil {
		t.Fatal(err)
	}
	server, err := newServer(opts, 1)
	if err != nil {
		t.Fatal(err)
	}
	listener, _, err := listen(opts)
	if err != nil {
		t.Fatal(err)
	}
	go server.Serve(listener)
	t.Cleanup(server.Stop)
	conn, err := grpc.Dial(listener.Addr().String(), grpc.WithInsecure(), grpc.WithBlock(),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func pattern(size, seed int) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = byte((seed + i) % 251)
	}
	return b
}

func timeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestUnaryEchoesEverySizeExactly(t *testing.T) {
	echo := benchpb.NewEchoClient(serve(t))
	for i, size := range []int{0, 1, 100, 16384, 65536, 1 << 20, 4<<20 - 64} {
		payload := pattern(size, i)
		before := time.Now().UnixNano()
		reply, err := echo.Unary(timeout(t), &benchpb.EchoRequest{Payload: payload, ClientSendUnixNs: before})
		if err != nil {
			t.Fatalf("%d B: %v", size, err)
		}
		if !bytes.Equal(reply.Payload, payload) {
			t.Fatalf("%d B: wrong echo (%d B back)", size, len(reply.Payload))
		}
		if reply.ServerReceiveUnixNs < before || reply.ServerReceiveUnixNs > time.Now().UnixNano() {
			t.Fatalf("%d B: server_receive_unix_ns %d is not between the send and the reply", size, reply.ServerReceiveUnixNs)
		}
	}
}

func TestStreamAnswersEachMessageInOrder(t *testing.T) {
	stream, err := benchpb.NewEchoClient(serve(t)).Stream(timeout(t))
	if err != nil {
		t.Fatal(err)
	}
	const messages = 200
	sent := make(chan error, 1)
	go func() { // all sent before any is read: the replies must queue in order
		for k := 0; k < messages; k++ {
			if err := stream.Send(&benchpb.EchoRequest{Payload: pattern(1+k*37, k)}); err != nil {
				sent <- err
				return
			}
		}
		sent <- stream.CloseSend()
	}()
	for k := 0; k < messages; k++ {
		reply, err := stream.Recv()
		if err != nil {
			t.Fatalf("reply %d: %v", k, err)
		}
		if !bytes.Equal(reply.Payload, pattern(1+k*37, k)) {
			t.Fatalf("reply %d is not the echo of request %d", k, k)
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("after the half-close: %v, want the end of the call with OK", err)
	}
}

func TestMessagesOver4MiBEndTheCallWithResourceExhausted(t *testing.T) {
	conn := serve(t)
	echo := benchpb.NewEchoClient(conn)
	big := &benchpb.EchoRequest{Payload: make([]byte, 4<<20+1)}
	if _, err := echo.Unary(timeout(t), big); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("unary: %v, want RESOURCE_EXHAUSTED", err)
	}
	stream, err := echo.Stream(timeout(t))
	if err != nil {
		t.Fatal(err)
	}
	stream.Send(big) // may fail already once the server has ended the call
	if _, err := stream.Recv(); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("stream: %v, want RESOURCE_EXHAUSTED", err)
	}
	// A reply over the limit (the request fits, its echo plus the timestamp does not).
	if _, err := echo.Unary(timeout(t), &benchpb.EchoRequest{Payload: make([]byte, 4<<20-6)}); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("reply over the limit: %v, want RESOURCE_EXHAUSTED", err)
	}
	// The connection is still good.
	if _, err := echo.Unary(timeout(t), &benchpb.EchoRequest{Payload: []byte("after")}); err != nil {
		t.Fatal(err)
	}
}

func TestEverySignatureVerifiesWithTheServedPublicKey(t *testing.T) {
	client := benchpb.NewCryptoClient(serve(t))
	payload := pattern(100, 7)
	for algorithm := range benchpb.SignatureAlgorithm_name {
		a := benchpb.SignatureAlgorithm(algorithm)
		if a == benchpb.SignatureAlgorithm_SIGNATURE_ALGORITHM_UNSPECIFIED {
			continue
		}
		key, err := client.GetPublicKey(timeout(t), &benchpb.PublicKeyRequest{Algorithm: a})
		if err != nil {
			t.Fatalf("%v: %v", a, err)
		}
		if key.Algorithm != a {
			t.Fatalf("%v: public key reply says %v", a, key.Algorithm)
		}
		public, err := x509.ParsePKIXPublicKey(key.SubjectPublicKeyInfo)
		if err != nil {
			t.Fatalf("%v: not a SubjectPublicKeyInfo: %v", a, err)
		}
		for i := 0; i < 3; i++ { // each signature fresh (RSA blinding, ECDSA nonces)
			reply, err := client.Sign(timeout(t), &benchpb.SignRequest{Algorithm: a, Payload: payload})
			if err != nil {
				t.Fatalf("%v: %v", a, err)
			}
			if reply.Algorithm != a || reply.ServerReceiveUnixNs == 0 {
				t.Fatalf("%v: reply algorithm %v, server_receive_unix_ns %d", a, reply.Algorithm, reply.ServerReceiveUnixNs)
			}
			if err := verify(a, public, payload, reply.Signature); err != nil {
				t.Fatalf("%v: %v", a, err)
			}
		}
	}
}

func verify(a benchpb.SignatureAlgorithm, public interface{}, payload, signature []byte) error {
	sha := sha256.Sum256(payload)
	switch a {
	case benchpb.SignatureAlgorithm_RSA_PKCS1_SHA256:
		return rsa.VerifyPKCS1v15(public.(*rsa.PublicKey), crypto.SHA256, sha[:], signature)
	case benchpb.SignatureAlgorithm_RSA_PSS_SHA256: // SaltLength 32 exactly, not "any"
		return rsa.VerifyPSS(public.(*rsa.PublicKey), crypto.SHA256, sha[:], signature, &rsa.PSSOptions{SaltLength: 32, Hash: crypto.SHA256})
	case benchpb.SignatureAlgorithm_ECDSA_P256_SHA256:
		return verifyP1363(public.(*ecdsa.PublicKey), 32, sha[:], signature)
	case benchpb.SignatureAlgorithm_ECDSA_P384_SHA384:
		sha384 := sha512.Sum384(payload)
		return verifyP1363(public.(*ecdsa.PublicKey), 48, sha384[:], signature)
	}
	return status.Errorf(codes.Unknown, "no check for %v", a)
}

func verifyP1363(public *ecdsa.PublicKey, size int, digest, signature []byte) error {
	if len(signature) != 2*size {
		return status.Errorf(codes.Unknown, "signature is %d bytes, want r||s of %d", len(signature), 2*size)
	}
	r := new(big.Int).SetBytes(signature[:size])
	s := new(big.Int).SetBytes(signature[size:])
	if !ecdsa.Verify(public, digest, r, s) {
		return status.Error(codes.Unknown, "ECDSA signature does not verify")
	}
	return nil
}

func TestUnspecifiedOrUnknownAlgorithmIsInvalidArgument(t *testing.T) {
	client := benchpb.NewCryptoClient(serve(t))
	for _, a := range []benchpb.SignatureAlgorithm{0, 99} {
		if _, err := client.Sign(timeout(t), &benchpb.SignRequest{Algorithm: a, Payload: []byte("x")}); status.Code(err) != codes.InvalidArgument {
			t.Fatalf("Sign(%d): %v, want INVALID_ARGUMENT", a, err)
		}
		if _, err := client.GetPublicKey(timeout(t), &benchpb.PublicKeyRequest{Algorithm: a}); status.Code(err) != codes.InvalidArgument {
			t.Fatalf("GetPublicKey(%d): %v, want INVALID_ARGUMENT", a, err)
		}
	}
}

func TestHealthIsServingForTheServerAndEachService(t *testing.T) {
	health := healthpb.NewHealthClient(serve(t))
	for _, name := range []string{"", "bench.Echo", "bench.Crypto"} {
		reply, err := health.Check(timeout(t), &healthpb.HealthCheckRequest{Service: name})
		if err != nil || reply.Status != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("Check(%q): %v %v", name, reply, err)
		}
	}
	if _, err := health.Check(timeout(t), &healthpb.HealthCheckRequest{Service: "no.Such"}); status.Code(err) != codes.NotFound {
		t.Fatalf("Check(no.Such): %v, want NOT_FOUND", err)
	}
}

// The program itself, as a child process.

type child struct {
	cmd    *exec.Cmd
	stdout *bufio.Reader
	stderr *bytes.Buffer
}

func start(t *testing.T, args ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "GO_GRPC_SERVER_RUN_MAIN=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, stdout: bufio.NewReader(out), stderr: new(bytes.Buffer)}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return c
}

func (c *child) exit(t *testing.T) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		if exit, ok := err.(*exec.ExitError); ok {
			return exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(20 * time.Second):
		t.Fatal("the server did not exit")
		return -1
	}
}

func TestBadArgumentsExit2WithOneLine(t *testing.T) {
	for _, args := range [][]string{
		{"--port", "70000"}, {"--port", "x"}, {"--port"}, {"--bogus"}, {"--unix", "/tmp/x.sock", "--port", "1"},
		{"--max-message-bytes", "0"}, {"--host", ""}, {"--defaults=yes"},
	} {
		c := start(t, args...)
		if code := c.exit(t); code != 2 {
			t.Fatalf("%v: exit %d, want 2", args, code)
		}
		lines := strings.Split(strings.TrimRight(c.stderr.String(), "\n"), "\n")
		if len(lines) != 1 || !strings.HasPrefix(lines[0], "go-grpc-server: ") {
			t.Fatalf("%v: stderr %q, want one line 'go-grpc-server: message'", args, c.stderr.String())
		}
	}
}

func TestAPortInUseExits1(t *testing.T) {
	taken, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	_, port, _ := net.SplitHostPort(taken.Addr().String())
	c := start(t, "--port", port)
	if code := c.exit(t); code != 1 || !strings.Contains(c.stderr.String(), "cannot listen") {
		t.Fatalf("exit %d, stderr %q", code, c.stderr.String())
	}
}

func (c *child) ready(t *testing.T) string {
	t.Helper()
	line, err := c.stdout.ReadString('\n')
	if err != nil {
		t.Fatalf("no ready line: %v; stderr: %s", err, c.stderr.String())
	}
	return strings.TrimSuffix(line, "\n")
}

// SIGTERM while streams are busy: exit 0 within a second.
func TestSigtermUnderLoadExits0WithinASecond(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		c := start(t, "--port", "0")
		line := c.ready(t)
		if !strings.HasPrefix(line, "READY tcp 127.0.0.1:") {
			t.Fatalf("ready line %q", line)
		}
		conn, err := grpc.Dial(strings.TrimPrefix(line, "READY tcp "), grpc.WithInsecure(), grpc.WithBlock())
		if err != nil {
			t.Fatal(err)
		}
		echo := benchpb.NewEchoClient(conn)
		ctx, cancel := context.WithCancel(context.Background())
		for i := 0; i < 16; i++ {
			go func() {
				stream, err := echo.Stream(ctx)
				if err != nil {
					return
				}
				for stream.Send(&benchpb.EchoRequest{Payload: pattern(1000, 0)}) == nil {
					if _, err := stream.Recv(); err != nil {
						return
					}
				}
			}()
			go func() {
				for ctx.Err() == nil {
					echo.Unary(ctx, &benchpb.EchoRequest{Payload: pattern(100, 0)})
				}
			}()
		}
		time.Sleep(500 * time.Millisecond)
		signalled := time.Now()
		c.cmd.Process.Signal(sig)
		code := c.exit(t)
		took := time.Since(signalled)
		cancel()
		conn.Close()
		t.Logf("%v: exit %d after %v", sig, code, took)
		if code != 0 || took > time.Second {
			t.Fatalf("%v: exit %d after %v, want 0 within 1 s; stderr: %s", sig, code, took, c.stderr.String())
		}
	}
}

func TestUnixSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "echo.sock")
	// A stale socket file (nobody answers on it) is replaced.
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()

	c := start(t, "--unix", path)
	if line := c.ready(t); line != "READY unix "+path {
		t.Fatalf("ready line %q", line)
	}
	conn, err := grpc.Dial("unix://"+path, grpc.WithInsecure(), grpc.WithBlock())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	reply, err := benchpb.NewEchoClient(conn).Unary(timeout(t), &benchpb.EchoRequest{Payload: []byte("over unix")})
	if err != nil || string(reply.Payload) != "over unix" {
		t.Fatalf("%v %v", reply, err)
	}
	// A second server on the same live socket fails clearly and leaves it alone.
	second := start(t, "--unix", path)
	if code := second.exit(t); code != 1 {
		t.Fatalf("second server on a live socket: exit %d, stderr %q", code, second.stderr.String())
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	if code := c.exit(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("the socket file is still there after exit: %v", err)
	}
}
