/* A native bot plugin that declares message matchers (and, built with -DWITH_SCHEDULE, a schedule)
 * in bot.describe and answers `bot.matcher` and `bot.schedule`.
 *
 * - regex `^roll (?P<count>\d+)d(?P<sides>\d+)$`: replies "native rolled <count>d<sides>" from the
 *   named groups the host sends in `match.named`
 * - keyword "ping" (ignore_case, to_me): replies "native pong"
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
    resp->ptr = n < 0 ? NULL : out;
    resp->len = n < 0 ? 0 : (size_t)n;
    return n < 0;
}

static void plugin_free(void *ptr, size_t len) {
    (void)len;
    free(ptr);
}

/* The string value of "key" (no escapes expected): 1 when found. */
static int json_str(const char *json, size_t len, const char *key, char *out, size_t cap) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *p = json ? memmem(json, len, pat, strlen(pat)) : NULL, *end = json + len;
    if (!p) return 0;
    size_t i = 0;
    for (p += strlen(pat); p < end && *p != '"' && i + 1 < cap; p++) out[i++] = *p;
    out[i] = 0;
    return 1;
}

#ifdef WITH_SCHEDULE /* built so by tests/bot/test_schedules.py: a tick every 50 ms into group 123 */
#define SCHEDULES ",\"schedules\":[{\"handler\":\"tick\",\"every_s\":0.05,\"chat\":\"group:123\"}]"
#else
#define SCHEDULES ""
#endif

static int plugin_call(const char *method, const uint8_t *req, size_t len, cliproxy_buffer *resp) {
    const char *body = (const char *)req;
    if (!strcmp(method, "plugin.register") || !strcmp(method, "plugin.reconfigure"))
        return reply(resp, "{\"ok\":true,\"result\":{\"schema_version\":3,\"metadata\":{\"Name\":\"matcher-c\","
                           "\"Version\":\"1.0.0\",\"Author\":\"plughost\",\"GitHubRepository\":\"https://github.com/plughost/plughost\",\"Logo\":\"\","
                           "\"ConfigFields\":[]},\"capabilities\":{\"bot\":true}}}");
    if (!strcmp(method, "bot.describe"))
        return reply(resp, "{\"ok\":true,\"result\":{\"matchers\":["
                           "{\"handler\":\"on_roll\",\"type\":\"regex\","
                           "\"patterns\":[\"^roll (?P<count>\\\\d+)d(?P<sides>\\\\d+)$\"]},"
                           "{\"handler\":\"on_ping\",\"type\":\"keyword\",\"patterns\":[\"ping\"],"
                           "\"ignore_case\":true,\"to_me\":true}]" SCHEDULES "}}");
    if (!strcmp(method, "bot.schedule")) /* a returned message goes to the schedule's chat */
        return reply(resp, "{\"ok\":true,\"result\":{\"action\":\"reply\",\"text\":\"native tick\"}}");
    if (!strcmp(method, "bot.matcher")) {
        char handler[64] = "", count[16] = "", sides[16] = "";
        json_str(body, len, "handler", handler, sizeof handler);
        if (!strcmp(handler, "on_roll") && json_str(body, len, "count", count, sizeof count) &&
            json_str(body, len, "sides", sides, sizeof sides))
            return reply(resp, "{\"ok\":true,\"result\":{\"action\":\"reply\",\"text\":\"native rolled %sd%s\"}}",
                         count, sides);
        if (!strcmp(handler, "on_ping"))
            return reply(resp, "{\"ok\":true,\"result\":{\"action\":\"reply\",\"text\":\"native pong\"}}");
        return reply(resp, "{\"ok\":false,\"error\":{\"code\":\"invalid_request\",\"message\":\"bad call %s\"}}",
                     handler);
    }
    return reply(resp, "{\"ok\":false,\"error\":{\"code\":\"unknown_method\",\"message\":\"unknown method %s\"}}", method);
}

static void plugin_shutdown(void) {}

CLIPROXY_PLUGIN_EXPORT int cliproxy_plugin_init(const cliproxy_host_api *h, cliproxy_plugin_api *plugin) {
    if (h == NULL || plugin == NULL || h->abi_version != CLIPROXY_PLUGIN_ABI_VERSION) return 1;
    plugin->abi_version = CLIPROXY_PLUGIN_ABI_VERSION;
    plugin->call = plugin_call;
    plugin->free_buffer = plugin_free;
    plugin->shutdown = plugin_shutdown;
    return 0;
}
