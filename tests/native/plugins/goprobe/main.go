// A Go c-shared plugin for the CLIProxyAPI ABI (standard library only), used by the tests to
// prove that Go builds load unchanged: Go runtime threads, goroutines calling back, cgo memory.
package main

/*
#include <stdlib.h>
#include <string.h>
#include "plughost_plugin.h"
int host_call(const char *method, const char *req, size_t len, cliproxy_buffer *resp);
void host_free(void *ptr, size_t len);
*/
import "C"

import (
	"encoding/json"
	"sync"
	"unsafe"
)

type envelope struct {
	OK     bool        `json:"ok"`
	Result interface{} `json:"result,omitempty"`
	Error  *apiError   `json:"error,omitempty"`
}

type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func reply(resp *C.cliproxy_buffer, value envelope) C.int {
	data, _ := json.Marshal(value)
	ptr := C.malloc(C.size_t(len(data)))
	C.memcpy(ptr, unsafe.Pointer(&data[0]), C.size_t(len(data)))
	resp.ptr = ptr
	resp.len = C.size_t(len(data))
	return 0
}

func callHost(method string, request interface{}) (map[string]interface{}, error) {
	body, _ := json.Marshal(request)
	cm := C.CString(method)
	defer C.free(unsafe.Pointer(cm))
	cb := C.CString(string(body))
	defer C.free(unsafe.Pointer(cb))
	var resp C.cliproxy_buffer
	C.host_call(cm, cb, C.size_t(len(body)), &resp)
	data := C.GoBytes(resp.ptr, C.int(resp.len))
	if resp.ptr != nil {
		C.host_free(resp.ptr, resp.len)
	}
	out := map[string]interface{}{}
	err := json.Unmarshal(data, &out)
	return out, err
}

//export goPluginCall
func goPluginCall(method *C.char, req *C.uint8_t, length C.size_t, resp *C.cliproxy_buffer) C.int {
	name := C.GoString(method)
	var request map[string]interface{}
	if req != nil {
		_ = json.Unmarshal(C.GoBytes(unsafe.Pointer(req), C.int(length)), &request)
	}
	switch name {
	case "plugin.register", "plugin.reconfigure":
		return reply(resp, envelope{OK: true, Result: map[string]interface{}{
			"schema_version": 3,
			"metadata": map[string]interface{}{
				"Name": "goprobe", "Version": "0.3.0", "Author": "qa", "GitHubRepository": "https://example.invalid/goprobe",
			},
			"capabilities": map[string]interface{}{"executor": true, "executor_model_scope": "all"},
		}})
	case "echo":
		return reply(resp, envelope{OK: true, Result: request})
	case "host_log":
		out, err := callHost("host.log", map[string]interface{}{"level": "info", "message": "hello from Go"})
		if err != nil {
			return reply(resp, envelope{OK: false, Error: &apiError{"plugin_error", err.Error()}})
		}
		return reply(resp, envelope{OK: true, Result: out})
	case "goroutines_log":
		// many goroutines (on Go's own threads) call back at the same time, then we wait for all
		n := int(request["n"].(float64))
		var wg sync.WaitGroup
		results := make([]interface{}, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				out, _ := callHost("host.log", map[string]interface{}{"level": "debug", "message": "goroutine", "fields": map[string]interface{}{"i": i}})
				results[i] = out["ok"]
			}(i)
		}
		wg.Wait()
		return reply(resp, envelope{OK: true, Result: results})
	}
	return reply(resp, envelope{OK: false, Error: &apiError{"unknown_method", "unknown method " + name}})
}

//export goPluginFree
func goPluginFree(ptr unsafe.Pointer, length C.size_t) {
	C.free(ptr)
}

func main() {}
