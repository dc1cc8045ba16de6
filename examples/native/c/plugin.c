/* Example plughost / CLIProxyAPI native plugin in plain C.
 *
 * - plugin.register / plugin.reconfigure: reads `greeting` from the config YAML
 * - management API: route GET /v0/management/example-c/status, resources index.html and /status
 *   (served at /v0/resource/plugins/<id>/index.html and /v0/resource/plugins/<id>/status)
 * - bot: command `echo` (alias `say`), command `fetch <url>`, route notice/GroupPoke,
 *   pre_handle interceptor that blocks messages containing "spam"
 * - host callbacks: host.log, host.http.do, host.bot.send
 * - message bus and shared state: method `visits` counts in the plugin's state (host.state.incr)
 *   and announces the count on topic `example.visits` (host.bus.publish); with `ping_topic` set in
 *   its config it answers bus requests on that topic (a `reply` subscription in bot.describe)
 *
 * JSON handling is deliberately tiny (string search); a real plugin would use a JSON library.
 */
#define _GNU_SOURCE
#include "plughost_plugin.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cliproxy_host_api *host;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char greeting[128] = "Hello";
static char ping_topic[128] = ""; /* config `ping_topic`: answer bus requests there (needs the topic granted) */
static long calls;

/* ---- small helpers ------------------------------------------------------------------------ */

static int reply(cliproxy_buffer *resp, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *out = malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(out, (size_t)n + 1, fmt, ap);
    va_end(ap);
    resp->ptr = out;
    resp->len = (size_t)n;
    return 0;
}

static void plugin_free(void *ptr, size_t len) {
    (void)len;
    free(ptr);
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *b64_encode(const char *in, size_t len) {
    char *out = malloc(4 * ((len + 2) / 3) + 1), *o = out;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned char)in[i] << 16;
        if (i + 1 < len) v |= (unsigned char)in[i + 1] << 8;
        if (i + 2 < len) v |= (unsigned char)in[i + 2];
        *o++ = B64[(v >> 18) & 63];
        *o++ = B64[(v >> 12) & 63];
        *o++ = i + 1 < len ? B64[(v >> 6) & 63] : '=';
        *o++ = i + 2 < len ? B64[v & 63] : '=';
    }
    *o = 0;
    return out;
}

static size_t b64_decode(const char *in, char *out, size_t cap) {
    size_t n = 0;
    unsigned v = 0;
    int bits = 0;
    for (; *in && *in != '"' && *in != '='; in++) {
        const char *p = strchr(B64, *in);
        if (!p) continue;
        v = (v << 6) | (unsigned)(p - B64);
        bits += 6;
        if (bits >= 8 && n + 1 < cap) {
            bits -= 8;
            out[n++] = (char)((v >> bits) & 0xff);
        }
    }
    out[n] = 0;
    return n;
}

/* The raw (still JSON-escaped) string value of "key" — safe to paste into JSON output. */
static int json_str(const char *json, size_t len, const char *key, char *out, size_t cap) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *p = json ? memmem(json, len, pat, strlen(pat)) : NULL, *end = json + len;
    if (!p) return 0;
    size_t i = 0;
    for (p += strlen(pat); p < end && *p != '"' && i + 2 < cap; p++) {
        if (*p == '\\') out[i++] = *p++;
        out[i++] = *p;
    }
    out[i] = 0;
    return 1;
}

static long json_num(const char *json, size_t len, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = json ? memmem(json, len, pat, strlen(pat)) : NULL;
    return p ? strtol(p + strlen(pat), NULL, 10) : 0;
}

/* Join the strings of the "args" array with spaces (raw escaped text). */
static void json_args(const char *json, size_t len, char *out, size_t cap) {
    const char *p = json ? memmem(json, len, "\"args\":[", 8) : NULL, *end = json + len;
    size_t i = 0;
    out[0] = 0;
    if (!p) return;
    for (p += 8; p < end && *p != ']'; p++) {
        if (*p != '"') continue;
        if (i && i + 1 < cap) out[i++] = ' ';
        for (p++; p < end && *p != '"' && i + 2 < cap; p++) {
            if (*p == '\\') out[i++] = *p++;
            out[i++] = *p;
        }
    }
    out[i] = 0;
}

/* Call the host; returns the reply envelope as a NUL-terminated string (free it). */
static char *call_host(const char *method, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *req = NULL;
    if (vasprintf(&req, fmt, ap) < 0) req = NULL;
    va_end(ap);
    cliproxy_buffer resp = {0};
    int rc = host->call(host->host_ctx, method, (const uint8_t *)req, req ? strlen(req) : 0, &resp);
    free(req);
    char *out = calloc(1, resp.len + 1);
    if (rc == 0 && resp.ptr) memcpy(out, resp.ptr, resp.len);
    if (resp.ptr) host->free_buffer(resp.ptr, resp.len); /* the host's allocation: the host's free */
    return out;
}

