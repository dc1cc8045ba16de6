// @ID@: a plughost plugin in Go — an executable speaking hashicorp/go-plugin over gRPC with
// Jank's PluginService (Execute(method, args); jank.pb.go is generated from proto/jank.proto).
//
// Its methods are called with `plughost plugins execute @ID@ hello --args '{"name": "Ada"}'`,
// offered to agents as MCP tools, and can handle bus messages declared in plugin.toml. Log lines
// written with hclog reach the host's log. The host's message bus and shared state come through
// plughost/hostapi (s.host below: Publish, Request, State().Get/Set/Incr…).
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/golang/protobuf/ptypes"
	"github.com/golang/protobuf/ptypes/any"
	structpb "github.com/golang/protobuf/ptypes/struct"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"plughost/hostapi"
)

var handshake = plugin.HandshakeConfig{ProtocolVersion: 1, MagicCookieKey: "JANK_PLUGIN", MagicCookieValue: "jank-plugin"}

var logger = hclog.New(&hclog.LoggerOptions{Name: "@ID@", Level: hclog.Info, Output: os.Stderr, JSONFormat: true})

type server struct {
	host *hostapi.Client
}

// Execute runs one method with its arguments (JSON values) and answers its result.
func (s server) Execute(ctx context.Context, req *ExecuteRequest) (*ExecuteResponse, error) {
	args := map[string]interface{}{}
	for key, packed := range req.Args {
		value := &structpb.Value{}
		if err := ptypes.UnmarshalAny(packed, value); err != nil {
			return nil, fmt.Errorf("argument %q: %v", key, err)
		}
		args[key] = fromValue(value)
	}
	switch req.Method {
	case "hello":
		name, _ := args["name"].(string)
		if name == "" {
			name = "world"
		}
		logger.Info("greeting", "name", name)
		result := map[string]interface{}{"greeting": "hello, " + name}
		if s.host.Offered() { // under plughost: count the greetings in the plugin's shared state
			greeted, err := s.host.State().Incr(ctx, "greeted", 1)
			if err != nil {
				return nil, err
			}
			result["greeted"] = float64(greeted)
		}
		return respond(result)
	}
	return nil, fmt.Errorf("unknown method %q", req.Method)
}

func (server) HealthCheck(ctx context.Context, req *HealthCheckRequest) (*HealthCheckResponse, error) {
	return &HealthCheckResponse{Status: "healthy"}, nil
}

// respond packs each result value as a google.protobuf.Value in an Any, as Jank's protocol wants.
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

// toValue turns a result (nil, bool, float64, string, []interface{}, map[string]interface{}) into a Value.
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

// fromValue turns an argument's Value into plain Go values (JSON numbers are float64).
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
	RegisterPluginServiceServer(s, server{host: hostapi.Connect(broker)})
	return nil
}

func (handlerPlugin) GRPCClient(ctx context.Context, broker *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return NewPluginServiceClient(c), nil
}

func main() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: handshake,
		Plugins:         map[string]plugin.Plugin{"handler": handlerPlugin{}},
		GRPCServer:      plugin.DefaultGRPCServer,
		Logger:          logger,
	})
}
