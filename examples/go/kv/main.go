// kv: hashicorp/go-plugin's gRPC KV example plugin (handshake BASIC_PLUGIN=hello, plugin
// "kv_grpc", service proto.KV with Get/Put), which also serves Jank's PluginService so any
// host can call it generically: Execute("put", {key, value}) and Execute("get", {key}).
//
// Under plughost it also uses the host's shared state and message bus (plughost/hostapi over
// go-plugin's broker): "put" counts the puts in its state and publishes "kv.stored";
// Execute("stats") reads the count; Execute("share", {namespace, key, value}) writes into a shared
// state namespace, which the manifest's [permissions] state must grant.
//
// Its bus handlers are declared in plugin.toml's [[subscriptions]] (Jank's protocol cannot declare
// them): "on_put" stores every message published on "kv.put" ({key, value}) as "put" does, "lookup" answers
// requests on "kv.lookup" ({key} → {value, found}). The host calls them with {topic, data, sender}.
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

	"plughost/hostapi"
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

// jankService maps Jank's Execute onto the store and the host's state and bus.
type jankService struct {
	kv   *store
	host *hostapi.Client
}

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
	switch req.Method {
	case "on_put", "lookup":
		return j.onMessage(ctx, req)
	}
	if req.Method == "stats" {
		var puts int64
		if _, err := j.host.State().Get(ctx, "puts", &puts); err != nil {
			return nil, err
		}
		return pack(map[string]interface{}{"puts": puts})
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
		return j.put(ctx, key, value)
	case "get":
		resp, _ := j.kv.Get(ctx, &GetRequest{Key: key})
		return pack(map[string]interface{}{"value": string(resp.Value)})
	case "share":
		namespace, err := str("namespace")
		if err != nil {
			return nil, err
		}
		value, err := str("value")
		if err != nil {
			return nil, err
		}
		if err := j.host.Namespace(namespace).Set(ctx, key, value, 0); err != nil {
			return nil, err
		}
		return pack(map[string]interface{}{"shared": key})
	}
	return nil, fmt.Errorf("unknown method %q", req.Method)
}

// onMessage handles a bus message: args {topic, data, sender}, data an object with "key" (and "value").
func (j jankService) onMessage(ctx context.Context, req *ExecuteRequest) (*ExecuteResponse, error) {
	packed, ok := req.Args["data"]
	if !ok {
		return nil, fmt.Errorf("%s: missing argument \"data\"", req.Method)
	}
	data := &structpb.Value{}
	if err := ptypes.UnmarshalAny(packed, data); err != nil {
		return nil, err
	}
	fields := data.GetStructValue().GetFields()
	key := fields["key"].GetStringValue()
	if key == "" {
		return nil, fmt.Errorf("%s: the message's data needs a \"key\" string", req.Method)
	}
	if req.Method == "lookup" {
		resp, _ := j.kv.Get(ctx, &GetRequest{Key: key})
		return pack(map[string]interface{}{"value": string(resp.Value), "found": resp.Value != nil})
	}
	return j.put(ctx, key, fields["value"].GetStringValue())
}

// put stores the value; under plughost it also counts the puts and publishes "kv.stored".
func (j jankService) put(ctx context.Context, key, value string) (*ExecuteResponse, error) {
	j.kv.Put(ctx, &PutRequest{Key: key, Value: []byte(value)})
	if !j.host.Offered() { // another go-plugin host: no shared state, no bus
		return pack(map[string]interface{}{"stored": key})
	}
	puts, err := j.host.State().Incr(ctx, "puts", 1)
	if err != nil {
		return nil, err
	}
	if _, err := j.host.Publish(ctx, "kv.stored", map[string]string{"key": key, "value": value}); err != nil {
		return nil, err
	}
	return pack(map[string]interface{}{"stored": key, "puts": puts})
}

func (jankService) HealthCheck(ctx context.Context, req *HealthCheckRequest) (*HealthCheckResponse, error) {
	return &HealthCheckResponse{Status: "healthy"}, nil
}

func pack(data map[string]interface{}) (*ExecuteResponse, error) {
	out := map[string]*any.Any{}
	for key, item := range data {
		value := &structpb.Value{}
		switch item := item.(type) {
		case string:
			value.Kind = &structpb.Value_StringValue{StringValue: item}
		case int64:
			value.Kind = &structpb.Value_NumberValue{NumberValue: float64(item)}
		case bool:
			value.Kind = &structpb.Value_BoolValue{BoolValue: item}
		default:
			return nil, fmt.Errorf("cannot pack %T", item)
		}
		packed, err := ptypes.MarshalAny(value)
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
	// dial the host's services now: go-plugin drops a broker announcement nobody dials within 5 s
	RegisterPluginServiceServer(s, jankService{kv, hostapi.Connect(broker)})
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