/* ---- methods ------------------------------------------------------------------------------ */

static int do_register(const char *req, size_t len, cliproxy_buffer *resp) {
    char b64[4096], yaml[4096];
    if (json_str(req, len, "config_yaml", b64, sizeof b64)) {
        b64_decode(b64, yaml, sizeof yaml);
        const char *g = strstr(yaml, "greeting: ");
        const char *t = strstr(yaml, "ping_topic: ");
        pthread_mutex_lock(&lock);
        if (g) sscanf(g + 10, "%127[^\n]", greeting);
        if (t) sscanf(t + 12, "%127[^\n\"' ]", ping_topic);
        pthread_mutex_unlock(&lock);
    }
    return reply(resp,
                 "{\"ok\":true,\"result\":{\"schema_version\":3,"
                 "\"metadata\":{\"Name\":\"example-c\",\"Version\":\"1.0.0\",\"Author\":\"plughost\","
                 "\"GitHubRepository\":\"https://github.com/plughost/plughost\",\"Logo\":\"\","
                 "\"ConfigFields\":[{\"Name\":\"greeting\",\"Type\":\"string\",\"EnumValues\":[],"
                 "\"Description\":\"how the plugin greets\"}]},"
                 "\"capabilities\":{\"management_api\":true,\"bot\":true}}}");
}

static int do_management_register(cliproxy_buffer *resp) {
    return reply(resp,
                 "{\"ok\":true,\"result\":{"
                 "\"Routes\":[{\"Method\":\"get\",\"Path\":\"example-c/status\",\"Description\":\"call counter\"}],"
                 "\"Resources\":[{\"Path\":\"index.html\",\"Menu\":\"Example C\",\"Description\":\"a page\"},"
                 "{\"Path\":\"/status\",\"Menu\":\"Example C status\",\"Description\":\"call counter\"}]}}");
}

static int do_management_handle(const char *req, size_t len, cliproxy_buffer *resp) {
    char path[512] = "", body[512];
    json_str(req, len, "Path", path, sizeof path);
    pthread_mutex_lock(&lock);
    const char *type = "application/json";
    if (strstr(path, "/index.html")) {
        snprintf(body, sizeof body, "<h1>%s from C</h1>", greeting);
        type = "text/html; charset=utf-8";
    } else {
        snprintf(body, sizeof body, "{\"calls\":%ld,\"greeting\":\"%s\"}", calls, greeting);
    }
    pthread_mutex_unlock(&lock);
    char *encoded = b64_encode(body, strlen(body));
    int rc = reply(resp, "{\"ok\":true,\"result\":{\"StatusCode\":0,\"Headers\":{\"Content-Type\":[\"%s\"]},\"Body\":\"%s\"}}",
                   type, encoded);
    free(encoded);
    return rc;
}

static int do_describe(cliproxy_buffer *resp) {
    return reply(resp,
                 "{\"ok\":true,\"result\":{"
                 "\"commands\":[{\"name\":\"echo\",\"aliases\":[\"say\"],\"description\":\"repeat the text\","
                 "\"usage\":\"echo <text...>\",\"category\":\"example\",\"overloads\":[{\"handler\":\"echo\","
                 "\"params\":[{\"name\":\"text\",\"type\":\"str\",\"variadic\":true}]}]},"
                 "{\"name\":\"fetch\",\"description\":\"GET a URL through the host\",\"role\":\"admin\","
                 "\"overloads\":[{\"handler\":\"fetch\",\"params\":[{\"name\":\"url\",\"type\":\"str\"}]}]}],"
                 "\"routes\":[{\"kind\":\"notice\",\"events\":[\"GroupPoke\"],\"handler\":\"on_poke\"}],"
                 "\"interceptors\":[{\"stage\":\"pre_handle\",\"handler\":\"guard\"}],"
                 "\"subscriptions\":[%s%s%s]}}",
                 *ping_topic ? "{\"topic\":\"" : "", ping_topic, *ping_topic ? "\",\"handler\":\"on_ping\",\"mode\":\"reply\"}" : "");
}

/* host.state.incr, then host.bus.publish of the new count: {"visits": n, "delivered": m}. */
static int do_visits(cliproxy_buffer *resp) {
    char *counted = call_host("host.state.incr", "{\"key\":\"visits\"}");
    if (!strstr(counted, "\"ok\":true")) {
        int rc = reply(resp, "%s", counted); /* the host's error envelope, passed on */
        free(counted);
        return rc;
    }
    long visits = json_num(counted, strlen(counted), "result");
    free(counted);
    char *published = call_host("host.bus.publish", "{\"topic\":\"example.visits\",\"data\":{\"visits\":%ld}}", visits);
    long delivered = json_num(published, strlen(published), "result");
    free(published);
    return reply(resp, "{\"ok\":true,\"result\":{\"visits\":%ld,\"delivered\":%ld}}", visits, delivered);
}

