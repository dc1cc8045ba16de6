/*
 * plughost_plugin.h — native plugins for plughost (and CLIProxyAPI).
 *
 * ABI version 1, JSON schema version 3: the CLIProxyAPI "standard dynamic library plugin"
 * ABI, unchanged, plus plughost's bot methods. A library built against this header loads in
 * CLIProxyAPI and in plughost alike.
 *
 * ---------------------------------------------------------------------------------------
 * The one export
 *   int cliproxy_plugin_init(const cliproxy_host_api *host, cliproxy_plugin_api *plugin);
 *   Return 0 and fill *plugin (abi_version = 1, call and free_buffer non-NULL; shutdown may be
 *   NULL). Keep the `host` pointer: the table, host_ctx and the callbacks stay valid until
 *   after shutdown() returns (in plughost: for the life of the process).
 *
 * Buffer ownership (both directions)
 *   - Request buffers belong to the caller and live only during the call. An empty request is
 *     passed as (NULL, 0).
 *   - The callee allocates the reply; the caller copies resp.len bytes and releases it with the
 *     CALLEE's free_buffer(ptr, exact len). The host allocates its replies with malloc and its
 *     free_buffer is free(); a plugin frees host replies only through host->free_buffer.
 *   - Calls into a plugin may run concurrently on many threads; the ABI does not serialise.
 *     Host callbacks may be made from any thread, inside a call or at any later time.
 *
 * Return codes
 *   0 with an envelope. Non-zero with an error envelope is a normal error; non-zero otherwise is
 *   reported as "plugin call <m> returned <rc>: <bytes>". host->call returns 1 only for a NULL
 *   ctx/method; every other failure is rc 0 with {"ok":false,"error":{"code":"host_call_failed",…}}.
 *
 * Envelope (UTF-8 JSON)
 *   {"ok":true,"result":<json>}
 *   {"ok":false,"error":{"code":"…","message":"…","retryable":false,"http_status":502}}
 *   Result keys are matched case-insensitively; unknown keys are ignored. Bytes are standard
 *   base64 with padding. Codes plugins use: unknown_method (rc 0), invalid_method (NULL
 *   method, rc 1), invalid_request, plugin_error.
 *
 * ---------------------------------------------------------------------------------------
 * Registration
 *   "plugin.register" (on load) and "plugin.reconfigure" (config/enabled changed)
 *     request  {"config_yaml":"<base64 YAML>","schema_version":3}
 *              YAML = the plugin's config table (plughost: config/plugins/<id>.toml) with
 *              `enabled` and `priority` appended when absent, e.g. "greeting: hi\nenabled: true\npriority: 0\n"
 *     result   {"schema_version":3,
 *               "metadata":{"Name":"…","Version":"…","Author":"…","GitHubRepository":"…","Logo":"",
 *                           "ConfigFields":[{"Name":"…","Type":"string","EnumValues":[],"Description":"…"}]},
 *               "capabilities":{"management_api":true,"bot":true, …}}
 *     Name, Version, Author and GitHubRepository must be non-blank and one capability true;
 *     otherwise the plugin is loaded but inactive (the reason is shown). schema_version > 3 is
 *     rejected; missing/0 means 1.
 *
 * Management API (capability "management_api")
 *   "management.register" {"Plugin":<metadata>,"BasePath":"/v0/management",
 *                          "ResourceBasePath":"/v0/resource/plugins/<id>"}
 *     → {"routes":[{"Method":"GET","Path":"status","Menu":"","Description":""}],
 *        "resources":[{"Path":"index.html","Menu":"","Description":""}]}
 *     CLIProxyAPI's rules: relative paths are made absolute and put under the base (a base
 *     prefix is dropped first), trailing '/' trimmed; no whitespace, ':', '*' or '..'; routes
 *     are under /v0/management (authenticated); resources are GET-only and unauthenticated under
 *     /v0/resource/plugins/<id> ("/status" → /v0/resource/plugins/<id>/status); a GET route
 *     with a Menu is a resource.
 *   "management.handle" {"Method","Path","Headers":{k:[v]},"Query":{k:[v]},"Body":b64|null}
 *     → {"StatusCode":0 (=200),"Headers":{k:[v]},"Body":"<base64>"}; a failed call → 502.
 *
 * Host callbacks (host->call(host->host_ctx, method, req, len, &resp))
 *   "host.log"     {"level":"trace|debug|info|warn|warning|error","message":"…","fields":{}} → {}
 *   "host.http.do" {"method":"GET","url":"…","headers":{k:[v]},"body":"<b64>"} (or {"request":{…}})
 *                  → {"StatusCode":200,"Headers":{k:[v]},"Body":"<b64>"}; refused without the
 *                  plugin's `network` permission.
 *   "host.bot.send" {"target":"group|private","group_id":1,"user_id":2,
 *                    "message":"text" | [{"type":"text","data":{"text":"…"}}],
 *                    "host_callback_id":"<from the request>"}  → {"queued":n}
 *                  Sends are queued and flushed in order after the bot callback returns (also
 *                  when it failed). Sends made outside any bot call wait on the plugin handle.
 *   "host.bus.publish" {"topic":"a.b","data":…} → subscriptions reached
 *   "host.bus.request" {"topic":"a.b","data":…,"timeout":5} → the replier's answer
 *   "host.bus.unsubscribe" {"pattern":"a.*"} → subscriptions dropped
 *   "host.state.get|set|delete|get_all|clear|incr|compare_and_set"
 *                  {"key","value","default","ttl","amount","expected","namespace"} (see docs/native.md)
 *                  Topics and shared namespaces need the manifest's [permissions] topics / state;
 *                  refusals answer codes access_denied, no_responders, timed_out, invalid_request.
 *   Unknown methods → {"ok":false,"error":{"code":"host_call_failed","message":"unsupported host callback <m>"}}
 *
 * ---------------------------------------------------------------------------------------
 * plughost bot methods (capability "bot")
 *   "bot.describe" {} → {"commands":[{"name":"echo","aliases":["say"],"description":"…","usage":"…",
 *                         "category":"","role":"anyone|admin|owner","scope":"all|group|private",
 *                         "prefix_optional":false,
 *                         "overloads":[{"handler":"echo","params":[{"name":"text","type":"str",
 *                                       "required":true,"variadic":true,"choices":[]}],"raw":false}],
 *                         "subcommands":[]}],
 *                       "routes":[{"kind":"notice|request|meta|message","events":["GroupPoke"],"handler":"on_poke"}],
 *                       "interceptors":[{"stage":"pre_handle|after_completion","handler":"guard"}],
 *                       "methods":[{"name":"…","description":"…","input_schema":{}}],
 *                       "matchers":[{"handler":"on_roll","type":"keyword|startswith|endswith|fullmatch|regex|any",
 *                                    "patterns":["^roll (?P<n>\\d+)$"],"ignore_case":false,"to_me":false}]}
 *   "bot.command" / "bot.route" / "bot.pre_handle" / "bot.after_completion" request (every field present):
 *     {"handler":"echo","args":["a","b"],"named_args":{"text":"a"},"command_name":"echo",
 *      "sender_id":10001,"group_id":20002,"sender_nickname":"alice","message_id":3,
 *      "timestamp":1700000000,"event":{…OneBot v11 event, or null for console commands…},
 *      "host_callback_id":"<id>"}
 *     `args` are a command's argument words as the user typed them; `named_args` the host's parsed
 *     values by parameter name. Routes and interceptors also get "kind", "route", "bot_id",
 *     "self_id" and "message_text".
 *   "bot.matcher" (a matcher matched): the route fields plus "match":{"type","pattern","text",
 *     "start","end","groups":[…],"named":{"n":"2"}} and "to_me"; it answers like a route.
 *   result:
 *     {"action":"ignore"} | {"action":"continue"}
 *     {"action":"reply","text":"…"} | {"action":"reply","segments":[{"type":"text","data":{"text":"…"}}]}
 *     {"action":"approve","remark":"…"} | {"action":"reject","reason":"…"}     (request routes)
 *     {"action":"allow"} | {"action":"block","reason":"…"}                     (pre_handle)
 *     Optional "stop":true ends route delivery to lower-priority plugins.
 */
