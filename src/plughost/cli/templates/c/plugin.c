/* @ID@: a plughost native plugin with a chat command and a method.
 *
 * The host calls `plugin_call(method, request JSON)`; every answer is {"ok":true,"result":...} or
 * {"ok":false,"error":{"code","message"}}. See plughost_plugin.h and plughost's docs/native.md.
 * JSON is handled by string search to stay dependency-free; a real plugin would use a JSON library.
 */
#define _GNU_SOURCE
#include "plughost_plugin.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int reply(cliproxy_buffer *resp, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *out = NULL;
    int n = vasprintf(&out, fmt, ap);
    va_end(ap);
    if (n < 0) return 1;
    resp->ptr = out;
    resp->len = (size_t)n;
    return 0;
}

static void plugin_free(void *ptr, size_t len) {
    (void)len;
    free(ptr);
}

/* The raw (still JSON-escaped, so safe to paste into JSON) text of the first string after `"key":`
 * (for an array: its first item); "" when there is none. The caller frees it. */
static char *json_text(const char *json, size_t len, const char *key) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    const char *p = json ? memmem(json, len, pattern, strlen(pattern)) : NULL, *end = json + len;
    char *out = calloc(1, len + 1), *o = out;
    if (p && out) {
        for (p += strlen(pattern); p < end && (*p == ' ' || *p == '['); p++) {}
        if (p < end && *p == '"')
            for (p++; p < end && *p != '"'; p++) {
                if (*p == '\\' && p + 1 < end) *o++ = *p++;
                *o++ = *p;
            }
    }
    return out;
}

static int do_register(cliproxy_buffer *resp) {
    return reply(resp, "{\"ok\":true,\"result\":{\"schema_version\":3,"
                       "\"metadata\":{\"Name\":\"@ID@\",\"Version\":\"0.1.0\",\"Author\":\"you\","
                       "\"GitHubRepository\":\"https://example.invalid/@ID@\",\"Logo\":\"\",\"ConfigFields\":[]},"
                       "\"capabilities\":{\"bot\":true}}}");
}

/* What the plugin offers in chat: the command /@COMMAND@ [name]. */
static int do_describe(cliproxy_buffer *resp) {
    return reply(resp, "{\"ok\":true,\"result\":{\"commands\":[{\"name\":\"@COMMAND@\","
                       "\"description\":\"say hello (/@COMMAND@ Ada)\",\"overloads\":[{\"handler\":\"hello\","
                       "\"params\":[{\"name\":\"name\",\"type\":\"str\",\"required\":false}]}]}]}}");
}

/* A command: {"handler", "args": [...], ...} in, a reply out. */
static int do_command(const char *req, size_t len, cliproxy_buffer *resp) {
    char *name = json_text(req, len, "args");
    int rc = reply(resp, "{\"ok\":true,\"result\":{\"action\":\"reply\",\"text\":\"hello, %s\"}}",
                   name && *name ? name : "world");
    free(name);
    return rc;
}

/* The method `hello` ({"name": "Ada"} → {"greeting": "hello, Ada"}). */
static int do_hello(const char *req, size_t len, cliproxy_buffer *resp) {
    char *name = json_text(req, len, "name");
    int rc = reply(resp, "{\"ok\":true,\"result\":{\"greeting\":\"hello, %s\"}}", name && *name ? name : "world");
    free(name);
    return rc;
}

static int plugin_call(const char *method, const uint8_t *req, size_t len, cliproxy_buffer *resp) {
    const char *body = (const char *)req;
    if (method == NULL)
        return reply(resp, "{\"ok\":false,\"error\":{\"code\":\"invalid_method\",\"message\":\"no method\"}}");
    if (!strcmp(method, "plugin.register") || !strcmp(method, "plugin.reconfigure")) return do_register(resp);
    if (!strcmp(method, "bot.describe")) return do_describe(resp);
    if (!strcmp(method, "bot.command")) return do_command(body, len, resp);
    if (!strcmp(method, "hello")) return do_hello(body, len, resp);
    return reply(resp, "{\"ok\":false,\"error\":{\"code\":\"unknown_method\",\"message\":\"unknown method %s\"}}",
                 method);
}

static void plugin_shutdown(void) {}

CLIPROXY_PLUGIN_EXPORT int cliproxy_plugin_init(const cliproxy_host_api *host, cliproxy_plugin_api *plugin) {
    if (host == NULL || plugin == NULL || host->abi_version != CLIPROXY_PLUGIN_ABI_VERSION) return 1;
    plugin->abi_version = CLIPROXY_PLUGIN_ABI_VERSION;
    plugin->call = plugin_call;
    plugin->free_buffer = plugin_free;
    plugin->shutdown = plugin_shutdown;
    return 0;
}