/* A bus request on example.ping: {"topic", "data", "sender"} in, the answer out. */
static int do_ping(const char *req, size_t len, cliproxy_buffer *resp) {
    char sender[128] = "";
    json_str(req, len, "sender", sender, sizeof sender);
    return reply(resp, "{\"ok\":true,\"result\":{\"pong\":\"%s\"}}", sender);
}

static int do_command(const char *req, size_t len, cliproxy_buffer *resp) {
    char handler[64] = "", text[2048], cbid[128] = "";
    json_str(req, len, "handler", handler, sizeof handler);
    json_str(req, len, "host_callback_id", cbid, sizeof cbid);
    json_args(req, len, text, sizeof text);
    long group = json_num(req, len, "group_id");
    pthread_mutex_lock(&lock);
    calls++;
    pthread_mutex_unlock(&lock);
    if (!strcmp(handler, "echo")) {
        free(call_host("host.log", "{\"level\":\"info\",\"message\":\"echo called\",\"fields\":{\"group\":%ld}}", group));
        if (group)
            free(call_host("host.bot.send",
                           "{\"target\":\"group\",\"group_id\":%ld,\"message\":\"(echo logged)\",\"host_callback_id\":\"%s\"}",
                           group, cbid));
        return reply(resp, "{\"ok\":true,\"result\":{\"action\":\"reply\",\"text\":\"%s, %s\"}}", greeting, text);
    }
    if (!strcmp(handler, "fetch")) {
        char *r = call_host("host.http.do", "{\"method\":\"GET\",\"url\":\"%s\"}", text);
        long status = json_num(r, strlen(r), "StatusCode");
        char message[256] = "";
        json_str(r, strlen(r), "message", message, sizeof message);
        int rc = status ? reply(resp, "{\"ok\":true,\"result\":{\"action\":\"reply\",\"text\":\"status %ld\"}}", status)
                        : reply(resp, "{\"ok\":true,\"result\":{\"action\":\"reply\",\"text\":\"fetch failed: %s\"}}", message);
        free(r);
        return rc;
    }
    return reply(resp, "{\"ok\":false,\"error\":{\"code\":\"invalid_request\",\"message\":\"no command handler %s\"}}", handler);
}

static int plugin_call(const char *method, const uint8_t *req, size_t len, cliproxy_buffer *resp) {
    const char *body = (const char *)req;
    if (method == NULL)
        return reply(resp, "{\"ok\":false,\"error\":{\"code\":\"invalid_method\",\"message\":\"method is NULL\"}}"), 1;
    if (!strcmp(method, "plugin.register") || !strcmp(method, "plugin.reconfigure")) return do_register(body, len, resp);
    if (!strcmp(method, "management.register")) return do_management_register(resp);
    if (!strcmp(method, "management.handle")) return do_management_handle(body, len, resp);
    if (!strcmp(method, "bot.describe")) return do_describe(resp);
    if (!strcmp(method, "bot.command")) return do_command(body, len, resp);
    if (!strcmp(method, "visits")) return do_visits(resp);
    if (!strcmp(method, "on_ping")) return do_ping(body, len, resp);
    if (!strcmp(method, "bot.route")) return reply(resp, "{\"ok\":true,\"result\":{\"action\":\"reply\",\"text\":\"ouch\"}}");
    if (!strcmp(method, "bot.pre_handle")) {
        int spam = body && memmem(body, len, "spam", 4) != NULL;
        return spam ? reply(resp, "{\"ok\":true,\"result\":{\"action\":\"block\",\"reason\":\"spam\"}}")
                    : reply(resp, "{\"ok\":true,\"result\":{\"action\":\"allow\"}}");
    }
    return reply(resp, "{\"ok\":false,\"error\":{\"code\":\"unknown_method\",\"message\":\"unknown method %s\"}}", method);
}

static void plugin_shutdown(void) {}

CLIPROXY_PLUGIN_EXPORT int cliproxy_plugin_init(const cliproxy_host_api *h, cliproxy_plugin_api *plugin) {
    if (h == NULL || plugin == NULL || h->abi_version != CLIPROXY_PLUGIN_ABI_VERSION) return 1;
    host = h;
    plugin->abi_version = CLIPROXY_PLUGIN_ABI_VERSION;
    plugin->call = plugin_call;
    plugin->free_buffer = plugin_free;
    plugin->shutdown = plugin_shutdown;
    return 0;
}
