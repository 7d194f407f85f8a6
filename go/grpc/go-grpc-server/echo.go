package main

import (
	"context"
	"io"
	"time"

	"bench/benchpb"
)

type echoService struct {
	benchpb.UnimplementedEchoServer
}

// Unary returns the request's payload slice as is: grpc-go encodes the reply before the handler's
// return value is dropped, so no copy is needed.
func (echoService) Unary(_ context.Context, req *benchpb.EchoRequest) (*benchpb.EchoReply, error) {
	return &benchpb.EchoReply{Payload: req.Payload, ServerReceiveUnixNs: time.Now().UnixNano()}, nil
}

// Stream answers each message in order. One request and one reply message are reused for the
// whole stream: RecvMsg resets and refills the request, SendMsg encodes the reply before it
// returns, so nothing is allocated per message but the decoded payload and the encoded reply.
func (echoService) Stream(stream benchpb.Echo_StreamServer) error {
	req := new(benchpb.EchoRequest)
	reply := new(benchpb.EchoReply)
	for {
		if err := stream.RecvMsg(req); err != nil {
			if err == io.EOF {
				return nil // the client half-closed: end the call with OK
			}
			return err
		}
		reply.Payload = req.Payload
		reply.ServerReceiveUnixNs = time.Now().UnixNano()
		if err := stream.SendMsg(reply); err != nil {
			return err
		}
	}
}
