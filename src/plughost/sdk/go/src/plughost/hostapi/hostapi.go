// Package hostapi gives a go-plugin process plugin the plughost host's message bus and shared
// state (what ctx.bus and ctx.state are to a Python plugin).
//
// The host serves plughost.host.v1.HostServices to each process plugin it starts and announces
// it over go-plugin's GRPCBroker with the service id in PLUGHOST_HOST_SERVICE_ID. Connect the
// client in your plugin's GRPCServer (go-plugin drops an announcement nobody dials within 5 s):
//
//	func (p *myPlugin) GRPCServer(broker *plugin.GRPCBroker, s *grpc.Server) error {
//		p.host = hostapi.Connect(broker)
//		...
//	}
//
// and call it from your handlers:
//
//	n, err := p.host.State().Incr(ctx, "calls", 1)
//	_, err = p.host.Publish(ctx, "kv.stored", map[string]string{"key": key})
//
// Every call runs in the host with the plugin's own permissions ([permissions] topics and
// state of its manifest); a refusal comes back as an *Error (Kind "access_denied", …).
//
// Build in GOPATH mode with this directory's GOPATH root on GOPATH: the installed package's
// plughost/sdk/go (`python -m plughost.sdk.golang` prints it; the host passes it to a plugin's
// scripts/build.sh as PLUGHOST_GO_SDK), sdk/go in a checkout:
//
//	GO111MODULE=off GOPATH=$HOME/go:/usr/share/gocode:$PLUGHOST_GO_SDK go build
package hostapi

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"plughost/hostapi/hostv1"
)

// ServiceIDEnv names the environment variable in which the host hands over the broker service id.
const ServiceIDEnv = "PLUGHOST_HOST_SERVICE_ID"

// connectTimeout bounds how long Connect keeps dialing the announced service.
const connectTimeout = 60 * time.Second

// Error is an operation the host refused or could not run.
type Error struct {
	Kind    string // access_denied, not_json, bus_request, host or client (this side)
	Code    string // e.g. access_denied, unknown_operation, invalid_request, no_responders
	Message string
}

func (e *Error) Error() string { return e.Message }

// IsAccessDenied reports whether err is the host refusing an operation the plugin's manifest
// does not grant.
func IsAccessDenied(err error) bool {
	hostErr, ok := err.(*Error)
	return ok && hostErr.Kind == "access_denied"
}

// Client calls the host's bus and state operations. Safe for concurrent use.
type Client struct {
	ready   chan struct{} // closed once conn or failure is set
	once    sync.Once
	offered bool
	conn    *grpc.ClientConn
	stub    hostv1.HostServicesClient
	failed  error
}

// Connect dials the host's services through broker in the background; calls wait until the
// connection is there (or their context ends). Without PLUGHOST_HOST_SERVICE_ID (a host that
// offers no host services, e.g. to a remote or AutoMTLS plugin) every call fails with the reason.
func Connect(broker *plugin.GRPCBroker) *Client {
	client := &Client{ready: make(chan struct{})}
	raw, offered := os.LookupEnv(ServiceIDEnv)
	if !offered {
		client.fail(fmt.Errorf("the host offers no host services to this plugin (%s is not set; "+
			"remote and AutoMTLS plugins get none, see plughost's docs/process.md)", ServiceIDEnv))
		return client
	}
	id, err := strconv.ParseUint(raw, 10, 32)
	if err != nil {
		client.fail(fmt.Errorf("%s=%q is not a broker service id", ServiceIDEnv, raw))
		return client
	}
	client.offered = true
	go client.dial(broker, uint32(id))
	return client
}

// Offered reports whether the host offers its services to this plugin (a plugin that also runs
// under other go-plugin hosts can skip what needs them).
func (c *Client) Offered() bool { return c.offered }

// dial retries broker.Dial (it gives up after 5 s each time) until the announcement arrives.
func (c *Client) dial(broker *plugin.GRPCBroker, id uint32) {
	deadline := time.Now().Add(connectTimeout)
	for {
		conn, err := broker.Dial(id)
		if err == nil {
			c.conn, c.stub = conn, hostv1.NewHostServicesClient(conn)
			c.once.Do(func() { close(c.ready) })
			return
		}
		if time.Now().After(deadline) {
			c.fail(fmt.Errorf("the host's services (broker id %d) were not announced within %s: %v", id, connectTimeout, err))
			return
		}
	}
}

func (c *Client) fail(err error) {
	c.once.Do(func() {
		c.failed = err
		close(c.ready)
	})
}

// Close closes the connection to the host.
func (c *Client) Close() error {
	select {
	case <-c.ready:
		if c.conn != nil {
			return c.conn.Close()
		}
	default:
	}
	return nil
}

