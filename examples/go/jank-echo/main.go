// jank-echo: a Jank-style plugin (hashicorp/go-plugin over gRPC, Jank's PluginService).
//
// Methods: echo (returns its arguments), add (a+b), fail (returns an error), sleep (ms, until
// cancelled), hang (ms, ignoring cancellation),
// crash (exits with code 3 mid-call), log (writes hclog lines at every level) and bad_any
// (answers with an Any that is not a google.protobuf.Value, to show the host's error).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/golang/protobuf/ptypes"
	"github.com/golang/protobuf/ptypes/any"
	structpb "github.com/golang/protobuf/ptypes/struct"
	"github.com/golang/protobuf/ptypes/wrappers"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// Handshake is Jank's handshake configuration.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "JANK_PLUGIN",
	MagicCookieValue: "jank-plugin",
}

var logger = hclog.New(&hclog.LoggerOptions{
	Name:       "jank-echo",
	Level:      hclog.Trace,
	Output:     os.Stderr,
	JSONFormat: true,
})

type server struct{}

func (server) Execute(ctx context.Context, req *ExecuteRequest) (*ExecuteResponse, error) {
	args := map[string]interface{}{}
	for key, packed := range req.Args {
		value := &structpb.Value{}
		if err := ptypes.UnmarshalAny(packed, value); err != nil {
			return nil, fmt.Errorf("argument %q: %v", key, err)
		}
		args[key] = fromValue(value)
	}
	switch req.Method {
	case "echo":
		return respond(args)
	case "add":
		a, _ := args["a"].(float64)
		b, _ := args["b"].(float64)
		return respond(map[string]interface{}{"sum": a + b})
	case "fail":
		return nil, errors.New("fail was asked to fail")
	case "sleep":
		ms, _ := args["ms"].(float64)
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-ctx.Done():
		}
		return respond(map[string]interface{}{"slept_ms": ms})
	case "hang":
		// ignores its context on purpose: the host restarts a plugin whose call does not return
		ms, _ := args["ms"].(float64)
		time.Sleep(time.Duration(ms) * time.Millisecond)
		return respond(map[string]interface{}{"hung_ms": ms})
	case "crash":
		logger.Error("crashing on purpose")
		os.Exit(3)
	case "log":
		logger.Trace("a trace line")
		logger.Debug("a debug line", "key", "value")
		logger.Info("an info line")
		logger.Warn("a warn line")
		logger.Error("an error line", "code", 42)
		return respond(map[string]interface{}{"logged": true})
	case "bad_any":
		packed, err := ptypes.MarshalAny(&wrappers.StringValue{Value: "not a Value"})
		if err != nil {
			return nil, err
		}
		return &ExecuteResponse{Data: map[string]*any.Any{"result": packed}}, nil
	}
	return nil, fmt.Errorf("unknown method %q", req.Method)
}

func (server) HealthCheck(ctx context.Context, req *HealthCheckRequest) (*HealthCheckResponse, error) {
	return &HealthCheckResponse{Status: "healthy"}, nil
}

func respond(data map[string]interface{}) (*ExecuteResponse, error) {
	out := map[string]*any.Any{}
	for key, item := range data {
		value, err := toValue(item)
		if err != nil {
			return nil, fmt.Errorf("result %q: %v", key, err)
		}
		packed, err := ptypes.MarshalAny(value)
		if err != nil {
			return nil, err
		}
		out[key] = packed
	}
	return &ExecuteResponse{Data: out}, nil
}

func toValue(item interface{}) (*structpb.Value, error) {
	switch v := item.(type) {
	case nil:
		return &structpb.Value{Kind: &structpb.Value_NullValue{}}, nil
	case bool:
		return &structpb.Value{Kind: &structpb.Value_BoolValue{BoolValue: v}}, nil
	case float64:
		return &structpb.Value{Kind: &structpb.Value_NumberValue{NumberValue: v}}, nil
	case string:
		return &structpb.Value{Kind: &structpb.Value_StringValue{StringValue: v}}, nil
	case []interface{}:
		list := &structpb.ListValue{}
		for _, elem := range v {
			value, err := toValue(elem)
			if err != nil {
				return nil, err
			}
			list.Values = append(list.Values, value)
		}
		return &structpb.Value{Kind: &structpb.Value_ListValue{ListValue: list}}, nil
	case map[string]interface{}:
		fields := map[string]*structpb.Value{}
		for key, elem := range v {
			value, err := toValue(elem)
			if err != nil {
				return nil, err
			}
			fields[key] = value
		}
		return &structpb.Value{Kind: &structpb.Value_StructValue{StructValue: &structpb.Struct{Fields: fields}}}, nil
	}
	return nil, fmt.Errorf("unsupported type %T", item)
}

func fromValue(value *structpb.Value) interface{} {
	switch kind := value.Kind.(type) {
	case *structpb.Value_BoolValue:
		return kind.BoolValue
	case *structpb.Value_NumberValue:
		return kind.NumberValue
	case *structpb.Value_StringValue:
		return kind.StringValue
	case *structpb.Value_ListValue:
		out := []interface{}{}
		for _, elem := range kind.ListValue.Values {
			out = append(out, fromValue(elem))
		}
		return out
	case *structpb.Value_StructValue:
		out := map[string]interface{}{}
		for key, elem := range kind.StructValue.Fields {
			out[key] = fromValue(elem)
		}
		return out
	}
	return nil
}

// handlerPlugin is the go-plugin glue: it registers PluginService on the plugin's gRPC server.
type handlerPlugin struct {
	plugin.NetRPCUnsupportedPlugin
}

func (handlerPlugin) GRPCServer(broker *plugin.GRPCBroker, s *grpc.Server) error {
	RegisterPluginServiceServer(s, server{})
	return nil
}

func (handlerPlugin) GRPCClient(ctx context.Context, broker *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return NewPluginServiceClient(c), nil
}

func main() {
	if address := os.Getenv("JANK_LISTEN"); address != "" { // attached by address: see listen.go
		if err := serveTCP(address); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         map[string]plugin.Plugin{"handler": handlerPlugin{}},
		GRPCServer:      plugin.DefaultGRPCServer,
		Logger:          logger,
	})
}