#ifndef PLUGHOST_PLUGIN_H
#define PLUGHOST_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CLIPROXY_PLUGIN_ABI_VERSION 1u
#define CLIPROXY_PLUGIN_SCHEMA_VERSION 3

typedef struct {
    void *ptr;
    size_t len;
} cliproxy_buffer;

typedef int (*cliproxy_host_call_fn)(void *host_ctx, const char *method, const uint8_t *req, size_t req_len,
                                     cliproxy_buffer *resp);
typedef void (*cliproxy_host_free_fn)(void *ptr, size_t len);

typedef struct {
    uint32_t abi_version;
    void *host_ctx;
    cliproxy_host_call_fn call;
    cliproxy_host_free_fn free_buffer;
} cliproxy_host_api;

typedef int (*cliproxy_plugin_call_fn)(const char *method, const uint8_t *req, size_t req_len, cliproxy_buffer *resp);
typedef void (*cliproxy_plugin_free_fn)(void *ptr, size_t len);
typedef void (*cliproxy_plugin_shutdown_fn)(void);

typedef struct {
    uint32_t abi_version;
    cliproxy_plugin_call_fn call;
    cliproxy_plugin_free_fn free_buffer;
    cliproxy_plugin_shutdown_fn shutdown;
} cliproxy_plugin_api;

#if defined(_WIN32)
#define CLIPROXY_PLUGIN_EXPORT __declspec(dllexport)
#else
#define CLIPROXY_PLUGIN_EXPORT __attribute__((visibility("default")))
#endif

/* The one required export. */
CLIPROXY_PLUGIN_EXPORT int cliproxy_plugin_init(const cliproxy_host_api *host, cliproxy_plugin_api *plugin);

#ifdef __cplusplus
}
#endif

#endif /* PLUGHOST_PLUGIN_H */
