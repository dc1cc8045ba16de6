// kv: hashicorp/go-plugin's gRPC KV example plugin (handshake BASIC_PLUGIN=hello, plugin
// "kv_grpc", service proto.KV with Get/Put), which also serves Jank's PluginService so any
// host can call it generically: Execute("put", {key, value}) and Execute("get", {key}).
package main

import (
	"context"
	"fmt"
	"sync"

	"github.com/golang/protobuf/ptypes"
	"github.com/golang/protobuf/ptypes/any"
	structpb "github.com/golang/protobuf/ptypes/struct"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "BASIC_PLUGIN",
	MagicCookieValue: "hello",
}

type store struct {
	mu     sync.Mutex
	values map[string][]byte
}

// KV service (go-plugin's example proto).
func (s *store) Get(ctx context.Context, req *GetRequest) (*GetResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &GetResponse{Value: s.values[req.Key]}, nil
}

func (s *store) Put(ctx context.Context, req *PutRequest) (*Empty, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.values[req.Key] = append([]byte(nil), req.Value...)
	return &Empty{}, nil
}

// jankService maps Jank's Execute onto the store.
type jankService struct{ kv *store }

func (j jankService) Execute(ctx context.Context, req *ExecuteRequest) (*ExecuteResponse, error) {
	str := func(name string) (string, error) {
		packed, ok := req.Args[name]
		if !ok {
			return "", fmt.Errorf("missing argument %q", name)
		}
		value := &structpb.Value{}
		if err := ptypes.UnmarshalAny(packed, value); err != nil {
			return "", err
		}
		return value.GetStringValue(), nil
	}
	key, err := str("key")
	if err != nil {
		return nil, err
	}
	switch req.Method {
	case "put":
		value, err := str("value")
		if err != nil {
			return nil, err
		}
		j.kv.Put(ctx, &PutRequest{Key: key, Value: []byte(value)})
		return pack(map[string]string{"stored": key})
	case "get":
		resp, _ := j.kv.Get(ctx, &GetRequest{Key: key})
		return pack(map[string]string{"value": string(resp.Value)})
	}
	return nil, fmt.Errorf("unknown method %q", req.Method)
}

func (jankService) HealthCheck(ctx context.Context, req *HealthCheckRequest) (*HealthCheckResponse, error) {
	return &HealthCheckResponse{Status: "healthy"}, nil
}

func pack(data map[string]string) (*ExecuteResponse, error) {
	out := map[string]*any.Any{}
	for key, text := range data {
		packed, err := ptypes.MarshalAny(&structpb.Value{Kind: &structpb.Value_StringValue{StringValue: text}})
		if err != nil {
			return nil, err
		}
		out[key] = packed
	}
	return &ExecuteResponse{Data: out}, nil
}

type kvPlugin struct {
	plugin.NetRPCUnsupportedPlugin
}

func (kvPlugin) GRPCServer(broker *plugin.GRPCBroker, s *grpc.Server) error {
	kv := &store{values: map[string][]byte{}}
	RegisterKVServer(s, kv)
	RegisterPluginServiceServer(s, jankService{kv})
	return nil
}

func (kvPlugin) GRPCClient(ctx context.Context, broker *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return NewKVClient(c), nil
}

func main() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         map[string]plugin.Plugin{"kv_grpc": kvPlugin{}},
		GRPCServer:      plugin.DefaultGRPCServer,
	})
}