// Call runs one host operation (e.g. "state.incr") with params (any JSON-encodable object) and
// decodes its answer into result (a pointer; nil ignores the answer).
func (c *Client) Call(ctx context.Context, operation string, params interface{}, result interface{}) error {
	select {
	case <-c.ready:
	case <-ctx.Done():
		return &Error{Kind: "client", Code: "unavailable", Message: "waiting for the host's services: " + ctx.Err().Error()}
	}
	if c.failed != nil {
		return &Error{Kind: "client", Code: "unavailable", Message: c.failed.Error()}
	}
	body, err := json.Marshal(params)
	if err != nil {
		return &Error{Kind: "client", Code: "not_json", Message: fmt.Sprintf("%s: params are not JSON-encodable: %v", operation, err)}
	}
	answer, err := c.stub.Call(ctx, &hostv1.CallRequest{Operation: operation, ParamsJson: body})
	if err != nil {
		return &Error{Kind: "client", Code: "unavailable", Message: fmt.Sprintf("%s: %v", operation, err)}
	}
	if failure := answer.GetError(); failure != nil {
		return &Error{Kind: failure.Kind, Code: failure.Code, Message: failure.Message}
	}
	if result == nil {
		return nil
	}
	if err := json.Unmarshal(answer.ResultJson, result); err != nil {
		return &Error{Kind: "client", Code: "not_json", Message: fmt.Sprintf("%s: cannot decode the answer: %v", operation, err)}
	}
	return nil
}

// Publish sends data to every subscription matching topic; it returns how many it reached.
func (c *Client) Publish(ctx context.Context, topic string, data interface{}) (int, error) {
	var reached int
	err := c.Call(ctx, "bus.publish", map[string]interface{}{"topic": topic, "data": data}, &reached)
	return reached, err
}

// Request asks the replier on topic and decodes its answer into result; timeout 0 means 5 s.
func (c *Client) Request(ctx context.Context, topic string, data interface{}, timeout time.Duration, result interface{}) error {
	params := map[string]interface{}{"topic": topic, "data": data}
	if timeout > 0 {
		params["timeout"] = timeout.Seconds()
	}
	return c.Call(ctx, "bus.request", params, result)
}

// Unsubscribe drops the plugin's subscriptions on pattern; it returns how many.
func (c *Client) Unsubscribe(ctx context.Context, pattern string) (int, error) {
	var dropped int
	err := c.Call(ctx, "bus.unsubscribe", map[string]interface{}{"pattern": pattern}, &dropped)
	return dropped, err
}

// State is the plugin's own state namespace.
func (c *Client) State() *State { return &State{client: c} }

// Namespace is a shared state namespace; the host refuses it (IsAccessDenied) unless the
// manifest's [permissions] state lists it.
func (c *Client) Namespace(name string) *State { return &State{client: c, namespace: name} }

// State is one namespace of the host's shared state (values are JSON).
type State struct {
	client    *Client
	namespace string
}

func (s *State) call(ctx context.Context, operation string, params map[string]interface{}, result interface{}) error {
	if s.namespace != "" {
		params["namespace"] = s.namespace
	}
	return s.client.Call(ctx, operation, params, result)
}

func ttlParam(params map[string]interface{}, ttl time.Duration) map[string]interface{} {
	if ttl > 0 {
		params["ttl"] = ttl.Seconds()
	}
	return params
}

// Get decodes the value of key into out; it reports false (out untouched) when the key is
// missing or holds null.
func (s *State) Get(ctx context.Context, key string, out interface{}) (bool, error) {
	var raw json.RawMessage
	if err := s.call(ctx, "state.get", map[string]interface{}{"key": key}, &raw); err != nil {
		return false, err
	}
	if strings.TrimSpace(string(raw)) == "null" {
		return false, nil
	}
	if out == nil {
		return true, nil
	}
	return true, json.Unmarshal(raw, out)
}

// Set stores value (any JSON-encodable value) under key; ttl 0 keeps it until deleted.
func (s *State) Set(ctx context.Context, key string, value interface{}, ttl time.Duration) error {
	return s.call(ctx, "state.set", ttlParam(map[string]interface{}{"key": key, "value": value}, ttl), nil)
}

// Delete removes key; it reports whether it existed.
func (s *State) Delete(ctx context.Context, key string) (bool, error) {
	var existed bool
	err := s.call(ctx, "state.delete", map[string]interface{}{"key": key}, &existed)
	return existed, err
}

// GetAll returns every key of the namespace with its JSON value.
func (s *State) GetAll(ctx context.Context) (map[string]json.RawMessage, error) {
	all := map[string]json.RawMessage{}
	err := s.call(ctx, "state.get_all", map[string]interface{}{}, &all)
	return all, err
}

// Clear removes every key of the namespace; it returns how many.
func (s *State) Clear(ctx context.Context) (int, error) {
	var removed int
	err := s.call(ctx, "state.clear", map[string]interface{}{}, &removed)
	return removed, err
}

// Incr adds amount to the integer under key (a missing key counts as 0) and returns the new value.
func (s *State) Incr(ctx context.Context, key string, amount int64) (int64, error) {
	var value int64
	err := s.call(ctx, "state.incr", map[string]interface{}{"key": key, "amount": amount}, &value)
	return value, err
}

// CompareAndSet stores value under key only if its current value equals expected (nil: the key
// is missing); it reports whether it stored.
func (s *State) CompareAndSet(ctx context.Context, key string, expected, value interface{}, ttl time.Duration) (bool, error) {
	var stored bool
	params := ttlParam(map[string]interface{}{"key": key, "expected": expected, "value": value}, ttl)
	err := s.call(ctx, "state.compare_and_set", params, &stored)
	return stored, err
}
